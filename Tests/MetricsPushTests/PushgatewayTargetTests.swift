import Testing

@testable import MetricsPush

@Suite struct PushgatewayTargetTests {
    @Test func groupingKeyPathAsThePushgatewayDocuments() throws {
        let t = try PushgatewayTarget(
            url: "http://127.0.0.1:9091/", job: "nightly", labels: [("model", "fraud"), ("run_id", "2026-12-03")])
        #expect(t.host == "127.0.0.1" && t.port == 9091)
        #expect(t.path == "/metrics/job/nightly/model/fraud/run_id/2026-12-03")
        let prefixed = try PushgatewayTarget(url: "http://gw/push/", job: "j", labels: [])
        #expect(prefixed.port == 80 && prefixed.path == "/push/metrics/job/j")
    }

    @Test func slashesAndEmptyValuesGoBase64url() {
        #expect(PushgatewayTarget.segment(name: "run_id", value: "a/b") == "run_id@base64/YS9i")
        #expect(PushgatewayTarget.segment(name: "model", value: "") == "model@base64/=")
        // The Pushgateway README's example: /metrics/job@base64/L3Zhci90bXA= is job="/var/tmp".
        #expect(PushgatewayTarget.segment(name: "job", value: "/var/tmp") == "job@base64/L3Zhci90bXA=")
        #expect(PushgatewayTarget.base64url([0xFB, 0xFF]) == "-_8=")
        #expect(PushgatewayTarget.segment(name: "run_id", value: "a b%é") == "run_id/a%20b%25%C3%A9")
        // `.` and `..` would be cleaned out of the path by the Pushgateway's router: a 301, every push refused.
        #expect(PushgatewayTarget.segment(name: "run_id", value: ".") == "run_id@base64/Lg==")
        #expect(PushgatewayTarget.segment(name: "job", value: "..") == "job@base64/Li4=")
        #expect(PushgatewayTarget.segment(name: "job", value: "...") == "job/...")
    }

    @Test func onlyHTTP() {
        #expect(throws: PushError.self) { try PushgatewayTarget(url: "https://gw:9091", job: "j", labels: []) }
        #expect(throws: PushError.self) { try PushgatewayTarget(url: "http://gw:0", job: "j", labels: []) }
        #expect(throws: PushError.self) { try PushgatewayTarget(url: "http://:9091", job: "j", labels: []) }
    }

    @Test func hostsNoResolverTakesAreRefusedAtOnceAndTheOthersKept() throws {
        // Before, `http://[::1` and the like were retried as network failures until the deadline ("cannot resolve").
        for url in [
            "http://[::1", "http://[::1:9091", "http://::1:9091", "http://a b:9091", "http://[nope]:9",
            "http://[fe80::1%]",
        ] {
            #expect(throws: PushError.self, "\(url)") { try PushgatewayTarget(url: url, job: "j", labels: []) }
        }
        for (url, host) in [
            ("http://localhost:9091", "localhost"), ("http://[::1]:9091/prefix", "::1"),
            ("http://my_host.Example", "my_host.Example"),
            ("http://[::ffff:127.0.0.1]", "::ffff:127.0.0.1"), ("http://[fe80::1%lo]:9", "fe80::1%lo"),
            // RFC 6874's spelling of the zone, given to the resolver decoded.
            ("http://[fe80::1%25eth0]:9", "fe80::1%eth0"),
        ] {
            #expect(try PushgatewayTarget(url: url, job: "j", labels: []).host == host, "\(url)")
        }
    }

    @Test func credentialsQueriesAndFragmentsAreRefusedAtOnce() throws {
        // Before, `user:pw@host` was taken as the host name (a run of retries ending "cannot resolve"), and a query
        // or fragment was glued before `/metrics/job/...` (answered 404 or 405).
        for url in [
            "http://user:pw@127.0.0.1:9091", "http://u@gw/prefix", "http://127.0.0.1:9091/?x=1",
            "http://127.0.0.1:9091/#frag", "http://gw?x",
        ] {
            #expect(throws: PushError.self, "\(url)") { try PushgatewayTarget(url: url, job: "j", labels: []) }
            #expect(throws: PushError.self, "\(url)") { try RemoteWriteReceiver(url: url + "/api/v1/write") }
        }
        // An `@` in the path is a path's character.
        let t = try PushgatewayTarget(url: "http://gw:9091/a@b", job: "j", labels: [])
        #expect(t.host == "gw" && t.path == "/a@b/metrics/job/j")
        #expect(
            PushError.invalidURL("x").description == "x"
                && PushError.deadline(seconds: 2.9999999300052878, attempts: 5, last: "down").description
                    == "push failed after 5 attempts in 3.0 s: down"
                && PushError.deadline(seconds: 1, attempts: 2, last: "x", what: "remote write").description
                    == "remote write failed after 2 attempts in 1.0 s: x"
        )
    }

    @Test func responsesAreParsedWhateverTheirFraming() {
        let plain = Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\nhello".utf8)
        #expect(HTTPExchange.parse(plain, complete: false)?.body == "hello")
        #expect(HTTPExchange.parse(Array(plain.dropLast(2)), complete: false) == nil)
        let chunked = Array("HTTP/1.1 503 x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n".utf8)
        #expect(HTTPExchange.parse(chunked, complete: false)?.body == "abcde")
        let closed = Array("HTTP/1.0 500 x\r\n\r\nbye".utf8)
        #expect(HTTPExchange.parse(closed, complete: false) == nil)
        #expect(HTTPExchange.parse(closed, complete: true)?.body == "bye")
    }

    /// Interim responses (a `100 Continue`, asked for or not; `103 Early Hints`) come before the answer and are
    /// skipped (RFC 9110 §15.2): the `100` was taken for the answer, and a request the receiver stored was counted
    /// refused (`batch --push` failed, remote write dropped the samples as `rejected`).
    @Test func interimResponsesAreSkipped() {
        let continued = Array("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n".utf8)
        #expect(HTTPExchange.parse(continued, complete: false)?.status == 204)
        let interimOnly = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
        #expect(HTTPExchange.parse(interimOnly, complete: false) == nil)
        #expect(HTTPExchange.parse(interimOnly, complete: true) == nil)
        let hints = Array(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                .utf8)
        let answer = HTTPExchange.parse(hints, complete: false)
        #expect(answer?.status == 200 && answer?.body == "ok")
        #expect(HTTPExchange.parse(Array(hints.dropLast(1)), complete: false) == nil)
        // At most 16 are skipped, in a loop: 5,000 of them (a hostile receiver) overflowed the stack by recursion and
        // ended the exporter; past 16 the interim answer is the answer (counted http_other).
        let interim = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
        let flood =
            Array(repeating: interim, count: 5000).flatMap { $0 } + Array("HTTP/1.1 204 No Content\r\n\r\n".utf8)
        #expect(HTTPExchange.parse(flood, complete: false)?.status == 100)
        let sixteen =
            Array(repeating: interim, count: 16).flatMap { $0 } + Array("HTTP/1.1 204 No Content\r\n\r\n".utf8)
        #expect(HTTPExchange.parse(sixteen, complete: false)?.status == 204)
    }

    /// A receiver's (or anything at its address's) negative `Content-Length` or chunk size, or a chunk size near
    /// `Int.max`, trapped slicing the body: in `serve` that is the remote write sender's thread, so the whole
    /// exporter. Now a negative length is a malformed answer and a bad chunk size an unframed body.
    @Test func negativeOrHugeLengthsAreMalformedAnswersNotTraps() {
        let negative = Array("HTTP/1.1 400 Bad Request\r\nContent-Length: -5\r\n\r\nhello".utf8)
        #expect(HTTPExchange.parse(negative, complete: false) == nil)
        #expect(HTTPExchange.parse(negative, complete: true) == nil)
        for size in ["-3", "-7fffffffffffffff", "7fffffffffffffff", "7ffffffffffffffe"] {
            let bytes = Array("HTTP/1.1 503 x\r\nTransfer-Encoding: chunked\r\n\r\n\(size)\r\nabc\r\n0\r\n\r\n".utf8)
            #expect(HTTPExchange.parse(bytes, complete: false) == nil, "\(size)")
            #expect(HTTPExchange.parse(bytes, complete: true)?.body == "\(size)\r\nabc\r\n0\r\n\r\n", "\(size)")
        }
    }
}
