import Testing

@testable import HTTPServer

/// The one-pass field-line reader (``HTTP1Framing/nextField(_:from:to:)``) against the line-by-line one it replaced
/// (find the line break, then ``HTTP1Framing/parseFieldLine(_:_:)``): the same names, values and next lines,
/// or the same error, for every section.
@Suite("Field line parsing")
struct FieldLineParsingTests {
    private enum Outcome: Equatable {
        case lines([[Int]])
        case error(String)
    }

    private func read(
        _ section: [UInt8],
        _ next: (UnsafeBufferPointer<UInt8>, Int, Int) throws(HTTP1Framing.Malformed) -> (
            name: HTTP1Framing.Bytes, value: HTTP1Framing.Bytes, next: Int
        )
    ) -> Outcome {
        section.withUnsafeBufferPointer { input in
            var lines: [[Int]] = []
            var start = 0
            do throws(HTTP1Framing.Malformed) {
                while start < input.count {
                    let (name, value, following) = try next(input, start, input.count)
                    lines.append([name.startIndex, name.endIndex, value.startIndex, value.endIndex, following])
                    start = following
                }
            } catch {
                return .error(error.reason)
            }
            return .lines(lines)
        }
    }

    @Test func readsAsTheLineByLineParser() {
        var random = Splitter(state: 0xF1E1_D5)
        // Token bytes, the separators, whitespace, and every kind of byte a value may not hold.
        let pieces: [[UInt8]] = [
            Array("Content-Type".utf8), Array("x".utf8), Array("a-b_c.d".utf8), Array(":".utf8), Array(" ".utf8),
            [0x09], Array("text/plain; q=1".utf8), Array("0123456789abcdef".utf8), [0x0D], [0x0D, 0x0A], [0x00], [0x7F],
            [0xC3, 0xA9], Array("\"quoted\"".utf8), Array("(x)".utf8), [0x0B], [0x1F],
        ]
        var lines = 0
        var errors = 0
        for _ in 0..<20_000 {
            var section: [UInt8] = []
            for _ in 0..<(1 + random.next(4)) {
                var line: [UInt8] = []
                if random.next(3) > 0 {
                    // A plausible line: name, colon, optional whitespace, a value, optional whitespace.
                    line += pieces[random.next(3)]
                    line += Array(":".utf8)
                    for _ in 0..<random.next(3) { line += random.next(2) == 0 ? [0x20] : [0x09] }
                    for _ in 0..<random.next(6) { line += pieces[4 + random.next(pieces.count - 4)] }
                } else {
                    for _ in 0..<random.next(8) { line += pieces[random.next(pieces.count)] }
                }
                line += random.next(4) == 0 ? [0x0A] : [0x0D, 0x0A]
                section += line
            }
            // Sections end in LF, as the head scanner hands them over; drop anything after the last LF.
            if let last = section.lastIndex(of: 0x0A) { section.removeSubrange((last + 1)...) }
            guard !section.isEmpty else { continue }
            let expected = read(section) { input, start, limit throws(HTTP1Framing.Malformed) in
                try HTTP1Framing.nextFieldChecking(input, from: start, to: limit)
            }
            let actual = read(section) { input, start, limit throws(HTTP1Framing.Malformed) in
                try HTTP1Framing.nextField(input, from: start, to: limit)
            }
            #expect(actual == expected, "\(section)")
            if case .error = expected { errors += 1 } else { lines += 1 }
        }
        // Both ways were taken often.
        #expect(lines > 1_000 && errors > 1_000, "\(lines) sections read, \(errors) refused")
    }
}
