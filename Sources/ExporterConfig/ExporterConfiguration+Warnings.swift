extension ExporterConfiguration {
    /// What a valid configuration holds that cannot work as its author meant, one line each
    /// (`SOURCE: models[i] (NAME): FIELD: MESSAGE`): an SLO whose indicator reads the series of a collector the
    /// model does not run (a `quality` SLO without the `quality` collector...) has no data, and its generated alerts
    /// could never fire; an objective so low that a page could not fire even at 100 % errors (below ~93 %); a
    /// service-wide latency SLO over LLM models (timed to the end of each generation); a `reference` without the
    /// `drift` collector, or `sensitive_attributes` without `fairness`, is read by nothing (the default collectors are
    /// `service` alone). `check-config` and `rules` print these,
    /// `serve` logs them; none is an error (a collector may be added later, and the configuration stays loadable).
    public var warnings: [String] {
        var out: [String] = []
        for (i, model) in models.enumerated() {
            let running = Set(model.collectors.map(\.name))
            if model.reference != nil && !running.contains("drift") {
                out.append(
                    "\(source): models[\(i)] (\(model.name)): reference: the drift collector does not run, so nothing "
                        + "compares traffic with this profile (add drift to its collectors)")
            }
            if !model.sensitiveAttributes.isEmpty && !running.contains("fairness") {
                out.append(
                    "\(source): models[\(i)] (\(model.name)): sensitive_attributes: the fairness collector does not run, "
                        + "so no group is compared (add fairness to its collectors)")
            }
            for (j, slo) in model.slos.enumerated() {
                if let low = Self.lowObjective(slo) {
                    out.append("\(source): models[\(i)] (\(model.name)): slos[\(j)] (\(slo.name)): \(low)")
                }
                guard let collector = Self.collectorRead(by: slo.type), !running.contains(collector) else { continue }
                out.append(
                    "\(source): models[\(i)] (\(model.name)): slos[\(j)] (\(slo.name)): a \(slo.type.rawValue) SLO reads "
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

    /// The warning for an objective so low that a burn-rate page can never fire, nil otherwise: a page fires when the
    /// error ratio exceeds its factor times the budget (the factor scaled to the period as the rules scale it: 2 % of
    /// the budget in 1 h, 5 % in 6 h), and an error ratio is at most 1.
    static func lowObjective(_ slo: SLOConfiguration) -> String? {
        let hours = Double(slo.period.days * 24)
        let budget = 1 - slo.objectiveRatio
        let never: String
        switch (0.02 * hours * budget >= 1, 0.05 * hours / 6 * budget >= 1) {
        case (true, true): never = "neither page (1h/5m, 6h/30m) can ever fire"
        case (true, false): never = "the 1h/5m page can never fire"
        default: return nil
        }
        // Both pages can fire above 1 − 1/(the 1h factor), rounded up to 4 decimals of a percent.
        let lowest = ((1 - 1 / (0.02 * hours)) * 1e6).rounded(.up) / 1e4
        return "objective \(SLOConfiguration.text(slo.objective)): an error ratio cannot exceed 1, so \(never) "
            + "(budget \(SLOConfiguration.text((budget * 1e8).rounded() / 1e6)) %; both can above \(SLOConfiguration.text(lowest)) %)"
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
