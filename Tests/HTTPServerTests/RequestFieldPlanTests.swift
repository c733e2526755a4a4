import Testing

@testable import HTTPServer

/// ``RequestFieldPlan``: the request parser's plan for forwarding a field section upstream must make the proxy write
/// exactly what it writes without one (through ``ForwardedFields``), and exist for the usual requests.
@Suite("Request field plan")
struct RequestFieldPlanTests {
    /// The request and plan the parser makes of `section` (field lines, each with its line break).
    private func parsed(_ section: String, version: String = "HTTP/1.1") -> (HTTPRequest, RequestFieldPlan?)? {
        var parser = HTTP1Parser(limits: .init(), plansForwarding: true)
        let input = Array("GET /v2/models/m/infer?x=1 \(version)\r\n\(section)\r\n".utf8)
        let (_, result) = input.withUnsafeBufferPointer { parser.parse($0) }
        guard case .request(let request) = result else { return nil }
        let head = request.head
        return (
            HTTPRequest(
                method: head.method, path: head.path, query: head.query, version: head.version, headers: head.headers,
                remoteAddress: "10.1.2.3:4567"),
            parser.forwardPlan
        )
    }

    /// What the proxy sends upstream for `request` (with `plan`), as ``ReverseProxy`` decides on the request id.
    private func encoded(_ request: HTTPRequest, plan: RequestFieldPlan?, requestIDHeader: String) -> [UInt8] {
        let clientID = request.headers[requestIDHeader].flatMap { $0.isEmpty ? nil : $0 }
        return ForwardedRequest.encode(
            request, plan: plan, basePath: "/base", hostFallback: "upstream:8080", forwardedProto: "http",
            requestIDHeader: requestIDHeader, requestID: "generated-id", addRequestID: clientID == nil
        ).head
    }

    @Test func aUsualRequestHasAPlanThatDropsHostAndFraming() throws {
        let section =
            "Host: api.example\r\nUser-Agent: h2load\r\nAccept: */*\r\nContent-Length: 0\r\n"
            + "Connection: keep-alive\r\nContent-Type: application/json\r\n"
        let (request, plan) = try #require(parsed(section))
        let made = try #require(plan)
        #expect(made.lines.skippedCount == 2)  // Host; Content-Length and Connection
        #expect(
            String(decoding: encoded(request, plan: made, requestIDHeader: "X-Request-Id"), as: UTF8.self)
                == "GET /base/v2/models/m/infer?x=1 HTTP/1.1\r\nUser-Agent: h2load\r\nAccept: */*\r\n"
                + "Content-Type: application/json\r\nHost: api.example\r\nX-Forwarded-For: 10.1.2.3\r\n"
                + "X-Forwarded-Proto: http\r\nX-Forwarded-Host: api.example\r\nX-Request-Id: generated-id\r\n\r\n")
        #expect(
            encoded(request, plan: made, requestIDHeader: "X-Request-Id")
                == encoded(request, plan: nil, requestIDHeader: "X-Request-Id"))
    }

    @Test func sectionsThatNeedRewritingHaveNoPlan() throws {
        for section in [
            "Host: h\r\nA:1\r\n",  // no space after the colon
            "Host: h\r\nA: 1 \r\n",  // whitespace after the value
            "Host: h\r\nA: 1\n",  // a bare LF
            "Host: h\r\nX-Request-Id: \r\n",  // an empty value (a request id the proxy replaces)
            "Host: h\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\n",  // a listed field
            // Five runs left out: more than a plan holds.
            "Host: h\r\nTe: a\r\nA: 1\r\nUpgrade: b\r\nB: 2\r\nTrailer: c\r\nC: 3\r\nKeep-Alive: d\r\nD: 4\r\nTE: e\r\n"
                + "E: 5\r\n",
        ] {
            let (_, plan) = try #require(parsed(section), "\(section.debugDescription)")
            #expect(plan == nil, "\(section.debugDescription)")
        }
        // A parser not asked for plans makes none.
        var parser = HTTP1Parser(limits: .init())
        let input = Array("GET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8)
        _ = input.withUnsafeBufferPointer { parser.parse($0) }
        #expect(parser.forwardPlan == nil)
    }

    /// Random sections from names that are dropped, kept, listed, forwarded or the request id, in every spelling and
    /// layout, with request id fields of several names: wherever the parser makes a plan, the head sent upstream is
    /// byte for byte the one sent without it.
    @Test func aPlanForwardsWhatForwardedFieldsForwards() throws {
        var random = Splitter(state: 0x5EED_0F_4E0E57)
        let names = [
            "Content-Type", "content-type", "Accept", "X-A", "x-b", "User-Agent", "Connection", "connection",
            "Keep-Alive", "TE", "Upgrade", "Trailer", "Proxy-Connection", "Expect", "X-Forwarded-For",
            "x-forwarded-for", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-Id", "x-request-id", "Trace-Id",
            "Content-Length", "Close",
        ]
        let connectionValues = ["keep-alive", "close", "Keep-Alive, close", "close, x-a", "X-B", " , keep-alive ,"]
        let layouts = [": ", ":", ":  ", ": \t"]
        let values = ["1", "a b", "", "x=1; y=2", "203.0.113.9", "id-7"]
        let idNames = ["X-Request-Id", "Trace-Id", "X-A"]
        var withPlan = 0
        var without = 0
        for _ in 0..<3000 {
            var lines: [String] = []
            for _ in 0..<random.next(9) {
                let name = names[random.next(names.count)]
                var value: String
                switch name.lowercased() {
                case "connection": value = connectionValues[random.next(connectionValues.count)]
                case "content-length": value = "0"
                case "expect": value = "100-continue"
                default: value = values[random.next(values.count)]
                }
                if random.next(8) == 0 { value += " " }
                let layout = random.next(5) == 0 ? layouts[random.next(layouts.count)] : ": "
                let lineBreak = random.next(10) == 0 ? "\n" : "\r\n"
                lines.append(name + layout + value + lineBreak)
            }
            // HTTP/1.1 needs exactly one Host; an HTTP/1.0 request may have none.
            let http10 = random.next(6) == 0
            if !http10 || random.next(2) == 0 {
                let host = ["Host: api.example\r\n", "host:h:1\r\n", "HOST: [::1]:80 \r\n"][random.next(3)]
                lines.insert(host, at: random.next(lines.count + 1))
            }
            guard let (request, plan) = parsed(lines.joined(), version: http10 ? "HTTP/1.0" : "HTTP/1.1") else {
                continue  // e.g. two Content-Lengths
            }
            guard let plan else {
                without += 1
                continue
            }
            withPlan += 1
            for idName in idNames {
                #expect(
                    encoded(request, plan: plan, requestIDHeader: idName)
                        == encoded(request, plan: nil, requestIDHeader: idName),
                    "\(lines.joined().debugDescription) id \(idName)")
            }
        }
        // Both ways were taken, many times.
        #expect(withPlan > 300 && without > 300, "\(withPlan) with a plan, \(without) without")
    }
}
