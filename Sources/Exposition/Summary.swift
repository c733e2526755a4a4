import Synchronization

/// Options for a summary's quantiles over a sliding time window.
///
/// The window is `maxAge` long and rotates in `ageBuckets` steps (client_golang's defaults: 10 minutes,
/// 5 steps). Each step keeps up to `maxSamplesPerBucket` observations; beyond that it keeps a uniform
/// random sample of them (reservoir sampling), so memory is bounded and quantiles are exact until the
/// cap and sampled after it. Quantiles use the nearest-rank definition; with no observations they are NaN.
public struct SummaryQuantiles: Sendable, Equatable {
    /// Quantiles to report, each in (0, 1).
    public var quantiles: [Double]
    /// Window length.
    public var maxAge: Duration
    /// Number of steps the window rotates by.
    public var ageBuckets: Int
    /// Observations kept per step before sampling starts.
    public var maxSamplesPerBucket: Int

    /// Builds the options; validated when the family is created.
    public init(
        quantiles: [Double] = [0.5, 0.9, 0.99], maxAge: Duration = .seconds(600), ageBuckets: Int = 5,
        maxSamplesPerBucket: Int = 10_000
    ) {
        self.quantiles = quantiles
        self.maxAge = maxAge
        self.ageBuckets = ageBuckets
        self.maxSamplesPerBucket = maxSamplesPerBucket
    }

    func validated(metric: String) throws(ExpositionError) -> SummaryQuantiles {
        var q = self
        q.quantiles.sort()
        for (i, v) in q.quantiles.enumerated() {
            guard v > 0 && v < 1 else { throw .invalidQuantiles(metric: metric, reason: "\(v) is not in (0, 1)") }
            if i > 0 && q.quantiles[i - 1] == v { throw .invalidQuantiles(metric: metric, reason: "duplicate \(v)") }
        }
        guard ageBuckets >= 1, maxSamplesPerBucket >= 1, maxAge > .zero else {
            throw .invalidQuantiles(
                metric: metric, reason: "maxAge, ageBuckets and maxSamplesPerBucket must be positive")
        }
        return q
    }

    var stepNanos: UInt64 {
        Swift.max(1, maxAge.saturatingNanoseconds / UInt64(ageBuckets))
    }
}

/// Rotating window of observation samples for summary quantiles. Guarded by the summary's mutex.
struct QuantileWindow {
    var buckets: [[Double]]
    var seen: [Int]
    var current = 0
    var stepStart: UInt64
    var rng: UInt64 = 0x9E37_79B9_7F4A_7C15

    init(steps: Int, now: UInt64) {
        buckets = Array(repeating: [], count: steps)
        seen = Array(repeating: 0, count: steps)
        stepStart = now
    }

    mutating func rotate(now: UInt64, step: UInt64) {
        guard now >= stepStart &+ step else { return }
        let elapsed = Int(Swift.min((now &- stepStart) / step, UInt64(buckets.count)))
        for _ in 0..<elapsed {
            current = (current + 1) % buckets.count
            buckets[current].removeAll(keepingCapacity: true)
            seen[current] = 0
        }
        stepStart &+= step &* ((now &- stepStart) / step)
    }

    mutating func add(_ v: Double, cap: Int) {
        seen[current] += 1
        if buckets[current].count < cap {
            buckets[current].append(v)
            return
        }
        // Reservoir sampling (algorithm R) with a xorshift generator.
        rng ^= rng << 13
        rng ^= rng >> 7
        rng ^= rng << 17
        let j = Int(rng % UInt64(seen[current]))
        if j < cap { buckets[current][j] = v }
    }

    func quantiles(_ qs: [Double]) -> [Double] {
        var all: [Double] = []
        for b in buckets { all.append(contentsOf: b) }
        guard !all.isEmpty else { return qs.map { _ in .nan } }
        all.sort()
        return qs.map { q in
            let rank = Int((q * Double(all.count)).rounded(.up))
            return all[Swift.max(0, Swift.min(all.count - 1, rank - 1))]
        }
    }
}

/// Count and sum of observations, optionally with quantiles over a sliding time window.
///
/// Without quantiles `observe` is lock-free (two atomics). With quantiles it also takes a mutex and
/// appends to the current window step, as client_golang's summaries do; prefer a ``Histogram`` where
/// you need to aggregate across instances, since quantiles cannot be aggregated. As for histograms, the
/// OpenMetrics output omits `_sum` and `_count` when the sum is negative or NaN, and quantiles whose value is
/// negative, which OpenMetrics forbids.
public final class Summary: FamilySeries {
    /// Internal per-series data; not part of the API.
    public let _meta: SeriesMetaBox
    let count = Atomic<UInt64>(0)
    let sumBits = Atomic<UInt64>(0)
    let options: SummaryQuantiles?
    let quantileLabels: [[UInt8]]
    /// Empty (zero steps) when the summary has no quantiles.
    let window: Mutex<QuantileWindow>

    init(meta: SeriesMeta, options: SummaryQuantiles?, quantileLabels: [[UInt8]]) {
        _meta = SeriesMetaBox(meta: meta)
        self.options = options
        self.quantileLabels = quantileLabels
        window = Mutex(QuantileWindow(steps: options?.ageBuckets ?? 0, now: Clock.monotonicNanos()))
    }

    /// Records one observation; NaN is refused and counted as dropped.
    public func observe(_ value: Double) {
        guard !value.isNaN else {
            _meta.meta.rejected()
            return
        }
        count.wrappingAdd(1, ordering: .relaxed)
        var old = sumBits.load(ordering: .relaxed)
        while true {
            let new = (Double(bitPattern: old) + value).bitPattern
            let (exchanged, current) = sumBits.weakCompareExchange(expected: old, desired: new, ordering: .relaxed)
            if exchanged { break }
            old = current
        }
        if let options {
            let now = Clock.monotonicNanos()
            window.withLock {
                $0.rotate(now: now, step: options.stepNanos)
                $0.add(value, cap: options.maxSamplesPerBucket)
            }
        }
        _meta.meta.touch(self)
    }

    /// Current quantile estimates over the window, in ascending quantile order (empty without quantiles).
    public var quantileValues: [Double] { quantileValues(now: Clock.monotonicNanos()) }

    func quantileValues(now: UInt64) -> [Double] {
        guard let options else { return [] }
        return window.withLock {
            $0.rotate(now: now, step: options.stepNanos)
            return $0.quantiles(options.quantiles)
        }
    }

    /// Number of observations.
    public var observationCount: UInt64 { count.load(ordering: .relaxed) }
    /// Sum of observations.
    public var sum: Double { Double(bitPattern: sumBits.load(ordering: .relaxed)) }

    func render(into out: inout ByteWriter, names: FamilyNames, context: RenderContext) {
        let meta = _meta.meta
        let labels = meta.renderedLabels
        for (i, q) in quantileValues.enumerated() where context.format == .text || OpenMetricsRules.allowsQuantile(q) {
            out.appendSeries(names.main, labels, quantileLabels[i])
            out.appendSampleValue(q)
            out.append(UInt8(ascii: "\n"))
        }
        out.appendSumAndCount(
            names, labels, sum: sum, count: observationCount, negativeBounds: false, format: context.format)
        if context.emitCreated { out.appendCreated(names, meta, context) }
    }
}
