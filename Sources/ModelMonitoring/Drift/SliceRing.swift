import ExporterConfig
import Exposition
import Synchronization

/// Time-sliced counters for a sliding window: `sliceCount` slices of `sliceSeconds` each, every slice a
/// block of `width` atomic slots (integer counts, or Double sums by CAS). Memory is fixed at creation:
/// `sliceCount × width` slots, whatever the traffic.
///
/// A slice is identified by its epoch, `floor(t / sliceSeconds)` for Unix time `t`, and lives in block
/// `epoch mod sliceCount`. Writers find the block for their event's time with ``block(for:)``: when time
/// has moved into a new epoch, the first writer to notice clears the blocks being reused (under a lock,
/// once per slice period), then publishes the new epoch; everyone else only does one atomic load. An event
/// older than the window (its block already reused) gets nil and is counted by the caller.
///
/// Readers (``window(now:)`` for integer totals, ``sumDouble(_:blocks:)`` over its blocks for Double slots) add
/// the blocks whose epoch lies in the window ending at `now`, so an idle model's window empties as time passes
/// even without events. Reads run concurrently with writes: each slot is read atomically, the window as a whole
/// is not a snapshot.
///
/// Integer slots at the ring's `cumulative` positions also have totals since the ring began
/// (``cumulativeTotals()``), for counters such as a bin's observations: a writer adds to its block alone, and a rotation
/// moves a reused block's counts at those positions into `retired` (an atomic exchange per slot, so an update racing
/// the rotation stays in the block, counted there) instead of writers adding to a running total as well.
public final class SliceRing: Sendable {
    /// Seconds per slice.
    public let sliceSeconds: Double
    /// Number of slices in the window.
    public let sliceCount: Int
    /// Slots per slice.
    public let width: Int
    let data: AtomicSlots
    /// The epoch held by each block (`Int.min` when never used), as the bit pattern of an `Int`.
    let blockEpochs: AtomicSlots
    let newest = Atomic<Int>(Int.min)
    let rotation = Mutex(())
    /// The offset of the newest epoch's block (-1 before the first event).
    let newestBase = Atomic<Int>(-1)
    /// Bumped by every write into a block other than the newest one (see ``wrote(_:)``).
    let lateWrites = Atomic<Int>(0)
    /// Integer totals of the window's blocks other than the newest, with what they were computed for.
    let closed = Mutex<ClosedTotals?>(nil)
    /// The positions (within a block) of Double slots whose window totals ``Window/totalDouble(_:)`` reads.
    let doubleSlots: [Int]
    /// Epochs added to every time's (``epoch(_:)``): how far the wall clock has stepped back, in slices, since the
    /// ring began (``realign(now:)``).
    let stepBack = Atomic<Int>(0)
    /// Positions (within a block) of the integer slots with totals since the ring began.
    let cumulative: [Int]
    /// Per position of `cumulative`, the counts of the blocks cleared since the ring began, less any set aside by
    /// ``setCumulativeTotals(_:)`` (wrapping: their sum with the blocks' counts is the total).
    let retired: AtomicSlots
    /// Whether each position of a block is one of `cumulative` (a rotation moves those into `retired`, not zeroing
    /// them).
    let isCumulative: [Bool]

    struct ClosedTotals {
        let nowEpoch: Int
        let newest: Int
        let lateWrites: Int
        let totals: [UInt64]
    }

    /// A model's configured window (`duration` split into `slices`), each slice `width` slots wide.
    public convenience init(
        window: WindowConfiguration, width: Int, doubleSlots: [Int] = [], cumulative: [Int] = []
    ) {
        self.init(
            sliceSeconds: window.duration.seconds / Double(window.slices), sliceCount: window.slices, width: width,
            doubleSlots: doubleSlots, cumulative: cumulative)
    }

    /// A window of `sliceCount` slices of `sliceSeconds` seconds, each `width` slots wide. The window totals of
    /// the Double slots at `doubleSlots` (positions within a block) are kept with the integer ones, for
    /// ``Window/totalDouble(_:)``. The integer slots at `cumulative` (distinct positions within a block) also have
    /// totals since the ring began (``cumulativeTotals()``).
    public init(sliceSeconds: Double, sliceCount: Int, width: Int, doubleSlots: [Int] = [], cumulative: [Int] = []) {
        precondition(sliceSeconds > 0 && sliceCount > 0 && width >= 0)
        precondition(doubleSlots.allSatisfy { $0 >= 0 && $0 < width })
        precondition(cumulative.allSatisfy { $0 >= 0 && $0 < width } && Set(cumulative).count == cumulative.count)
        self.cumulative = cumulative
        retired = AtomicSlots(count: cumulative.count)
        var isCumulative = [Bool](repeating: false, count: width)
        for position in cumulative { isCumulative[position] = true }
        self.isCumulative = isCumulative
        self.sliceSeconds = sliceSeconds
        self.sliceCount = sliceCount
        self.width = width
        self.doubleSlots = doubleSlots
        data = AtomicSlots(count: sliceCount * width)
        blockEpochs = AtomicSlots(count: sliceCount)
        for i in 0..<sliceCount { blockEpochs.store(i, UInt64(bitPattern: Int64(Int.min))) }
    }

    /// Whether `other` has this ring's shape (slices, their seconds, slots per slice, Double slots): its state can
    /// stand for this one's.
    func hasSameShape(as other: SliceRing) -> Bool {
        width == other.width && sliceCount == other.sliceCount && sliceSeconds == other.sliceSeconds
            && doubleSlots == other.doubleSlots && cumulative == other.cumulative
    }

    /// The epoch of Unix time `t` (its slice's number, moved on by the clock's steps back: ``realign(now:)``).
    @inline(__always)
    public func epoch(_ t: Double) -> Int {
        Int((t / sliceSeconds).rounded(.down)) &+ stepBack.load(ordering: .relaxed)
    }

    /// The offset in ``data`` of the block for an event at Unix time `t`, or nil when `t` is older than
    /// the window (relative to the newest slice seen).
    ///
    /// An event more than a slice behind the newest one while the wall clock is too (the clock stepped back: events
    /// are placed by their arrival, which is now) moves the ring's time on by the step first (``realign(now:)``).
    @inline(__always)
    public func block(for t: Double) -> Int? {
        var e = epoch(t)
        var current = newest.load(ordering: .acquiring)
        if e > current {
            advance(to: e)
            current = e
        } else if e < current &- 1, realign(now: WallClock.now()) {
            e = epoch(t)
            current = newest.load(ordering: .acquiring)
            if e > current {
                advance(to: e)
                current = e
            }
        }
        if e <= current - sliceCount { return nil }
        return block(ofEpoch: e) * width
    }

    /// When Unix time `now` lies more than a slice before the newest slice (the wall clock stepped back: an NTP step,
    /// a virtual machine's clock set right after a resume), moves the ring's time on by the step, so that `now` is in
    /// the newest slice: the window keeps what it holds, in order, and goes on from there, rather than going blank
    /// and counting every event late until the clock has caught up with the newest slice (a day, for a clock that
    /// ran a day ahead). True when it did. A step forward needs nothing: the window rotates as time passing does.
    /// Checked before the lock is taken: an old event (a backfill through `record(..., receivedAt:)`) while the clock is
    /// right costs a reading of the clock, not the rotation lock.
    @discardableResult
    func realign(now: Double) -> Bool {
        let newestEpoch = newest.load(ordering: .acquiring)
        guard newestEpoch != Int.min, epoch(now) < newestEpoch &- 1 else { return false }
        return rotation.withLock { _ -> Bool in
            let current = newest.load(ordering: .relaxed)
            let e = epoch(now)
            guard current != Int.min, e < current &- 1 else { return false }
            stepBack.add(current &- e, ordering: .relaxed)
            lateWrites.add(1, ordering: .releasing)
            return true
        }
    }

    /// The block holding epoch `e` (non-negative modulo).
    @inline(__always)
    func block(ofEpoch e: Int) -> Int {
        let r = e % sliceCount
        return r < 0 ? r + sliceCount : r
    }

    /// Moves the newest epoch to `e`, clearing the blocks it reuses.
    func advance(to e: Int) {
        rotation.withLock { _ in
            let current = newest.load(ordering: .relaxed)
            guard e > current else { return }
            let first = current == Int.min ? e - sliceCount + 1 : Swift.max(current + 1, e - sliceCount + 1)
            for epoch in first...e {
                let block = self.block(ofEpoch: epoch)
                let base = block * width
                // The cumulative slots' counts move to `retired`: an update after its exchange stays in the block.
                for (i, position) in cumulative.enumerated() { retired.add(i, data.exchange(base &+ position, 0)) }
                for i in 0..<width where !isCumulative[i] { data.store(base + i, 0) }
                blockEpochs.store(block, UInt64(bitPattern: Int64(epoch)))
            }
            newestBase.store(block(ofEpoch: e) * width, ordering: .relaxed)
            newest.store(e, ordering: .releasing)
        }
    }

    /// Tells the ring that an event's writes into the block at `base` are done. Writers whose ring is read
    /// through ``window(now:)`` call it after each event: a write into a block that is no longer the newest
    /// (an old event, or one that raced a rotation) invalidates the cached totals of the older blocks. One
    /// relaxed load on the common path.
    @inline(__always)
    public func wrote(_ base: Int) {
        if base != newestBase.load(ordering: .relaxed) { lateWrites.add(1, ordering: .releasing) }
    }

    /// The window ending at Unix time `now`: every slot's integer total over its live blocks (meaningless for
    /// Double slots: read those with ``sumDouble(_:blocks:)`` over ``Window/blocks``). The blocks other than
    /// the newest change only at a rotation or by a late write, so their totals are computed once and kept;
    /// a scrape adds only the newest block to them.
    public func window(now: Double) -> Window {
        let blocks = liveBlocks(now: now)
        let e = epoch(now)
        let generation = lateWrites.load(ordering: .acquiring)
        let newestEpoch = newest.load(ordering: .acquiring)
        let open = newestEpoch == Int.min ? -1 : block(ofEpoch: newestEpoch) * width
        let totals = closed.withLock { cache -> [UInt64] in
            if let c = cache, c.nowEpoch == e, c.newest == newestEpoch, c.lateWrites == generation { return c.totals }
            var totals = [UInt64](repeating: 0, count: width)
            totals.withUnsafeMutableBufferPointer { out in
                for base in blocks where base != open { data.add(into: out, from: base) }
                // Double slots: their sum, as its bit pattern, in place of the meaningless integer one.
                for position in doubleSlots {
                    var sum = 0.0
                    for base in blocks where base != open { sum += data.loadDouble(base &+ position) }
                    out[position] = sum.bitPattern
                }
            }
            cache = ClosedTotals(nowEpoch: e, newest: newestEpoch, lateWrites: generation, totals: totals)
            return totals
        }
        return Window(closed: totals, open: blocks.contains(open) ? open : -1, data: data, blocks: blocks)
    }

    /// A window's totals (those of the blocks other than the newest, kept; the newest block read live) and the
    /// blocks they cover.
    public struct Window: Sendable {
        let closed: [UInt64]
        let open: Int
        let data: AtomicSlots
        /// The live blocks (offsets), for Double slots.
        public let blocks: [Int]

        /// Integer total of slot `position` over the window.
        @inline(__always)
        public func total(_ position: Int) -> UInt64 {
            closed[position] &+ (open >= 0 ? data.load(open &+ position) : 0)
        }

        /// Total of Double slot `position` over the window; only for a position given as one of the ring's
        /// `doubleSlots` (``SliceRing/sumDouble(_:blocks:)`` over ``blocks`` reads any).
        @inline(__always)
        public func totalDouble(_ position: Int) -> Double {
            Double(bitPattern: closed[position]) + (open >= 0 ? data.loadDouble(open &+ position) : 0)
        }

        /// Calls `body(i, total)` with the window's integer total of slot `position + i`, for each `i < count`.
        @inline(__always)
        private func forEachTotal(_ position: Int, _ count: Int, _ body: (Int, UInt64) -> Void) {
            precondition(position >= 0 && position + count <= closed.count)
            closed.withUnsafeBufferPointer { closed in
                if open >= 0 {
                    for i in 0..<count { body(i, closed[position &+ i] &+ data.load(open &+ position &+ i)) }
                } else {
                    for i in 0..<count { body(i, closed[position &+ i]) }
                }
            }
        }

        /// Running totals of slots `position..<position + count` over the window (`out[i]` = slots
        /// `position...position + i`), as Doubles, written over `out` (resized to `count`; its storage reused). The
        /// running sum is kept as an integer: one cycle per slot, where a Double sum waits on each addition.
        public func cumulativeCounts(_ position: Int, _ count: Int, into out: inout [Double]) {
            if out.count != count { out = [Double](repeating: 0, count: count) }
            out.withUnsafeMutableBufferPointer { out in
                var running: UInt64 = 0
                forEachTotal(position, count) { i, total in
                    running &+= total
                    out[i] = Double(Int64(bitPattern: running))
                }
            }
        }

        /// Totals of slots `position..<position + count`, as Doubles.
        public func counts(_ position: Int, _ count: Int) -> [Double] {
            [Double](unsafeUninitializedCapacity: count) { out, initialized in
                // Counts stay far below 2^63: converted as signed, one instruction instead of several.
                forEachTotal(position, count) { i, total in out[i] = Double(Int64(bitPattern: total)) }
                initialized = count
            }
        }
    }

    /// The totals since the ring began of the slots at its `cumulative` positions, in their order: the retired counts
    /// plus every block's (in the window or not yet reused). Read under the rotation lock, so that no rotation moves
    /// counts between the two while they are read: a total read later is never smaller (counters stay monotonic).
    public func cumulativeTotals() -> [UInt64] {
        rotation.withLock { _ in totalsWithoutLock() }
    }

    /// ``cumulativeTotals()``, for a caller holding the rotation lock.
    private func totalsWithoutLock() -> [UInt64] {
        var out = (0..<cumulative.count).map { retired.load($0) }
        // Block by block, positions in order: each block's slots read in one pass (position by position, every load
        // was a block's width from the one before).
        for block in 0..<sliceCount {
            let base = block &* width
            for (i, position) in cumulative.enumerated() { out[i] &+= data.load(base &+ position) }
        }
        return out
    }

    /// Sets the totals since the ring began (``cumulativeTotals()``) to `totals` (one per `cumulative` position): a
    /// checkpoint's, or zeros for counters restarted after a crash. A total may be below what the blocks hold (counters
    /// restarted while the window stays): `retired` keeps the wrapping difference, and the total reads as set.
    public func setCumulativeTotals(_ totals: [UInt64]) {
        precondition(totals.count == cumulative.count)
        rotation.withLock { _ in
            // The blocks' share of each total, the rest retired.
            retired.zero()
            let live = totalsWithoutLock()
            for i in cumulative.indices { retired.store(i, totals[i] &- live[i]) }
        }
    }

    /// The blocks (offsets) whose slice lies in the window ending at Unix time `now`.
    public func liveBlocks(now: Double) -> [Int] {
        // The wall clock read for the step, not `now`: a caller's past `now` (a look back) moves nothing.
        let newestEpoch = newest.load(ordering: .acquiring)
        if newestEpoch != Int.min && epoch(now) < newestEpoch &- 1 { realign(now: WallClock.now()) }
        let e = epoch(now)
        var out: [Int] = []
        for block in 0..<sliceCount {
            let held = Int(Int64(bitPattern: blockEpochs.load(block)))
            if held != Int.min && held <= e && held > e - sliceCount { out.append(block * width) }
        }
        return out
    }

    /// The window's total of integer slot `position` (an offset within a block).
    public func sum(_ position: Int, blocks: [Int]) -> UInt64 {
        var total: UInt64 = 0
        for base in blocks { total &+= data.load(base + position) }
        return total
    }

    /// The window's total of Double slot `position`.
    public func sumDouble(_ position: Int, blocks: [Int]) -> Double {
        var total = 0.0
        for base in blocks { total += data.loadDouble(base + position) }
        return total
    }

    /// The slots of the block at `base` (``block(for:)``), lent to `body` for a run of updates (``AtomicSlots/Run``:
    /// ``add(_:_:)`` and ``addDouble(_:_:)`` without reading the storage's address again for each).
    @inline(__always)
    public func withBlock<R>(_ base: Int, _ body: (AtomicSlots.Run) -> R) -> R { data.withRun(from: base, body) }

    /// Adds one to integer slot `position` of the block at `base`.
    @inline(__always)
    public func add(_ base: Int, _ position: Int) { data.add(base &+ position) }

    /// Adds `value` to Double slot `position` of the block at `base`.
    @inline(__always)
    public func addDouble(_ base: Int, _ position: Int, _ value: Double) { data.addDouble(base &+ position, value) }
}
