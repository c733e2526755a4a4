import Synchronization

/// A monotonically increasing count (requests served, events rejected). Starts at 0 and only goes up;
/// for a value that can go down use ``Gauge``.
///
/// A counter is a handle: obtain it once (from ``Registry/counter(_:help:unit:)`` or
/// ``MetricFamily/labels(_:)-swift.method``) and keep it; every update is lock-free. Integer increments
/// use one atomic add; fractional ones add into a separate double with a compare-and-swap loop, so the
/// common `inc()` never loops. Negative, NaN and infinite increments are refused and counted as
/// dropped (reason `invalid_value`) instead of breaking monotonicity.
public final class Counter: FamilySeries {
    /// Internal per-series data; not part of the API.
    public let _meta: SeriesMetaBox
    let integer = Atomic<UInt64>(0)
    let fractionBits = Atomic<UInt64>(0)
    let exemplar = Mutex<Exemplar?>(nil)
    /// Set once an exemplar was recorded, so that renders lock only counters that have one.
    let hasExemplar = Atomic<Bool>(false)
    /// `name{labels} `, kept here as well as in the metadata so that a render touches one object less.
    let prefix: [UInt8]

    init(meta: SeriesMeta) {
        _meta = SeriesMetaBox(meta: meta)
        prefix = meta.mainPrefix
    }

    /// Adds one.
    @inline(__always)
    public func inc() {
        addWhole(1)
        _meta.meta.touch(self)
    }

    /// Adds a whole number; a negative one is refused and counted.
    @inline(__always)
    public func inc(by amount: Int) {
        guard amount >= 0 else {
            _meta.meta.rejected()
            return
        }
        addWhole(UInt64(amount))
        _meta.meta.touch(self)
    }

    /// Adds `amount` to the integer part while it is below 2^63, else to the double part (whole increments that
    /// passed 2^64 wrapped round to a small number, read as a counter reset). Two increments racing past the check
    /// can still pass 2^64: the carry of 2^64 into the double part then follows the add, and a scrape between the
    /// two may see the wrapped value (two increments of ~2^63 at once).
    @inline(__always)
    private func addWhole(_ amount: UInt64) {
        guard integer.load(ordering: .relaxed) < 1 << 63 else { return addFraction(Double(amount)) }
        let old = integer.wrappingAdd(amount, ordering: .relaxed).oldValue
        if old > UInt64.max &- amount { addFraction(0x1p64) }
    }

    /// Adds `amount` to the double part (a compare-and-swap loop).
    private func addFraction(_ amount: Double) {
        var old = fractionBits.load(ordering: .relaxed)
        while true {
            let new = (Double(bitPattern: old) + amount).bitPattern
            let (exchanged, current) = fractionBits.weakCompareExchange(
                expected: old, desired: new, ordering: .relaxed)
            if exchanged { break }
            old = current
        }
    }

    /// Adds a non-negative finite amount; anything else is refused and counted.
    public func inc(by amount: Double) {
        guard amount >= 0 && amount.isFinite else {
            _meta.meta.rejected()
            return
        }
        if amount == amount.rounded(.towardZero) && amount < FloatFormat.twoTo53 {
            addWhole(UInt64(amount))
        } else {
            addFraction(amount)
        }
        _meta.meta.touch(self)
    }

    /// Adds `amount` and records an exemplar for it (OpenMetrics only).
    public func inc(by amount: Double, exemplar: Exemplar) {
        guard amount >= 0 && amount.isFinite else {
            _meta.meta.rejected()
            return
        }
        inc(by: amount)
        self.exemplar.withLock { $0 = exemplar }
        hasExemplar.store(true, ordering: .releasing)
    }

    /// Starts the count again from 0, as a restart of the process would; Prometheus's `rate()` reads the
    /// drop as a counter reset. For bridges whose API has a reset (swift-metrics' `CounterHandler.reset()`).
    /// Lock-free: two atomic stores; an increment racing with it lands before or after the reset.
    public func resetToZero() {
        integer.store(0, ordering: .relaxed)
        fractionBits.store(0, ordering: .relaxed)
        _meta.meta.touch(self)
    }

    /// The current total.
    public var value: Double {
        Double(integer.load(ordering: .relaxed)) + Double(bitPattern: fractionBits.load(ordering: .relaxed))
    }

    func render(into out: inout ByteWriter, names: FamilyNames, context: RenderContext) {
        out.append(contentsOf: prefix)
        let fraction = Double(bitPattern: fractionBits.load(ordering: .relaxed))
        let whole = integer.load(ordering: .relaxed)
        if fraction == 0 {
            out.appendInteger(whole)
        } else {
            out.appendSampleValue(Double(whole) + fraction)
        }
        if context.format == .openMetrics, hasExemplar.load(ordering: .acquiring), let e = exemplar.withLock({ $0 }) {
            out.append(contentsOf: e.rendered)
        }
        out.append(UInt8(ascii: "\n"))
        if context.emitCreated { out.appendCreated(names, _meta.meta, context) }
    }
}
