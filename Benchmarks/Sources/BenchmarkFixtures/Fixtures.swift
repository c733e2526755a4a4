import Exposition

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// SplitMix64: a fixed-seed generator, so every run observes and renders the same values.
public struct SplitMix64: RandomNumberGenerator {
    /// The generator's whole state.
    public var state: UInt64

    /// A generator that always produces the same sequence for the same seed.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Observations for the histogram benchmark, generated once outside the timed loop: log-uniform between
/// 1 ms and 20 s, so that every one of the 12 default buckets (`+Inf` included) is hit and the binary
/// search takes unpredictable branches, as real latencies do. 4096 values (32 KiB) stay in L1.
public final class Observations: @unchecked Sendable {
    /// Number of values.
    public static let count = 4096
    /// `index & mask` cycles through the values.
    public static let mask = count - 1
    /// The values, in memory this object owns.
    public let values: UnsafeMutableBufferPointer<Double>

    /// Generates the values from `seed`.
    public init(seed: UInt64 = 42) {
        var rng = SplitMix64(seed: seed)
        values = .allocate(capacity: Self.count)
        let lo = log(0.001)
        let hi = log(20.0)
        for i in 0..<Self.count { values[i] = exp(Double.random(in: lo..<hi, using: &rng)) }
    }

    deinit { values.deallocate() }
}

/// What a render benchmark works on: a populated registry, a reused output buffer and the series count.
public final class RenderFixture: @unchecked Sendable {
    /// The populated registry.
    public let registry: Registry
    /// The output buffer, reused by every render (its capacity is kept).
    public var buffer: [UInt8] = []
    /// Sample lines a render writes.
    public let series: Int
    /// How those lines split between metric types.
    public let mix: Mix

    /// The make-up of a registry of `series` sample lines (each line is one Prometheus time series).
    public struct Mix: Sendable, CustomStringConvertible {
        /// Counter series (one line each).
        public let counters: Int
        /// Gauge series (one line each).
        public let gauges: Int
        /// Histogram series (``linesPerHistogram`` lines each).
        public let histograms: Int
        /// Lines per histogram with the 11 default buckets: 12 `_bucket` (with `+Inf`), `_sum`, `_count`.
        public static let linesPerHistogram = 14

        /// 70 % counter lines, 16 % gauge lines, 14 % histogram lines.
        public init(series: Int) {
            histograms = series / 100  // 14 % of the lines
            gauges = series * 16 / 100  // 16 %
            counters = series - gauges - histograms * Self.linesPerHistogram  // 70 %
        }

        /// Sample lines in all.
        public var lines: Int { counters + gauges + histograms * Self.linesPerHistogram }

        /// The mix in words, for logs.
        public var description: String {
            "\(counters) counters, \(gauges) gauges, \(histograms) histograms (\(histograms * Self.linesPerHistogram) lines)"
        }
    }

    /// Builds the registry:
    /// - `bench_http_requests_total{code,handler}`: `mix.counters` counters, 10 status codes × N/10 handlers,
    ///   integer values 0..<1,000,000;
    /// - `bench_pool_utilisation_ratio{pool,shard}`: `mix.gauges` gauges with random fractional values in
    ///   [0, 1) (16–17 significant digits: the slow, shortest-round-trip formatting path);
    /// - `bench_request_duration_seconds{handler,method}`: `mix.histograms` histograms with the 11 default
    ///   buckets, each given 1–64 log-uniform observations (so `_sum` is fractional too).
    /// The registry has its default options (self metrics on, `_created` off); its self-metric families
    /// have no series, so they write nothing.
    public init(series: Int, seed: UInt64 = 7) throws {
        self.series = series
        mix = Mix(series: series)
        registry = Registry()
        var rng = SplitMix64(seed: seed)

        let requests = try registry.counterFamily(
            "bench_http_requests", help: "HTTP requests by handler and status code.", labelNames: ["handler", "code"])
        let codes = ["200", "201", "204", "301", "304", "400", "401", "404", "500", "503"]
        for i in 0..<mix.counters {
            try requests.labels("/api/v1/resource_\(i / codes.count)", codes[i % codes.count])
                .inc(by: Int.random(in: 0..<1_000_000, using: &rng))
        }

        let utilisation = try registry.gaugeFamily(
            "bench_pool_utilisation_ratio", help: "Share of each connection pool shard in use.",
            labelNames: ["pool", "shard"])
        for i in 0..<mix.gauges {
            try utilisation.labels("pool_\(i / 16)", "\(i % 16)").set(Double.random(in: 0..<1, using: &rng))
        }

        let durations = try registry.histogramFamily(
            "bench_request_duration_seconds", help: "Request latency.", unit: "seconds",
            labelNames: ["handler", "method"])
        let lo = log(0.001)
        let hi = log(20.0)
        for i in 0..<mix.histograms {
            let h = try durations.labels("/api/v1/resource_\(i / 2)", i % 2 == 0 ? "GET" : "POST")
            for _ in 0..<Int.random(in: 1...64, using: &rng) { h.observe(exp(Double.random(in: lo..<hi, using: &rng))) }
        }
    }
}

/// Label values for the registration benchmark, built once outside the timed region: 10 status codes ×
/// N/10 handlers, as in the render fixture.
public func registrationLabels(count: Int) -> [(String, String)] {
    let codes = ["200", "201", "204", "301", "304", "400", "401", "404", "500", "503"]
    return (0..<count).map { ("/api/v1/resource_\($0 / codes.count)", codes[$0 % codes.count]) }
}
