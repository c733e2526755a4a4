import Compression
import Testing

/// ``InflateStream``: a gzip or zlib stream inflated piece by piece gives what ``Gzip/gunzip(_:maxOutputSize:)``
/// gives whole, however the input is cut and whatever the size of the output pieces.
@Suite("Inflating a stream that arrives in pieces")
struct InflateStreamTests {
    /// Inflates `input` cut at random places (1 to `maxCut` bytes), in output pieces of `pieceSize`.
    static func inflate(
        _ input: [UInt8], cuts rng: inout SplitMix64, maxCut: Int, pieceSize: Int, limit: Int = 1 << 26
    ) throws -> (output: [UInt8], pieces: Int, atEnd: Bool) {
        let stream = try InflateStream(maxOutput: limit, pieceSize: pieceSize)
        var output: [UInt8] = []
        var pieces = 0
        var at = 0
        while at < input.count {
            let n = min(input.count - at, Int.random(in: 1...maxCut, using: &rng))
            try input[at..<at + n].withUnsafeBytes { bytes in
                try stream.feed(bytes) { piece in
                    #expect(piece.count > 0 && piece.count <= pieceSize)
                    output.append(contentsOf: piece)
                    pieces += 1
                }
            }
            at += n
        }
        #expect(stream.produced == output.count)
        return (output, pieces, stream.atEnd)
    }

    @Test("any cut of the input, any piece size: the same bytes as inflating it whole")
    func cutsAndPieces() throws {
        var rng = SplitMix64(state: 7)
        let text = prometheusText(size: 200_000)
        let zeros = [UInt8](repeating: 0, count: 300_000)  // long matches: output pending after the input is taken
        let noise = (0..<50_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for input in [text, zeros, noise, [], Array("{}".utf8)] {
            for backend in [GzipBackend.zlib, .libdeflate] {
                let gz = try GzipPool(level: 6, backend: backend).compress(input)
                for (maxCut, pieceSize) in [(1, 1), (3, 7), (64, 100), (4096, 16_384), (1 << 20, 1 << 16)] {
                    let got = try Self.inflate(gz, cuts: &rng, maxCut: maxCut, pieceSize: pieceSize)
                    #expect(got.output == input, "\(input.count) bytes, cuts \(maxCut), pieces \(pieceSize)")
                    #expect(got.atEnd)
                }
            }
        }
    }

    @Test("all the output a piece of input determines is handed on before the next piece arrives")
    func nothingHeldBack() throws {
        // After each piece, small output pieces have handed on as much as one piece of ample room gives for the
        // same input (a long match copied into a small piece could leave output pending with the input all taken).
        var rng = SplitMix64(state: 13)
        let text = prometheusText(size: 20_000)
        for input in [[UInt8](repeating: 0, count: 40_000), text, text + text + text] {
            let gz = try GzipPool(level: 9, backend: .zlib).compress(input)
            for pieceSize in [1, 7, 300] {
                let stream = try InflateStream(maxOutput: 1 << 20, pieceSize: pieceSize)
                var output: [UInt8] = []
                var at = 0
                while at < gz.count {
                    let n = min(gz.count - at, Int.random(in: 1...40, using: &rng))
                    try gz[at..<at + n].withUnsafeBytes { bytes in try stream.feed(bytes) { output += $0 } }
                    at += n
                    let reference = try InflateStream(maxOutput: 1 << 20, pieceSize: 1 << 20)
                    var whole: [UInt8] = []
                    try gz[0..<at].withUnsafeBytes { bytes in try reference.feed(bytes) { whole += $0 } }
                    #expect(output.count == whole.count, "piece size \(pieceSize), \(at) of \(gz.count) bytes in")
                }
                #expect(output == input && stream.atEnd)
            }
        }
    }

    @Test("zlib streams (Content-Encoding: deflate) and concatenated gzip members")
    func zlibAndMembers() throws {
        var rng = SplitMix64(state: 11)
        let zlibHello: [UInt8] = [0x78, 0x9c, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x06, 0x2c, 0x02, 0x15]
        #expect(try Self.inflate(zlibHello, cuts: &rng, maxCut: 2, pieceSize: 2).output == Array("hello".utf8))
        let a = prometheusText(size: 30_000)
        let b = Array("data: {\"choices\": []}\n\n".utf8)
        let members = GzipPool.shared.compress(a) + GzipPool.shared.compress(b)
        for maxCut in [1, 5, 1000, members.count] {
            let got = try Self.inflate(members, cuts: &rng, maxCut: maxCut, pieceSize: 999)
            #expect(got.output == a + b && got.atEnd)
        }
    }

    @Test("output past the limit throws before the piece that crosses it; a bomb costs only the limit")
    func limit() throws {
        var rng = SplitMix64(state: 3)
        let input = prometheusText(size: 100_000)
        let gz = GzipPool.shared.compress(input)
        #expect(try Self.inflate(gz, cuts: &rng, maxCut: 500, pieceSize: 4096, limit: input.count).output == input)
        #expect(throws: GzipError.outputLimitExceeded(limit: input.count - 1)) {
            _ = try Self.inflate(gz, cuts: &rng, maxCut: 500, pieceSize: 4096, limit: input.count - 1)
        }
        let bomb = try GzipPool(level: 9, backend: .zlib).compress([UInt8](repeating: 0, count: 64 << 20))
        let stream = try InflateStream(maxOutput: 1 << 20)
        var handed = 0
        let error = #expect(throws: GzipError.self) {
            try bomb.withUnsafeBytes { bytes in try stream.feed(bytes) { handed += $0.count } }
        }
        #expect(error == .outputLimitExceeded(limit: 1 << 20))
        #expect(handed <= 1 << 20 && stream.produced == handed)
        // Once failed, nothing more is read.
        #expect(throws: GzipError.outputLimitExceeded(limit: 1 << 20)) {
            try [UInt8](repeating: 0, count: 4).withUnsafeBytes { bytes in
                try stream.feed(bytes) { _ in Issue.record("read after a failure") }
            }
        }
    }

    @Test("not gzip, damaged, trailing bytes, truncated: errors, never a crash")
    func corrupt() throws {
        var rng = SplitMix64(state: 5)
        #expect(throws: GzipError.corruptInput("incorrect header check")) {
            _ = try Self.inflate(Array("{\"model\": \"x\"}".utf8), cuts: &rng, maxCut: 4, pieceSize: 64)
        }
        let gz = GzipPool.shared.compress(prometheusText(size: 20_000))
        var badCRC = gz
        badCRC[badCRC.count - 6] ^= 0xff
        #expect(throws: GzipError.corruptInput("incorrect data check")) {
            _ = try Self.inflate(badCRC, cuts: &rng, maxCut: 300, pieceSize: 512)
        }
        // Trailing bytes after the member are read as another member's header.
        #expect(throws: GzipError.self) { _ = try Self.inflate(gz + [1, 2, 3], cuts: &rng, maxCut: 7, pieceSize: 512) }
        for cut in [0, 5, gz.count / 2, gz.count - 1] {
            let stream = try InflateStream(maxOutput: 1 << 20)
            try gz[0..<cut].withUnsafeBytes { bytes in try stream.feed(bytes) { _ in } }
            #expect(!stream.atEnd)
            #expect(throws: GzipError.truncatedInput) { try stream.finish() }
        }
        let whole = try InflateStream(maxOutput: 1 << 20)
        try gz.withUnsafeBytes { bytes in try whole.feed(bytes) { _ in } }
        try whole.finish()
    }
}
