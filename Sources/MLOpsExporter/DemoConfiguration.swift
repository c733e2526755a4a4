import ExporterConfig

/// The configuration used when `serve` is given no `--config`: the two example models of
/// `examples/models.yaml` (a test keeps the two identical), so that a first run has models configured.
public enum DemoConfiguration {
    /// The YAML text.
    public static let yaml = #"""
        # Example configuration: two models, a binary classifier and a regressor.
        # Validate with: mlops-exporter check-config examples/models.yaml
        models:
          - name: fraud
            task: binary_classification
            versions: [v1, v2]
            classes: [legit, fraud]
            positive_class: fraud
            features:
              - {name: amount, type: numeric}
              - {name: account_age_days, type: numeric}
              - {name: country, type: categorical, values: [US, DE, FR, GB, IN]}
              - {name: channel, type: categorical, values: [web, app, pos]}
            sensitive_attributes:
              - {name: gender, groups: [female, male], privileged: male}
              - {name: age_band, groups: ["18-25", "26-40", "41-65", "65+"]}
            window: {duration: 1h, slices: 12}
            latency_buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]
            collectors: [service]
            # Service level objectives; `mlops-exporter rules` turns them into Prometheus rules (docs/slos.md).
            slos:
              - {type: availability, objective: 99.9, period: 28d}
              - {type: latency, objective: 99, threshold_seconds: 0.25, period: 28d}
              - {type: quality, metric: accuracy, target: 0.9, window: 1h, objective: 95, period: 28d}
              - {type: drift, objective: 95, period: 28d}
              - {type: fairness, objective: 99, period: 28d}

          - name: eta
            task: regression
            versions: ["2024.06"]
            features:
              - {name: distance_km, type: numeric}
              - {name: hour, type: numeric}
              - {name: weather, type: categorical, values: [clear, rain, snow]}
            window: {duration: 30m, slices: 6}
            collectors:
              - name: service
            slos:
              - {name: availability, type: availability, objective: 99.5, period: 30d}
              - {name: fast, type: latency, objective: 99, threshold_seconds: 1, period: 30d}
              - {type: drift, objective: 95, period: 30d}

        # Service-wide SLOs over the requests of every model, labelled model="__service__" (docs/slos.md):
        # availability and latency only; a latency threshold must be a bucket of every model's latency_buckets.
        service_slos:
          - {type: availability, objective: 99.5, period: 30d}
          - {name: fast, type: latency, objective: 99, threshold_seconds: 0.5, period: 30d}

        # Thresholds of the generated model-health alerts (all optional; docs/slos.md).
        alerting:
          runbook_base_url: https://runbooks.example.com/mlops-exporter
          drift_for: 30m
          reject_ratio: 0.01

        """#

    /// The parsed configuration.
    public static func load() throws(ConfigErrors) -> ExporterConfiguration {
        try ConfigLoader.parse(yaml, file: "<built-in demo configuration>")
    }
}
