import Testing

@testable import HTTPServer

/// The method and reason-phrase strings the parsers make: literals for the common spellings, decoded otherwise, the
/// same text either way.
@Suite("Method and reason strings")
struct KnownStringsTests {
    private func bytes<R>(_ text: String, _ body: (HTTP1Framing.Bytes) -> R) -> R {
        Array(text.utf8).withUnsafeBufferPointer { body($0[...]) }
    }

    @Test(arguments: [
        "GET", "PUT", "POST", "HEAD", "PATCH", "TRACE", "DELETE", "OPTIONS", "CONNECT", "PURGE", "GE", "GETS", "get",
        "POSTS", "M-SEARCH", "X",
    ])
    func methodsKeepTheirSpelling(_ method: String) {
        #expect(bytes(method) { HTTP1Framing.methodString($0) } == method)
    }

    @Test(arguments: ["", "OK", "Ok", "OKAY", "Not Found", "K", "No Content"])
    func reasonPhrasesKeepTheirSpelling(_ reason: String) {
        #expect(bytes(reason) { HTTP1Framing.reasonString($0) } == reason)
    }

    @Test func aSliceInsideLargerInputIsReadWhereItIs() {
        let line = Array("xxPOSTyy".utf8)
        line.withUnsafeBufferPointer { buffer in
            #expect(HTTP1Framing.methodString(buffer[2..<6]) == "POST")
            #expect(HTTP1Framing.methodString(buffer[1..<5]) == "xPOS")
            #expect(HTTP1Framing.reasonString(buffer[4..<6]) == "ST")
        }
    }
}
