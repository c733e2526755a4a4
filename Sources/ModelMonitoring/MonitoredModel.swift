import ExporterConfig
import Exposition
import Ingestion
import Synchronization

/// One configured model at run time: its context, its collectors, and its ingestion accounting. Every
/// event of the model goes through here, from the HTTP ingestion API (``ingest(_:body:format:maxEvents:receivedAt:)``)
/// or from embedding code (``record(_:receivedAt:)``), with the same validation and the same counters.
///
/// Thread-safe: any number of threads may record at once.
public final class MonitoredModel: Sendable {
    /// The model as collectors see it.
    public let context: ModelContext
    /// The model's collectors, in configuration order.
    public let collectors: [any ModelCollector]
    /// Accepted and rejected counts.
    public let counters: IngestCounters
    /// Joins delayed labels to predictions, when a collector needs outcomes (quality, fairness).
    public let joiner: LabelJoiner?
    /// Whether labels change anything here: a collector joins them to predictions or reads them as received.
    public let usesLabels: Bool
    /// The collectors that receive joined outcomes.
    let outcomeCollectors: [any ModelCollector]
    /// The model's `service` collector, if configured: where request-only observations go.
    let service: ServiceCollector?
    /// What a scrape runs for this model, each part checked on its own: the ingestion counters (`ingest`),
    /// the label join (`labels`), then each collector.
    let parts: [CollectorPart]
    /// Decoder caches of finished requests, each handed to one request at a time (at most
    /// ``maximumPooledCaches`` are kept: about one per thread that ingests).
    let decoderCaches = Mutex<[DecoderCache]>([])
    static let maximumPooledCaches = 16

    /// A model of `collectors`; `sharedJoiner`: the label join (pending predictions and counters) of the model this
    /// one replaces, when its schema is the same (a reload that changed only collector options).
    init(
        context: ModelContext, collectors: [any ModelCollector], counters: IngestCounters, joinCounters: JoinCounters,
        instanceID: String? = nil, sharedJoiner: LabelJoiner? = nil
    ) {
        self.context = context
        self.collectors = collectors
        self.counters = counters
        outcomeCollectors = collectors.filter { type(of: $0).needsOutcomes }
        service = collectors.lazy.compactMap { $0 as? ServiceCollector }.first
        let joiner =
            outcomeCollectors.isEmpty
            ? nil : sharedJoiner ?? LabelJoiner(context: context, counters: joinCounters, instanceID: instanceID)
        self.joiner = joiner
        usesLabels = joiner != nil || collectors.contains { type(of: $0).usesLabels }
        var parts = [
            CollectorPart(collector: "ingest", model: context.name, schema: IngestCounters.schema) {
                counters.collect(into: &$0)
            }
        ]
        if let joiner {
            parts.append(
                CollectorPart(collector: "labels", model: context.name, schema: LabelJoiner.schema) {
                    joiner.collect(into: &$0, now: WallClock.now())
                })
        }
        for collector in collectors {
            parts.append(
                CollectorPart(
                    collector: type(of: collector).name, model: context.name, schema: type(of: collector).schema,
                    maxSeries: collector.maxSeries
                ) { collector.collect(into: &$0) })
        }
        self.parts = parts
    }

    /// The same model (its collectors, counters, label join and so its state, shared) under `configuration`, which
    /// differs from the current one only in what no collector reads (`capture`, the token, SLOs, `max_series`; `join_ttl`
    /// and `max_pending`, which ``ModelMonitor/apply(_:)`` hands to the shared pending store). Throws only if the schema cannot be
    /// built, which the current configuration's schema rules out.
    func reconfigured(_ configuration: ModelConfiguration) throws(SchemaError) -> MonitoredModel {
        MonitoredModel(
            context: try ModelContext(
                configuration: configuration, referenceSHA256: context.referenceSHA256, reference: context.reference),
            sharingStateOf: self)
    }

    private init(context: ModelContext, sharingStateOf model: MonitoredModel) {
        self.context = context
        collectors = model.collectors
        counters = model.counters
        joiner = model.joiner
        usesLabels = model.usesLabels
        outcomeCollectors = model.outcomeCollectors
        service = model.service
        parts = model.parts
    }

    /// Hands an accepted prediction to every collector, and to the label join.
    @inline(__always)
    func accept(_ event: PredictionEvent, receivedAt: Double) {
        if let t = event.timestamp, !EventTimestamp.isPlausible(t, receivedAt: receivedAt) {
            counters.ignoredTimestamp(future: t > receivedAt)
        }
        for collector in collectors { collector.record(prediction: event, receivedAt: receivedAt) }
        if let joiner {
            if let outcome = joiner.predicted(event, receivedAt: receivedAt) {
                for collector in outcomeCollectors { collector.record(outcome: outcome, receivedAt: receivedAt) }
            }
        } else if event.label != nil && !usesLabels {
            counters.inlineLabelNotUsed()  // nothing joins it here: counted, as labels posted alone are refused
        }
    }

    /// Hands an accepted label to every collector, and joins it to its prediction (else counts it in `unmatched`).
    @inline(__always)
    func accept(_ label: LabelEvent, receivedAt: Double, unmatched: inout UnmatchedLabels) {
        for collector in collectors { collector.record(label: label, receivedAt: receivedAt) }
        if let joiner, let outcome = joiner.labelled(label, receivedAt: receivedAt, unmatched: &unmatched) {
            for collector in outcomeCollectors { collector.record(outcome: outcome, receivedAt: receivedAt) }
        }
    }

    /// The model name.
    public var name: String { context.name }

    // MARK: Bodies (the HTTP ingestion API)

    /// Decodes a body of `kind` events, records the valid ones, counts everything, and returns the report.
    /// Throws (and counts the request as refused) when the body is rejected as a whole.
    public func ingest(
        _ kind: EventKind, body: UnsafeRawBufferPointer, format: BodyFormat, maxEvents: Int, receivedAt: Double
    ) throws(BodyError) -> DecodeReport {
        var unmatched = UnmatchedLabels()
        return try ingest(
            kind, body: body, format: format, maxEvents: maxEvents, receivedAt: receivedAt, unmatched: &unmatched)
    }

    /// ``ingest(_:body:format:maxEvents:receivedAt:)``, also adding to `unmatched` the labels (of a `.labels` body)
    /// that joined, and those that joined no prediction, by reason and instance. `defaultVersion`: the version of a
    /// prediction without one (the batch command's `--model-version`), else rejected `missing_version`.
    public func ingest(
        _ kind: EventKind, body: UnsafeRawBufferPointer, format: BodyFormat, maxEvents: Int, receivedAt: Double,
        defaultVersion: String? = nil, unmatched: inout UnmatchedLabels
    ) throws(BodyError) -> DecodeReport {
        var report: DecodeReport
        var notices = IngestNotices()
        let cache = decoderCaches.withLock { $0.popLast() } ?? DecoderCache()
        defer {
            decoderCaches.withLock { caches in
                if caches.count < Self.maximumPooledCaches { caches.append(cache) }
            }
        }
        do throws(BodyError) {
            switch kind {
            case .predictions:
                report = try decodePredictions(
                    body: body, format: format, schema: context.schema, maxEvents: maxEvents, cache: cache,
                    defaultVersion: defaultVersion
                ) { event, _ in
                    context.note(event, receivedAt: receivedAt, in: &notices)
                    accept(event, receivedAt: receivedAt)
                }
                counters.unknownFeatures(report.unknownFeatures)
            case .labels:
                report = try decodeLabels(
                    body: body, format: format, schema: context.schema, maxEvents: maxEvents, cache: cache
                ) { event, _ in
                    context.note(event, receivedAt: receivedAt, in: &notices)
                    accept(event, receivedAt: receivedAt, unmatched: &unmatched)
                }
            }
            report.notices = notices
            counters.unknownKeys(report.unknownKeys)
        } catch {
            counters.rejectedRequest(error.reason == .tooManyEvents ? .tooManyEvents : .invalidJSON)
            throw error
        }
        counters.accepted(kind, report.accepted)
        for (reason, count) in report.rejectedByReason {
            if let r = RejectReason(rawValue: reason) { counters.rejected(r, count) }
        }
        return report
    }

    // MARK: In-process recording (embedding)

    /// An empty prediction event shaped for this model's schema, to fill and pass to ``record(_:receivedAt:)``:
    /// set `features[i]` by the index from ``featureIndex(_:)`` and `attributes[i]` by ``attributeIndex(_:)``.
    public func makePrediction(version: String, prediction: Outcome) -> PredictionEvent {
        var event = PredictionEvent(schema: context.schema)
        event.version = version
        event.prediction = prediction
        return event
    }

    /// The position of feature `name` in ``PredictionEvent/features`` (resolve once, keep the index).
    public func featureIndex(_ name: String) -> Int? { context.schema.features.firstIndex { $0.name == name } }

    /// The position of attribute `name` in ``PredictionEvent/attributes``.
    public func attributeIndex(_ name: String) -> Int? { context.schema.attributeNames.firstIndex(of: name) }

    /// Records one prediction with the same rules as the ingestion API: returns `nil` when it was accepted,
    /// or the reason it was rejected (counted in `mlops_ingest_rejected_total`). Class indices are derived
    /// from the labels, so callers need not set `predictionClass` or `labelClass`.
    @discardableResult
    public func record(_ event: PredictionEvent, receivedAt: Double = WallClock.now()) -> RejectReason? {
        var event = event
        return record(&event, receivedAt: receivedAt)
    }

    /// ``record(_:receivedAt:)`` validating `event` where it stands, without copying it first (a copy retains each of
    /// its arrays and strings): for a caller that reuses or drops the event afterwards, such as a decoder's reused
    /// row event. Same rules, result and counts. Validation may normalise the event, accepted or not: its
    /// `predictionClass` and `labelClass` are set from its labels (as the collectors see them), and a number given for
    /// a categorical feature becomes the category it names (`3` → `"3"`, as the JSON decoder reads it); nothing else
    /// of it changes.
    @discardableResult
    public func record(_ event: inout PredictionEvent, receivedAt: Double = WallClock.now()) -> RejectReason? {
        if let reason = EventValidation.check(&event, schema: context.schema) {
            counters.rejected(reason)
            return reason
        }
        accept(event, receivedAt: receivedAt)
        counters.accepted(.predictions)
        counters.unknownFeatures(event.unknownFeatureCount)
        return nil
    }

    /// Records one prediction given by feature and attribute names (convenient, slower than filling a
    /// ``makePrediction(version:prediction:)`` event): as the ingestion API, unknown feature names are counted
    /// (`mlops_ingest_unknown_features_total`) and ignored, unknown attribute names counted
    /// (`mlops_ingest_unknown_keys_total`) and ignored.
    @discardableResult
    public func record(
        version: String, prediction: Outcome, features: [String: FeatureValue] = [:], score: Double? = nil,
        probabilities: [Double] = [], latencySeconds: Double? = nil, status: PredictionStatus = .ok,
        errorKind: String? = nil, attributes: [String: String] = [:], id: String? = nil, label: Outcome? = nil,
        timestamp: Double? = nil, receivedAt: Double = WallClock.now()
    ) -> RejectReason? {
        var event = makePrediction(version: version, prediction: prediction)
        for (name, value) in features {
            if let i = featureIndex(name) { event.features[i] = value } else { event.unknownFeatureCount += 1 }
        }
        var unknownAttributes = 0
        for (name, value) in attributes {
            if let i = attributeIndex(name) { event.attributes[i] = value } else { unknownAttributes += 1 }
        }
        event.score = score
        event.probabilities = probabilities
        event.latencySeconds = latencySeconds
        event.status = status
        event.errorKind = errorKind
        event.id = id
        event.label = label
        event.timestamp = timestamp
        let reason = record(event, receivedAt: receivedAt)
        if reason == nil { counters.unknownKeys(unknownAttributes) }
        return reason
    }

    /// Records a served request whose prediction is not known (a proxied request that failed, or whose body was not
    /// decoded): only the `service` collector's request, error and latency series count it; drift, quality and
    /// fairness see nothing. A version the model does not declare counts under `__other__`, like a prediction's.
    /// `nil` when recorded; a latency that is negative, not finite or beyond ±1e140 refuses the request as the
    /// ingestion API refuses such an event: `invalid_number`, counted in `mlops_ingest_rejected_total`, nothing
    /// recorded (the request was counted and its latency dropped, without a word).
    @discardableResult
    public func recordRequest(
        version: String, status: PredictionStatus, errorKind: String? = nil, latencySeconds: Double?,
        receivedAt: Double = WallClock.now()
    ) -> RejectReason? {
        if let latency = latencySeconds, !(latency >= 0 && SummedValueLimit.accepts(latency)) {
            counters.rejected(.invalidNumber)
            return .invalidNumber
        }
        service?.record(
            request: version, status: status, errorKind: errorKind, latencySeconds: latencySeconds,
            receivedAt: receivedAt)
        return nil
    }

    /// Records one delayed label with the ingestion API's rules; `nil` when accepted, else the reason. For a model
    /// that does not use labels (``usesLabels``) a valid label is counted in `mlops_ingest_labels_not_used_total`
    /// instead of as accepted (it was counted accepted and changed nothing), and `nil` is returned.
    @discardableResult
    public func record(label: LabelEvent, receivedAt: Double = WallClock.now()) -> RejectReason? {
        var label = label
        if let reason = EventValidation.check(&label, schema: context.schema) {
            counters.rejected(reason)
            return reason
        }
        guard usesLabels else {
            // Nothing here reads it (the HTTP API refuses such labels with 409): counted, not accepted.
            counters.inlineLabelNotUsed()
            return nil
        }
        var unmatched = UnmatchedLabels()
        accept(label, receivedAt: receivedAt, unmatched: &unmatched)
        counters.accepted(.labels)
        return nil
    }
}
