import Exposition
import Ingestion
import Synchronization

/// The built-in `service` collector: a model's golden signals per version, from the same events that feed
/// its ML signals.
///
/// Families (label values only from configured sets or `__other__`):
/// - `mlops_model_requests_total{model,version,status}`: predictions served, `status` `ok` or `error`.
/// - `mlops_model_errors_total{model,version,kind}`: failed predictions by `error_kind` (the kinds listed in
///   the `error_kinds` option, plus up to `max_error_kinds` (default 10) more learned from traffic, then
///   `__other__`; `unspecified` when an error has no kind).
/// - `mlops_model_latency_seconds{model,version}`: histogram of `latency_seconds` in the model's
///   `latency_buckets`.
/// - regression: `mlops_model_prediction_value{model,version}` histogram (option `prediction_buckets`);
///   classification: `mlops_model_predicted_class_total{model,version,class}`.
/// - `mlops_model_last_event_timestamp_seconds{model,version}`: Unix time the last prediction was received
///   (absent until one was).
/// - `mlops_model_info{model,version,task,reference_sha256} 1` for every configured version.
///
/// Recording is lock-free (atomic slots at pre-computed positions; error kinds through ``LearnedNames``), except
/// for an error whose kind is new, which takes a lock once to learn it.
public final class ServiceCollector: ModelCollector {
    /// `service`.
    public static let name = "service"

    /// Default `prediction_buckets` for regression: a symmetric decade scale. Configure your own for useful
    /// resolution.
    public static let defaultPredictionBuckets: [Double] = [
        -1000, -100, -10, -1, -0.1, 0, 0.1, 1, 10, 100, 1000,
    ]
    static let unspecifiedErrorKind = "unspecified"

    /// The seven families listed above, and their handles.
    struct Families {
        let schema: CollectorSchema
        let requests: CounterHandle
        let errors: CounterHandle
        let latency: HistogramHandle
        let prediction: HistogramHandle
        let predictedClass: CounterHandle
        let lastEvent: GaugeHandle
        let info: InfoHandle

        init() {
            var s = CollectorSchema()
            requests = try! s.counter(
                "mlops_model_requests_total", help: "Predictions served, by model, version and status (ok, error).",
                labels: ["model", "version", "status"])
            errors = try! s.counter(
                "mlops_model_errors_total", help: "Failed predictions, by model, version and error kind.",
                labels: ["model", "version", "kind"])
            latency = try! s.histogram(
                "mlops_model_latency_seconds",
                help:
                    "Prediction latency: as the sender reports it (latency_seconds), or as the proxy measures it (request arrival to the upstream response's end), once per request.",
                unit: "seconds", labels: ["model", "version"])
            prediction = try! s.histogram(
                "mlops_model_prediction_value", help: "Predicted values of regression models.",
                labels: ["model", "version"])
            predictedClass = try! s.counter(
                "mlops_model_predicted_class_total", help: "Predictions of classification models, by predicted class.",
                labels: ["model", "version", "class"])
            lastEvent = try! s.gauge(
                "mlops_model_last_event_timestamp_seconds",
                help: "Unix time the last prediction of this model and version was received.", unit: "seconds",
                labels: ["model", "version"])
            info = try! s.info(
                "mlops_model_info",
                help: "Configured model versions, with the task and the SHA-256 of the reference profile.",
                labels: ["model", "version", "task", "reference_sha256"])
            schema = s
        }
    }

    static let families = Families()
    /// The seven families listed above.
    public static var schema: CollectorSchema { families.schema }

    /// Label sets of one version, rendered once.
    struct VersionLabels {
        let version: LabelSet
        let ok: LabelSet
        let error: LabelSet
        let otherKind: LabelSet
        let classes: [LabelSet]
        let info: LabelSet
    }

    let model: ModelContext
    let versions: Int
    let latency: BucketLayout
    let prediction: BucketLayout?
    let classes: Int
    let errorKindLimit: Int
    /// Known error kinds (configured first, then learned) and their slots; slot `errorKindLimit` is `__other__`.
    let errorKinds: LearnedNames
    /// Per version, rendered once.
    let labels: [VersionLabels]
    /// Per version, the label sets of the error kinds known so far (grown as kinds are learned).
    let kindLabels: Mutex<[[LabelSet]]>

    // Slot layout: one block per version.
    let requests: AtomicSlots  // [version][status: 0 ok, 1 error]
    let errors: AtomicSlots  // [version][kind slot]
    let latencyCounts: AtomicSlots  // [version][bucket]
    let latencySums: AtomicSlots  // [version] Double
    let predictionCounts: AtomicSlots  // regression: [version][bucket]; classification: [version][class]
    let predictionSums: AtomicSlots  // regression: [version] Double
    /// Regression, per version: 1 once a prediction below zero came (OpenMetrics then leaves the histogram's `_sum`
    /// and `_count` out for good). Not saved: a restore sets it from a negative sum.
    let predictionNegative: AtomicSlots
    let lastEvent: AtomicSlots  // [version] Double

    /// Options: `prediction_buckets` (regression), `error_kinds`, `max_error_kinds`.
    public init(model: ModelContext, options: CollectorOptions) throws(ModelCollectorError) {
        try options.checkAllowed(["prediction_buckets", "error_kinds", "max_error_kinds"])
        self.model = model
        versions = model.versionLabels.count
        do {
            latency = try BucketLayout(model.configuration.latencyBuckets, metric: "mlops_model_latency_seconds")
        } catch {
            throw options.error(nil, "latency_buckets: \(error)")
        }
        if model.configuration.task == .regression {
            do {
                prediction = try BucketLayout(
                    try options.numbers("prediction_buckets") ?? Self.defaultPredictionBuckets,
                    metric: "mlops_model_prediction_value")
            } catch let error as ModelCollectorError {
                throw error
            } catch {
                throw options.error("prediction_buckets", "\(error)")
            }
            classes = 0
        } else {
            if options.values["prediction_buckets"] != nil {
                throw options.error("prediction_buckets", "only regression models have prediction buckets")
            }
            prediction = nil
            classes = model.classLabels.count
        }
        let configured = try options.strings("error_kinds") ?? []
        if configured.contains(ModelContext.other) {
            throw options.error("error_kinds", "\"\(ModelContext.other)\" is reserved for kinds outside the list")
        }
        if configured.contains("") { throw options.error("error_kinds", "an error kind must not be empty") }
        let learned = try options.integer("max_error_kinds", in: 0...1000) ?? 10
        let initial = configured + [Self.unspecifiedErrorKind]
        errorKindLimit = Set(initial.map { Array($0.utf8) }).count + learned  // distinct by bytes, as LearnedNames
        errorKinds = LearnedNames(initial, capacity: errorKindLimit)
        requests = AtomicSlots(count: versions * 2)
        errors = AtomicSlots(count: versions * (errorKindLimit + 1))
        latencyCounts = AtomicSlots(count: versions * latency.bucketCount)
        latencySums = AtomicSlots(count: versions)
        predictionCounts = AtomicSlots(count: versions * (prediction?.bucketCount ?? classes))
        predictionSums = AtomicSlots(count: versions)
        predictionNegative = AtomicSlots(count: versions)
        lastEvent = AtomicSlots(count: versions)
        let f = Self.families
        labels = model.versionLabels.map { version in
            VersionLabels(
                version: try! f.lastEvent.labels(model.name, version),
                ok: try! f.requests.labels(model.name, version, "ok"),
                error: try! f.requests.labels(model.name, version, "error"),
                otherKind: try! f.errors.labels(model.name, version, ModelContext.other),
                classes: model.classLabels.map { try! f.predictedClass.labels(model.name, version, $0) },
                info: try! f.info.labels(
                    model.name, version, model.configuration.task.rawValue, model.referenceSHA256))
        }
        kindLabels = Mutex(Array(repeating: [], count: model.versionLabels.count))
    }

    /// Per version: requests (2), error kinds (+ `__other__`), latency, prediction, last event; plus info.
    public var maxSeries: Int {
        // requests (2) + errors (kinds + __other__) + latency + prediction + last event, per version; info per
        // configured version.
        let predictionSeries = prediction == nil ? classes : 1
        return versions * (2 + errorKindLimit + 1 + 1 + predictionSeries + 1) + (versions - 1)
    }

    /// Counts the request, its error kind, latency and prediction, lock-free except for error kinds.
    public func record(prediction event: PredictionEvent, receivedAt: Double) {
        let v = model.versionIndex(event.version)
        recordServed(v, status: event.status, errorKind: event.errorKind, latencySeconds: event.latencySeconds)
        if let layout = prediction {
            if case .number(let value) = event.prediction {
                predictionCounts.add(v &* layout.bucketCount &+ layout.index(value))
                predictionSums.addDouble(v, value)
                // Stored once: a store per negative prediction would take the line from the other cores each time.
                if value < 0 && predictionNegative.load(v) == 0 { predictionNegative.store(v, 1) }
            }
        } else if classes > 0 {
            predictionCounts.add(v &* classes &+ model.classIndex(event.predictionClass))
        }
        lastEvent.storeLatest(v, receivedAt, steppedBack: WallClock.stepBackTolerance)
    }

    /// Counts a request without a prediction (``MonitoredModel/recordRequest(version:status:errorKind:latencySeconds:receivedAt:)``):
    /// its status, error kind and latency, lock-free except for a new error kind.
    func record(
        request version: String, status: PredictionStatus, errorKind: String?, latencySeconds: Double?,
        receivedAt: Double
    ) {
        let v = model.versionIndex(version)
        recordServed(v, status: status, errorKind: errorKind, latencySeconds: latencySeconds)
        lastEvent.storeLatest(v, receivedAt, steppedBack: WallClock.stepBackTolerance)
    }

    /// The request, its error kind and its latency, for version index `v`.
    @inline(__always)
    private func recordServed(_ v: Int, status: PredictionStatus, errorKind: String?, latencySeconds: Double?) {
        if status == .ok {
            requests.add(v &* 2)
        } else {
            requests.add(v &* 2 &+ 1)
            errors.add(v &* (errorKindLimit &+ 1) &+ errorKindSlot(errorKind ?? Self.unspecifiedErrorKind))
        }
        if let seconds = latencySeconds {
            latencyCounts.add(v &* latency.bucketCount &+ latency.index(seconds))
            latencySums.addDouble(v, seconds)
        }
    }

    /// The slot of an error kind: known, newly learned (while room is left, up to 128 bytes), or `__other__` (an empty
    /// one is `unspecified`). A kind
    /// sent as `__other__` is that slot, never learned: a learned one would be a second `kind="__other__"` series once
    /// the overflow is used (the collector's output then refused whole, every scrape).
    /// Lock-free unless the kind is new.
    @inline(__always)
    func errorKindSlot(_ kind: String) -> Int {
        // An empty kind says no more than none: `unspecified` (learned, it would be a `kind=""` series that label
        // matchers cannot tell from one without the label).
        if kind.isEmpty { return errorKinds.index(of: Self.unspecifiedErrorKind) ?? errorKindLimit }
        if kind.utf8.count > 128 { return errorKinds.index(of: kind) ?? errorKindLimit }  // too long to learn
        if kind.utf8.count == 9 && kind == ModelContext.other { return errorKindLimit }
        return errorKinds.slot(of: kind) ?? errorKindLimit
    }

    /// Emits every version's series (error kinds seen so far; `__other__` only once used).
    public func collect(into sink: inout CollectorSink) {
        let f = Self.families
        let now = WallClock.now()
        let kinds = errorKinds.all
        let kindLabels = self.kindLabels.withLock { cached in
            for v in 0..<versions where cached[v].count < kinds.count {
                for kind in kinds[cached[v].count...] {
                    cached[v].append(try! f.errors.labels(model.name, model.versionLabels[v], kind))
                }
            }
            return cached
        }
        for v in 0..<versions {
            let l = labels[v]
            sink.counter(f.requests, l.ok, value: Double(requests.load(v * 2)))
            sink.counter(f.requests, l.error, value: Double(requests.load(v * 2 + 1)))
            let errorBase = v * (errorKindLimit + 1)
            for slot in 0..<kinds.count {
                sink.counter(f.errors, kindLabels[v][slot], value: Double(errors.load(errorBase + slot)))
            }
            let otherErrors = errors.load(errorBase + errorKindLimit)
            if otherErrors > 0 { sink.counter(f.errors, l.otherKind, value: Double(otherErrors)) }
            sink.histogram(
                f.latency, l.version, bounds: latency.histogram,
                counts: latencyCounts.loadRange(v * latency.bucketCount, latency.bucketCount),
                sum: latencySums.loadDouble(v))
            if let layout = prediction {
                sink.histogram(
                    f.prediction, l.version, bounds: layout.histogram,
                    counts: predictionCounts.loadRange(v * layout.bucketCount, layout.bucketCount),
                    sum: predictionSums.loadDouble(v), negativeObserved: predictionNegative.load(v) != 0)
            } else {
                for c in 0..<classes {
                    sink.counter(f.predictedClass, l.classes[c], value: Double(predictionCounts.load(v * classes + c)))
                }
            }
            var last = lastEvent.loadDouble(v)
            // After now by more than a step (the wall clock set back since): now, as at a restore, so that a staleness
            // alert (`time() - …`) counts from here rather than staying silent until the clock catches up.
            if last > now + WallClock.stepBackTolerance {
                lastEvent.store(v, now.bitPattern)
                last = now
            }
            if last > 0 { sink.gauge(f.lastEvent, l.version, value: last) }
            if v < versions - 1 { sink.info(f.info, l.info) }
        }
    }
}
