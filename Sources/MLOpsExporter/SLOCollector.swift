import ExporterConfig
import Exposition

/// Exports the configured SLOs at scrape time, so that dashboards show targets without the rule file:
/// `mlops_slo_objective_ratio{model,slo}` and `mlops_slo_info{model,slo,type,objective,period,threshold,metric}`.
/// Service-wide SLOs have `model="__service__"`. It reads the configuration in force at each scrape, so the series follow reloads.
struct SLOCollector: Collector {
    let config: ConfigurationState

    var name: String { "slo" }

    struct Families {
        let schema: CollectorSchema
        let objective: GaugeHandle
        let info: InfoHandle

        init() {
            var s = CollectorSchema()
            objective = try! s.gauge(
                "mlops_slo_objective_ratio", help: "Objective of each configured SLO, as a ratio (99.9% is 0.999).",
                unit: "ratio", labels: ["model", "slo"])
            info = try! s.info(
                "mlops_slo_info",
                help:
                    "Configured SLOs: type (availability, latency, quality, drift, fairness, ttft, tpot, goodput), objective in percent, period, latency, ttft or tpot threshold or quality target, quality metric.",
                labels: ["model", "slo", "type", "objective", "period", "threshold", "metric"])
            schema = s
        }
    }

    static let families = Families()
    var schema: CollectorSchema { Self.families.schema }

    func collect(into sink: inout CollectorSink) {
        let f = Self.families
        for (model, slo) in config.configuration.allSLOs {
            sink.gauge(f.objective, [model.name, slo.name], value: slo.objectiveRatio)
            let threshold = slo.thresholdSeconds ?? slo.target
            sink.info(
                f.info,
                [
                    model.name, slo.name, slo.type.rawValue, Self.number(slo.objective), slo.period.rawValue,
                    threshold.map(Self.number) ?? "", slo.metric?.rawValue ?? "",
                ])
        }
    }

    static func number(_ value: Double) -> String { SLOConfiguration.text(value) }
}
