extension ExporterConfiguration {
    /// What a valid configuration holds that cannot work as its author meant, one line each
    /// (`SOURCE[:LINE:COLUMN]: models[i] (NAME): FIELD: MESSAGE`, the model's place when read from a file): an SLO whose indicator reads the series of a collector the
    /// model does not run (a `quality` SLO without the `quality` collector...) has no data, and its generated alerts
    /// could never fire; an objective so low that a burn-rate alert could not fire even at 100 % errors (below
    /// 93.06 % for 30 days, 92.56 % for 28); a
    /// service-wide latency SLO over LLM models (timed to the end of each generation); a `reference` without the
    /// `drift` collector, or `sensitive_attributes` without `fairness`, is read by nothing (the default collectors are
    /// `service` alone); an `llm` section without a `proxy:` section is read by nothing (only the proxy measures LLM
    /// requests). `check-config` and `rules` print these,
    /// `serve` logs them; none is an error (a collector may be added later, and the configuration stays loadable).
    public var warnings: [String] {
        var out: [String] = []
        for (i, model) in models.enumerated() {
            let at = Self.place(source, model.locations.entry)
            let running = Set(model.collectors.map(\.name))
            if model.reference != nil && !running.contains("drift") {
                out.append(
                    "\(Self.place(source, model.locations.reference ?? model.locations.entry)): models[\(i)] (\(model.name)): reference: the drift collector does not run, so nothing "
                        + "compares traffic with this profile (add drift to its collectors)")
            }
            if !model.sensitiveAttributes.isEmpty && !running.contains("fairness") {
                out.append(
                    "\(at): models[\(i)] (\(model.name)): sensitive_attributes: the fairness collector does not run, "
                        + "so no group is compared (add fairness to its collectors)")
            }
            if model.llm != nil && proxy == nil {
                out.append(
                    "\(at): models[\(i)] (\(model.name)): llm: there is no proxy: section, so nothing measures this "
                        + "model's requests and its mlops_llm_* series stay at zero (add a proxy: section in front of its "
                        + "OpenAI-compatible server, docs/llm.md)")
            }
            for (j, slo) in model.slos.enumerated() {
                if let low = Self.lowObjective(slo) ?? Self.oneMinutePages(slo) {
                    out.append("\(at): models[\(i)] (\(model.name)): slos[\(j)] (\(slo.name)): \(low)")
                }
                guard let collector = Self.collectorRead(by: slo.type), !running.contains(collector) else { continue }
                out.append(
                    "\(at): models[\(i)] (\(model.name)): slos[\(j)] (\(slo.name)): a \(slo.type.rawValue) SLO reads "
                        + "the \(collector) collector's series, which this model does not run: it has no data and its "
                        + "alerts never fire (add \(collector) to its collectors)")
            }
        }
        for (j, slo) in serviceSLOs.enumerated() {
            if let low = Self.lowObjective(slo) { out.append("\(source): service_slos[\(j)] (\(slo.name)): \(low)") }
            let generating = models.filter { $0.llm != nil }.map(\.name)
            if slo.type == .latency && !generating.isEmpty {
                // Their requests count in mlops_model_latency_seconds timed to the end of the generation (docs/llm.md).
                out.append(
                    "\(source): service_slos[\(j)] (\(slo.name)): a service-wide latency SLO counts the requests of "
                        + "\(generating.joined(separator: ", ")), each timed to the end of its generation: long "
                        + "generations read as slow requests (measure those models with ttft and tpot SLOs instead)")
            }
        }
        return out
    }

    /// `SOURCE:LINE:COLUMN` at `location` when it is known (a file's), else `SOURCE`: where a warning's model is, as
    /// errors say it (warnings named file and field only).
    static func place(_ source: String, _ location: ConfigLocation?) -> String {
        guard let location else { return source }
        return "\(source):\(location.line):\(location.column)"
    }

    /// The warning for an objective so low that a burn-rate alert can never fire, nil otherwise: an alert fires when
    /// the error ratio exceeds its factor times the budget (the factors scaled to the period as the rules scale them:
    /// 2 % of the budget in 1 h, 5 % in 6 h, 10 % in 1 d and in 3 d), and an error ratio is at most 1. Both pages can
    /// fire above 93.06 % (30 days; 92.56 % for 28), the 6 h page above 83.33 % (82.14 %), the 1 d ticket above
    /// 66.67 % (64.29 %).
    static func lowObjective(_ slo: SLOConfiguration) -> String? {
        let hours = Double(slo.period.days * 24)
        let budget = 1 - slo.objectiveRatio
        let factors = [
            ("1h/5m page", 0.02 * hours), ("6h/30m page", 0.05 * hours / 6), ("1d/2h ticket", 0.1 * hours / 24),
        ]
        let never = factors.filter { $0.1 * budget >= 1 }.map(\.0)
        guard !never.isEmpty else { return nil }
        // Every alert can fire above 1 − 1/(the 1h factor), rounded up to 4 decimals of a percent.
        let lowest = ((1 - 1 / (0.02 * hours)) * 1e6).rounded(.up) / 1e4
        let named = never.map { "the \($0)" }
        let which = named.count == 1 ? named[0] : named.dropLast().joined(separator: ", ") + " and " + named.last!
        return
            "objective \(SLOConfiguration.text(slo.objective)): an error ratio cannot exceed 1, so \(which) can never "
            + "fire (budget \(SLOConfiguration.text((budget * 1e8).rounded() / 1e6)) %; every alert can above "
            + "\(SLOConfiguration.text(lowest)) %)"
    }

    /// A time-based SLO (quality, drift, fairness: the share of minutes in violation, one per rule evaluation) whose
    /// budget is so small that the 1h/5m page's threshold is under two minutes of violation in the hour: one or two
    /// evaluations page (a probe: one minute of drift at 99.9 % fired the page). Nil otherwise.
    static func oneMinutePages(_ slo: SLOConfiguration) -> String? {
        guard slo.type.isTimeBased else { return nil }
        let minutes = 0.02 * Double(slo.period.days * 24) * (1 - slo.objectiveRatio) * 60
        guard minutes < 2 else { return nil }
        // The objective from which the page needs at least two minutes, rounded down to 4 decimals of a percent.
        let highest = ((1 - 2 / (0.02 * Double(slo.period.days * 24) * 60)) * 1e6).rounded(.down) / 1e4
        return
            "objective \(SLOConfiguration.text(slo.objective)): a \(slo.type.rawValue) SLO counts minutes in violation, "
            + "and its 1h/5m page fires past \(SLOConfiguration.text((minutes * 100).rounded() / 100)) of them in an hour: "
            + "a single minute pages (time-based SLOs want objectives up to \(SLOConfiguration.text(highest)) %)"
    }

    /// The built-in collector whose series an SLO type's indicator reads; nil for those the proxy's LLM meter or the
    /// service collector always feed.
    static func collectorRead(by type: SLOType) -> String? {
        switch type {
        case .quality: "quality"
        case .drift: "drift"
        case .fairness: "fairness"
        case .availability, .latency: "service"
        case .ttft, .tpot, .goodput: nil
        }
    }
}
