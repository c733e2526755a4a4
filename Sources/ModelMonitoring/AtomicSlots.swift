import Synchronization

/// A fixed number of 64-bit atomic slots allocated once: the storage of a collector's counters, bucket
/// counts and Double sums, indexed by pre-computed positions so that recording an event does no lookup.
///
/// Integer slots count (`add`); Double slots hold a bit pattern updated by compare-and-swap (`addDouble`,
/// `storeMax`). Every access is atomic and relaxed: readers at scrape time see each slot consistently,
/// not all slots at one instant (as with any Prometheus client).
public final class AtomicSlots: @unchecked Sendable {
    private let base: UnsafeMutablePointer<Atomic<UInt64>>
    /// The number of slots.
    public let count: Int

    /// `count` slots, all zero (for Double slots, zero is `0.0`).
    public init(count: Int) {
        precondition(count >= 0)
        self.count = count
        base = .allocate(capacity: max(count, 1))
        for i in 0..<count { (base + i).initialize(to: Atomic<UInt64>(0)) }
    }

    deinit {
        base.deinitialize(count: count)
        base.deallocate()
    }

    /// Adds `amount` to integer slot `index`.
    @inline(__always)
    public func add(_ index: Int, _ amount: UInt64 = 1) {
        base[index].wrappingAdd(amount, ordering: .relaxed)
    }

    /// The slots from `offset` on, lent to `body` for a run of updates: the run's position `i` is slot `offset + i`.
    /// Updates through it are those of ``add(_:_:)`` and ``addDouble(_:_:)`` without reading the storage's address
    /// from the object again for each one (a lock-prefixed update makes the compiler reload it).
    @inline(__always)
    public func withRun<R>(from offset: Int, _ body: (Run) -> R) -> R {
        withExtendedLifetime(self) { body(Run(base: base + offset)) }
    }

    /// Slots from a fixed offset (``withRun(from:_:)``), valid only within the call that lent it.
    public struct Run {
        let base: UnsafeMutablePointer<Atomic<UInt64>>

        /// Adds one to integer slot `index` of the run.
        @inline(__always)
        public func add(_ index: Int) { base[index].wrappingAdd(1, ordering: .relaxed) }

        /// Adds `value` to Double slot `index` of the run (compare-and-swap, as ``AtomicSlots/addDouble(_:_:)``).
        @inline(__always)
        public func addDouble(_ index: Int, _ value: Double) { AtomicSlots.addDouble(base[index], value) }
    }

    /// Sets slot `index` to `value`.
    @inline(__always)
    public func store(_ index: Int, _ value: UInt64) { base[index].store(value, ordering: .relaxed) }

    /// Sets slot `index` to `value` and returns what it held, in one atomic step (no update between the two is lost).
    @inline(__always)
    public func exchange(_ index: Int, _ value: UInt64) -> UInt64 {
        base[index].exchange(value, ordering: .relaxed)
    }

    /// Sets every slot to zero (for Double slots, `0.0`), one by one.
    public func zero() {
        for i in 0..<count { base[i].store(0, ordering: .relaxed) }
    }

    /// The integer value of slot `index`.
    @inline(__always)
    public func load(_ index: Int) -> UInt64 { base[index].load(ordering: .relaxed) }

    /// Adds slots `start..<start + out.count` to `out`, slot by slot (wrapping).
    public func add(into out: UnsafeMutableBufferPointer<UInt64>, from start: Int) {
        precondition(start >= 0 && start + out.count <= count)
        for i in 0..<out.count { out[i] &+= base[start &+ i].load(ordering: .relaxed) }
    }

    /// Adds `value` to Double slot `index`.
    @inline(__always)
    public func addDouble(_ index: Int, _ value: Double) { Self.addDouble(base[index], value) }

    /// Adds `value` to the Double held (as its bits) in `slot`, by compare-and-swap.
    @inline(__always)
    static func addDouble(_ slot: borrowing Atomic<UInt64>, _ value: Double) {
        var old = slot.load(ordering: .relaxed)
        while true {
            let new = (Double(bitPattern: old) + value).bitPattern
            let (done, current) = slot.weakCompareExchange(expected: old, desired: new, ordering: .relaxed)
            if done { return }
            old = current
        }
    }

    /// Raises Double slot `index` to `value` if that is larger.
    @inline(__always)
    public func storeMax(_ index: Int, _ value: Double) {
        var old = base[index].load(ordering: .relaxed)
        while Double(bitPattern: old) < value {
            let (done, current) = base[index].weakCompareExchange(
                expected: old, desired: value.bitPattern, ordering: .relaxed)
            if done { return }
            old = current
        }
    }

    /// Raises Double slot `index` (a time) to `value` if that is later, or sets it to `value` if it is later than
    /// `value` by more than `steppedBack` seconds (the wall clock stepped back: kept, a time in the future would stand
    /// until the clock caught up with it). One compare-and-swap, as ``storeMax(_:_:)``.
    @inline(__always)
    public func storeLatest(_ index: Int, _ value: Double, steppedBack: Double) {
        var old = base[index].load(ordering: .relaxed)
        while Double(bitPattern: old) < value || Double(bitPattern: old) - value > steppedBack {
            let (done, current) = base[index].weakCompareExchange(
                expected: old, desired: value.bitPattern, ordering: .relaxed)
            if done { return }
            old = current
        }
    }

    /// Raises integer slot `index` to `value` if that is larger (unsigned comparison).
    @inline(__always)
    public func storeMaxInteger(_ index: Int, _ value: UInt64) {
        var old = base[index].load(ordering: .relaxed)
        while old < value {
            let (done, current) = base[index].weakCompareExchange(expected: old, desired: value, ordering: .relaxed)
            if done { return }
            old = current
        }
    }

    /// The Double value of slot `index`.
    @inline(__always)
    public func loadDouble(_ index: Int) -> Double { Double(bitPattern: base[index].load(ordering: .relaxed)) }

    /// The integer values of slots `start..<start + count`.
    public func loadRange(_ start: Int, _ count: Int) -> [UInt64] {
        (start..<start + count).map { load($0) }
    }
}
