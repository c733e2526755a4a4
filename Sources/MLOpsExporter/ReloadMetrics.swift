import Exposition

/// The three metrics every reloadable file has: `<prefix>_last_reload_successful`,
/// `<prefix>_last_reload_success_timestamp_seconds` and `<prefix>_reloads_total{result}`.
struct ReloadMetrics: Sendable {
    let lastReloadSuccessful: Gauge
    let lastReloadSuccessTimestamp: Gauge
    let reloads: CounterFamily

    /// Registers the metrics for `what` (e.g. "configuration") and records the initial load as a success.
    init(registry: Registry, prefix: String, what: String) throws(ExpositionError) {
        lastReloadSuccessful = try registry.gauge(
            "\(prefix)_last_reload_successful",
            help: "Whether the last \(what) load or reload succeeded (1) or was rejected (0).")
        lastReloadSuccessTimestamp = try registry.gauge(
            "\(prefix)_last_reload_success_timestamp_seconds",
            help: "Unix time of the last successful \(what) load.", unit: "seconds")
        reloads = try registry.counterFamily(
            "\(prefix)_reloads_total",
            help: "\(what.prefix(1).uppercased() + what.dropFirst()) reloads, by result (success, failure).",
            labelNames: ["result"])
        _ = try reloads.labels("success")
        _ = try reloads.labels("failure")
        lastReloadSuccessful.set(1)
        lastReloadSuccessTimestamp.setToCurrentTime()
    }

    func succeeded() {
        lastReloadSuccessful.set(1)
        lastReloadSuccessTimestamp.setToCurrentTime()
        try? reloads.labels("success").inc()
    }

    func failed() {
        lastReloadSuccessful.set(0)
        try? reloads.labels("failure").inc()
    }
}
