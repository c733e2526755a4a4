import ExporterConfig
import Exposition
import Foundation
import Ingestion
import ModelMonitoring
import Synchronization
import Testing

/// A collector that keeps every joined outcome it is given.
final class OutcomeRecorder: ModelCollector {
    static let name = "outcome_recorder"
    static let schema = CollectorSchema()
    static var needsOutcomes: Bool { true }
    let outcomes = Mutex<[JoinedOutcome]>([])

    init(model: ModelContext, options: CollectorOptions) throws(ModelCollectorError) {}

    var maxSeries: Int { 0 }
    func record(prediction: PredictionEvent, receivedAt: Double) {}
    func record(outcome: JoinedOutcome, receivedAt: Double) { outcomes.withLock { $0.append(outcome) } }
    func collect(into sink: inout CollectorSink) {}
}

func joinHarness(
    maxPending: Int = 100, ttl: Duration = .seconds(3600), instanceID: String? = nil
) throws -> (Harness, MonitoredModel, OutcomeRecorder) {
    var catalog = CollectorCatalog.builtIn
    try catalog.register(OutcomeRecorder.self)
    var config = ModelConfiguration(
        name: "m", task: .binaryClassification, versions: ["v1", "v2"], classes: ["no", "yes"], positiveClass: "yes",
        sensitiveAttributes: [SensitiveAttribute(name: "gender", groups: ["f", "m"], privileged: "m")],
        collectors: [CollectorConfiguration(name: "outcome_recorder")])
    config.maxPending = maxPending
    config.joinTTL = ttl
    let h = try Harness(monitor: ModelMonitor(catalog: catalog, instanceID: instanceID), [config])
    let m = h.model("m")
    return (h, m, m.collectors[0] as! OutcomeRecorder)
}

/// `mlops_labels_unmatched_total{model="m",reason}`.
func unmatched(_ h: Harness, _ reason: String) -> Double? {
    h.value(#"mlops_labels_unmatched_total{model="m",reason=""# + reason + #""}"#)
}

/// Every reason's unmatched count, in `UnmatchedReason` order.
func unmatchedByReason(_ h: Harness) -> [Double?] {
    UnmatchedReason.allCases.map { unmatched(h, $0.name) }
}

@Suite struct LabelJoinTests {
    /// `apply` names the models a new configuration removes, with the predictions each had waiting for labels (gone
    /// with it): what the reload's warning says (before, nothing said it).
    @Test func applyNamesTheRemovedModelsAndTheirPendingPredictions() throws {
        let (h, m, _) = try joinHarness()
        let t0 = WallClock.now()
        m.record(version: "v1", prediction: .label("no"), id: "a", receivedAt: t0)
        m.record(version: "v1", prediction: .label("yes"), id: "b", receivedAt: t0)
        let kept = h.monitor.apply(
            try h.monitor.prepare(ExporterConfiguration(models: [m.context.configuration], source: "t")))
        #expect(kept.isEmpty)
        let removed = h.monitor.apply(try h.monitor.prepare(ExporterConfiguration(models: [fraud], source: "t")))
        #expect(removed.map(\.name) == ["m"] && removed.map(\.pendingPredictions) == [2], "\(removed)")
    }

    @Test func labelsJoinTheirPredictionsWithTheirDelay() throws {
        let (h, m, recorder) = try joinHarness()
        let t0 = WallClock.now()
        #expect(
            m.record(
                version: "v2", prediction: .label("yes"), score: 0.8, attributes: ["gender": "f"], id: "a",
                receivedAt: t0) == nil)
        m.record(version: "v1", prediction: .label("no"), id: "b", receivedAt: t0 + 1)
        #expect(h.value(#"mlops_labels_pending{model="m"}"#) == 2)
        #expect(m.record(label: LabelEvent(id: "a", label: .label("no")), receivedAt: t0 + 10) == nil)
        let outcomes = recorder.outcomes.withLock { $0 }
        #expect(outcomes.count == 1)
        let o = try #require(outcomes.first)
        #expect(o.actualClass == 0 && o.prediction.predictedClass == 1 && o.prediction.version == 1)
        #expect(o.prediction.score == 0.8 && o.prediction.groups == [0] && o.delaySeconds == 10)
        #expect(h.value(#"mlops_labels_joined_total{model="m",source="endpoint"}"#) == 1)
        #expect(h.value(#"mlops_labels_pending{model="m"}"#) == 1)
        #expect(h.value(#"mlops_labels_join_delay_seconds_bucket{model="m",le="10"}"#) == 1)
        #expect(h.value(#"mlops_labels_join_delay_seconds_bucket{model="m",le="1"}"#) == 0)
        // Joined once only: the same label again is unmatched.
        m.record(label: LabelEvent(id: "a", label: .label("no")), receivedAt: t0 + 11)
        #expect(unmatchedByReason(h) == [1, 0, 0, 0])
    }

    /// The delay runs from the prediction's `timestamp` when it had one (its arrival otherwise), as documented; one
    /// ahead of the label's arrival counts 0. The join TTL still runs from the arrival.
    @Test func theJoinDelayRunsFromThePredictionsTimestamp() throws {
        let (h, m, recorder) = try joinHarness(ttl: .seconds(60))
        let t0 = WallClock.now()
        m.record(version: "v1", prediction: .label("no"), id: "old", timestamp: t0 - 200, receivedAt: t0)
        m.record(version: "v1", prediction: .label("no"), id: "ahead", timestamp: t0 + 3600, receivedAt: t0)
        m.record(label: LabelEvent(id: "old", label: .label("no")), receivedAt: t0 + 1)
        m.record(label: LabelEvent(id: "ahead", label: .label("no")), receivedAt: t0 + 1)
        #expect(recorder.outcomes.withLock { $0.map(\.delaySeconds) } == [201, 0])
        #expect(h.value(#"mlops_labels_join_delay_seconds_bucket{model="m",le="60"}"#) == 1)
        #expect(h.value(#"mlops_labels_join_delay_seconds_bucket{model="m",le="300"}"#) == 2)
        #expect(h.value(#"mlops_labels_join_delay_seconds_sum{model="m"}"#) == 201)
        #expect(unmatchedByReason(h) == [0, 0, 0, 0])
    }

    /// A prediction whose id is empty does not wait for a label: no label can name it (an empty label id is refused),
    /// so it only held a place in the store until it expired.
    @Test func aPredictionWithAnEmptyIDDoesNotWait() throws {
        let (h, m, _) = try joinHarness()
        #expect(m.record(version: "v1", prediction: .label("no"), id: "", receivedAt: WallClock.now()) == nil)
        #expect(h.value(#"mlops_labels_pending{model="m"}"#) == 0)
        #expect(m.record(label: LabelEvent(id: "", label: .label("no")), receivedAt: WallClock.now()) == .missingID)
    }

    @Test func inlineLabelsJoinAtOnceAndUnknownClassesAreOther() throws {
        let (h, m, recorder) = try joinHarness()
        m.record(version: "v1", prediction: .label("yes"), attributes: ["gender": "x"], label: .label("maybe"))
        let o = try #require(recorder.outcomes.withLock { $0.first })
        #expect(o.actualClass == 2 && o.prediction.groups == [2] && o.delaySeconds == 0)
        #expect(h.value(#"mlops_labels_joined_total{model="m",source="inline"}"#) == 1)
        #expect(h.value(#"mlops_labels_pending{model="m"}"#) == 0)
    }

    /// A label that finds no pending prediction is counted unknown, and held 5 s: its prediction arriving within them
    /// joins it (the proxy records a prediction just after sending its response, so a label posted at that moment
    /// could come first: a review saw 4 of 40 such labels lost on a loaded machine); one arriving later waits as usual.
    @Test func aLabelBeforeItsPredictionIsHeldFiveSeconds() throws {
        let (h, m, recorder) = try joinHarness()
        let t0 = WallClock.now()
        m.record(label: LabelEvent(id: "early", label: .label("yes")), receivedAt: t0)
        m.record(label: LabelEvent(id: "late", label: .label("no")), receivedAt: t0)
        #expect(unmatchedByReason(h) == [2, 0, 0, 0])
        #expect(h.value(#"mlops_labels_held{model="m"}"#) == 2)
        m.record(version: "v1", prediction: .label("yes"), id: "early", receivedAt: t0 + 1)
        m.record(version: "v1", prediction: .label("no"), id: "late", receivedAt: t0 + 6)
        let outcomes = recorder.outcomes.withLock { $0 }
        #expect(outcomes.count == 1 && outcomes.first?.actualClass == 1 && outcomes.first?.delaySeconds == 0)
        #expect(h.value(#"mlops_labels_joined_total{model="m",source="endpoint"}"#) == 1)
        #expect(h.value(#"mlops_labels_pending{model="m"}"#) == 1)  // "late": its label was 6 s older
        // "early" counted unknown and joined: unknown minus the held ones that joined is the one label lost so far.
        #expect(h.value(#"mlops_labels_held_joined_total{model="m"}"#) == 1)
        // "late" stays held until 5 s of the scrape's (wall) clock pass.
        #expect(h.value(#"mlops_labels_held{model="m"}"#) == 1)
        #expect(unmatchedByReason(h) == [2, 0, 0, 0])
        // A label naming another instance, or a pending prediction's that expired, is not held.
        m.record(label: LabelEvent(id: "other~01ARZ3NDEKTSV4RRFFQ69G5FAV", label: .label("no")), receivedAt: t0 + 7)
        #expect(unmatchedByReason(h) == [2, 0, 0, 1])
        #expect(h.value(#"mlops_labels_held{model="m"}"#) == 1)
    }

    /// A held label of no configured class keeps at most 1 KiB of its text, cut between characters (a client posting
    /// 15 MB labels for unknown ids held hundreds of MB: the count was the only bound); it still joins as `__other__`,
    /// and a configured class is held whole.
    @Test func aHeldLabelOfNoClassKeepsAtMostAKibibyteOfItsText() throws {
        let (_, m, recorder) = try joinHarness()
        let t0 = WallClock.now()
        let long = String(repeating: "é", count: 600)  // 1,200 UTF-8 bytes, two per character
        m.record(label: LabelEvent(id: "long", label: .label(long)), receivedAt: t0)
        m.record(label: LabelEvent(id: "short", label: .label("yes")), receivedAt: t0)
        m.record(version: "v1", prediction: .label("yes"), id: "long", receivedAt: t0 + 1)
        m.record(version: "v1", prediction: .label("yes"), id: "short", receivedAt: t0 + 1)
        let outcomes = recorder.outcomes.withLock { $0 }
        #expect(outcomes.count == 2)
        #expect(outcomes.first?.label == .label(String(repeating: "é", count: 512)))
        #expect(outcomes.first?.actualClass == 2)
        #expect(outcomes.last?.label == .label("yes") && outcomes.last?.actualClass == 1)
        #expect(
            HeldLabel(label: .label("x" + long), labelClass: nil).label
                == .label("x" + String(repeating: "é", count: 511)))
        // The same label joining a pending prediction at once (not held) is cut the same.
        m.record(version: "v1", prediction: .label("yes"), id: "first", receivedAt: t0 + 2)
        m.record(label: LabelEvent(id: "first", label: .label(long)), receivedAt: t0 + 3)
        let direct = recorder.outcomes.withLock { $0.last }
        #expect(direct?.label == .label(String(repeating: "é", count: 512)) && direct?.actualClass == 2)
    }

    /// A label held after another whose request started earlier (a long labels body: its labels carry the time it
    /// started) still joins its prediction within 5 s of its own arrival: the older time overwrote the newer as the
    /// last held, and the prediction, 11 s after that older time, did not look among the held labels.
    @Test func anOlderHeldLabelDoesNotHideANewerOne() throws {
        let (h, m, recorder) = try joinHarness()
        let t0 = WallClock.now()
        m.record(label: LabelEvent(id: "newer", label: .label("yes")), receivedAt: t0)
        m.record(label: LabelEvent(id: "older", label: .label("no")), receivedAt: t0 - 10)
        m.record(version: "v1", prediction: .label("yes"), id: "newer", receivedAt: t0 + 1)
        #expect(recorder.outcomes.withLock { $0.count } == 1)
        #expect(h.value(#"mlops_labels_held_joined_total{model="m"}"#) == 1)
    }

    /// A label and its prediction posted at the same moment, from two threads, always join once: each checked for the
    /// other before the other was stored, and both waited apart for good (a fleet review lost 4-5 of 3,000 such pairs:
    /// the label held after its second look, the prediction stored after its only one).
    @Test func aLabelAndItsPredictionAtTheSameMomentJoinOnce() throws {
        let (h, m, recorder) = try joinHarness(maxPending: 100_000)
        let pairs = 4000
        let start = DispatchSemaphore(value: 0)
        let ready = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        // Two threads in lockstep: each pair's label and prediction released together.
        let go = (0..<2).map { _ in DispatchSemaphore(value: 0) }
        let arrived = DispatchSemaphore(value: 0)
        for side in 0..<2 {
            done.enter()
            Thread.detachNewThread {
                ready.signal()
                start.wait()
                for i in 0..<pairs {
                    go[side].wait()
                    if side == 0 {
                        m.record(label: LabelEvent(id: "p\(i)", label: .label("yes")))
                    } else {
                        m.record(version: "v1", prediction: .label("yes"), id: "p\(i)")
                    }
                    arrived.signal()
                }
                done.leave()
            }
        }
        ready.wait()
        ready.wait()
        start.signal()
        start.signal()
        for _ in 0..<pairs {
            go[0].signal()
            go[1].signal()
            arrived.wait()
            arrived.wait()
        }
        #expect(done.wait(timeout: .now() + 60) == .success)
        #expect(recorder.outcomes.withLock { $0.count } == pairs)
        #expect(h.value(#"mlops_labels_joined_total{model="m",source="endpoint"}"#) == Double(pairs))
        #expect(h.value(#"mlops_labels_pending{model="m"}"#) == 0)
        #expect(h.value(#"mlops_labels_held{model="m"}"#) == 0)
        // Every label counted unknown (it came first) joined: none lost.
        #expect(h.value(#"mlops_labels_held_joined_total{model="m"}"#) == unmatched(h, "unknown"))
    }

    /// A prediction older than `join_ttl` has expired when its label comes; one younger joins. A TTL with a fraction of
    /// a second keeps it (`1500ms` was cut to 1 s: a label 1.2 s late expired).
    @Test(arguments: [
        (ttl: Duration.seconds(60), fresh: 20.0, old: 70.0), (ttl: .milliseconds(1500), fresh: 1.2, old: 1.8),
    ])
    func predictionsExpireAfterTheTTL(ttl: Duration, fresh: Double, old: Double) throws {
        let (h, m, recorder) = try joinHarness(ttl: ttl)
        let t0 = WallClock.now()
        m.record(version: "v1", prediction: .label("yes"), id: "old", receivedAt: t0 - old)
        m.record(version: "v1", prediction: .label("yes"), id: "fresh", receivedAt: t0 - fresh)
        #expect(m.record(label: LabelEvent(id: "old", label: .label("yes")), receivedAt: t0) == nil)
        #expect(m.record(label: LabelEvent(id: "fresh", label: .label("yes")), receivedAt: t0) == nil)
        #expect(recorder.outcomes.withLock { $0.count } == 1)
        #expect(unmatchedByReason(h) == [0, 1, 0, 0])
        #expect(h.value(#"mlops_predictions_expired_total{model="m"}"#) == 1)
        // A scrape expires what is due even without traffic (the store's clock is the wall clock there).
        m.record(version: "v1", prediction: .label("yes"), id: "ancient", receivedAt: t0 - 1000)
        #expect(h.value(#"mlops_predictions_expired_total{model="m"}"#) == 2)
        #expect(h.value(#"mlops_labels_pending{model="m"}"#) == 0)
    }

    @Test func theOldestAreEvictedAtCapacityAndDuplicatesReplace() throws {
        let (h, m, recorder) = try joinHarness(maxPending: 4)
        let t0 = WallClock.now()
        for i in 0..<6 { m.record(version: "v1", prediction: .label("yes"), id: "p\(i)", receivedAt: t0 + Double(i)) }
        #expect(h.value(#"mlops_predictions_evicted_total{model="m",reason="capacity"}"#) == 2)
        #expect(h.value(#"mlops_labels_pending{model="m"}"#) == 4)
        for i in 0..<6 { m.record(label: LabelEvent(id: "p\(i)", label: .label("no")), receivedAt: t0 + 10) }
        #expect(recorder.outcomes.withLock { $0.count } == 4)
        #expect(unmatchedByReason(h) == [0, 0, 2, 0])
        m.record(version: "v1", prediction: .label("yes"), id: "dup", receivedAt: t0 + 20)
        m.record(version: "v2", prediction: .label("no"), id: "dup", receivedAt: t0 + 21)
        m.record(label: LabelEvent(id: "dup", label: .label("no")), receivedAt: t0 + 22)
        #expect(h.value(#"mlops_predictions_duplicate_id_total{model="m"}"#) == 1)
        #expect(recorder.outcomes.withLock { $0.last?.prediction.version } == 1)
    }

    @Test func memoryStaysBoundedUnderAnyTraffic() async throws {
        let (h, m, _) = try joinHarness(maxPending: 1000)
        let t0 = WallClock.now()
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    for i in 0..<20_000 {
                        m.record(version: "v1", prediction: .label("yes"), id: "w\(writer)-\(i)", receivedAt: t0)
                    }
                }
            }
        }
        let pending = try #require(h.value(#"mlops_labels_pending{model="m"}"#))
        let evicted = try #require(h.value(#"mlops_predictions_evicted_total{model="m",reason="capacity"}"#))
        #expect(pending <= 1000 && pending + evicted == 80_000)
    }

    @Test func bodiesFromTheHTTPAPIJoinLikeInProcessEvents() throws {
        let (h, m, recorder) = try joinHarness()
        let now = WallClock.now()
        let predictions = Array(
            """
            {"id":"a","version":"v1","prediction":"no","score":0.2}
            {"id":"b","version":"v1","prediction":"yes","label":"yes"}

            """.utf8)
        let labels = Array(#"[{"id":"a","label":"yes"},{"id":"zz","label":"no"}]"#.utf8)
        _ = try predictions.withUnsafeBytes {
            try m.ingest(.predictions, body: $0, format: .ndjson, maxEvents: 10, receivedAt: now)
        }
        _ = try labels.withUnsafeBytes {
            try m.ingest(.labels, body: $0, format: .json, maxEvents: 10, receivedAt: now)
        }
        #expect(recorder.outcomes.withLock { $0.map(\.actualClass) } == [1, 1])
        #expect(h.value(#"mlops_labels_joined_total{model="m",source="endpoint"}"#) == 1)
        #expect(h.value(#"mlops_labels_joined_total{model="m",source="inline"}"#) == 1)
        #expect(unmatchedByReason(h) == [1, 0, 0, 0])
    }

    @Test func labelsJoinedOutOfOrderNeverEvictBelowTheLimit() throws {
        let (h, m, recorder) = try joinHarness(maxPending: 4)
        let t0 = WallClock.now()
        for i in 0..<4 { m.record(version: "v1", prediction: .label("yes"), id: "p\(i)", receivedAt: t0 + Double(i)) }
        for i in [1, 2] { m.record(label: LabelEvent(id: "p\(i)", label: .label("no")), receivedAt: t0 + 5) }
        // Two holes in the ring: two more predictions fit without evicting anyone.
        for i in 4..<6 { m.record(version: "v1", prediction: .label("yes"), id: "p\(i)", receivedAt: t0 + Double(i)) }
        #expect(h.value(#"mlops_predictions_evicted_total{model="m",reason="capacity"}"#) == 0)
        #expect(h.value(#"mlops_labels_pending{model="m"}"#) == 4)
        // Now full: the next one evicts the oldest waiting prediction (p0), not a later one.
        m.record(version: "v1", prediction: .label("yes"), id: "p6", receivedAt: t0 + 6)
        #expect(h.value(#"mlops_predictions_evicted_total{model="m",reason="capacity"}"#) == 1)
        for i in [0, 3, 4, 5, 6] { m.record(label: LabelEvent(id: "p\(i)", label: .label("no")), receivedAt: t0 + 7) }
        #expect(recorder.outcomes.withLock { $0.count } == 2 + 4)
        #expect(unmatchedByReason(h) == [0, 0, 1, 0])
    }

    @Test func labelsOfPredictionsDroppedByExpiryOrCapacityAreToldApart() throws {
        let t0 = WallClock.now()
        // Expired when a later prediction arrives (dropped from the store, remembered).
        let (h, m, _) = try joinHarness(ttl: .seconds(60))
        m.record(version: "v1", prediction: .label("yes"), id: "stale", receivedAt: t0 - 100)
        m.record(version: "v1", prediction: .label("yes"), id: "fresh", receivedAt: t0)
        #expect(h.value(#"mlops_predictions_expired_total{model="m"}"#) == 1)
        m.record(label: LabelEvent(id: "stale", label: .label("no")), receivedAt: t0 + 1)
        m.record(label: LabelEvent(id: "never", label: .label("no")), receivedAt: t0 + 1)
        #expect(unmatchedByReason(h) == [1, 1, 0, 0])
        // A remembered drop explains one label only: the same label again is unknown.
        m.record(label: LabelEvent(id: "stale", label: .label("no")), receivedAt: t0 + 2)
        #expect(unmatchedByReason(h) == [2, 1, 0, 0])
        // Evicted at capacity.
        let (h2, m2, _) = try joinHarness(maxPending: 1)
        m2.record(version: "v1", prediction: .label("yes"), id: "a", receivedAt: t0)
        m2.record(version: "v1", prediction: .label("yes"), id: "b", receivedAt: t0 + 1)
        #expect(h2.value(#"mlops_predictions_evicted_total{model="m",reason="capacity"}"#) == 1)
        m2.record(label: LabelEvent(id: "a", label: .label("no")), receivedAt: t0 + 2)
        #expect(unmatchedByReason(h2) == [0, 0, 1, 0])
    }

    @Test func idsNamingAnotherInstanceAreToldApartFromUnknownOnes() throws {
        let (h, m, recorder) = try joinHarness(instanceID: "pod-a")
        let now = WallClock.now()
        let own = EventID.generate(instance: "pod-a")
        m.record(version: "v1", prediction: .label("yes"), id: own, receivedAt: now)
        let ulid = "01ARYZ6S4104HMASW9NF6YY093"
        let ids = [
            own, "pod-b~\(ulid)", "pod-c~\(ulid)", "pod-b~01ARYZ6S4104HMASW9NF6YY094", "pod-a~\(ulid)", "order~123",
            "pod-b~\(ulid.lowercased())",
        ]
        let body = Array(("[" + ids.map { #"{"id":""# + $0 + #"","label":"no"}"# }.joined(separator: ",") + "]").utf8)
        var report = UnmatchedLabels()
        _ = try body.withUnsafeBytes {
            try m.ingest(.labels, body: $0, format: .json, maxEvents: 10, receivedAt: now, unmatched: &report)
        }
        #expect(recorder.outcomes.withLock { $0.count } == 1)
        // Own prefix but not pending, a user's id with a tilde, a lower-case ULID: unknown.
        #expect(unmatchedByReason(h) == [3, 0, 0, 3])
        #expect(report.joined == 1)
        #expect(UnmatchedReason.allCases.map { report[$0] } == [3, 0, 0, 3])
        #expect(report.otherInstances.map(\.name) == ["pod-b", "pod-c"])
        #expect(report.otherInstances.map(\.count) == [2, 1])
        #expect(report.unlistedOtherInstances == 0)
    }

    @Test func withoutAnInstanceIDEveryWellFormedPrefixIsAnotherInstance() throws {
        let (h, m, _) = try joinHarness()
        m.record(label: LabelEvent(id: "pod-a~01ARYZ6S4104HMASW9NF6YY093", label: .label("no")))
        #expect(unmatchedByReason(h) == [0, 0, 0, 1])
    }

    @Test func theLabelsAnswerListsAtMostSixteenInstances() throws {
        let (_, m, _) = try joinHarness(instanceID: "me")
        let ids = (0..<20).flatMap { i in (0...i % 2).map { _ in "pod-\(i)~01ARYZ6S4104HMASW9NF6YY093" } }
        let body = Array(("[" + ids.map { #"{"id":""# + $0 + #"","label":"no"}"# }.joined(separator: ",") + "]").utf8)
        var report = UnmatchedLabels()
        _ = try body.withUnsafeBytes {
            try m.ingest(
                .labels, body: $0, format: .json, maxEvents: 100, receivedAt: WallClock.now(), unmatched: &report)
        }
        #expect(report.otherInstances.map(\.name) == (0..<16).map { "pod-\($0)" })
        #expect(report.otherInstances.map(\.count) == (0..<16).map { $0 % 2 + 1 })
        #expect(report.unlistedOtherInstances == 1 + 2 + 1 + 2)
        #expect(report[.otherInstance] == ids.count)
    }
}

@Suite struct PendingReloadTests {
    /// A prediction that reaches the replaced model after a reload rebuilt it (its request resolved the model before
    /// the swap, as a batch being decoded did) is counted evicted on reload: it was stored in the replaced joiner,
    /// where no label can find it, and counted nowhere (a review: 890 evictions counted for 900 labels lost).
    @Test func aPredictionReachingAReplacedModelCountsAsEvictedOnReload() throws {
        let (h, old, _) = try joinHarness()
        let now = WallClock.now()
        for i in 0..<2 {
            #expect(old.record(version: "v1", prediction: .label("yes"), id: "p\(i)", receivedAt: now) == nil)
        }
        var changed = old.context.configuration
        changed.versions = ["v1", "v2", "v3"]  // a version list changed: the model is rebuilt
        h.monitor.apply(try h.monitor.prepare(ExporterConfiguration(models: [changed], source: "t")))
        #expect(h.model("m") !== old)
        #expect(h.value(#"mlops_predictions_evicted_total{model="m",reason="reload"}"#) == 2)
        #expect(old.record(version: "v1", prediction: .label("no"), id: "late", receivedAt: now + 1) == nil)
        #expect(h.value(#"mlops_predictions_evicted_total{model="m",reason="reload"}"#) == 3)
        // A model a reload removes: a late prediction is not stored where nothing reads it.
        let removed = h.model("m")
        #expect(removed.record(version: "v1", prediction: .label("no"), id: "kept", receivedAt: now + 2) == nil)
        #expect(removed.joiner?.store.counts.pending == 1)
        h.monitor.apply(try h.monitor.prepare(ExporterConfiguration(models: [], source: "t")))
        #expect(removed.record(version: "v1", prediction: .label("no"), id: "late2", receivedAt: now + 3) == nil)
        #expect(removed.joiner?.store.counts.pending == 1)
    }

    /// A reload of `max_pending` or `join_ttl` keeps the waiting predictions (they were counted evicted by the reload
    /// and their labels answered unknown): a smaller capacity evicts the oldest, counted as capacity evictions; the
    /// newer ones still join.
    @Test func aReloadOfMaxPendingOrJoinTTLKeepsThePendingPredictions() throws {
        let (h, m, _) = try joinHarness(maxPending: 100, ttl: .seconds(3600))
        let now = WallClock.now()
        for i in 0..<3 {
            #expect(m.record(version: "v1", prediction: .label("yes"), id: "p\(i)", receivedAt: now + Double(i)) == nil)
        }
        var changed = m.context.configuration
        changed.maxPending = 2
        changed.joinTTL = .seconds(600)
        h.monitor.apply(try h.monitor.prepare(ExporterConfiguration(models: [changed], source: "t")))
        let after = h.model("m")
        #expect(after.joiner === m.joiner)
        #expect(after.joiner?.store.capacity == 2 && after.joiner?.store.timeToLive == 600)
        #expect(h.value(#"mlops_labels_pending{model="m"}"#) == 2)
        #expect(h.value(#"mlops_predictions_evicted_total{model="m",reason="reload"}"#) == 0)
        #expect(h.value(#"mlops_predictions_evicted_total{model="m",reason="capacity"}"#) == 1)
        #expect(after.record(label: LabelEvent(id: "p2", label: .label("yes")), receivedAt: now + 5) == nil)
        #expect(after.record(label: LabelEvent(id: "p1", label: .label("no")), receivedAt: now + 5) == nil)
        #expect(h.value(#"mlops_labels_joined_total{model="m",source="endpoint"}"#) == 2)
        // A larger capacity later: the store grows in place too.
        changed.maxPending = 1000
        h.monitor.apply(try h.monitor.prepare(ExporterConfiguration(models: [changed], source: "t")))
        #expect(h.model("m").joiner?.store.capacity == 1000)
    }
}
