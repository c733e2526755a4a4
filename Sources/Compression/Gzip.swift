import Synchronization

/// gzip for HTTP bodies: the defaults, and ``gunzip(_:maxOutputSize:)-([UInt8],_)`` for request bodies.
///
/// Compress with a ``GzipPool`` (thread-safe, for servers) or a ``GzipCompressor`` (one per thread).
///
/// ```swift
/// let pool = GzipPool()                        // default backend and level
/// let body = pool.compress(rendered)           // from any thread
/// let request = try Gzip.gunzip(payload, maxOutputSize: 16 << 20)
/// ```
public enum Gzip {
    /// The default backend: libdeflate.
    ///
    /// Measured with `GZIP_BENCH=1 swift test -c release` (`GzipBenchmarkTests`) on a 2-vCPU VM, on
    /// rendered Prometheus text, best of 5-15 calls:
    ///
    /// | body | backend | level | ratio | ms/call | MB/s |
    /// |---|---|---|---|---|---|
    /// | 1 MB | libdeflate | 1 | 9.11 | 1.8 | 589 |
    /// | 1 MB | libdeflate | 3 | 9.37 | 2.6 | 404 |
    /// | 1 MB | libdeflate | 6 | 10.72 | 6.8 | 153 |
    /// | 1 MB | zlib | 1 | 7.99 | 3.0 | 351 |
    /// | 1 MB | zlib | 3 | 8.08 | 5.0 | 208 |
    /// | 1 MB | zlib | 6 | 9.15 | 11.3 | 93 |
    /// | 8 MB | libdeflate | 1 | 9.13 | 14.9 | 565 |
    /// | 8 MB | libdeflate | 3 | 9.48 | 21.8 | 385 |
    /// | 8 MB | libdeflate | 6 | 10.76 | 58.8 | 143 |
    /// | 8 MB | zlib | 1 | 8.01 | 25.3 | 331 |
    /// | 8 MB | zlib | 3 | 8.10 | 41.4 | 202 |
    /// | 8 MB | zlib | 6 | 9.19 | 95.1 | 88 |
    ///
    /// libdeflate is faster than zlib at every level and compresses better at the same level, so there is
    /// no trade-off: zlib stays available only for comparison and as a fallback.
    public static let defaultBackend: GzipBackend = .libdeflate

    /// The default level: 1.
    ///
    /// In the table on ``defaultBackend``, libdeflate level 1 compresses as well as zlib's default level 6
    /// (ratio 9.1) at 6x its speed (about 570 MB/s: 15 ms for an 8 MB body). Level 3 saves 3% of the bytes for
    /// 45% more CPU time, and level 6 saves 15% for 4x the time. A scrape body is compressed on every
    /// scrape and crosses a local or cluster network, where the exporter's CPU time matters more than the
    /// last few percent of bytes.
    public static let defaultLevel = 1

}

/// Thread-safe one-shot gzip: a small pool of ``GzipCompressor``s sharing one level and backend.
///
/// Each ``compress(_:)`` checks a compressor out of the pool (creating one if none is idle), uses it
/// without any lock held, and checks it back in; the lock guards only the pop and push of an array,
/// so a few HTTP threads compressing at once never wait for each other's compression. At most
/// ``maxIdleCompressors`` are kept between calls; extra ones created under a burst are freed.
public final class GzipPool: Sendable {
    /// A shared pool with the default backend and level.
    public static let shared = GzipPool()

    /// The compression level of every compressor in the pool.
    public let level: Int
    /// The backend of every compressor in the pool.
    public let backend: GzipBackend
    /// How many idle compressors (with their scratch buffers) the pool keeps between calls.
    public let maxIdleCompressors: Int

    /// A compressor lent to exactly one caller at a time by the pool; never used concurrently.
    private struct Pooled: @unchecked Sendable {
        let compressor: GzipCompressor
    }

    private let idle: Mutex<[Pooled]>

    /// Creates a pool with ``Gzip/defaultLevel`` and ``Gzip/defaultBackend`` that keeps up to 4 idle
    /// compressors.
    public convenience init() {
        try! self.init(level: Gzip.defaultLevel, backend: Gzip.defaultBackend)  // the defaults are valid
    }

    /// Creates a pool with one compressor in it, so an invalid level fails here rather than on the
    /// first request. Throws ``GzipError/invalidLevel(_:backend:)`` for a level outside
    /// `backend.validLevels`.
    public init(level: Int, backend: GzipBackend = Gzip.defaultBackend, maxIdleCompressors: Int = 4) throws(GzipError) {
        let first = try GzipCompressor(level: level, backend: backend)
        self.level = level
        self.backend = backend
        self.maxIdleCompressors = max(1, maxIdleCompressors)
        idle = Mutex([Pooled(compressor: first)])
    }

    /// Compresses `input` into one gzip member. Safe to call from any number of threads at once.
    public func compress(_ input: [UInt8]) -> [UInt8] {
        withCompressor { $0.compress(input) }
    }

    /// Compresses `input` into `output` (contents replaced, capacity kept). Safe from any thread.
    public func compress(_ input: [UInt8], into output: inout [UInt8]) {
        withCompressor { $0.compress(input, into: &output) }
    }

    /// Lends `body` a compressor of its own for the duration of the call; it must not escape.
    public func withCompressor<R, E: Error>(_ body: (GzipCompressor) throws(E) -> R) throws(E) -> R {
        let lent = checkOut()
        defer { checkIn(lent) }
        return try body(lent.compressor)
    }

    private func checkOut() -> Pooled {
        if let pooled = idle.withLock({ $0.popLast() }) { return pooled }
        // The level was validated by init, so this cannot throw.
        return Pooled(compressor: try! GzipCompressor(level: level, backend: backend))
    }

    private func checkIn(_ pooled: Pooled) {
        let limit = maxIdleCompressors
        idle.withLock { idle in
            if idle.count < limit { idle.append(pooled) }
        }
    }
}
