import Compression
import Dispatch
import Foundation
import Synchronization
import Testing

/// Deterministic pseudo-random bytes (SplitMix64), so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A realistic Prometheus text body of at least `size` bytes.
func prometheusText(size: Int) -> [UInt8] {
    let models = ["fraud", "churn", "ranking", "recommender", "embeddings", "spam", "pricing"]
    let statuses = ["ok", "error", "timeout", "rejected"]
    var out: [UInt8] = []
    out.reserveCapacity(size + 200)
    out.append(contentsOf: "# HELP mlops_model_requests_total Requests served by the model.\n".utf8)
    out.append(contentsOf: "# TYPE mlops_model_requests_total counter\n".utf8)
    var rng = SplitMix64(state: 42)
    var i = 0
    while out.count < size {
        let model = models[i % models.count]
        let version = "v\(i / models.count % 50)"
        let status = statuses[(i / 350) % statuses.count]
        let value = rng.next() % 10_000_000
        let line =
            "mlops_model_requests_total{model=\"\(model)\",version=\"\(version)\",status=\"\(status)\"} \(value)\n"
        out.append(contentsOf: line.utf8)
        i += 1
    }
    return out
}

func randomBytes(_ count: Int, seed: UInt64 = 7) -> [UInt8] {
    var rng = SplitMix64(state: seed)
    return (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
}

/// Runs `executable` with `arguments`, feeding `input` on stdin, and returns stdout.
func run(_ executable: String, _ arguments: [String], input: [UInt8]) throws -> (status: Int32, output: [UInt8]) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let stdin = Pipe()
    let stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    try process.run()
    // Write on another thread so a large input cannot deadlock against a full stdout pipe.
    let writer = stdin.fileHandleForWriting
    let data = Data(input)
    let done = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        writer.write(data)
        try? writer.close()
        done.signal()
    }
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    done.wait()
    process.waitUntilExit()
    return (process.terminationStatus, [UInt8](output))
}

@Suite struct GzipTests {
    static let inputs: [(String, [UInt8])] = [
        ("empty", []),
        ("small", Array("hello, gzip\n".utf8)),
        ("1 MB text", prometheusText(size: 1 << 20)),
        ("random 300 kB", randomBytes(300_000)),
    ]

    @Test(arguments: GzipBackend.allCases)
    func roundTrip(backend: GzipBackend) throws {
        for level in [0, 1, 6, backend.validLevels.upperBound] {
            let compressor = try GzipCompressor(level: level, backend: backend)
            for (name, input) in Self.inputs {
                // Twice with the same compressor: state and scratch are reused.
                for _ in 0..<2 {
                    let gz = compressor.compress(input)
                    #expect(gz.starts(with: [0x1f, 0x8b, 8]), "\(backend) \(level) \(name): gzip magic")
                    let back = try Gzip.gunzip(gz, maxOutputSize: input.count)
                    #expect(back == input, "\(backend) level \(level) \(name)")
                }
            }
        }
    }

    @Test(arguments: GzipBackend.allCases)
    func textCompressesWell(backend: GzipBackend) throws {
        let input = prometheusText(size: 1 << 20)
        let gz = try GzipPool(level: 1, backend: backend).compress(input)
        #expect(gz.count * 5 < input.count, "\(backend): \(gz.count) bytes from \(input.count)")
    }

    @Test func compressIntoReusesTheCallersBuffer() throws {
        let compressor = GzipCompressor()
        var out: [UInt8] = []
        let big = prometheusText(size: 200_000)
        compressor.compress(big, into: &out)
        #expect(try Gzip.gunzip(out, maxOutputSize: big.count) == big)
        let capacity = out.capacity
        let small = Array("abc".utf8)
        compressor.compress(small, into: &out)
        #expect(out.capacity == capacity)
        #expect(try Gzip.gunzip(out, maxOutputSize: 3) == small)
    }

    @Test func ourOutputDecodesWithSystemGzip() throws {
        let input = prometheusText(size: 100_000)
        for backend in GzipBackend.allCases {
            let gz = try GzipPool(level: Gzip.defaultLevel, backend: backend).compress(input)
            let (status, output) = try run("/usr/bin/env", ["gzip", "-dc"], input: gz)
            #expect(status == 0)
            #expect(output == input, "\(backend)")
        }
    }

    @Test func gunzipsSystemGzipOutput() throws {
        for (name, input) in Self.inputs {
            for level in ["-1", "-9"] {
                let (status, gz) = try run("/usr/bin/env", ["gzip", "-c", level, "-n"], input: input)
                #expect(status == 0)
                #expect(try Gzip.gunzip(gz, maxOutputSize: input.count) == input, "\(name) \(level)")
            }
        }
    }

    @Test func gunzipsConcatenatedMembers() throws {
        let a = Array("first member\n".utf8)
        let b = prometheusText(size: 10_000)
        let joined = GzipPool.shared.compress(a) + (try run("/usr/bin/env", ["gzip", "-c"], input: b).output)
        #expect(try Gzip.gunzip(joined, maxOutputSize: 1 << 20) == a + b)
    }

    @Test func gunzipsZlibFramingToo() throws {
        let zlibHello: [UInt8] = [0x78, 0x9c, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x06, 0x2c, 0x02, 0x15]
        #expect(try Gzip.gunzip(zlibHello, maxOutputSize: 5) == Array("hello".utf8))
    }

    @Test func outputLimitIsEnforced() throws {
        let input = prometheusText(size: 1 << 20)
        let gz = GzipPool.shared.compress(input)
        #expect(try Gzip.gunzip(gz, maxOutputSize: input.count) == input)
        #expect(throws: GzipError.outputLimitExceeded(limit: input.count - 1)) {
            try Gzip.gunzip(gz, maxOutputSize: input.count - 1)
        }
        #expect(throws: GzipError.outputLimitExceeded(limit: 0)) {
            try Gzip.gunzip(GzipPool.shared.compress([1]), maxOutputSize: 0)
        }
        #expect(try Gzip.gunzip(GzipPool.shared.compress([]), maxOutputSize: 0) == [])
    }

    @Test func bombStopsAtTheLimit() throws {
        // 1 GiB of zeros compresses to about 1 MB; the limit stops inflation long before that.
        let zeros = [UInt8](repeating: 0, count: 64 << 20)
        let gz = try GzipPool(level: 9, backend: .zlib).compress(zeros)
        #expect(gz.count < 100_000)
        let error = #expect(throws: GzipError.self) { try Gzip.gunzip(gz, maxOutputSize: 1 << 20) }
        #expect(error == .outputLimitExceeded(limit: 1 << 20))
        #expect(error?.description == "gzip: decompressed size exceeds the limit of 1048576 bytes")
    }

    @Test func corruptInputIsRejected() throws {
        let input = prometheusText(size: 50_000)
        let gz = GzipPool.shared.compress(input)

        // Not gzip at all.
        let garbage = #expect(throws: GzipError.self) {
            try Gzip.gunzip(Array("definitely not gzip".utf8), maxOutputSize: 1 << 20)
        }
        guard case .corruptInput(let detail)? = garbage else {
            Issue.record("expected corruptInput, got \(String(describing: garbage))")
            return
        }
        #expect(detail == "incorrect header check")

        // A flipped byte in the CRC trailer.
        var badCRC = gz
        badCRC[badCRC.count - 6] ^= 0xff
        #expect(throws: GzipError.corruptInput("incorrect data check")) {
            try Gzip.gunzip(badCRC, maxOutputSize: 1 << 20)
        }

        // Damage in the middle of the deflate stream: any corruptInput, never a crash or success.
        var damaged = gz
        for i in stride(from: 20, to: damaged.count - 8, by: 97) { damaged[i] ^= 0x5a }
        let mid = #expect(throws: GzipError.self) { try Gzip.gunzip(damaged, maxOutputSize: 1 << 20) }
        if case .corruptInput? = mid {} else { Issue.record("expected corruptInput, got \(String(describing: mid))") }

        // Trailing bytes that do not start another member.
        #expect(throws: GzipError.corruptInput("3 unexpected bytes after the end of the gzip stream")) {
            try Gzip.gunzip(gz + [1, 2, 3], maxOutputSize: 1 << 20)
        }
    }

    @Test func truncatedInputIsRejected() throws {
        let gz = GzipPool.shared.compress(prometheusText(size: 50_000))
        #expect(throws: GzipError.truncatedInput) { try Gzip.gunzip([], maxOutputSize: 10) }
        #expect(throws: GzipError.truncatedInput) { try Gzip.gunzip(Array(gz.prefix(5)), maxOutputSize: 1 << 20) }
        #expect(throws: GzipError.truncatedInput) {
            try Gzip.gunzip(Array(gz.dropLast(4)), maxOutputSize: 1 << 20)
        }
    }

    @Test func invalidLevelsAreRejected() {
        #expect(throws: GzipError.invalidLevel(10, backend: .zlib)) { try GzipPool(level: 10, backend: .zlib) }
        #expect(throws: GzipError.invalidLevel(13, backend: .libdeflate)) { try GzipCompressor(level: 13) }
        #expect(throws: GzipError.invalidLevel(-1, backend: .libdeflate)) { try GzipCompressor(level: -1) }
        #expect(
            GzipError.invalidLevel(10, backend: .zlib).description
                == "gzip: level 10 is not valid for zlib (valid: 0...9)")
    }

    @Test func poolIsSafeUnderConcurrentUse() throws {
        let gzip = try GzipPool(level: 1, maxIdleCompressors: 2)
        let inputs = (0..<8).map { prometheusText(size: 20_000 + $0 * 5_000) }
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            let input = inputs[i % inputs.count]
            let ok = (try? Gzip.gunzip(gzip.compress(input), maxOutputSize: input.count)) == input
            if !ok { failures.withLock { $0 += 1 } }
        }
        #expect(failures.withLock { $0 } == 0)
    }
}
