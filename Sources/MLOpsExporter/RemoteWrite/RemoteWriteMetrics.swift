import Exposition

/// `mlops_remote_write_*`: what the exporter's own remote write sent, dropped (by reason) and holds.
struct RemoteWriteMetrics: Sendable {
    let sent: Counter
    let requests: Counter
    let dropped: CounterFamily
    let failures: CounterFamily
    let pending: Gauge
    let pendingLimit: Gauge
    let lastSuccess: Gauge
    let staleMarkers: Counter

    /// Why samples were dropped: `queue_full` (the oldest pending request made room for a new one), `rejected` (a
    /// 4xx other than 429: not retried), `encode` (the request could not be built), `shutdown` (pending at stop).
    static let dropReasons = ["queue_full", "rejected", "encode", "shutdown"]
    /// Why a send failed (each failure of a request, retried or not): `network` (connect, read, write, timeout),
    /// `http_429`, `http_4xx`, `http_5xx`, `http_other`.
    static let failureReasons = ["network", "http_429", "http_4xx", "http_5xx", "http_other"]

    /// The configured bound (at least 2), which the limit gauge shows unless a render needs more.
    let configuredLimit: Int

    init(registry: Registry, maxPending: Int) throws(ExpositionError) {
        configuredLimit = maxPending
        sent = try registry.counter(
            "mlops_remote_write_samples_total", help: "Samples delivered to the remote write receiver.")
        requests = try registry.counter(
            "mlops_remote_write_requests_total", help: "Remote write requests the receiver accepted (2xx).")
        dropped = try registry.counterFamily(
            "mlops_remote_write_samples_dropped_total",
            help: "Samples that could not be delivered, by reason (queue_full, rejected, encode, shutdown).",
            labelNames: ["reason"])
        failures = try registry.counterFamily(
            "mlops_remote_write_failures_total",
            help: "Failed remote write sends, by reason (network, http_429, http_4xx, http_5xx, http_other).",
            labelNames: ["reason"])
        pending = try registry.gauge(
            "mlops_remote_write_pending_requests", help: "Remote write requests waiting to be sent (or retried).")
        pendingLimit = try registry.gauge(
            "mlops_remote_write_pending_requests_limit",
            help:
                "Most remote write requests held at once (remote_write.max_pending_requests, at least 2: the request being sent and the newest render's; more while one render needs more requests: those and the one being sent)."
        )
        lastSuccess = try registry.gauge(
            "mlops_remote_write_last_success_timestamp_seconds",
            help: "Unix time of the last remote write request the receiver accepted.", unit: "seconds")
        staleMarkers = try registry.counter(
            "mlops_remote_write_stale_markers_total",
            help: "Staleness markers queued: series gone from a render, and every series at shutdown.")
        for r in Self.dropReasons { _ = try dropped.labels(r) }
        for r in Self.failureReasons { _ = try failures.labels(r) }
        pendingLimit.set(Double(maxPending))
    }

    /// The bound while the newest render needs `requests` requests: they are all kept, beside the one being sent.
    func renderQueued(requests: Int) { pendingLimit.set(Double(max(configuredLimit, requests + 1))) }

    func dropped(_ reason: String, _ samples: Int) { try? dropped.labels(reason).inc(by: Double(samples)) }
    func failed(_ reason: String) { try? failures.labels(reason).inc() }
}
