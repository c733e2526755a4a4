import Exposition
import ModelMonitoring
import Synchronization

/// The KServe logger receiver's counts (`mlops_cloudevents_*`, docs/proxy.md): events received by kind, refused by
/// reason, halves waiting (count and bytes), orphans by kind and reason, duplicates, pairs and capture failures per
/// model. Every fixed reason is exported from the start.
final class CloudEventsMetrics: Collector {
    /// Why a request is refused (`mlops_cloudevents_rejected_total{reason}`; the raw value is the label).
    enum RejectReason: String, Sendable, CaseIterable {
        case invalidEvent = "invalid_event"
        case unknownType = "unknown_type"
        /// No model captures that InferenceService.
        case unknownService = "unknown_service"
        /// A large pair found no decoding worker.
        case overloaded
        /// A half larger than `cloudevents.max_pending_bytes` whose other half is not waiting: it could never wait.
        case tooLarge = "too_large"

        /// Its counter's slot: its position in `allCases`.
        var slot: Int {
            switch self {
            case .invalidEvent: 0
            case .unknownType: 1
            case .unknownService: 2
            case .overloaded: 3
            case .tooLarge: 4
            }
        }
    }

    struct Families {
        let schema: CollectorSchema
        let received: CounterHandle
        let rejected: CounterHandle
        let pending: GaugeHandle
        let pendingBytes: GaugeHandle
        let orphans: CounterHandle
        let duplicates: CounterHandle
        let paired: CounterHandle
        let failures: CounterHandle

        init() {
            var s = CollectorSchema()
            received = try! s.counter(
                "mlops_cloudevents_received_total", help: "KServe logger events accepted, by type (request, response).",
                labels: ["type"])
            rejected = try! s.counter(
                "mlops_cloudevents_rejected_total",
                help:
                    "Requests to the CloudEvents endpoint refused, by reason (invalid_event, unknown_type, unknown_service: no model captures that InferenceService, overloaded, too_large: a half larger than cloudevents.max_pending_bytes that would have to wait).",
                labels: ["reason"])
            pending = try! s.gauge(
                "mlops_cloudevents_pending", help: "Request or response events waiting for their other half.")
            pendingBytes = try! s.gauge(
                "mlops_cloudevents_pending_bytes",
                help:
                    "Bytes of the events waiting for their other half (bodies, and attributes with 96 bytes each for their storage).",
                unit: "bytes")
            orphans = try! s.counter(
                "mlops_cloudevents_orphans_total",
                help:
                    "Events dropped without their other half, by type and reason (expired: cloudevents.ttl passed; evicted: cloudevents.max_pending or max_pending_bytes reached; shutdown: waiting when the exporter stopped, said in its last log lines).",
                labels: ["type", "reason"])
            duplicates = try! s.counter(
                "mlops_cloudevents_duplicates_total",
                help: "Events whose half was already waiting under the same ce-id (the newer replaces it).")
            paired = try! s.counter(
                "mlops_cloudevents_paired_total", help: "Requests joined with their response and decoded, per model.",
                labels: ["model"])
            failures = try! s.counter(
                "mlops_cloudevents_capture_failures_total",
                help:
                    "Pairs whose request and response could not be decoded into predictions, per model and reason (invalid_json, invalid_value, shape_mismatch, row_count_mismatch, missing_field, unsupported, too_many_rows; invalid_encoding: a gzip half that does not inflate; too_large: one that inflates beyond --ingest.max-decompressed-bytes; not_inference: a request event without a body, a metadata or readiness call the logger logged).",
                labels: ["model", "reason"])
            schema = s
        }
    }

    static let families = Families()
    var schema: CollectorSchema { Self.families.schema }
    var name: String { "cloudevents" }

    let pairs: CloudEventPairs
    let received = AtomicSlots(count: 2)
    let rejected = AtomicSlots(count: RejectReason.allCases.count)
    /// Per model: pairs, then failures by reason (bounded by the models configured × the reasons: a model a reload
    /// removed is dropped at the next collection, its series with it; they were exported, and kept, for good).
    let perModel = Mutex<[String: (paired: UInt64, failures: [String: UInt64])]>([:])
    /// Whether a model is configured now.
    let isConfigured: @Sendable (String) -> Bool

    init(pairs: CloudEventPairs, isConfigured: @escaping @Sendable (String) -> Bool = { _ in true }) {
        self.pairs = pairs
        self.isConfigured = isConfigured
    }

    func refused(_ reason: RejectReason) { rejected.add(reason.slot) }

    func paired(model: String) { perModel.withLock { $0[model, default: (0, [:])].paired += 1 } }

    func failed(model: String, reason: String) {
        perModel.withLock { $0[model, default: (0, [:])].failures[reason, default: 0] += 1 }
    }

    func collect(into sink: inout CollectorSink) {
        let f = Self.families
        for kind in CloudEventPairs.Kind.allCases {
            sink.counter(f.received, [kind.name], value: Double(received.load(kind.rawValue)))
        }
        for reason in RejectReason.allCases {
            sink.counter(f.rejected, [reason.rawValue], value: Double(rejected.load(reason.slot)))
        }
        pairs.expire(now: WallClock.now())
        let counts = pairs.counts
        sink.gauge(f.pending, value: Double(counts.pending))
        sink.gauge(f.pendingBytes, value: Double(counts.bytes))
        for kind in CloudEventPairs.Kind.allCases {
            for reason in CloudEventPairs.OrphanReason.allCases {
                sink.counter(
                    f.orphans, [kind.name, reason.rawValue], value: Double(counts.orphans[kind.rawValue][reason.slot]))
            }
        }
        sink.counter(f.duplicates, value: Double(counts.duplicates))
        // Asked outside the lock (the monitor's lock is never taken under this one).
        let removed = perModel.withLock { Array($0.keys) }.filter { !isConfigured($0) }
        let current = perModel.withLock { table in
            for model in removed { table[model] = nil }
            return table
        }
        for (model, c) in current.sorted(by: { $0.key < $1.key }) {
            sink.counter(f.paired, [model], value: Double(c.paired))
            for (reason, n) in c.failures.sorted(by: { $0.key < $1.key }) {
                sink.counter(f.failures, [model, reason], value: Double(n))
            }
        }
    }
}
