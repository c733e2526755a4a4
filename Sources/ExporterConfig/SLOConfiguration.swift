/// What a service level objective measures; it decides the SLI's query (see docs/slos.md).
public enum SLOType: String, Sendable, CaseIterable {
    /// Share of requests that did not fail (`mlops_model_requests_total{status="error"}` are bad).
    case availability
    /// Share of requests answered within `threshold_seconds` (a bucket of the latency histogram).
    case latency
    /// Share of time in which the model's quality metric over `window` is at least `target`.
    case quality
    /// Share of time without dataset drift (`mlops_dataset_drift_detected`).
    case drift
    /// Share of time without a fairness violation (`mlops_fairness_violation`).
    case fairness
    /// Share of streamed LLM requests whose time to first token is within `threshold_seconds` (a bucket of
    /// `mlops_llm_time_to_first_token_seconds`, one of the model's `llm.ttft_buckets`).
    case ttft
    /// Share of streamed LLM requests whose time per output token is within `threshold_seconds` (a bucket of
    /// `mlops_llm_time_per_output_token_seconds`, one of the model's `llm.tpot_buckets`).
    case tpot
    /// Share of LLM requests (not cancelled) that succeeded and met every one of the model's `llm.objectives`.
    case goodput

    /// Whether the SLI counts requests (availability, latency, ttft, tpot, goodput) rather than time in
    /// violation.
    public var isRequestBased: Bool { !isTimeBased }

    /// Whether the SLI is the share of time in violation (quality, drift, fairness).
    public var isTimeBased: Bool { self == .quality || self == .drift || self == .fairness }

    /// Whether the SLI reads the `llm` collector's series, so that the model needs an `llm` section.
    public var isLLM: Bool { self == .ttft || self == .tpot || self == .goodput }

    /// Whether the SLO has a `threshold_seconds` (a bucket bound of the histogram its SLI reads).
    public var hasThreshold: Bool { self == .latency || self == .ttft || self == .tpot }
}

/// The compliance period of an SLO: the window its error budget is spent over.
public enum SLOPeriod: String, Sendable, CaseIterable {
    /// 28 days (four whole weeks, as Pyrra).
    case days28 = "28d"
    /// 30 days (the SRE Workbook's and Sloth's default).
    case days30 = "30d"

    /// Length in days.
    public var days: Int { self == .days28 ? 28 : 30 }
}

/// The quality metric a `quality` SLO compares with its target.
public enum QualityMetric: String, Sendable, CaseIterable {
    /// Share of labelled predictions whose predicted class is the actual one (classification models).
    case accuracy
}

/// One service level objective of a model (`models[].slos[]`).
public struct SLOConfiguration: Sendable, Equatable {
    /// Name, unique within the model: the `slo` label of the generated rules (default: the type).
    public var name: String
    /// What it measures.
    public var type: SLOType
    /// Objective in percent, in (0, 100): 99.9 leaves an error budget of 0.1 %.
    public var objective: Double
    /// Compliance period.
    public var period: SLOPeriod
    /// Latency, ttft and tpot SLOs: the threshold in seconds, one of the model's `latency_buckets`
    /// (`llm.ttft_buckets`, `llm.tpot_buckets`).
    public var thresholdSeconds: Double?
    /// Quality SLOs: the metric.
    public var metric: QualityMetric?
    /// Quality SLOs: the least acceptable value of the metric, in (0, 1).
    public var target: Double?
    /// Quality SLOs: the window each evaluation of the metric covers (default 1h).
    public var window: Duration
    /// Runbook for this SLO's alerts (default: the alerting section's base URL and the alert name).
    public var runbookURL: String?
    /// Free text shown in alert descriptions and the Sloth spec.
    public var description: String?

    /// Creates an SLO; `name` defaults to the type.
    public init(
        name: String? = nil, type: SLOType, objective: Double, period: SLOPeriod = .days30,
        thresholdSeconds: Double? = nil, metric: QualityMetric? = nil, target: Double? = nil,
        window: Duration = .seconds(3600), runbookURL: String? = nil, description: String? = nil
    ) {
        self.name = name ?? type.rawValue
        self.type = type
        self.objective = objective
        self.period = period
        self.thresholdSeconds = thresholdSeconds
        self.metric = metric
        self.target = target
        self.window = window
        self.runbookURL = runbookURL
        self.description = description
    }

    /// `value` as the rules, labels and messages write it: shortest round-trip text without a trailing `.0`
    /// (`99.9`, `95`, `0.25`, `1`).
    public static func text(_ value: Double) -> String {
        let s = "\(value)"
        return s.hasSuffix(".0") ? String(s.dropLast(2)) : s
    }

    /// The objective as a ratio (99.9 → 0.999).
    public var objectiveRatio: Double { (objective / 100 * 1e12).rounded() / 1e12 }
}

/// Thresholds and durations of the generated model-health alerts, and the runbook base URL (`alerting:`).
public struct AlertingConfiguration: Sendable, Equatable {
    /// Alerts link to `runbook_base_url/<AlertName>` unless an SLO sets its own `runbook_url`.
    public var runbookBaseURL: String = "https://runbooks.example.com/mlops-exporter"
    /// How long dataset drift must last before `MLOpsDatasetDrift` fires.
    public var driftFor: Duration = .seconds(1800)
    /// How long a fairness violation must last before `MLOpsFairnessViolation` fires.
    public var fairnessFor: Duration = .seconds(1800)
    /// How long quality must stay below a quality SLO's target before `MLOpsModelQualityBelowTarget` fires.
    public var qualityFor: Duration = .seconds(900)
    /// `MLOpsLabelsNotArriving` fires when the last 30 minutes' label join rate falls below this share of
    /// the rate over the 6 hours before.
    public var labelsDropRatio: Double = 0.1
    /// How long the label join rate must stay collapsed.
    public var labelsFor: Duration = .seconds(900)
    /// `MLOpsIngestRejects` fires when more than this share of ingested events is rejected.
    public var rejectRatio: Double = 0.01
    /// How long the reject share must stay above `rejectRatio`.
    public var rejectFor: Duration = .seconds(600)
    /// How long `up == 0` (or no target of the job) must last before `MLOpsExporterDown` (`MLOpsExporterAbsent`) fires.
    public var scrapeFor: Duration = .seconds(300)

    /// Creates the defaults.
    public init() {}
}
