import Testing

@testable import ModelMonitoring

@Suite struct IngestCountersTests {
    /// The saved layout only grows at its end: a checkpoint written before `labels_not_used` and `unknown_keys`
    /// existed (two slots fewer) restores every count to its own series, and the new reason counts in the slot after them. A checkpoint
    /// of more slots than this layout has is refused.
    @Test func aCheckpointOfTheEarlierLayoutRestoresEveryCount() throws {
        let old = IngestCounters(model: "m")
        old.accepted(.labels, 3)
        old.rejected(.missingVersion, 2)
        old.rejectedRequest(.overloaded)
        old.unknownFeatures(7)
        #expect(IngestCounters.added == [.request(.labelsNotUsed), .unknownKeys])
        var w = StateWriter()
        w.slots(old.slots, count: old.slots.count - IngestCounters.added.count)
        let fresh = IngestCounters(model: "m")
        var r = StateReader(w.bytes)
        try r.slotsPrefix(into: fresh.slots)
        for i in 0..<fresh.slots.count { #expect(fresh.slots.load(i) == old.slots.load(i), "slot \(i)") }
        fresh.rejectedRequest(.labelsNotUsed)
        fresh.unknownKeys(5)
        #expect(fresh.slots.load(fresh.slots.count - 2) == 1 && fresh.slots.load(fresh.slots.count - 1) == 5)
        var longer = StateWriter()
        longer.slots(AtomicSlots(count: fresh.slots.count + 1))
        var tooMany = StateReader(longer.bytes)
        #expect(throws: StateError.self) { try tooMany.slotsPrefix(into: fresh.slots) }
    }
}
