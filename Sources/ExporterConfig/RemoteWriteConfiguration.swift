/// The running exporter's own Prometheus remote write (`remote_write:` in the configuration file, docs/fleet.md):
/// every `interval` it sends all its series to `url`, for edge sites with no scraper. Read at start only.
public struct RemoteWriteConfiguration: Sendable, Equatable {
    /// The receiver's URL, `http://host[:port]/path` (Prometheus: `/api/v1/write`; Mimir: `/api/v1/push`).
    public var url: ProxyConfiguration.Upstream
    /// Time between two sends of every series (default 15 s; 1 s to 1 h).
    public var interval: Duration = .seconds(15)
    /// Longest time one request may take, connection included (default 10 s; 100 ms to 5 min).
    public var timeout: Duration = .seconds(10)
    /// Encoded requests waiting to be sent (default 10; 1 to 1000): when a new one finds the queue full, the oldest
    /// is dropped and its samples counted with `reason="queue_full"`.
    public var maxPendingRequests: Int = 10
    /// First and longest wait between retries of a request that met a 5xx, a 429 or a network error (default 100 ms
    /// and 5 s; the wait doubles).
    public var minBackoff: Duration = .milliseconds(100)
    /// The longest wait between retries.
    public var maxBackoff: Duration = .seconds(5)
    /// Labels added to every series (as Prometheus's `external_labels`); `job` and `instance` default to
    /// `mlops-exporter` and the exporter's `--instance.id`, as a scrape would have set them.
    public var externalLabels: [String: String] = [:]
    /// Extra request headers (a tenant's `X-Scope-OrgID`, an `Authorization`).
    public var headers: [String: String] = [:]

    /// The allowed intervals.
    public static let intervalRange: ClosedRange<Duration> = .seconds(1) ... .seconds(3600)
    /// The allowed timeouts and backoffs.
    public static let timeoutRange: ClosedRange<Duration> = .milliseconds(100) ... .seconds(300)

    /// Creates a configuration sending to `url`.
    public init(url: ProxyConfiguration.Upstream) { self.url = url }
}
