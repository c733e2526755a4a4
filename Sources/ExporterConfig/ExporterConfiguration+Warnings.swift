extension ExporterConfiguration {
    /// What a valid configuration holds that cannot work as its author meant, one line each
    /// (`SOURCE: models[i] (NAME): FIELD: MESSAGE`): an SLO whose indicator reads the series of a collector the
    /// model does not run (a `quality` SLO without the `quality` collector...) has no data, and its generated alerts
    /// could never fire; a `reference` without the `drift` collector, or `sensitive_attributes` without `fairness`,
    /// is read by nothing (the default collectors are `service` alone). `check-config` and `rules` print these,
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
                guard let collector = Self.collectorRead(by: slo.type), !running.contains(collector) else { continue }
                out.append(
                    "\(source): models[\(i)] (\(model.name)): slos[\(j)] (\(slo.name)): a \(slo.type.rawValue) SLO reads "
                        + "the \(collector) collector's series, which this model does not run: it has no data and its "
                        + "alerts never fire (add \(collector) to its collectors)")
            }
        }
        return out
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
