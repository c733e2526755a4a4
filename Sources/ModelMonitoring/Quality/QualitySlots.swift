import ExporterConfig

/// The quality and fairness collectors' storage: one block of `width` slots per version, held twice with the same
/// layout, in a ``SliceRing`` (the model's window) and in cumulative ``AtomicSlots`` (since start, for the
/// raw counters). Positions are pre-computed by the task's layout, so recording an outcome is a few atomic
/// adds, no lookup and no allocation.
struct QualitySlots: Sendable {
    /// The window: each slice holds `versions × width` slots.
    let ring: SliceRing
    /// Since start: `versions × width` slots.
    let totals: AtomicSlots
    /// Slots per version.
    let width: Int

    init(versions: Int, width: Int, window: WindowConfiguration) {
        self.width = width
        ring = SliceRing(window: window, width: versions * width)
        totals = AtomicSlots(count: versions * width)
    }

    /// Adds one to integer slot `position` (version base included) in the window's `block` (when the
    /// outcome is not late) and in the totals.
    @inline(__always)
    func add(_ block: Int?, _ position: Int) {
        if let block {
            ring.add(block, position)
            ring.wrote(block)
        }
        totals.add(position)
    }

    /// Adds `value` to Double slot `position`, in the window's `block` and in the totals.
    @inline(__always)
    func addDouble(_ block: Int?, _ position: Int, _ value: Double) {
        if let block { ring.addDouble(block, position, value) }
        totals.addDouble(position, value)
    }

    /// Raises the window slot `position` of `block` to `key` (the ordered key of a Double, see
    /// ``orderedKey(_:)``); 0 means "no value" in a fresh slice.
    @inline(__always)
    func storeMaxKey(_ block: Int?, _ position: Int, _ key: UInt64) {
        if let block { ring.data.storeMaxInteger(block &+ position, key) }
    }

    /// A total-ordering key of a finite Double, as an unsigned integer: larger values have larger keys, and
    /// every key is above 0 (an empty slot). `-0.0` is keyed as `0.0`.
    @inline(__always)
    static func orderedKey(_ x: Double) -> UInt64 {
        let bits = (x + 0.0).bitPattern
        return bits & (1 << 63) != 0 ? ~bits : bits | (1 << 63)
    }

    /// The Double whose ``orderedKey(_:)`` is `key`.
    static func value(ofKey key: UInt64) -> Double {
        Double(bitPattern: key & (1 << 63) != 0 ? key & ~(1 << 63) : ~key)
    }

    /// A read of one version's window: the slices live at `now`.
    struct Window {
        let slots: QualitySlots
        /// Integer totals (older slices cached by the ring, see ``SliceRing/window(now:)``).
        let totals: SliceRing.Window
        var blocks: [Int] { totals.blocks }
        let base: Int

        /// The window's total of integer slot `position` (relative to the version's block).
        func count(_ position: Int) -> Double { Double(totals.total(base + position)) }

        /// The window's total of Double slot `position`.
        func sum(_ position: Int) -> Double { slots.ring.sumDouble(base + position, blocks: blocks) }

        /// The window's totals of integer slots `position..<position + count`.
        func counts(_ position: Int, _ count: Int) -> [Double] { totals.counts(base + position, count) }

        /// The window's totals of Double slots `position..<position + count`.
        func sums(_ position: Int, _ count: Int) -> [Double] {
            var out = [Double](repeating: 0, count: count)
            for block in blocks {
                for i in 0..<count { out[i] += slots.ring.data.loadDouble(block + base + position + i) }
            }
            return out
        }

        /// The largest key in slot `position` over the window, or 0 when no slice holds one.
        func maxKey(_ position: Int) -> UInt64 {
            var key: UInt64 = 0
            for block in blocks { key = Swift.max(key, slots.ring.data.load(block + base + position)) }
            return key
        }
    }

    /// Version `version`'s window, from the ring's ``SliceRing/window(now:)``.
    func window(version: Int, totals: SliceRing.Window) -> Window {
        Window(slots: self, totals: totals, base: version * width)
    }

    /// The cumulative integer slot `position` of `version`.
    func total(_ version: Int, _ position: Int) -> Double { Double(totals.load(version * width + position)) }

    /// The cumulative Double slot `position` of `version`.
    func totalDouble(_ version: Int, _ position: Int) -> Double { totals.loadDouble(version * width + position) }
}
