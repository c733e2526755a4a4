import Exposition
import Ingestion

/// Why a whole ingestion request was refused before its events could be counted one by one.
public enum RequestRejectReason: String, Sendable, CaseIterable {
    /// A JSON body that is not valid JSON (or not an array).
    case invalidJSON = "invalid_json"
    /// More events than one request may carry.
    case tooManyEvents = "too_many_events"
    /// The body, after gzip decompression, is larger than allowed.
    case bodyTooLarge = "body_too_large"
    /// A `Content-Type` that is neither JSON nor NDJSON.
    case unsupportedMediaType = "unsupported_media_type"
    /// A `Content-Encoding` other than gzip or identity.
    case unsupportedEncoding = "unsupported_encoding"
    /// A gzip body that does not decompress.
    case invalidGzip = "invalid_gzip"
    /// A missing or wrong bearer token.
    case unauthorized
    /// The model in the URL is not configured (counted under `model="__unknown__"`).
    case unknownModel = "unknown_model"
    /// The workers that inflate and decode bodies off the event loops were all busy, their queue full (503).
    case overloaded
    /// Labels for a model none of whose collectors uses them: no quality or fairness collector to join them to their
    /// predictions (409). Accepted before, and dropped without a count.
    case labelsNotUsed = "labels_not_used"

    /// The reasons of the first slot layout, before `unknown_features`; those added since come after it, so that
    /// a checkpoint of an older layout restores as a prefix.
    static let firstLayout: [RequestRejectReason] = [
        .invalidJSON, .tooManyEvents, .bodyTooLarge, .unsupportedMediaType, .unsupportedEncoding, .invalidGzip,
        .unauthorized, .unknownModel, .overloaded,
    ]
}

/// The accounting of one model's ingestion, so that every event sent is either counted as accepted or
/// counted as rejected with a reason:
/// - `mlops_ingest_events_total{model,kind}`: events accepted (`kind` `predictions` or `labels`);
/// - `mlops_ingest_rejected_total{model,reason}`: events rejected one by one (reasons: ``RejectReason``);
/// - `mlops_ingest_rejected_requests_total{model,reason}`: whole requests refused (``RequestRejectReason``);
/// - `mlops_ingest_unknown_features_total{model}`: feature keys that are not in the schema (ignored);
/// - `mlops_ingest_unknown_keys_total{model}`: keys of accepted events that are no event field (ignored);
/// - `mlops_ingest_labels_not_used_total{model}`: labels of a model that does not use labels, inline in accepted
///   predictions or recorded in process (ignored; the HTTP API refuses such labels posted alone);
/// - `mlops_ingest_ignored_timestamps_total{model,reason}`: accepted predictions whose `timestamp` was ignored as
///   implausible (`future`, `past`: ``EventTimestamp/isPlausible(_:receivedAt:)``).
///
/// Kept across configuration reloads while the model keeps its name, so counters do not reset.
public final class IngestCounters: Sendable {
    static let kinds = EventKind.allCases.map(\.name)  // in raw-value order
    static let eventReasons = RejectReason.allCases
    static let requestReasons = RequestRejectReason.allCases

    struct Families {
        let schema: CollectorSchema
        let events: CounterHandle
        let rejected: CounterHandle
        let rejectedRequests: CounterHandle
        let unknownFeatures: CounterHandle
        let unknownKeys: CounterHandle
        let labelsNotUsed: CounterHandle
        let ignoredTimestamps: CounterHandle

        init() {
            var s = CollectorSchema()
            events = try! s.counter(
                "mlops_ingest_events_total",
                help: "Events accepted through the ingestion API or record(), by model and kind (predictions, labels).",
                labels: ["model", "kind"])
            rejected = try! s.counter(
                "mlops_ingest_rejected_total",
                help: "Events rejected one by one (the rest of their batch was accepted), by model and reason.",
                labels: ["model", "reason"])
            rejectedRequests = try! s.counter(
                "mlops_ingest_rejected_requests_total",
                help: "Ingestion requests refused as a whole (none of their events recorded), by model and reason.",
                labels: ["model", "reason"])
            unknownFeatures = try! s.counter(
                "mlops_ingest_unknown_features_total",
                help: "Feature keys in accepted events that the model does not declare (ignored).",
                labels: ["model"])
            unknownKeys = try! s.counter(
                "mlops_ingest_unknown_keys_total",
                help:
                    "Keys of accepted events that are no event field, such as a misspelt one, or no attribute of the model (ignored).",
                labels: ["model"])
            labelsNotUsed = try! s.counter(
                "mlops_ingest_labels_not_used_total",
                help:
                    "Labels of a model with no quality or fairness collector, inline in accepted predictions or recorded in process (ignored).",
                labels: ["model"])
            ignoredTimestamps = try! s.counter(
                "mlops_ingest_ignored_timestamps_total",
                help:
                    "Accepted predictions whose timestamp was ignored (their join delay measured from their arrival): more than a day after it (future) or ten years before it (past).",
                labels: ["model", "reason"])
            schema = s
        }
    }

    static let families = Families()
    /// The ingestion families.
    static var schema: CollectorSchema { families.schema }

    /// The model label value.
    public let model: String
    let slots: AtomicSlots
    /// Label sets, rendered once, by slot: kinds, event reasons, the first layout's request reasons, `{model}`, then
    /// the slots added since, in the order they were added (``added``: the saved layout only grows at its end).
    let labels: [LabelSet]
    private static let eventBase = 0
    private static let rejectedBase = kinds.count
    private static let requestBase = rejectedBase + eventReasons.count
    private static let unknownFeaturesSlot = requestBase + RequestRejectReason.firstLayout.count

    /// A slot added after the first layout.
    enum Added: Equatable {
        case request(RequestRejectReason)
        case unknownKeys
        case inlineLabelsNotUsed
        case ignoredTimestamp(future: Bool)
    }

    /// The slots added after the first layout, oldest first: append, never reorder (checkpoints hold them by place).
    static let added: [Added] = [
        .request(.labelsNotUsed), .unknownKeys, .inlineLabelsNotUsed, .ignoredTimestamp(future: true),
        .ignoredTimestamp(future: false),
    ]
    private static func addedSlot(_ slot: Added) -> Int { unknownFeaturesSlot + 1 + added.firstIndex(of: slot)! }
    private static let unknownKeysSlot = addedSlot(.unknownKeys)
    private static let inlineLabelsNotUsedSlot = addedSlot(.inlineLabelsNotUsed)
    private static let futureTimestampSlot = addedSlot(.ignoredTimestamp(future: true))
    private static let pastTimestampSlot = addedSlot(.ignoredTimestamp(future: false))
    /// The slot of each request reason, in `requestReasons` order.
    private static let requestSlots: [Int] = requestReasons.map { reason in
        RequestRejectReason.firstLayout.firstIndex(of: reason).map { requestBase + $0 } ?? addedSlot(.request(reason))
    }

    /// Zeroed counters for `model`.
    public init(model: String) {
        self.model = model
        let f = Self.families
        // In slot order, so that each label set sits at its counter's slot.
        labels =
            Self.kinds.map { try! f.events.labels(model, $0) }
            + Self.eventReasons.map { try! f.rejected.labels(model, $0.rawValue) }
            + RequestRejectReason.firstLayout.map { try! f.rejectedRequests.labels(model, $0.rawValue) }
            + [try! f.unknownFeatures.labels(model)]
            + Self.added.map { slot in
                switch slot {
                case .request(let reason): try! f.rejectedRequests.labels(model, reason.rawValue)
                case .unknownKeys: try! f.unknownKeys.labels(model)
                case .inlineLabelsNotUsed: try! f.labelsNotUsed.labels(model)
                case .ignoredTimestamp(let future): try! f.ignoredTimestamps.labels(model, future ? "future" : "past")
                }
            }
        slots = AtomicSlots(count: labels.count)
    }

    /// Counts `count` accepted events of `kind`.
    @inline(__always)
    public func accepted(_ kind: EventKind, _ count: Int = 1) {
        if count > 0 { slots.add(Self.eventBase + kind.rawValue, UInt64(count)) }
    }

    /// Counts `count` events rejected for `reason`.
    public func rejected(_ reason: RejectReason, _ count: Int = 1) {
        let index = Self.eventReasons.firstIndex(of: reason)!
        slots.add(Self.rejectedBase + index, UInt64(count))
    }

    /// Counts one request refused for `reason`.
    public func rejectedRequest(_ reason: RequestRejectReason) {
        slots.add(Self.requestSlots[Self.requestReasons.firstIndex(of: reason)!])
    }

    /// Counts feature keys not in the schema.
    public func unknownFeatures(_ count: Int) {
        if count > 0 { slots.add(Self.unknownFeaturesSlot, UInt64(count)) }
    }

    /// Counts one label the model does not use (inline in an accepted prediction, or recorded in process).
    @inline(__always)
    public func inlineLabelNotUsed() { slots.add(Self.inlineLabelsNotUsedSlot) }

    /// Counts an accepted prediction whose timestamp is ignored: after its arrival (`future`) or before it.
    public func ignoredTimestamp(future: Bool) {
        slots.add(future ? Self.futureTimestampSlot : Self.pastTimestampSlot)
    }

    /// Counts keys of accepted events that are no event field.
    public func unknownKeys(_ count: Int) {
        if count > 0 { slots.add(Self.unknownKeysSlot, UInt64(count)) }
    }

    /// The events rejected one by one for each reason so far (reasons never met left out).
    public var rejectedByReason: [String: UInt64] {
        var out: [String: UInt64] = [:]
        for (i, reason) in Self.eventReasons.enumerated() {
            let n = slots.load(Self.rejectedBase + i)
            if n > 0 { out[reason.rawValue] = n }
        }
        return out
    }

    /// The accepted events of `kind` so far.
    public func acceptedCount(_ kind: EventKind) -> UInt64 { slots.load(Self.eventBase + kind.rawValue) }

    /// Emits the counters (`unknown_model` is emitted by ``ModelMonitor``, under `model="__unknown__"`).
    func collect(into sink: inout CollectorSink) {
        let f = Self.families
        for i in 0..<Self.kinds.count {
            sink.counter(f.events, labels[Self.eventBase + i], value: Double(slots.load(Self.eventBase + i)))
        }
        for i in 0..<Self.eventReasons.count {
            sink.counter(f.rejected, labels[Self.rejectedBase + i], value: Double(slots.load(Self.rejectedBase + i)))
        }
        for (i, reason) in Self.requestReasons.enumerated() where reason != .unknownModel {
            let slot = Self.requestSlots[i]
            sink.counter(f.rejectedRequests, labels[slot], value: Double(slots.load(slot)))
        }
        sink.counter(
            f.unknownFeatures, labels[Self.unknownFeaturesSlot], value: Double(slots.load(Self.unknownFeaturesSlot)))
        sink.counter(f.unknownKeys, labels[Self.unknownKeysSlot], value: Double(slots.load(Self.unknownKeysSlot)))
        sink.counter(
            f.labelsNotUsed, labels[Self.inlineLabelsNotUsedSlot],
            value: Double(slots.load(Self.inlineLabelsNotUsedSlot)))
        sink.counter(
            f.ignoredTimestamps, labels[Self.futureTimestampSlot], value: Double(slots.load(Self.futureTimestampSlot)))
        sink.counter(
            f.ignoredTimestamps, labels[Self.pastTimestampSlot], value: Double(slots.load(Self.pastTimestampSlot)))
    }
}

/// What an ingestion request carries.
public enum EventKind: Int, Sendable, CaseIterable {
    /// Prediction events.
    case predictions = 0
    /// Delayed label events.
    case labels = 1

    /// The `kind` label value and URL segment.
    public var name: String { self == .predictions ? "predictions" : "labels" }
}
