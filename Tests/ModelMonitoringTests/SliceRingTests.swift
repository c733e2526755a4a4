import Exposition
import ModelMonitoring
import Testing

@Suite struct SliceRingTests {
    @Test func countsLandInTheSliceOfTheirTimeAndExpireWithTheWindow() throws {
        // 4 slices of 10 s: a 40 s window.
        let ring = SliceRing(sliceSeconds: 10, sliceCount: 4, width: 2)
        for t in [1000.0, 1005, 1015, 1029.9] {
            let block = try #require(ring.block(for: t))
            ring.add(block, 0)
            ring.addDouble(block, 1, t)
        }
        #expect(ring.sum(0, blocks: ring.liveBlocks(now: 1030)) == 4)
        #expect(ring.sumDouble(1, blocks: ring.liveBlocks(now: 1030)) == 1000 + 1005 + 1015 + 1029.9)
        // At 1040 the slice [1000, 1010) has left the window ending in [1040, 1050).
        #expect(ring.sum(0, blocks: ring.liveBlocks(now: 1040)) == 2)
        #expect(ring.sum(0, blocks: ring.liveBlocks(now: 1069.9)) == 0)
        // An event in a new slice reuses (and clears) the block of the slice four epochs before.
        let block = try #require(ring.block(for: 1041))
        ring.add(block, 0)
        #expect(ring.sum(0, blocks: ring.liveBlocks(now: 1041)) == 3)
        // Older than the window: refused.
        #expect(ring.block(for: 1009) == nil)
        #expect(ring.block(for: 1010) != nil)
    }

    /// Events placed while the wall clock ran a day ahead, then the clock set right (an NTP step back): the window
    /// read now still holds them, and events now count in it. Before, the window read blank and every event was late
    /// until the clock caught up with the newest slice, a day later.
    @Test func aClockSteppedBackKeepsTheWindowAndRecordsNow() throws {
        let ring = SliceRing(sliceSeconds: 10, sliceCount: 6, width: 1)
        let ahead = WallClock.now() + 86_400
        for k in 0..<3 {
            let block = try #require(ring.block(for: ahead + Double(k) * 10))
            ring.add(block, 0)
            ring.wrote(block)
        }
        #expect(ring.window(now: ahead + 25).total(0) == 3)
        // Read at the real time before any event: the three counts, not an empty window.
        #expect(ring.window(now: WallClock.now()).total(0) == 3)
        let block = try #require(ring.block(for: WallClock.now()), "an event now is late")
        ring.add(block, 0)
        ring.wrote(block)
        #expect(ring.window(now: WallClock.now()).total(0) == 4)
        // Time passing from there rotates the window as before: a window later, the counts have left it.
        #expect(ring.window(now: WallClock.now() + 70).total(0) == 0)
    }

    /// A step back shorter than the window (three slices): an event now goes to the newest slice, and the window
    /// read now holds every count (before, the newer slices were left out of it, and the events went to old ones).
    @Test func aShortStepBackAlsoKeepsTheNewerSlices() throws {
        let ring = SliceRing(sliceSeconds: 10, sliceCount: 12, width: 1)
        let now = WallClock.now()
        for t in [now + 30, now + 40] {
            let block = try #require(ring.block(for: t))
            ring.add(block, 0)
            ring.wrote(block)
        }
        let block = try #require(ring.block(for: now))
        ring.add(block, 0)
        ring.wrote(block)
        #expect(ring.window(now: now).total(0) == 3)
        // An event of a past instant while the clock is right is still older than the window: refused.
        #expect(ring.block(for: WallClock.now() - 3_600) == nil)
        #expect(ring.window(now: WallClock.now()).total(0) == 3)
    }

    /// A look back (a caller's `now` an hour ago) while the clock is right is no step: it moves nothing.
    @Test func aPastNowIsALookBackNotAStep() throws {
        let ring = SliceRing(sliceSeconds: 10, sliceCount: 6, width: 1)
        let block = try #require(ring.block(for: WallClock.now()))
        ring.add(block, 0)
        ring.wrote(block)
        #expect(ring.window(now: WallClock.now() - 3_600).total(0) == 0)
        #expect(ring.window(now: WallClock.now()).total(0) == 1)
    }

    @Test func aJumpLongerThanTheWindowClearsEverything() throws {
        let ring = SliceRing(sliceSeconds: 1, sliceCount: 3, width: 1)
        for t in 0..<3 { ring.add(try #require(ring.block(for: Double(t) + 100)), 0) }
        #expect(ring.sum(0, blocks: ring.liveBlocks(now: 102.5)) == 3)
        ring.add(try #require(ring.block(for: 1000)), 0)
        #expect(ring.sum(0, blocks: ring.liveBlocks(now: 1000)) == 1)  // the three old counts are gone
    }

    /// A window saved by a clock a day ahead (or restored after the clock was set back): restored with its newest
    /// slice at now, its slices' spacing kept, so that events at the real time are recorded, not late, and its older
    /// slices leave the window as time passes. Left in the future, every event for a day was late.
    @Test func aWindowSavedAheadOfNowMovesBackWholeSoThatNowRecords() throws {
        // 4 slices of 10 s; epochs 200 (1 count), 201 (2) and 203 (3) saved, restored at epoch 100.
        let saved = SliceRing(sliceSeconds: 10, sliceCount: 4, width: 2)
        for (t, n) in [(2005.0, 1), (2015, 2), (2035, 3)] {
            let block = try #require(saved.block(for: t))
            for _ in 0..<n { saved.add(block, 0) }
            saved.add(block, 1)
        }
        var w = StateWriter()
        saved.save(into: &w)
        let ring = SliceRing(sliceSeconds: 10, sliceCount: 4, width: 2)
        var r = StateReader(w.bytes)
        try ring.restore(from: &r, now: 1005)
        #expect(r.isAtEnd)
        // Moved 103 epochs back: 97 (1), 98 (2), 100 (3), all in the window ending at epoch 100.
        #expect(ring.sum(0, blocks: ring.liveBlocks(now: 1005)) == 6)
        #expect(ring.sum(1, blocks: ring.liveBlocks(now: 1005)) == 3)
        let block = try #require(ring.block(for: 1005))
        ring.add(block, 0)
        ring.wrote(block)
        #expect(ring.sum(0, blocks: ring.liveBlocks(now: 1005)) == 7)
        #expect(ring.window(now: 1005).total(0) == 7)
        // The spacing kept: epoch 97 leaves the window at epoch 101, epoch 98 at 102.
        #expect(ring.sum(0, blocks: ring.liveBlocks(now: 1010)) == 6)
        #expect(ring.sum(0, blocks: ring.liveBlocks(now: 1020)) == 4)
        // Two windows of one checkpoint move back by the same difference, the checkpoint's time less now (known to
        // the reader): each by its own newest slice put a window last written 3 slices before the checkpoint 3 slices
        // out of step with its neighbour. Saved at 2045 (epoch 204), restored at 1005 (epoch 100): 104 back.
        var withTime = StateReader(w.bytes)
        withTime.savedAt = 2045
        let inStep = SliceRing(sliceSeconds: 10, sliceCount: 4, width: 2)
        try inStep.restore(from: &withTime, now: 1005)
        // Epochs 200 (1), 201 (2), 203 (3) to 96, 97, 99: 96 is out of the window ending at epoch 100.
        #expect(inStep.sum(0, blocks: inStep.liveBlocks(now: 1005)) == 5)
        #expect(inStep.sum(0, blocks: inStep.liveBlocks(now: 1025)) == 3)
        // A window saved in the past is restored where it was: its slices older than the window dropped.
        let past = SliceRing(sliceSeconds: 10, sliceCount: 4, width: 2)
        var again = StateReader(w.bytes)
        try past.restore(from: &again, now: 2045)
        #expect(past.sum(0, blocks: past.liveBlocks(now: 2045)) == 5)
    }

    @Test func concurrentWritersAcrossSliceBoundariesLoseNothing() async throws {
        let ring = SliceRing(sliceSeconds: 1, sliceCount: 1000, width: 3)
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    for i in 0..<20_000 {
                        // Times move forward through 200 slices, each writer at its own pace.
                        let t = 5000 + Double(i) / 100 + Double(writer) * 0.001
                        guard let block = ring.block(for: t) else { continue }
                        ring.add(block, i % 3)
                    }
                }
            }
        }
        let blocks = ring.liveBlocks(now: 5000 + 199.99)
        #expect(ring.sum(0, blocks: blocks) + ring.sum(1, blocks: blocks) + ring.sum(2, blocks: blocks) == 160_000)
    }

    /// The cached window must equal the uncached sums after every kind of write: in order, into an older slice
    /// (late), across rotations, and as time passes with no events.
    @Test func cachedWindowTotalsEqualTheSumsOfTheLiveBlocks() throws {
        // Slots 0-2 integer counts, slot 3 a Double sum whose window total is kept with them.
        let ring = SliceRing(sliceSeconds: 10, sliceCount: 4, width: 4, doubleSlots: [3])
        var rng = SystemRandomNumberGenerator()
        var now = 1000.0
        func check() {
            let window = ring.window(now: now)
            let blocks = ring.liveBlocks(now: now)
            #expect((0..<3).map { window.total($0) } == (0..<3).map { ring.sum($0, blocks: blocks) }, "at \(now)")
            // Quarters add exactly in any order.
            #expect(window.totalDouble(3) == ring.sumDouble(3, blocks: blocks), "at \(now)")
        }
        func write(_ block: Int) {
            ring.add(block, Int.random(in: 0..<3, using: &rng))
            ring.addDouble(block, 3, Double(Int.random(in: -400...400, using: &rng)) / 4)
            ring.wrote(block)
        }
        for step in 0..<400 {
            switch step % 7 {
            case 0: now += Double.random(in: 0...12, using: &rng)  // time passes, maybe into a new slice
            case 1:
                // A late event, up to the window's length old: into an older block when still live.
                if let block = ring.block(for: now - Double.random(in: 0...35, using: &rng)) { write(block) }
            default:
                if let block = ring.block(for: now) { write(block) }
            }
            check()
        }
    }
    /// Totals since start of the cumulative slots: every count added, whatever rotations cleared its block since, while
    /// the other slots only hold the window; a total read later is never smaller, with writers racing the rotations.
    @Test func cumulativeTotalsKeepEveryCountAcrossRotations() async throws {
        let ring = SliceRing(sliceSeconds: 1, sliceCount: 4, width: 3, cumulative: [2, 0])
        // Each task gives what it added per slot, or the totals it read in turn.
        let results = await withTaskGroup(of: (added: [UInt64], reads: [[UInt64]]).self) { group in
            for writer in 0..<4 {
                group.addTask {
                    var mine: [UInt64] = [0, 0, 0]
                    for i in 0..<20_000 {
                        // Through 200 slices of a 4-slice window: 50 rotations of every block. A writer more than the
                        // window behind another gets nil (late), not counted.
                        let t = 5000 + Double(i) / 100 + Double(writer) * 0.001
                        guard let block = ring.block(for: t) else { continue }
                        ring.add(block, i % 3)
                        mine[i % 3] += 1
                    }
                    return (mine, [])
                }
            }
            group.addTask { ([0, 0, 0], (0..<2_000).map { _ in ring.cumulativeTotals() }) }
            return await group.reduce(into: [(added: [UInt64], reads: [[UInt64]])]()) { $0.append($1) }
        }
        let counts = (0..<3).map { k in results.reduce(0) { $0 + $1.added[k] } }
        let reads = results.flatMap(\.reads)
        let totals = ring.cumulativeTotals()
        // Slot 2 then slot 0 (the order given).
        #expect(totals == [counts[2], counts[0]])
        // At least one writer's (the first to run is never behind the window).
        #expect(counts[0] >= 6_667)
        // The window holds the last slices only; slot 1 (not cumulative) has no total.
        let blocks = ring.liveBlocks(now: 5000 + 199.99)
        #expect(ring.sum(0, blocks: blocks) < totals[1])
        let seen = reads + [totals]
        for (a, b) in zip(seen, seen.dropFirst()) { #expect(a[0] <= b[0] && a[1] <= b[1]) }
    }

    /// Totals set from a checkpoint, and counters restarted from zero while the window stays (a wrapping difference
    /// that reads zero, then counts on).
    @Test func cumulativeTotalsSetAndRestarted() throws {
        let ring = SliceRing(sliceSeconds: 10, sliceCount: 2, width: 2, cumulative: [0])
        for t in [100.0, 101, 115] {
            let block = try #require(ring.block(for: t))
            ring.add(block, 0)
        }
        #expect(ring.cumulativeTotals() == [3])
        ring.setCumulativeTotals([1_000])
        #expect(ring.cumulativeTotals() == [1_000])
        ring.setCumulativeTotals([0])
        #expect(ring.cumulativeTotals() == [0])
        // A rotation retires the counts of 100 and 101 (and one more event): the total counts on from zero.
        let block = try #require(ring.block(for: 121))
        ring.add(block, 0)
        #expect(ring.cumulativeTotals() == [1])
        #expect(ring.window(now: 121).total(0) == 2)
    }
}
