import Glibc
import Testing

@testable import HTTPServer

/// `expect: 100-continue` over HTTP/2 (RFC 9110 §10.1.1): the client may hold its body until the interim 100.
@Suite("HTTP/2 expect: 100-continue")
struct HTTP2ExpectContinueTests {
    @Test func aClientWaitingForContinueGetsItThenItsAnswer() throws {
        try withServer { _, port in
            let client = try HTTP2Client(port: port)
            // The body is held back (nothing of it sent) until the 100 arrives, as Java's HttpClient does. Before, no
            // 100 came: the request failed 408 at the body timeout.
            let id = client.request(
                "POST", "/echo", body: [], headers: [("expect", "100-continue"), ("content-length", "5")],
                endStream: false)
            try client.run(timeout: 3) { client.responses[id]?.status == 100 }
            #expect(client.responses[id]?.status == 100)
            client.upload(id, Array("hello".utf8), end: true)
            let response = try client.response(id)
            #expect(response.status == 200)
            #expect(response.text == "hello")
        }
    }

    @Test func noContinueWithoutTheExpectation() throws {
        try withServer { _, port in
            let client = try HTTP2Client(port: port)
            let id = client.request("POST", "/echo", body: [], headers: [("content-length", "2")], endStream: false)
            #expect(throws: TestFailure.self) { try client.run(timeout: 0.5) { client.responses[id] != nil } }
            client.upload(id, Array("ok".utf8), end: true)
            #expect(try client.response(id).text == "ok")
        }
    }
}
