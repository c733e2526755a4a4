import Synchronization

/// A value that goes up and down (queue depth, temperature, a drift score). Lock-free: the value is
/// the bit pattern of a `Double` in one atomic; `set` is one store, `inc`/`dec` a compare-and-swap loop.
public final class Gauge: FamilySeries {
    /// Internal per-series data; not part of the API.
    public let _meta: SeriesMetaBox
    let bits = Atomic<UInt64>(0)
    /// `name{labels} `, kept here so that a render touches one object less.
    let prefix: [UInt8]

    init(meta: SeriesMeta) {
        _meta = SeriesMetaBox(meta: meta)
        prefix = meta.mainPrefix
    }

    /// Sets the value (NaN and infinities are legal gauge values).
    @inline(__always)
    public func set(_ value: Double) {
        bits.store(value.bitPattern, ordering: .relaxed)
        _meta.meta.touch(self)
    }

    /// Adds `amount` (may be negative).
    public func inc(by amount: Double = 1) {
        var old = bits.load(ordering: .relaxed)
        while true {
            let new = (Double(bitPattern: old) + amount).bitPattern
            let (exchanged, current) = bits.weakCompareExchange(expected: old, desired: new, ordering: .relaxed)
            if exchanged { break }
            old = current
        }
        _meta.meta.touch(self)
    }

    /// Subtracts `amount`.
    public func dec(by amount: Double = 1) { inc(by: -amount) }

    /// Sets the value to the current Unix time in seconds.
    public func setToCurrentTime() { set(Clock.unixSeconds()) }

    /// The current value.
    public var value: Double { Double(bitPattern: bits.load(ordering: .relaxed)) }

    func render(into out: inout ByteWriter, names: FamilyNames, context: RenderContext) {
        out.append(contentsOf: prefix)
        out.appendSampleValue(value)
        out.append(UInt8(ascii: "\n"))
    }
}
