import Synchronization
import Testing

@testable import HTTPServer

/// ``HTTPHeaders`` holding the lines a parser received (``HTTPHeaders/receivedLines``) must answer exactly as the
/// same fields built in code.
@Suite struct ReceivedHeadersTests {
    private static let section =
        "Host: h\r\nACCEPT: a\r\naccept:  b \nX-Empty:\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c\r\n"
        + "Set-Cookie:c=1\r\n"

    /// The fields as a parser makes them, and the same built in code.
    private func both() throws -> (received: HTTPHeaders, built: HTTPHeaders) {
        var parser = HTTP1Parser(limits: .init())
        let bytes = Array(("GET / HTTP/1.1\r\n" + Self.section + "\r\n").utf8)
        guard case .request(let request) = bytes.withUnsafeBufferPointer({ parser.parse($0) }).result else {
            throw TestFailure("no request")
        }
        let built = HTTPHeaders([
            ("Host", "h"), ("ACCEPT", "a"), ("accept", "b"), ("X-Empty", ""), ("Connection", "keep-alive, Upgrade"),
            ("Upgrade", "h2c"), ("Set-Cookie", "c=1"),
        ])
        return (request.head.headers, built)
    }

    /// What an h2c upgrade removes (Connection, Upgrade) goes, the other lines keep their bytes (a value that is
    /// not UTF-8 included: ``HTTPHeaders/remove(name:)`` decoded every field, U+FFFD for it), and the lookups answer
    /// as the same removal from fields built in code.
    @Test func removingKeepsTheOtherLinesBytes() throws {
        var (received, built) = try both()
        received.removeKeepingReceivedBytes(["connection", "UPGRADE"])
        built.removeKeepingReceivedBytes(["connection", "UPGRADE"])
        #expect(
            received.receivedLines
                == Array("Host: h\r\nACCEPT: a\r\naccept:  b \nX-Empty:\r\nSet-Cookie:c=1\r\n".utf8))
        #expect(received.count == 5 && built.count == 5)
        #expect(received.map { "\($0.name)=\($0.value)" } == built.map { "\($0.name)=\($0.value)" })
        var obsText = HTTPHeaders(
            receivedLines: [0x41, 0x3A, 0xFF, 0x0D, 0x0A, 0x42, 0x3A, 0x31, 0x0D, 0x0A], count: 2)
        obsText.removeKeepingReceivedBytes(["b"])
        #expect(obsText.receivedLines == [0x41, 0x3A, 0xFF, 0x0D, 0x0A])
    }

    @Test func lookupsAnswerAsTheFieldsBuiltInCode() throws {
        let (received, built) = try both()
        #expect(received.receivedLines == Array(Self.section.utf8))
        #expect(built.receivedLines == nil)
        #expect(received.count == 7 && received.count == built.count && !received.isEmpty)
        for name in ["host", "Accept", "x-empty", "CONNECTION", "missing", "set-cookie", "Set-Cookie:", ""] {
            #expect(received[name] == built[name], "\(name)")
            #expect(received.values(for: name) == built.values(for: name), "\(name)")
            #expect(received.contains(name) == built.contains(name), "\(name)")
        }
        #expect(received["accept"] == "a")
        #expect(received.values(for: "accept") == ["a", "b"])
        #expect(received["X-Empty"] == "")
        #expect(received.containsToken("upgrade", in: "connection"))
        #expect(received.containsToken("h2c", in: "Upgrade") && !received.containsToken("h2", in: "Upgrade"))
        #expect(received.map { "\($0.name)=\($0.value)" } == built.map { "\($0.name)=\($0.value)" })
        #expect(received == built)
        #expect(received.description == built.description)
    }

    /// Lookups skip the lines when no name has the looked-up name's bit (its length and first byte, case folded):
    /// every name, in any case and whatever its first byte, is still found, and a missing one is not.
    @Test func everyNameIsFoundWhateverItsCaseAndFirstByte() throws {
        let names = [
            "X-Request-ID", "x", "A", "0-digit", "!bang", "#hash", "~tilde", "_under", "`tick", "^caret", "|bar",
            "Content-Language", String(repeating: "z", count: 40), String(repeating: "Q", count: 70),
        ]
        var section = ""
        for (index, name) in names.enumerated() { section += "\(name): v\(index)\r\n" }
        var parser = HTTP1Parser(limits: .init())
        let bytes = Array(("GET / HTTP/1.1\r\nHost: h\r\n" + section + "\r\n").utf8)
        guard case .request(let request) = bytes.withUnsafeBufferPointer({ parser.parse($0) }).result else {
            throw TestFailure("no request")
        }
        let headers = request.head.headers
        #expect(headers.receivedLines != nil)
        for (index, name) in names.enumerated() {
            for spelled in [name, name.lowercased(), name.uppercased()] {
                #expect(headers[spelled] == "v\(index)", "\(spelled)")
                #expect(headers.values(for: spelled) == ["v\(index)"], "\(spelled)")
                #expect(headers.contains(spelled), "\(spelled)")
            }
        }
        for missing in ["X-Request-IE", "y", "@", "1-digit", "Content-Type", "", String(repeating: "z", count: 39)] {
            #expect(headers[missing] == nil && !headers.contains(missing), "\(missing)")
            #expect(headers.values(for: missing).isEmpty, "\(missing)")
        }
    }

    @Test func changesDecodeTheReceivedFieldsFirst() throws {
        let (received, built) = try both()
        var added = received
        added.add(name: "X-New", value: "1")
        var expected = built
        expected.add(name: "X-New", value: "1")
        #expect(added.receivedLines == nil)
        #expect(added.map { "\($0.name)=\($0.value)" } == expected.map { "\($0.name)=\($0.value)" })

        var removed = received
        removed.remove(name: "ACCEPT")
        #expect(removed.receivedLines == nil)
        #expect(removed.values(for: "accept").isEmpty && removed.count == 5 && removed["Upgrade"] == "h2c")

        var unchanged = received
        unchanged.remove(name: "missing")  // nothing removed: the received bytes stay
        #expect(unchanged.receivedLines != nil)

        var replaced = received
        replaced.replaceOrAdd(name: "host", value: "other")
        #expect(replaced["Host"] == "other" && replaced.count == 7)
    }

    @Test func valuesThatAreNotUTF8AreRepairedInStringsOnly() throws {
        var parser = HTTP1Parser(limits: .init())
        let bytes = Array("GET / HTTP/1.1\r\nHost: h\r\nX-Raw: caf".utf8) + [0xE9] + Array("\r\n\r\n".utf8)
        guard case .request(let request) = bytes.withUnsafeBufferPointer({ parser.parse($0) }).result else {
            Issue.record("no request")
            return
        }
        let headers = request.head.headers
        #expect(headers["x-raw"] == "caf\u{FFFD}")
        #expect(headers.map(\.value) == ["h", "caf\u{FFFD}"])
        #expect(headers.receivedLines?.contains(0xE9) == true)
    }

    @Test func aListGivenFieldsBeforeParsingKeepsThemAsStrings() throws {
        // The response parser's trailers and any caller with fields already in the list get them appended.
        var headers = HTTPHeaders([("Before", "1")])
        let bytes = Array("A: 1\r\nB: 2\r\n".utf8)
        try bytes.withUnsafeBufferPointer { input in
            try HTTP1Framing.forEachField(input, in: 0..<bytes.count, into: &headers) { _, _ in }
        }
        #expect(headers.receivedLines == nil)
        #expect(headers.map(\.name) == ["Before", "A", "B"])
    }

    /// ``HTTPHeaders/isSendable(value:)`` (a word at a time, then byte by byte) answers the byte rule: no CR, LF or
    /// NUL, whatever else the value holds (control bytes, DEL, non-ASCII), at every length and position.
    @Test func sendableValuesFollowTheByteRule() {
        var random = Splitter(state: 0x5E4D_AB1E)
        let alphabet: [UInt8] = [0x00, 0x09, 0x0A, 0x0D, 0x1F, 0x20, 0x41, 0x7E, 0x7F, 0xC3, 0xA9]
        var refused = 0
        for _ in 0..<20_000 {
            let bytes = (0..<random.next(40)).map { _ in
                random.next(6) == 0 ? alphabet[random.next(alphabet.count)] : UInt8(0x61 + random.next(26))
            }
            let value = String(decoding: bytes, as: UTF8.self)
            let expected = !value.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0 }
            #expect(HTTPHeaders.isSendable(value: value) == expected, "\(Array(value.utf8))")
            if !expected { refused += 1 }
        }
        #expect(refused > 1000)
    }

    /// Headers a wrapping handler sets (the web configuration's) replace the response's own of the same name, except
    /// a Content-Security-Policy, sent beside the response's: both apply, so the configured one cannot undo the page's.
    @Test func aWrappingPolicyIsAddedBesideTheResponsesOwnAndOtherFieldsReplaced() {
        let got = Mutex<HTTPResponse?>(nil)
        let responder = HTTPResponder { response in got.withLock { $0 = response } }.settingHeaders([
            (name: "Content-Security-Policy", value: "default-src 'self'"), (name: "X-Frame-Options", value: "deny"),
        ])
        responder(
            HTTPResponse(
                status: 200,
                headers: ["content-security-policy": "default-src 'none'", "X-Frame-Options": "sameorigin"]))
        let response = got.withLock { $0 }
        #expect(
            response?.headers.values(for: "Content-Security-Policy") == ["default-src 'none'", "default-src 'self'"])
        #expect(response?.headers.values(for: "X-Frame-Options") == ["deny"])
    }
}
