import Testing

@testable import HTTPServer

/// ``FieldLineCopyPlan``: the upstream response parser's plan for copying a field section to the client must write
/// exactly what ``ForwardedFields/appendResponseFields(_:into:)`` writes, and exist for the usual responses.
@Suite("Field line copy plan")
struct FieldLineCopyPlanTests {
    /// The head the parser makes of `section` (field lines, each with its line break) after a status line.
    private func parsedHead(_ section: [UInt8]) -> UpstreamResponseHead? {
        var parser = HTTP1ResponseParser(limits: (maxHeaderBytes: 64 * 1024, maxHeaderCount: 200))
        let input = Array("HTTP/1.1 200 OK\r\n".utf8) + section + Array("\r\n".utf8)
        let (_, event) = input.withUnsafeBufferPointer { parser.parse($0, isHEAD: true, limit: .max) }
        guard case .head(let head) = event else { return nil }
        return head
    }

    /// What the proxy writes without a plan.
    private func forwarded(_ received: [UInt8]) -> (lines: [UInt8], hasDate: Bool) {
        var hasDate = false
        let lines = ByteWriter.array(capacity: ForwardedFields.capacity(sectionBytes: received.count, lines: 200)) {
            out in
            hasDate = received.withUnsafeBufferPointer { ForwardedFields.appendResponseFields($0, into: &out) }
        }
        return (lines, hasDate)
    }

    private func planned(_ plan: FieldLineCopyPlan, _ received: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        plan.copy(received, into: &out)
        #expect(out.count == plan.keptCount(of: received.count))
        return out
    }

    @Test func anNginxResponseHasAPlanThatDropsItsHopByHopLines() throws {
        let section = Array(
            ("Server: nginx\r\nDate: Thu, 03 Dec 2026 19:00:00 GMT\r\nContent-Type: application/json\r\n"
                + "Content-Length: 96\r\nConnection: keep-alive\r\n").utf8)
        let head = try #require(parsedHead(section))
        let plan = try #require(head.copyPlan)
        let received = try #require(head.headers.receivedLines)
        #expect(plan.hasDate && plan.skippedCount == 1)  // Content-Length and Connection: one run
        #expect(
            planned(plan, received)
                == Array(
                    "Server: nginx\r\nDate: Thu, 03 Dec 2026 19:00:00 GMT\r\nContent-Type: application/json\r\n".utf8))
        #expect(planned(plan, received) == forwarded(received).lines)
    }

    @Test func sectionsThatNeedRewritingHaveNoPlan() throws {
        for section in [
            "A:1\r\n",  // no space after the colon
            "A: 1 \r\n",  // whitespace after the value
            "A: 1\n",  // a bare LF
            "A:  1\r\n",  // two spaces
            "Connection: close, X-Secret\r\nX-Secret: 1\r\n",  // a listed field
            "Te: a\r\nA: 1\r\nUpgrade: b\r\nB: 2\r\nTrailer: c\r\nC: 3\r\nKeep-Alive: d\r\nD: 4\r\nConnection: close\r\n",
        ] {
            let head = try #require(parsedHead(Array(section.utf8)))
            #expect(head.copyPlan == nil, "\(section.debugDescription)")
        }
        // A hop-by-hop line that needs rewriting is dropped anyway: the plan stands.
        let head = try #require(parsedHead(Array("Connection:keep-alive \nA: 1\r\n".utf8)))
        #expect(head.copyPlan != nil)
    }

    /// Random sections from names that are dropped, kept, listed or `Date`, in every spelling and layout: wherever
    /// the parser makes a plan, its copy is what ``ForwardedFields`` writes, and so is `hasDate`.
    @Test func aPlanWritesWhatForwardedFieldsWrites() throws {
        var random = Splitter(state: 0x5EED_F1E1D)
        let names = [
            "Content-Type", "content-type", "Date", "DATE", "X-A", "x-b", "Server", "Connection", "connection",
            "Keep-Alive", "Content-Length", "Transfer-Encoding", "TE", "Upgrade", "Trailer", "Proxy-Connection",
            "Set-Cookie", "Close",
        ]
        let connectionValues = ["keep-alive", "close", "Keep-Alive, close", "close, x-a", "X-B", " , keep-alive ,", ""]
        let layouts = [": ", ":", ":  ", ": \t"]
        let values = ["1", "a b", "", "x=1; y=2"]
        var withPlan = 0
        var without = 0
        for _ in 0..<3000 {
            var section = ""
            for _ in 0..<random.next(10) {
                let name = names[random.next(names.count)]
                var value: String
                if name.lowercased() == "connection" {
                    value = connectionValues[random.next(connectionValues.count)]
                } else if name.lowercased() == "content-length" {
                    value = "0"
                } else if name.lowercased() == "transfer-encoding" {
                    value = "gzip"
                } else {
                    value = values[random.next(values.count)]
                }
                if random.next(6) == 0 { value += " " }
                let layout =
                    random.next(4) == 0
                    ? layouts[random.next(layouts.count)] : ": "
                let lineBreak = random.next(8) == 0 ? "\n" : "\r\n"
                section += name + layout + value + lineBreak
            }
            guard let head = parsedHead(Array(section.utf8)) else { continue }  // e.g. conflicting framing
            guard let received = head.headers.receivedLines else {
                #expect(section.isEmpty)
                continue
            }
            let expected = forwarded(received)
            guard let plan = head.copyPlan else {
                without += 1
                continue
            }
            withPlan += 1
            #expect(planned(plan, received) == expected.lines, "\(section.debugDescription)")
            #expect(plan.hasDate == expected.hasDate, "\(section.debugDescription)")
        }
        // Both ways were taken, many times.
        #expect(withPlan > 300 && without > 300, "\(withPlan) with a plan, \(without) without")
    }
}
