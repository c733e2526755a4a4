import Testing

@testable import ModelMonitoring

@Suite struct IngestCountersTests {
    /// The saved layout only grows at its end: a checkpoint written before the added slots existed (the
    /// `labels_not_used` request reason, `mlops_ingest_unknown_keys_total`, `mlops_ingest_labels_not_used_total`,
    /// `mlops_ingest_ignored_timestamps_total`)
    /// restores every count to its own series, and the added ones count after them. A checkpoint of more slots than
    /// this layout has is refused.
    @Test func aCheckpointOfTheEarlierLayoutRestoresEveryCount() throws {
        let old = IngestCounters(model: "m")
        old.accepted(.labels, 3)
        old.rejected(.missingVersion, 2)
        old.rejectedRequest(.overloaded)
        old.unknownFeatures(7)
        #expect(
            IngestCounters.added == [
                .request(.labelsNotUsed), .unknownKeys, .inlineLabelsNotUsed, .ignoredTimestamp(future: true),
                .ignoredTimestamp(future: false),
            ])
        var w = StateWriter()
        w.slots(old.slots, count: old.slots.count - IngestCounters.added.count)
        let fresh = IngestCounters(model: "m")
        var r = StateReader(w.bytes)
        try r.slotsPrefix(into: fresh.slots)
        for i in 0..<fresh.slots.count { #expect(fresh.slots.load(i) == old.slots.load(i), "slot \(i)") }
        fresh.rejectedRequest(.labelsNotUsed)
        fresh.unknownKeys(5)
        fresh.inlineLabelNotUsed()
        fresh.ignoredTimestamp(future: true)
        for _ in 0..<2 { fresh.ignoredTimestamp(future: false) }
        let n = fresh.slots.count
        #expect((n - 5..<n).map { fresh.slots.load($0) } == [1, 5, 1, 1, 2])
        var longer = StateWriter()
        longer.slots(AtomicSlots(count: fresh.slots.count + 1))
        var tooMany = StateReader(longer.bytes)
        #expect(throws: StateError.self) { try tooMany.slotsPrefix(into: fresh.slots) }
    }
}
