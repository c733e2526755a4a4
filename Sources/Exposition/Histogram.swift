import Synchronization

/// Bucket bounds of a histogram family, validated once and shared by its series, with the `le` label
/// text of every bucket (the last is `+Inf`) pre-rendered in both formats.
final class HistogramLayout: Sendable {
    let bounds: [Double]
    let leText: [[UInt8]]
    let leOpenMetrics: [[UInt8]]
    /// OpenMetrics forbids `_sum` when a bucket bound is negative.
    let hasNegativeBound: Bool

    init(bounds: [Double]) {
        self.bounds = bounds
        leText = (bounds.map { FloatFormat.goString($0) } + ["+Inf"]).map { Array("le=\"\($0)\"".utf8) }
        leOpenMetrics = (bounds.map { FloatFormat.openMetricsString($0) } + ["+Inf"]).map { Array("le=\"\($0)\"".utf8) }
        hasNegativeBound = bounds.contains { $0 < 0 }
    }

    /// Index of the first bucket whose bound is ≥ `value` (`bounds.count` for the `+Inf` bucket).
    @inline(__always)
    func bucketIndex(_ value: Double) -> Int {
        bounds.withUnsafeBufferPointer { Buckets.index(of: value, in: $0) }
    }
}

/// A distribution of observations in fixed buckets (latencies, sizes), as Prometheus classic
/// histograms: cumulative `_bucket{le}` counts, `_sum` and `_count`.
///
/// `observe` is lock-free and allocation-free: a binary search for the bucket, one atomic add on that
/// bucket, and a compare-and-swap add of the value into the sum. Buckets are stored non-cumulative and
/// summed at render time, so `_count` always equals the `+Inf` bucket. NaN observations are refused and
/// counted as dropped (reason `invalid_value`). OpenMetrics forbids a negative or NaN `_sum` (and a `_sum`
/// beside negative bucket bounds, or for a series that ever observed a negative value: its sum is no counter);
/// in that case the OpenMetrics output omits `_sum` and `_count` (which go together), while the buckets, whose
/// `+Inf` count is the count, stay. Text 0.0.4 always has both.
///
/// `@unchecked Sendable`: the bucket atomics live in memory this object allocates once and frees in
/// `deinit`; every access to them is atomic.
public final class Histogram: FamilySeries, @unchecked Sendable {
    /// Internal per-series data; not part of the API.
    public let _meta: SeriesMetaBox
    let layout: HistogramLayout
    let buckets: UnsafeMutablePointer<Atomic<UInt64>>
    let sumBits = Atomic<UInt64>(0)
    /// Set at the first observation below zero, and kept: OpenMetrics then has no `_sum` (nor `_count`) for the
    /// series, rather than a sum that goes down or comes and goes with its sign.
    let negativeObserved = Atomic<Bool>(false)
    let exemplars = Mutex<[Exemplar?]>([])

    init(meta: SeriesMeta, layout: HistogramLayout) {
        _meta = SeriesMetaBox(meta: meta)
        self.layout = layout
        let n = layout.bounds.count + 1
        buckets = .allocate(capacity: n)
        for i in 0..<n { (buckets + i).initialize(to: Atomic<UInt64>(0)) }
    }

    deinit {
        buckets.deinitialize(count: layout.bounds.count + 1)
        buckets.deallocate()
    }

    /// Records one observation.
    @inline(__always)
    public func observe(_ value: Double) {
        guard !value.isNaN else {
            _meta.meta.rejected()
            return
        }
        buckets[layout.bucketIndex(value)].wrappingAdd(1, ordering: .relaxed)
        // Stored once: a store per negative observation would take the line from the other cores each time.
        if value < 0 && !negativeObserved.load(ordering: .relaxed) { negativeObserved.store(true, ordering: .relaxed) }
        var old = sumBits.load(ordering: .relaxed)
        while true {
            let new = (Double(bitPattern: old) + value).bitPattern
            let (exchanged, current) = sumBits.weakCompareExchange(expected: old, desired: new, ordering: .relaxed)
            if exchanged { break }
            old = current
        }
        _meta.meta.touch(self)
    }

    /// Records one observation with an exemplar for its bucket (OpenMetrics only). The exemplar's value
    /// should be the observed value, which is what OpenMetrics requires to lie within the bucket.
    public func observe(_ value: Double, exemplar: Exemplar) {
        guard !value.isNaN else {
            _meta.meta.rejected()
            return
        }
        // The exemplar goes to the bucket its own value falls in, which OpenMetrics requires.
        let index = layout.bucketIndex(exemplar.value)
        observe(value)
        let n = layout.bounds.count + 1
        exemplars.withLock {
            if $0.isEmpty { $0 = Array(repeating: nil, count: n) }
            $0[index] = exemplar
        }
    }

    /// Number of observations.
    public var count: UInt64 {
        var total: UInt64 = 0
        for i in 0...layout.bounds.count { total &+= buckets[i].load(ordering: .relaxed) }
        return total
    }

    /// Sum of observations.
    public var sum: Double { Double(bitPattern: sumBits.load(ordering: .relaxed)) }

    /// Cumulative counts per bucket, the last being `+Inf` (the same numbers a scrape shows).
    public var cumulativeCounts: [UInt64] {
        var running: UInt64 = 0
        return (0...layout.bounds.count).map {
            running &+= buckets[$0].load(ordering: .relaxed)
            return running
        }
    }

    func render(into out: inout ByteWriter, names: FamilyNames, context: RenderContext) {
        let meta = _meta.meta
        let labels = meta.renderedLabels
        let le = context.format == .openMetrics ? layout.leOpenMetrics : layout.leText
        let ex: [Exemplar?] = context.format == .openMetrics ? exemplars.withLock { $0 } : []
        var running: UInt64 = 0
        for i in 0...layout.bounds.count {
            running &+= buckets[i].load(ordering: .relaxed)
            out.appendSeries(names.main, labels, le[i])
            out.appendInteger(running)
            if !ex.isEmpty, let e = ex[i] { out.append(contentsOf: e.rendered) }
            out.append(UInt8(ascii: "\n"))
        }
        out.appendSumAndCount(
            names, labels, sum: sum, count: running,
            negativeBounds: layout.hasNegativeBound || negativeObserved.load(ordering: .relaxed), format: context.format
        )
        if context.emitCreated { out.appendCreated(names, meta, context) }
    }
}
