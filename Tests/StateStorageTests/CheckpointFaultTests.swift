import Exposition
import Foundation
import Testing

@testable import ModelMonitoring
@testable import StateStorage

@Suite struct CheckpointFaultTests {
    /// A checkpoint whose checksum holds but which carries a value no scrape can show (here NaN in every Double slot
    /// of the quality totals, as a bit flip with a recomputed checksum leaves) is not restored: the model starts
    /// empty and is reported `failed`, instead of its collector being left out of every scrape (and the value saved
    /// again in every later checkpoint). The other model is restored.
    @Test func aValueNoScrapeCanShowFailsTheModelsRestore() throws {
        let dir = temporaryDirectory()
        let a = try Node([Models.fraud(), Models.eta], directory: dir)
        var traffic = Traffic(seed: 11)
        traffic.predictions(a.model("fraud"), 500, prefix: "p", t0: WallClock.now() - 10)
        traffic.labels(a.model("fraud"), 0..<200, prefix: "p", at: WallClock.now() - 5)
        let quality = try #require(a.model("fraud").collectors.lazy.compactMap { $0 as? QualityCollector }.first)
        let totals = quality.slots.totals
        for i in 0..<totals.count { totals.store(i, Double.nan.bitPattern) }
        /// The scrapes that left fraud's quality collector out as invalid.
        func skipped(_ node: Node) -> Double {
            node.samples().filter {
                $0.contains("_collector_skipped_total{") && $0.contains(#"collector="quality""#)
                    && $0.contains(#"model="fraud""#) && $0.contains(#"reason="invalid""#)
            }.compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
        }
        _ = a.samples()
        #expect(skipped(a) >= 1)  // the value is one a scrape refuses
        try #require(a.stop() != nil)

        let b = try Node([Models.fraud(), Models.eta], directory: dir)
        let report = b.checkpointer.restore()
        #expect(report.results.map(\.result) == [.failed, .restored])
        #expect(b.value(#"mlops_storage_restore_total{model="fraud",result="failed"}"#) == 1)
        // Started empty, and scraped: the quality collector's series are there.
        #expect(b.value(#"mlops_ingest_events_total{kind="predictions",model="fraud"}"#) ?? 0 == 0)
        #expect(b.samples().contains { $0.hasPrefix("mlops_model_calibration_bin_probability_sum") })
        #expect(skipped(b) == 0)
        #expect(
            b.samples().filter { $0.contains(#"model="eta""#) } == a.samples().filter { $0.contains(#"model="eta""#) })
    }

    /// A pending prediction whose saved time or probabilities ingestion would refuse (non-finite, out of [0, 1]) fails
    /// the model's restore: joined to a label later, it would have made the join delay's or the quality collector's
    /// sums invalid and left them out of every scrape.
    @Test(arguments: [
        PredictionSnapshot(
            time: .nan, version: 0, predictedClass: 1, value: .nan, score: .nan, probabilities: [], groups: [0]),
        PredictionSnapshot(
            time: 1, version: 0, predictedClass: 1, value: .nan, score: .nan, probabilities: [0.5, 1.5], groups: [0]),
        PredictionSnapshot(
            time: 1, version: 0, predictedClass: 1, value: .nan, score: .infinity, probabilities: [], groups: [0]),
    ])
    func aPendingPredictionIngestionWouldRefuseFailsTheRestore(_ snapshot: PredictionSnapshot) throws {
        let dir = temporaryDirectory()
        let a = try Node([Models.fraud(), Models.eta], directory: dir)
        let now = WallClock.now()
        let store = try #require(a.model("fraud").joiner).store
        store.insert(key: PendingStore<PredictionSnapshot>.key("crafted"), time: now, snapshot, now: now)
        try #require(a.checkpoint() != nil)
        a.crash()
        let b = try Node([Models.fraud(), Models.eta], directory: dir)
        #expect(b.checkpointer.restore().results.map(\.result) == [.failed, .restored])
        #expect(b.value(#"mlops_labels_pending{model="fraud"}"#) == 0)
    }

    /// A whole file (its checksum holds) whose structure runs past its end is `corrupt`, not `truncated` (a crafted or
    /// miswritten file: nothing was cut; storage review).
    @Test func aLengthPastTheEndWithAChecksumThatHoldsIsCorrupt() throws {
        var w = StateWriter()
        for b in CheckpointFormat.magic { w.byte(b) }
        for b: UInt8 in [2, 0, 0, 0] { w.byte(b) }
        w.section { h in
            h.string("t")
            h.double(1)
            h.count(1)  // one model announced, none there
        }
        let crc = crc32(w.bytes)
        for i in 0..<4 { w.byte(UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i)))) }
        do {
            _ = try CheckpointFormat.decode(w.bytes)
            Issue.record("a checkpoint announcing a model it does not hold was read")
        } catch {
            #expect(error.reason == .corrupt, "\(error)")
        }
    }

    /// A checkpoint cut short (a copy or a disk that stopped part-way) is reported as `truncated`, wherever the cut
    /// falls: in the header, in a model's state (its section's length then runs past the end of the file) or in
    /// the checksum; the restore counts it as such and keeps the file aside.
    @Test func aCheckpointCutShortIsTruncated() throws {
        let dir = temporaryDirectory()
        let a = try Node([Models.fraud(), Models.eta], directory: dir)
        var traffic = Traffic(seed: 5)
        traffic.predictions(a.model("fraud"), 1000, prefix: "p", t0: WallClock.now() - 10)
        try #require(a.checkpoint() != nil)
        a.crash()
        let file = CheckpointFile(directory: dir)
        let whole = try #require(try file.read(maxBytes: 1 << 30))
        for cut in [20, whole.count / 2, whole.count - 5, whole.count - 1] {
            #expect(throws: CheckpointFormat.ReadError.truncated, "cut at \(cut) of \(whole.count)") {
                try CheckpointFormat.decode(Array(whole[0..<cut]))
            }
        }

        let half = Array(whole[0..<whole.count / 2])
        try Data(half).write(to: URL(fileURLWithPath: file.path))
        let b = try Node([Models.fraud(), Models.eta], directory: dir)
        let report = b.checkpointer.restore()
        #expect(report.failure == .truncated)
        #expect(b.value(#"mlops_storage_restore_failures_total{reason="truncated"}"#) == 1)
        #expect(b.value(#"mlops_storage_restore_failures_total{reason="corrupt"}"#) == 0)
        let aside = try #require(report.setAside)
        #expect(FileManager.default.contents(atPath: aside) == Data(half))
    }
}

@Suite struct StorageReasonTests {
    @Test func reasonsAreTheLabelsInOrderAndSlotsTheirPositions() {
        #expect(
            StorageMetrics.checkpointFailureReasons == [
                "no_space", "permission", "not_a_directory", "io", "blocked", "locked",
            ])
        #expect(
            StorageMetrics.restoreFailureReasons == [
                "foreign", "newer_version", "truncated", "corrupt", "unreadable", "too_large", "locked",
            ])
        #expect(CheckpointFailureReason.allCases.map(\.slot) == Array(0..<6))
        #expect(RestoreFailureReason.allCases.map(\.slot) == Array(0..<7))
    }
}
