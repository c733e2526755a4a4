import Testing

@testable import HTTPServer

@Suite("Chunked transfer coding")
struct ChunkedEncodingTests {
    @Test(
        "a chunk-size line is the count in lower-case hex, then CRLF",
        arguments: [1, 9, 10, 15, 16, 255, 256, 4095, 4096, 65_536, 1 << 40, Int.max])
    func sizeLine(count: Int) {
        let expected = Array((String(count, radix: 16) + "\r\n").utf8)
        #expect(ChunkedEncoding.sizeLine(count) == expected)
        var buffer = [UInt8](repeating: 0xFF, count: 24)
        let n = buffer.withUnsafeMutableBytes { ChunkedEncoding.writeSizeLine(count, into: $0) }
        #expect(Array(buffer[..<n]) == expected)
        #expect(buffer[n...].allSatisfy { $0 == 0xFF })
    }
}
