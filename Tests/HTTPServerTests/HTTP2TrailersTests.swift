import CNghttp2
import Glibc
import Testing

@testable import HTTPServer

/// Request trailers over HTTP/2 (a HEADERS block after the body): never merged into the request's headers, counted
/// against the header limits, and a stream reset for them gives back what it held.
@Suite("HTTP/2 request trailers")
struct HTTP2TrailersTests {
    @Test func trailersDoNotReachTheHandlerAsHeaders() throws {
        try withServer { _, port in
            // Merged, a trailer `host` or request id would reach the handler (and a proxy's upstream) after the head
            // was screened.
            let client = try HTTP2Client(port: port)
            let id = client.request(
                "POST", "/headers", body: Array("abc".utf8), headers: [("x-head", "1")],
                trailers: [("host", "evil:80@x"), ("x-request-id", "chosen"), ("x-trailer-only", "1")])
            let response = try client.response(id)
            #expect(response.status == 200)
            #expect(response.text == "x-head: 1\nhost: test\n")  // `host` from `:authority`
        }
    }

    /// Trailers over the header limits are answered 431 with their reason (as HTTP/1.1 answers a chunked body's
    /// trailers), counted `too_large`, and the stream gives back what it held. Before, nghttp2 reset the stream
    /// (INTERNAL_ERROR), no status.
    @Test func streamsRefusedForTheirTrailersGiveBackTheirBodyBytes() throws {
        let observer = RecordingObserver()
        try withServer(
            configure: {
                $0.maxHeaderCount = 20
                $0.maxBufferedBodyBytes = 4 << 20
                $0.maxConnectionBodyBytes = 4 << 20
            }, observer: observer
        ) { server, port in
            let client = try HTTP2Client(port: port)
            let body = [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20)
            let trailers = (0..<30).map { ("x-t\($0)", "v") }
            for _ in 0..<4 {
                let id = client.request("POST", "/echo", body: body, trailers: trailers)
                let response = try client.response(id, timeout: 10)
                #expect(response.status == 431 && response.errorCode == 0)
                #expect(response.text == "more than 20 header and trailer fields\n")
            }
            #expect(observer.errors.filter { $0 == "too_large" }.count == 4)
            // Before, each reset stream kept its megabyte reserved and the connection its receiving slot: the budget
            // was full and every other upload was refused 503.
            #expect(eventually { server.bufferedBodyBytes == 0 })
            let other = try RawClient(port: port)
            try other.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz")
            let answer = try other.readResponse()
            #expect(answer.status == 200)
            #expect(answer.text == "xyz")
        }
    }
}
