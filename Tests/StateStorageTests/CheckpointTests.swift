import ExporterConfig
import Exposition
import Foundation
import Ingestion
import ModelMonitoring
import StateStorage
import Testing

@Suite struct CheckpointTests {
    /// A node that records, checkpoints; a second node restores: every sample equal, and the labels sent after the
    /// restart join the predictions sent before it, exactly as in the node that kept running.
    @Test func restoredStateEqualsTheStateThatKeptRunning() throws {
        let dir = temporaryDirectory()
        let a = try Node([Models.fraud(), Models.eta], directory: dir)
        let t0 = WallClock.now() - 100
        var traffic = Traffic(seed: 7)
        traffic.predictions(a.model("fraud"), 3000, prefix: "p", t0: t0)
        traffic.labels(a.model("fraud"), 0..<1000, prefix: "p", at: t0 + 40)
        traffic.regression(a.model("eta"), 500, t0: t0)
        let report = try #require(a.stop())
        #expect(report.bytes > 0)
        #expect(a.value("mlops_storage_checkpoints_total") == 1)
        #expect(a.value("mlops_storage_checkpoint_bytes") == Double(report.bytes))

        let b = try Node([Models.fraud(), Models.eta], directory: dir)
        let restored = b.checkpointer.restore()
        #expect(restored.failure == nil)
        #expect(restored.results.map(\.result) == [.restored, .restored])
        #expect(b.value(#"mlops_storage_restore_total{model="fraud",result="restored"}"#) == 1)
        let before = a.samples()
        #expect(b.samples() == before)
        #expect(before.contains { $0.hasPrefix(#"mlops_labels_pending{model="fraud"} 2000"#) })

        // The rest of the labels, to both: the same joins, the same figures.
        var again = traffic
        traffic.labels(a.model("fraud"), 1000..<3000, prefix: "p", at: t0 + 60)
        again.labels(b.model("fraud"), 1000..<3000, prefix: "p", at: t0 + 60)
        #expect(b.samples() == a.samples())
        #expect(b.value(#"mlops_labels_pending{model="fraud"}"#) == 0)
        #expect(b.value(#"mlops_labels_joined_total{model="fraud",source="endpoint"}"#) == 3000)
    }

    /// After a crash (the process that wrote the checkpoint never stopped cleanly: its `running` marker is there), the
    /// windows and the pending predictions are restored and every counter and histogram starts from zero: the saved
    /// counters are older than what Prometheus last scraped, and a counter that steps back is read as a reset whose
    /// whole value is counted again (before, every counter was restored and stepped back). Labels sent after the
    /// restart join the predictions sent before it; after a clean stop, the counters are restored again.
    @Test func afterACrashCountersRestartFromZeroAndTheRestIsRestored() throws {
        let dir = temporaryDirectory()
        let a = try Node([Models.fraud(), Models.eta], directory: dir)
        #expect(a.checkpointer.restore().afterCrash == false)
        let t0 = WallClock.now() - 100
        var traffic = Traffic(seed: 11)
        traffic.predictions(a.model("fraud"), 3000, prefix: "p", t0: t0)
        traffic.labels(a.model("fraud"), 0..<1000, prefix: "p", at: t0 + 40)
        traffic.regression(a.model("eta"), 500, t0: t0)
        // Five ids sent twice: the store's own totals (duplicates here) are counters too.
        for _ in 0..<2 { traffic.predictions(a.model("fraud"), 5, prefix: "d", t0: t0) }
        #expect(a.value(#"mlops_predictions_duplicate_id_total{model="fraud"}"#) == 5)
        try #require(a.checkpoint() != nil)
        a.crash()  // no clean stop

        let b = try Node([Models.fraud(), Models.eta], directory: dir)
        let report = b.checkpointer.restore()
        #expect(report.afterCrash)
        #expect(report.results.map(\.result) == [.restored, .restored])
        #expect(b.value("mlops_storage_restored_after_crash") == 1)
        let types = a.familyTypes()
        let saved = Dictionary(uniqueKeysWithValues: a.samples().map(Node.split))
        var counters = 0
        var gauges = 0
        for (series, value) in b.samples().map(Node.split) {
            let family = String(series.prefix { $0 != "{" })
            switch types[family] ?? types[Node.histogramFamily(family)] {
            case "counter", "histogram":
                #expect(value == 0, "\(series)")
                counters += 1
            case "gauge" where family.hasPrefix("mlops_model_cumulative_"):
                #expect(value == 0, "\(series): a sum since start, as the counters")
            default:
                #expect(value == saved[series], "\(series)")
                gauges += 1
            }
        }
        #expect(counters > 100 && gauges > 100)
        #expect(b.value(#"mlops_labels_pending{model="fraud"}"#) == 2005)

        // The rest of the labels join the predictions sent before the crash; counted from zero.
        traffic.labels(b.model("fraud"), 1000..<3000, prefix: "p", at: t0 + 60)
        #expect(b.value(#"mlops_labels_pending{model="fraud"}"#) == 5)
        #expect(b.value(#"mlops_labels_joined_total{model="fraud",source="endpoint"}"#) == 2000)
        #expect(b.value(#"mlops_model_window_outcomes{model="fraud",version="v1"}"#) ?? 0 > 0)

        // b stops cleanly: the next process restores its counters as they were, and is not after a crash.
        let kept = b.samples()
        try #require(b.stop() != nil)
        let c = try Node([Models.fraud(), Models.eta], directory: dir)
        let clean = c.checkpointer.restore()
        #expect(!clean.afterCrash)
        #expect(c.value("mlops_storage_restored_after_crash") == 0)
        #expect(c.samples() == kept)
    }

    /// A restart after a change of collector options only, as an operator tunes them: fairness's
    /// `min_group_observations` (its state keeps its shape: carried on, as a reload carries it) and quality's
    /// `calibration_bins` (its bins change: it starts empty). The pending predictions and the other collectors' state
    /// are restored. Before, the whole model was `changed`: every pending prediction evicted (a day of labels lost
    /// with a 24 h `join_ttl`) and every window emptied, for a threshold. Without the saved options (a checkpoint of
    /// format 1), a collector whose options changed starts empty, the rest restored.
    @Test func aChangeOfCollectorOptionsOnlyCarriesTheStateOnAsAReloadWould() throws {
        let dir = temporaryDirectory()
        let a = try Node([Models.fraud(), Models.eta], directory: dir)
        let t0 = WallClock.now() - 100
        var traffic = Traffic(seed: 13)
        traffic.predictions(a.model("fraud"), 3000, prefix: "p", t0: t0)
        traffic.labels(a.model("fraud"), 0..<1000, prefix: "p", at: t0 + 40)
        traffic.regression(a.model("eta"), 300, t0: t0)
        try #require(a.stop() != nil)
        let saved = try #require(try CheckpointFile(directory: dir).read(maxBytes: 1 << 30))

        var tuned = Models.fraud()
        tuned.collectors[2] = CollectorConfiguration(name: "quality", options: ["calibration_bins": .number(5)])
        tuned.collectors[3] = CollectorConfiguration(
            name: "fairness", options: ["min_group_observations": .number(10)])
        let b = try Node([tuned, Models.eta], directory: dir)
        #expect(b.checkpointer.restore().results.map(\.result) == [.changed, .restored])
        #expect(b.value(#"mlops_labels_pending{model="fraud"}"#) == 2000)
        #expect(b.value(#"mlops_predictions_evicted_total{model="fraud",reason="reload"}"#) == 0)
        #expect(b.value(#"mlops_model_window_outcomes{model="fraud",version="v1"}"#) == 0)
        let fairnessWindow = #"mlops_fairness_window_observations{attribute="gender",group="f",model="fraud"}"#
        #expect(try #require(b.value(fairnessWindow)) > 0)
        #expect(b.value(fairnessWindow) == a.value(fairnessWindow))
        let untouched = { (line: String) in
            line.contains(#"model="fraud""#) && !line.hasPrefix("mlops_fairness_metric")
                && !line.hasPrefix("mlops_fairness_violation") && !line.hasPrefix("mlops_model_")
        }
        let kept = a.samples().filter(untouched)
        #expect(kept.count > 100)
        #expect(b.samples().filter(untouched) == kept)
        // The labels still to come join the predictions sent before the restart.
        traffic.labels(b.model("fraud"), 1000..<3000, prefix: "p", at: t0 + 60)
        #expect(b.value(#"mlops_labels_joined_total{model="fraud",source="endpoint"}"#) == 3000)
        #expect(b.value(#"mlops_labels_pending{model="fraud"}"#) == 0)

        // Without the saved options (format 1's entries), the changed collectors start empty, the rest restored.
        let entries = try CheckpointFormat.decode(saved).1
        let c = try Node([tuned, Models.eta], directory: temporaryDirectory())
        var entry = try #require(entries.first { $0.name == "fraud" })
        entry.fingerprints.collectorOptions = nil
        #expect(
            c.monitor.restore(
                model: "fraud", fingerprints: entry.fingerprints, state: &entry.state, now: WallClock.now()
            )
            .result == .changed)
        #expect(c.value(#"mlops_labels_pending{model="fraud"}"#) == 2000)
        #expect(c.value(fairnessWindow) == 0)
        let service = { (line: String) in
            line.contains(#"model="fraud""#) && line.hasPrefix("mlops_model_requests_total")
        }
        #expect(c.samples().filter(service) == a.samples().filter(service))

        // A change beyond options (the window) still drops the windows and pending predictions.
        try #require(b.stop() != nil)
        var resized = tuned
        resized.window = WindowConfiguration(duration: .seconds(3600), slices: 6)
        let d = try Node([resized, Models.eta], directory: dir)
        #expect(d.checkpointer.restore().results.map(\.result) == [.changed, .restored])
        #expect(d.value(#"mlops_feature_window_observations{feature="amount",model="fraud"}"#) == 0)
        #expect(d.value(#"mlops_labels_pending{model="fraud"}"#) == 0)
    }

    /// Collector options past what the reader takes (a user collector's 70,000-character option) are saved as unknown:
    /// the fingerprints read back, the options unknown. Before, the reader refused them and the whole checkpoint was
    /// unreadable at every start (diff review).
    @Test func optionsTooBigToReadBackAreSavedAsUnknown() throws {
        let normal: [String: ConfigValue] = ["threshold": .number(0.2), "features": .map(["a": .list([.bool(true)])])]
        let big: [String: ConfigValue] = ["vocabulary": .string(String(repeating: "x", count: 70_000))]
        for (options, readable) in [([normal, [:]], true), ([normal, big], false)] {
            let saved = StateFingerprints(
                state: "s", layout: "l", collectors: ["c1", "c2"], collectorOptions: options)
            var w = StateWriter()
            saved.writeParts(into: &w)
            var read = StateFingerprints(state: "s")
            var r = StateReader(w.bytes)
            try read.readParts(from: &r)
            #expect(r.isAtEnd)
            #expect(read.layout == "l" && read.collectors == ["c1", "c2"])
            #expect(read.collectorOptions == (readable ? options : nil))
        }
    }

    /// A checkpoint in format 1 (written before the layout and collector fingerprints were saved: every checkpoint of
    /// an earlier release) is read and restored whole.
    @Test func aCheckpointInFormat1IsRestored() throws {
        let dir = temporaryDirectory()
        let a = try Node([Models.fraud(), Models.eta], directory: dir)
        var traffic = Traffic(seed: 17)
        traffic.predictions(a.model("fraud"), 500, prefix: "p", t0: WallClock.now() - 50)
        traffic.labels(a.model("fraud"), 0..<100, prefix: "p", at: WallClock.now() - 20)
        traffic.regression(a.model("eta"), 100, t0: WallClock.now() - 50)
        var w = StateWriter()
        for b in CheckpointFormat.magic { w.byte(b) }
        for b: UInt8 in [1, 0, 0, 0] { w.byte(b) }
        w.section { h in
            h.string("0.9.0")
            h.double(WallClock.now())
            h.count(2)
        }
        for name in ["fraud", "eta"] {
            w.string(name)
            w.string(a.model(name).context.stateFingerprint)
            w.section { a.model(name).saveState(into: &$0) }
        }
        let crc = crc32(w.bytes)
        for i in 0..<4 { w.byte(UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i)))) }
        try Data(w.bytes).write(to: URL(fileURLWithPath: dir + "/checkpoint"))

        let b = try Node([Models.fraud(), Models.eta], directory: dir)
        let report = b.checkpointer.restore()
        #expect(report.failure == nil)
        #expect(report.results.map(\.result) == [.restored, .restored])
        #expect(b.samples() == a.samples())
    }

    /// A model whose configuration changed keeps its counters, drops its windows and counts its pending
    /// predictions as evicted by a reload; the other model is restored whole.
    @Test func aChangedModelStartsEmptyAndTheOthersKeepTheirState() throws {
        let dir = temporaryDirectory()
        let a = try Node([Models.fraud(), Models.eta], directory: dir)
        let t0 = WallClock.now() - 100
        var traffic = Traffic(seed: 9)
        traffic.predictions(a.model("fraud"), 500, prefix: "p", t0: t0)
        traffic.regression(a.model("eta"), 300, t0: t0)
        try #require(a.stop() != nil)

        var changed = Models.fraud()
        changed.window = WindowConfiguration(duration: .seconds(3600), slices: 6)
        let b = try Node([changed, Models.eta], directory: dir)
        let report = b.checkpointer.restore()
        #expect(report.results.map(\.result) == [.changed, .restored])
        #expect(b.value(#"mlops_storage_restore_total{model="fraud",result="changed"}"#) == 1)
        #expect(b.value(#"mlops_ingest_events_total{kind="predictions",model="fraud"}"#) == 500)
        #expect(b.value(#"mlops_labels_pending{model="fraud"}"#) == 0)
        #expect(b.value(#"mlops_predictions_evicted_total{model="fraud",reason="reload"}"#) == 500)
        #expect(b.value(#"mlops_model_requests_total{model="fraud",status="ok",version="v1"}"#) == 0)
        // eta: every sample as before.
        #expect(
            b.samples().filter { $0.contains(#"model="eta""#) } == a.samples().filter { $0.contains(#"model="eta""#) })
        // A model no longer configured is reported as removed.
        b.crash()
        let c = try Node([Models.eta], directory: dir)
        #expect(c.checkpointer.restore().results.map(\.result) == [.removed, .restored])
    }

    /// Pending predictions whose join_ttl passed while the exporter was down are counted as expired at restore;
    /// slices older than the window are dropped.
    @Test func whatAgedWhileDownIsExpiredAndDropped() throws {
        let dir = temporaryDirectory()
        let window = WindowConfiguration(duration: .seconds(600), slices: 6)
        let a = try Node([Models.fraud(window: window, ttl: .seconds(300))], directory: dir)
        let now = WallClock.now()
        var traffic = Traffic(seed: 3)
        traffic.predictions(a.model("fraud"), 100, prefix: "old", t0: now - 200)  // past the TTL at restore
        traffic.predictions(a.model("fraud"), 50, prefix: "new", t0: now - 10)
        try #require(a.stop(now: now - 5) != nil)
        #expect(a.value(#"mlops_labels_pending{model="fraud"}"#) == 150)
        // Restored 250 s later: the 50 new ones are still pending (255 s < 300 s), the old ones expired while the
        // exporter was down (450 s); restored 1,000 s later, the
        // window's slices of then are all gone and every prediction expired.
        let b = try Node([Models.fraud(window: window, ttl: .seconds(300))], directory: dir)
        b.checkpointer.restore(now: now + 250)
        #expect(b.value(#"mlops_labels_pending{model="fraud"}"#) == 50)
        #expect(b.value(#"mlops_predictions_expired_total{model="fraud"}"#) == 100)
        // A label for one that expired while the exporter was down is answered as expired, not unknown.
        b.model("fraud").record(label: LabelEvent(id: "old-3", label: .label("fraud")), receivedAt: now + 251)
        #expect(b.value(#"mlops_labels_unmatched_total{model="fraud",reason="expired"}"#) == 1)
        try #require(b.stop(now: now + 251) != nil)
        let c = try Node([Models.fraud(window: window, ttl: .seconds(300))], directory: dir)
        c.checkpointer.restore(now: now + 1000)
        #expect(c.value(#"mlops_labels_pending{model="fraud"}"#) == 0)
        #expect(c.value(#"mlops_predictions_expired_total{model="fraud"}"#) == 150)
        #expect(try #require(c.value(#"mlops_feature_window_observations{feature="amount",model="fraud"}"#)) == 0)
        // Counters since start are kept.
        #expect(c.value(#"mlops_ingest_events_total{kind="predictions",model="fraud"}"#) == 150)
    }

    /// A checkpoint written by a clock a day ahead (or restored after the clock was set back a day): the windows move
    /// back whole with their newest slice at now, so that events at the real time are recorded in them, not late; the
    /// time of the last event is now, not a day ahead (staleness alerts could not fire for a day).
    @Test func aCheckpointFromAClockAheadLeavesTheWindowsRecording() throws {
        let dir = temporaryDirectory()
        // Two hours in slices of 20 minutes: the scrapes read the windows at the real time, so a test starved for
        // minutes on a loaded machine must not see them rotate (a CI run took 157 s here and found 58 of 70
        // observations with 10-minute windows); a day ahead is still far outside them.
        let window = WindowConfiguration(duration: .seconds(7200), slices: 6)
        let a = try Node([Models.fraud(window: window)], directory: dir)
        let now = WallClock.now()
        let ahead = now + 86_400
        var traffic = Traffic(seed: 5)
        traffic.predictions(a.model("fraud"), 40, prefix: "ahead", t0: ahead)
        traffic.labels(a.model("fraud"), 0..<40, prefix: "ahead", at: ahead + 1)
        try #require(a.stop(now: ahead + 2) != nil)
        let b = try Node([Models.fraud(window: window)], directory: dir)
        b.checkpointer.restore(now: now)
        let observations = #"mlops_feature_window_observations{feature="amount",model="fraud"}"#
        #expect(b.value(observations) == 40)
        #expect(try #require(b.value(#"mlops_model_window_outcomes{model="fraud",version="v1"}"#)) > 0)
        traffic.predictions(b.model("fraud"), 30, prefix: "now", t0: now)
        traffic.labels(b.model("fraud"), 0..<30, prefix: "now", at: now + 1)
        #expect(b.value(observations) == 70)
        #expect(b.value(#"mlops_drift_late_events_total{model="fraud"}"#) == 0)
        #expect(b.value(#"mlops_quality_late_outcomes_total{model="fraud"}"#) == 0)
        for version in ["v1", "v2"] {
            let last = try #require(
                b.value(#"mlops_model_last_event_timestamp_seconds{model="fraud",version="\#(version)"}"#))
            #expect(last >= now && last < now + 10, "\(version): \(last - now) s after now")
        }
    }
}

@Suite struct CheckpointRequestTests {
    @Test("asks for a checkpoint made before it begins are one (a reload flood queued one each)")
    func requestsAreCoalesced() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let node = try Node([Models.eta], directory: directory.path)
        node.checkpointer.start()
        defer { node.checkpointer.stop() }
        for _ in 0..<200 { node.checkpointer.requestCheckpoint() }
        Thread.sleep(forTimeInterval: 1)
        let written = try #require(node.value("mlops_storage_checkpoints_total"))
        #expect(written >= 1 && written <= 3, "\(written) checkpoints for 200 asks")
    }
}

extension Node {
    /// A checkpoint as the checkpoint thread writes one: the process is still running.
    func checkpoint(now: Double = WallClock.now()) -> Checkpointer.CheckpointReport? {
        checkpointer.checkpoint(now: now)
    }

    /// The last checkpoint of a clean stop.
    func stop(now: Double = WallClock.now()) -> Checkpointer.CheckpointReport? {
        checkpointer.finalCheckpoint(now: now)
    }

    /// Each family's type, from the text exposition's `# TYPE` lines.
    func familyTypes() -> [String: String] {
        var types: [String: String] = [:]
        for line in String(decoding: registry.render(format: .text), as: UTF8.self).split(separator: "\n")
        where line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ")
            types[String(parts[2])] = String(parts[3])
        }
        return types
    }

    /// A histogram sample's family: its name without `_bucket`, `_sum` or `_count`.
    static func histogramFamily(_ name: String) -> String {
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
            return String(name.dropLast(suffix.count))
        }
        return name
    }

    /// A sample line's series and value.
    static func split(_ line: String) -> (String, Double) {
        let space = line.lastIndex(of: " ")!
        return (String(line[..<space]), Double(line[line.index(after: space)...])!)
    }
}
