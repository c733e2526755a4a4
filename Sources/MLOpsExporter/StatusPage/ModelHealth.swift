import ExporterConfig
import Exposition

/// One model's health at a glance, computed from a ``MetricSnapshot`` of its parts (the figures `/metrics`
/// shows at that moment) and, for rates and quantiles over the window, the ``WindowChange`` since the oldest
/// ``StatusHistory`` point within the window.
///
/// State (worst wins): `critical` when a request-based SLO's SLI over the window is below its objective or the
/// accuracy over the quality SLO's own `window`, all versions pooled, misses its target; `warning` when dataset drift is detected or a fairness metric is
/// outside its bounds; `ok` when the model has seen traffic and neither holds; `unknown` ("No data") before
/// any prediction.
struct ModelHealth {
    enum State: Int, Comparable {
        case unknown, ok, warning, critical

        static func < (a: State, b: State) -> Bool { a.rawValue < b.rawValue }

        /// The word shown (never colour alone) and the `data-state` value.
        var word: String {
            switch self {
            case .unknown: return "No data"
            case .ok: return "OK"
            case .warning: return "Warning"
            case .critical: return "Critical"
            }
        }
        var key: String {
            switch self {
            case .unknown: return "unknown"
            case .ok: return "ok"
            case .warning: return "warning"
            case .critical: return "critical"
            }
        }
    }

    /// A configured SLO and how it stands.
    struct SLOStanding {
        let slo: SLOConfiguration
        /// What the SLI is over the window (request-based: a ratio; time-based: 1 met, 0 not), nil without data.
        let sli: Double?
        let met: Bool?
        /// How the SLI stands, one line (with the figures).
        let basis: String
        /// What a request-based SLI counts (`successful`, `within 250 ms`), empty for time-based ones.
        var what: String = ""
    }

    let configuration: ModelConfiguration
    let snapshot: MetricSnapshot
    let change: WindowChange?
    /// Versions with their requests since start (configured ones first, then others seen).
    let versions: [(version: String, requests: Double)]
    let requestsTotal: Double
    let driftedFeatures: [MetricSnapshot.Sample]
    /// The quality figure furthest from good: its sample, and the target when a quality SLO sets one.
    let quality: (sample: MetricSnapshot.Sample, name: String, target: Double?, higherIsBetter: Bool)?
    /// `mlops_fairness_violation` samples equal to 1.
    let violations: [MetricSnapshot.Sample]
    let slos: [SLOStanding]
    let state: State
    /// Why the state is what it is, one line each.
    let reasons: [String]

    var name: String { configuration.name }
    var model: [String: String] { ["model": configuration.name] }
    var windowSeconds: Double { configuration.window.duration.seconds }

    /// `qualityChange`: the labelled outcomes (correct, all) over the last `window` seconds, all versions, for a quality
    /// SLO's window; nil when the history has no point a second old yet (the SLO then says "collecting…").
    init(
        configuration: ModelConfiguration, snapshot: MetricSnapshot, change: WindowChange?,
        qualityChange: (Double) -> (correct: Double, outcomes: Double)? = { _ in nil }
    ) {
        self.configuration = configuration
        self.snapshot = snapshot
        self.change = change
        let m = ["model": configuration.name]
        var byVersion: [String: Double] = [:]
        var order = configuration.versions
        for s in snapshot.samples("mlops_model_requests_total", matching: m) {
            let v = s.label("version") ?? ""
            if byVersion[v] == nil && !order.contains(v) { order.append(v) }
            byVersion[v, default: 0] += s.value
        }
        versions = order.map { ($0, byVersion[$0] ?? 0) }.filter { configuration.versions.contains($0.0) || $0.1 > 0 }
        requestsTotal = byVersion.values.reduce(0, +)
        driftedFeatures = snapshot.samples("mlops_feature_drift_detected", matching: m).filter { $0.value == 1 }
        violations = snapshot.samples("mlops_fairness_violation", matching: m).filter { $0.value == 1 }

        // Quality: the worst version's accuracy (classification) or MAE (regression).
        let qualitySLO = configuration.slos.first { $0.type == .quality }
        switch configuration.task {
        case .binaryClassification, .multiclassClassification:
            let worst = snapshot.samples("mlops_model_accuracy", matching: m).min { $0.value < $1.value }
            quality = worst.map { ($0, "accuracy", qualitySLO?.target, true) }
        case .regression:
            let worst = snapshot.samples("mlops_model_mae", matching: m).max { $0.value < $1.value }
            quality = worst.map { ($0, "MAE", nil, false) }
        default:
            quality = nil
        }

        var standings: [SLOStanding] = []
        for slo in configuration.slos {
            standings.append(
                Self.standing(slo, snapshot: snapshot, change: change, qualityChange: qualityChange, model: m))
        }
        slos = standings

        var state: State =
            requestsTotal > 0 || (snapshot.value("mlops_ingest_events_total", m) ?? 0) > 0 ? .ok : .unknown
        var reasons: [String] = []
        for s in standings where s.met == false {
            let level: State = s.slo.type.isTimeBased && s.slo.type != .quality ? .warning : .critical
            state = max(state, level)
            reasons.append("SLO \(s.slo.name) not met: \(s.basis)")
        }
        let failing = Set(standings.filter { $0.met == false }.map(\.slo.type))
        if snapshot.value("mlops_dataset_drift_detected", m) == 1 {
            state = max(state, .warning)
            if !failing.contains(.drift) { reasons.append("dataset drift detected") }
        }
        if !violations.isEmpty && failing.contains(.fairness) {
            state = max(state, .warning)
        } else if !violations.isEmpty {
            state = max(state, .warning)
            reasons.append("\(violations.count) fairness metric\(violations.count == 1 ? "" : "s") out of bounds")
        }
        self.state = state
        self.reasons = reasons
    }

    static func standing(
        _ slo: SLOConfiguration, snapshot: MetricSnapshot, change: WindowChange?,
        qualityChange: (Double) -> (correct: Double, outcomes: Double)?, model m: [String: String]
    ) -> SLOStanding {
        let objective = slo.objectiveRatio
        func ratio(_ sli: Double?, _ what: String) -> SLOStanding {
            guard let sli else {
                return SLOStanding(
                    slo: slo, sli: nil, met: nil, basis: "no requests measured in the window", what: what)
            }
            return SLOStanding(
                slo: slo, sli: sli, met: sli >= objective,
                basis: "\(Shown.percent(sli)) \(what) over the window, objective \(Shown.percent(objective))",
                what: what)
        }
        switch slo.type {
        case .availability:
            guard let c = change, c.requests > 0 else { return ratio(nil, "successful") }
            return ratio(c.ok / c.requests, "successful")
        case .latency, .ttft, .tpot:
            let threshold = slo.thresholdSeconds ?? 0
            let buckets = slo.type == .latency ? change?.latency : slo.type == .ttft ? change?.ttft : change?.tpot
            return ratio(buckets?.share(atMost: threshold), "within \(Shown.seconds(threshold))")
        case .goodput:
            guard let c = change, c.llmRequests > 0 else { return ratio(nil, "within every objective") }
            return ratio(min(1, c.llmGood / c.llmRequests), "within every objective")
        case .quality:
            // As the generated rule reads it (MLOpsModelQualityBelowTarget): the raw counters' increase over the SLO's
            // own `window`, pooled over the versions. (Over the model's window, five wrong labels after a hundred
            // right ones a minute before made the page Critical while the alert stayed silent; per version, one wrong
            // label on a canary did.)
            let target = slo.target ?? 0
            let window = slo.window.seconds
            let over = "over the last \(Shown.seconds(window))"
            guard let counted = qualityChange(window) else {
                return SLOStanding(slo: slo, sli: nil, met: nil, basis: "collecting… (accuracy \(over))")
            }
            guard counted.outcomes > 0 else {
                return SLOStanding(slo: slo, sli: nil, met: nil, basis: "no labelled outcomes \(over)")
            }
            let accuracy = counted.correct / counted.outcomes
            let met = accuracy >= target
            return SLOStanding(
                slo: slo, sli: met ? 1 : 0, met: met,
                basis:
                    "accuracy \(Shown.percent(accuracy)) \(over) (\(Shown.count(counted.outcomes)) outcomes, all versions), target \(Shown.percent(target))"
            )
        case .drift:
            guard let detected = snapshot.value("mlops_dataset_drift_detected", m) else {
                return SLOStanding(slo: slo, sli: nil, met: nil, basis: "no drift verdict yet")
            }
            return SLOStanding(
                slo: slo, sli: 1 - detected, met: detected == 0,
                basis: detected == 0 ? "no dataset drift now" : "dataset drift detected now")
        case .fairness:
            let samples = snapshot.samples("mlops_fairness_violation", matching: m)
            guard !samples.isEmpty else {
                return SLOStanding(slo: slo, sli: nil, met: nil, basis: "no fairness verdict yet")
            }
            let violated = samples.filter { $0.value == 1 }.count
            return SLOStanding(
                slo: slo, sli: violated == 0 ? 1 : 0, met: violated == 0,
                basis: violated == 0
                    ? "every fairness metric within bounds now" : "\(violated) fairness metric(s) out of bounds now")
        }
    }
}
