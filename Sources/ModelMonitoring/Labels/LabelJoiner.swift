import Exposition
import Ingestion

/// Joins delayed labels to their predictions for one model, in bounded memory, and counts everything:
/// predictions with an `id` wait in a ``PendingStore`` (`max_pending`, `join_ttl`); a label with a pending
/// `id` (from the labels endpoint) becomes a ``JoinedOutcome``, and so does a prediction that carries an
/// inline `label` (at once, delay 0). A label whose `id` is unknown or expired is counted as unmatched and
/// dropped: labels that arrive before their prediction are not held.
///
/// Exists only for models with a collector that ``ModelCollector/needsOutcomes``.
public final class LabelJoiner: Sendable {
    /// Join delay histogram bounds: 1 s to 30 days.
    static let delayBounds: [Double] = [1, 10, 60, 300, 900, 3600, 21_600, 86_400, 259_200, 604_800, 2_592_000]

    struct Families {
        let schema: CollectorSchema
        let joined: CounterHandle
        let unmatched: CounterHandle
        let expired: CounterHandle
        let evicted: CounterHandle
        let duplicates: CounterHandle
        let pending: GaugeHandle
        let delay: HistogramHandle
        let delayBounds: HistogramBounds

        init() {
            var s = CollectorSchema()
            joined = try! s.counter(
                "mlops_labels_joined_total",
                help:
                    "Labels joined to their prediction, by source (endpoint: the labels API; inline: in the prediction).",
                labels: ["model", "source"])
            unmatched = try! s.counter(
                "mlops_labels_unmatched_total",
                help: "Labels whose id matched no pending prediction (unknown, already joined, or expired).",
                labels: ["model"])
            expired = try! s.counter(
                "mlops_predictions_expired_total", help: "Predictions whose label did not arrive within join_ttl.",
                labels: ["model"])
            evicted = try! s.counter(
                "mlops_predictions_evicted_total",
                help:
                    "Pending predictions dropped before their label or TTL, by reason (capacity: max_pending reached; reload: the model's configuration changed).",
                labels: ["model", "reason"])
            duplicates = try! s.counter(
                "mlops_predictions_duplicate_id_total",
                help: "Predictions whose id was already pending (the newer one replaces it).", labels: ["model"])
            pending = try! s.gauge(
                "mlops_labels_pending", help: "Predictions waiting for their label.", labels: ["model"])
            delay = try! s.histogram(
                "mlops_labels_join_delay_seconds", help: "Time from a prediction to its label's arrival.",
                unit: "seconds", labels: ["model"])
            delayBounds = try! HistogramBounds(LabelJoiner.delayBounds)
            schema = s
        }
    }

    static let families = Families()
    /// The join families.
    static var schema: CollectorSchema { families.schema }

    /// Label sets, rendered once: `{model}`, `{model,source}` × 2, `{model,reason}` × 2.
    let modelLabels: LabelSet
    let sourceLabels: (endpoint: LabelSet, inline: LabelSet)
    let reasonLabels: (capacity: LabelSet, reload: LabelSet)

    /// The model.
    public let context: ModelContext
    /// The pending predictions.
    public let store: PendingStore<PredictionSnapshot>
    /// Counts kept across configuration reloads.
    public let counters: JoinCounters

    init(context: ModelContext, counters: JoinCounters) {
        self.context = context
        self.counters = counters
        let f = Self.families
        modelLabels = try! f.pending.labels(context.name)
        sourceLabels = (try! f.joined.labels(context.name, "endpoint"), try! f.joined.labels(context.name, "inline"))
        reasonLabels = (
            try! f.evicted.labels(context.name, "capacity"), try! f.evicted.labels(context.name, "reload")
        )
        store = PendingStore(
            capacity: context.configuration.maxPending,
            timeToLive: Double(context.configuration.joinTTL.components.seconds))
    }

    /// Handles an accepted prediction: an inline label gives an outcome now; otherwise a prediction with an
    /// `id` waits for its label.
    @inline(__always)
    func predicted(_ event: PredictionEvent, receivedAt: Double) -> JoinedOutcome? {
        if let label = event.label {
            counters.joinedInline.add(0)
            counters.observeDelay(0)
            return outcome(
                PredictionSnapshot(event, context: context, receivedAt: receivedAt), label, event.labelClass, 0)
        }
        guard let id = event.id else { return nil }
        store.insert(
            key: PendingStore<PredictionSnapshot>.key(id), time: receivedAt,
            PredictionSnapshot(event, context: context, receivedAt: receivedAt), now: receivedAt)
        return nil
    }

    /// Handles an accepted label: the outcome when its prediction is pending, else nil (counted unmatched).
    @inline(__always)
    func labelled(_ label: LabelEvent, receivedAt: Double) -> JoinedOutcome? {
        guard let (snapshot, time) = store.take(key: PendingStore<PredictionSnapshot>.key(label.id), now: receivedAt)
        else {
            counters.unmatched.add(0)
            return nil
        }
        let delay = Swift.max(0, receivedAt - time)
        counters.joinedEndpoint.add(0)
        counters.observeDelay(delay)
        return outcome(snapshot, label.label, label.labelClass, delay)
    }

    func outcome(_ snapshot: PredictionSnapshot, _ label: Outcome, _ labelClass: Int?, _ delay: Double) -> JoinedOutcome
    {
        switch label {
        case .number(let y):
            return JoinedOutcome(
                prediction: snapshot, label: label, actualClass: -1, actualValue: y, delaySeconds: delay)
        case .label:
            return JoinedOutcome(
                prediction: snapshot, label: label, actualClass: context.classIndex(labelClass), actualValue: .nan,
                delaySeconds: delay)
        }
    }

    /// Emits the join counters (expiring old entries first, so that the counts are current).
    func collect(into sink: inout CollectorSink, now: Double) {
        store.expire(now: now)
        let (pending, expired, evicted, duplicates) = store.counts
        let f = Self.families
        sink.counter(f.joined, sourceLabels.endpoint, value: Double(counters.joinedEndpoint.load(0)))
        sink.counter(f.joined, sourceLabels.inline, value: Double(counters.joinedInline.load(0)))
        sink.counter(f.unmatched, modelLabels, value: Double(counters.unmatched.load(0)))
        sink.counter(f.expired, modelLabels, value: Double(counters.carried.load(0) + expired))
        sink.counter(f.evicted, reasonLabels.capacity, value: Double(counters.carried.load(1) + evicted))
        sink.counter(f.evicted, reasonLabels.reload, value: Double(counters.carried.load(3)))
        sink.counter(f.duplicates, modelLabels, value: Double(counters.carried.load(2) + duplicates))
        sink.gauge(f.pending, modelLabels, value: Double(pending))
        sink.histogram(
            f.delay, modelLabels, bounds: f.delayBounds,
            counts: counters.delays.loadRange(0, Self.delayBounds.count + 1), sum: counters.delaySum.loadDouble(0))
    }

    /// Folds a replaced joiner's counts into these counters (its pending predictions count as evicted on
    /// reload).
    func inherit(from old: LabelJoiner) {
        let (pending, expired, evicted, duplicates) = old.store.counts
        counters.carried.add(0, expired)
        counters.carried.add(1, evicted)
        counters.carried.add(2, duplicates)
        counters.carried.add(3, UInt64(pending))
    }
}

/// A model's label-join counts that outlive a configuration reload.
public final class JoinCounters: Sendable {
    let joinedEndpoint = AtomicSlots(count: 1)
    let joinedInline = AtomicSlots(count: 1)
    let unmatched = AtomicSlots(count: 1)
    /// Expired, evicted (capacity) and duplicate counts of replaced stores, then predictions evicted by reloads.
    let carried = AtomicSlots(count: 4)
    let delays = AtomicSlots(count: LabelJoiner.delayBounds.count + 1)
    let delaySum = AtomicSlots(count: 1)

    /// Zeroed counters.
    public init() {}

    @inline(__always)
    func observeDelay(_ seconds: Double) {
        delays.add(LabelJoiner.delayBounds.withUnsafeBufferPointer { Buckets.index(of: seconds, in: $0) })
        delaySum.addDouble(0, seconds)
    }

    /// Joined labels so far (both sources).
    public var joined: UInt64 { joinedEndpoint.load(0) + joinedInline.load(0) }
}
