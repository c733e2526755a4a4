import ExporterConfig
import Exposition
import Ingestion
import Synchronization

/// What one request to an LLM ended with, for ``LLMCollector/requestEnded(version:_:)`` (the proxy measures it;
/// docs/llm.md defines each figure).
public struct LLMRequestRecord: Sendable {
    /// How a request ended (the `outcome` label).
    public enum Outcome: Int, Sendable, CaseIterable {
        case ok, error, cancelled
    }

    /// Index in ``LLMCollector/endpoints``.
    public var endpoint: Int
    /// How it ended.
    public var outcome: Outcome
    /// Request arrival to the response's end (not for a cancelled request).
    public var durationSeconds: Double?
    /// The request's last byte to the first token (streamed, with content).
    public var timeToFirstTokenSeconds: Double?
    /// (duration from the request's last byte − TTFT) / (completion tokens − 1): streamed, ok, ≥ 2 tokens.
    public var timePerOutputTokenSeconds: Double?
    /// Prompt tokens (from `usage`).
    public var promptTokens: Int?
    /// Completion tokens (from `usage`, or estimated: ``completionEstimated``).
    public var completionTokens: Int?
    /// The completion tokens were counted from the stream's chunks (no `usage`).
    public var completionEstimated = false
    /// Cached prompt tokens (from `usage`).
    public var cachedTokens: Int?
    /// Counts by ``LLMCollector/finishReasons`` index (empty: none).
    public var finishReasons: [Int] = []
    /// The error's reason (an ``LLMCollector/errorReasons`` value or `http_<status>`), when the outcome is error.
    public var errorReason: String?
    /// SSE events that were not JSON.
    public var malformedEvents = 0

    /// A record with no measures yet.
    public init(endpoint: Int, outcome: Outcome) {
        self.endpoint = endpoint
        self.outcome = outcome
    }
}

/// The built-in `llm` collector (a `text_generation` model with an `llm` section gets it): what the proxy measures of
/// each request to an OpenAI-compatible server, per model and version (docs/llm.md has the definitions).
///
/// Families: `mlops_llm_requests_total{endpoint,outcome}`, `mlops_llm_requests_in_flight`,
/// `mlops_llm_request_duration_seconds`, `mlops_llm_time_to_first_token_seconds`,
/// `mlops_llm_inter_token_latency_seconds`, `mlops_llm_time_per_output_token_seconds`,
/// `mlops_llm_tokens_total{type,source}`, `mlops_llm_finish_reasons_total{reason}`,
/// `mlops_llm_errors_total{reason}`, `mlops_llm_requests_within_objective_total{objective}` (with objectives),
/// `mlops_llm_stream_malformed_events_total`. Recording is atomic adds at pre-computed positions; no lock.
public final class LLMCollector: ModelCollector {
    /// `llm`.
    public static let name = "llm"

    /// `endpoint` label values, in the order of the proxy's endpoint indices.
    public static let endpoints = ["chat_completions", "completions", "embeddings", "responses", "other"]
    /// `outcome` label values (``LLMRequestRecord/Outcome``).
    public static let outcomes = ["ok", "error", "cancelled"]
    /// `reason` label values of `mlops_llm_finish_reasons_total`.
    public static let finishReasons = [
        "stop", "length", "tool_calls", "content_filter", "function_call", "error", "other",
    ]
    /// `reason` label values of `mlops_llm_errors_total` besides `http_<status>` (400 to 599, and `http_other`).
    public static let errorReasons = [
        "stream_interrupted", "stream_error", "connect_refused", "connect_failed", "connect_timeout", "reset",
        "response_timeout", "read_timeout", "bad_response", "pool_full", "reclaimed",
    ]
    static let httpSlots = 201  // http_400 ... http_599, http_other
    static let errorSlots = errorReasons.count + httpSlots
    static let tokenSeries = 4  // prompt/usage, completion/usage, cached/usage, completion/estimated

    struct Families {
        let schema: CollectorSchema
        let requests: CounterHandle
        let inFlight: GaugeHandle
        let duration: HistogramHandle
        let ttft: HistogramHandle
        let itl: HistogramHandle
        let tpot: HistogramHandle
        let tokens: CounterHandle
        let finish: CounterHandle
        let errors: CounterHandle
        let within: CounterHandle
        let malformed: CounterHandle

        init() {
            var s = CollectorSchema()
            requests = s.counter(
                "mlops_llm_requests_total",
                "LLM requests through the proxy, by endpoint and outcome (ok, error, cancelled: the client left).",
                ["model", "version", "endpoint", "outcome"])
            inFlight = s.gauge(
                "mlops_llm_requests_in_flight", "LLM requests whose body was received and whose response has not ended."
            )
            duration = try! s.histogram(
                "mlops_llm_request_duration_seconds",
                help:
                    "LLM request duration: arrival at the proxy to the response's last byte (cancelled requests excluded).",
                unit: "seconds", labels: ["model", "version"])
            ttft = try! s.histogram(
                "mlops_llm_time_to_first_token_seconds",
                help:
                    "Time to first token: the request's last byte to the first content-bearing event (streamed responses).",
                unit: "seconds", labels: ["model", "version"])
            itl = try! s.histogram(
                "mlops_llm_inter_token_latency_seconds",
                help:
                    "Gaps between consecutive content-bearing events of a choice (n > 1: each choice's own; events read together: 0).",
                unit: "seconds", labels: ["model", "version"])
            tpot = try! s.histogram(
                "mlops_llm_time_per_output_token_seconds",
                help:
                    "Time per output token: (the request's last byte to the response's end, minus TTFT) / (completion tokens - 1).",
                unit: "seconds", labels: ["model", "version"])
            tokens = s.counter(
                "mlops_llm_tokens_total",
                "Tokens by type (prompt, completion, cached) and source (usage: the response said; estimated: counted from stream chunks).",
                ["model", "version", "type", "source"])
            finish = s.counter(
                "mlops_llm_finish_reasons_total", "Finished choices by finish_reason.", ["model", "version", "reason"])
            errors = s.counter(
                "mlops_llm_errors_total",
                "Failed LLM requests by reason: http_<status> from the upstream, stream_interrupted, stream_error, or the proxy's upstream failure.",
                ["model", "version", "reason"])
            within = s.counter(
                "mlops_llm_requests_within_objective_total",
                "Successful LLM requests meeting an objective (ttft, tpot, duration; all: every configured one; a request without the measure meets it). Goodput: objective=\"all\" over mlops_llm_requests_total{outcome!=\"cancelled\"}.",
                ["model", "version", "objective"])
            malformed = s.counter(
                "mlops_llm_stream_malformed_events_total",
                "Server-sent events whose data was neither JSON nor [DONE] (passed through unchanged); a successful answer that was not streamed and is not JSON counts one."
            )
            schema = s
        }
    }

    static let families = Families()
    /// The families listed above.
    public static var schema: CollectorSchema { families.schema }

    struct VersionLabels {
        let version: LabelSet
        let requests: [LabelSet]  // [endpoint][outcome]
        let tokens: [LabelSet]  // tokenSeries
        let finish: [LabelSet]
        let errors: [LabelSet]  // errorSlots
        let within: [LabelSet]  // objectives + all
    }

    let model: ModelContext
    let versions: Int
    /// The model's `llm` section (defaults when it has none).
    public let configuration: LLMConfiguration
    let ttftLayout: BucketLayout
    let itlLayout: BucketLayout
    let tpotLayout: BucketLayout
    let durationLayout: BucketLayout
    /// The objectives configured, in label order, then `all` (empty without objectives).
    let objectiveNames: [String]
    let labels: [VersionLabels]

    let requests: AtomicSlots  // [v][endpoint][outcome]
    let inFlight: AtomicSlots  // [v] (two's complement)
    let durationCounts: AtomicSlots
    let durationSums: AtomicSlots
    let ttftCounts: AtomicSlots
    let ttftSums: AtomicSlots
    let itlCounts: AtomicSlots
    let itlSums: AtomicSlots
    let tpotCounts: AtomicSlots
    let tpotSums: AtomicSlots
    let tokens: AtomicSlots  // [v][tokenSeries]
    let finish: AtomicSlots  // [v][reason]
    let errors: AtomicSlots  // [v][errorSlots]
    let within: AtomicSlots  // [v][objective]
    let malformed: AtomicSlots  // [v]

    /// No options: the model's `llm` section configures it (defaults when the model has none).
    public init(model: ModelContext, options: CollectorOptions) throws(ModelCollectorError) {
        try options.checkAllowed([])
        guard model.configuration.task == .textGeneration else {
            throw options.error(
                nil, "needs a text_generation model (this model's task is \(model.configuration.task.rawValue))")
        }
        self.model = model
        let c = model.configuration.llm ?? LLMConfiguration()
        configuration = c
        versions = model.versionLabels.count
        do {
            ttftLayout = try BucketLayout(c.ttftBuckets, metric: "mlops_llm_time_to_first_token_seconds")
            itlLayout = try BucketLayout(c.itlBuckets, metric: "mlops_llm_inter_token_latency_seconds")
            tpotLayout = try BucketLayout(c.tpotBuckets, metric: "mlops_llm_time_per_output_token_seconds")
            durationLayout = try BucketLayout(c.durationBuckets, metric: "mlops_llm_request_duration_seconds")
        } catch {
            throw options.error(nil, "llm buckets: \(error)")
        }
        objectiveNames = c.objectives.isEmpty ? [] : c.objectives.names + ["all"]
        let v = versions
        requests = AtomicSlots(count: v * Self.endpoints.count * Self.outcomes.count)
        inFlight = AtomicSlots(count: v)
        durationCounts = AtomicSlots(count: v * durationLayout.bucketCount)
        durationSums = AtomicSlots(count: v)
        ttftCounts = AtomicSlots(count: v * ttftLayout.bucketCount)
        ttftSums = AtomicSlots(count: v)
        itlCounts = AtomicSlots(count: v * itlLayout.bucketCount)
        itlSums = AtomicSlots(count: v)
        tpotCounts = AtomicSlots(count: v * tpotLayout.bucketCount)
        tpotSums = AtomicSlots(count: v)
        tokens = AtomicSlots(count: v * Self.tokenSeries)
        finish = AtomicSlots(count: v * Self.finishReasons.count)
        errors = AtomicSlots(count: v * Self.errorSlots)
        within = AtomicSlots(count: v * objectiveNames.count)
        malformed = AtomicSlots(count: v)
        let f = Self.families
        let objectives = objectiveNames
        labels = model.versionLabels.map { version in
            let m = model.name
            return VersionLabels(
                version: try! f.inFlight.labels(m, version),
                requests: Self.endpoints.flatMap { e in Self.outcomes.map { try! f.requests.labels(m, version, e, $0) }
                },
                tokens: [
                    ("prompt", "usage"), ("completion", "usage"), ("cached", "usage"), ("completion", "estimated"),
                ]
                .map { try! f.tokens.labels(m, version, $0.0, $0.1) },
                finish: Self.finishReasons.map { try! f.finish.labels(m, version, $0) },
                errors: (0..<Self.errorSlots).map { try! f.errors.labels(m, version, Self.errorLabel(slot: $0)) },
                within: objectives.map { try! f.within.labels(m, version, $0) })
        }
    }

    /// The `reason` label of error slot `slot`.
    static func errorLabel(slot: Int) -> String {
        if slot < errorReasons.count { return errorReasons[slot] }
        let status = slot - errorReasons.count + 400
        return status <= 599 ? "http_\(status)" : "http_other"
    }

    /// The error slot of `reason` (`http_<status>` or one of ``errorReasons``); unknown reasons are `http_other`.
    static func errorSlot(_ reason: String) -> Int {
        if let i = errorReasons.firstIndex(of: reason) { return i }
        if reason.hasPrefix("http_"), let status = Int(reason.dropFirst(5)), (400...599).contains(status) {
            return errorReasons.count + status - 400
        }
        return errorSlots - 1
    }

    /// Per version: requests (15), in flight, 4 histograms, tokens (4), finish reasons (7), errors, objectives,
    /// malformed.
    public var maxSeries: Int {
        versions
            * (Self.endpoints.count * Self.outcomes.count + 1 + 4 + Self.tokenSeries + Self.finishReasons.count
                + Self.errorSlots + objectiveNames.count + 1)
    }

    /// Predictions posted to the ingestion API are not measured here (the proxy measures LLM requests).
    public func record(prediction: PredictionEvent, receivedAt: Double) {}

    // MARK: - Recording (lock-free)

    /// A request's body arrived: it is in flight until ``requestEnded(version:_:)``.
    public func requestStarted(version v: Int) { inFlight.add(v) }

    /// The first token of a stream arrived `seconds` after the request's last byte.
    public func firstToken(version v: Int, seconds: Double) {
        ttftCounts.add(v &* ttftLayout.bucketCount &+ ttftLayout.index(seconds))
        ttftSums.addDouble(v, seconds)
    }

    /// Gaps between tokens: `gap` (if any) and `zeros` gaps of 0 (tokens read together).
    public func tokenGaps(version v: Int, gap: Double?, zeros: Int) {
        if let gap {
            itlCounts.add(v &* itlLayout.bucketCount &+ itlLayout.index(gap))
            itlSums.addDouble(v, gap)
        }
        if zeros > 0 { itlCounts.add(v &* itlLayout.bucketCount &+ itlLayout.index(0), UInt64(zeros)) }
    }

    /// The request ended; `wasInFlight`: ``requestStarted(version:)`` was called for it.
    public func requestEnded(version v: Int, _ r: LLMRequestRecord, wasInFlight: Bool = true) {
        if wasInFlight { inFlight.add(v, UInt64.max) }  // − 1
        let outcomes = Self.outcomes.count
        requests.add((v &* Self.endpoints.count &+ r.endpoint) &* outcomes &+ r.outcome.rawValue)
        if let d = r.durationSeconds {
            durationCounts.add(v &* durationLayout.bucketCount &+ durationLayout.index(d))
            durationSums.addDouble(v, d)
        }
        if let t = r.timePerOutputTokenSeconds {
            tpotCounts.add(v &* tpotLayout.bucketCount &+ tpotLayout.index(t))
            tpotSums.addDouble(v, t)
        }
        let tokenBase = v &* Self.tokenSeries
        if let p = r.promptTokens { tokens.add(tokenBase, UInt64(p)) }
        if let c = r.completionTokens { tokens.add(tokenBase &+ (r.completionEstimated ? 3 : 1), UInt64(c)) }
        if let c = r.cachedTokens { tokens.add(tokenBase &+ 2, UInt64(c)) }
        for (i, n) in r.finishReasons.enumerated() where n > 0 && i < Self.finishReasons.count {
            finish.add(v &* Self.finishReasons.count &+ i, UInt64(n))
        }
        if r.outcome == .error, let reason = r.errorReason {
            errors.add(v &* Self.errorSlots &+ Self.errorSlot(reason))
        }
        if r.malformedEvents > 0 { malformed.add(v, UInt64(r.malformedEvents)) }
        if r.outcome == .ok && !objectiveNames.isEmpty { countObjectives(v, r) }
    }

    /// Objectives met: one without its measure (no TTFT, fewer than 2 tokens) counts as met.
    private func countObjectives(_ v: Int, _ r: LLMRequestRecord) {
        let o = configuration.objectives
        let base = v &* objectiveNames.count
        var slot = 0
        var all = true
        func check(_ limit: Double?, _ value: Double?) {
            guard let limit else { return }
            let met = value.map { $0 <= limit } ?? true
            if met { within.add(base &+ slot) } else { all = false }
            slot += 1
        }
        check(o.ttftSeconds, r.timeToFirstTokenSeconds)
        check(o.tpotSeconds, r.timePerOutputTokenSeconds)
        check(o.durationSeconds, r.durationSeconds)
        if all { within.add(base &+ slot) }
    }

    // MARK: - Scrape

    /// Every version's series: requests of endpoints used so far, errors seen so far, the rest always.
    public func collect(into sink: inout CollectorSink) {
        let f = Self.families
        let outcomes = Self.outcomes.count
        for v in 0..<versions {
            let l = labels[v]
            for e in 0..<Self.endpoints.count {
                let base = (v * Self.endpoints.count + e) * outcomes
                let counts = (0..<outcomes).map { requests.load(base + $0) }
                guard counts.contains(where: { $0 > 0 }) || e == 0 else { continue }
                for o in 0..<outcomes {
                    sink.counter(f.requests, l.requests[e * outcomes + o], value: Double(counts[o]))
                }
            }
            sink.gauge(f.inFlight, l.version, value: Double(Int64(bitPattern: inFlight.load(v))))
            func histogram(_ h: HistogramHandle, _ layout: BucketLayout, _ counts: AtomicSlots, _ sums: AtomicSlots) {
                sink.histogram(
                    h, l.version, bounds: layout.histogram,
                    counts: counts.loadRange(v * layout.bucketCount, layout.bucketCount), sum: sums.loadDouble(v))
            }
            histogram(f.duration, durationLayout, durationCounts, durationSums)
            histogram(f.ttft, ttftLayout, ttftCounts, ttftSums)
            histogram(f.itl, itlLayout, itlCounts, itlSums)
            histogram(f.tpot, tpotLayout, tpotCounts, tpotSums)
            for t in 0..<Self.tokenSeries {
                sink.counter(f.tokens, l.tokens[t], value: Double(tokens.load(v * Self.tokenSeries + t)))
            }
            for r in 0..<Self.finishReasons.count {
                sink.counter(f.finish, l.finish[r], value: Double(finish.load(v * Self.finishReasons.count + r)))
            }
            for s in 0..<Self.errorSlots {
                let n = errors.load(v * Self.errorSlots + s)
                if n > 0 { sink.counter(f.errors, l.errors[s], value: Double(n)) }
            }
            for o in 0..<objectiveNames.count {
                sink.counter(f.within, l.within[o], value: Double(within.load(v * objectiveNames.count + o)))
            }
            sink.counter(f.malformed, l.version, value: Double(malformed.load(v)))
        }
    }
}

extension LLMCollector: PersistentCollector {
    /// Every slot array but the requests in flight.
    public func saveState(into w: inout StateWriter) {
        for slots in persistentSlots { w.slots(slots) }
    }

    /// Reads what ``saveState(into:)`` wrote.
    public func restoreState(from r: inout StateReader, now: Double) throws(StateError) {
        for slots in persistentSlots { try r.slots(into: slots) }
    }

    /// Every slot saved: all are counters and histograms.
    public func restartCounters() {
        for slots in persistentSlots { slots.zero() }
    }

    var persistentSlots: [AtomicSlots] {
        [
            requests, durationCounts, durationSums, ttftCounts, ttftSums, itlCounts, itlSums, tpotCounts, tpotSums,
            tokens, finish, errors, within, malformed,
        ]
    }
}
