/// A Prometheus remote write receiver (`http://host[:port]/path`: Prometheus's `/api/v1/write`, Mimir's
/// `/api/v1/push`, Thanos receive's `/api/v1/receive`) and one POST of an encoded request to it.
public struct RemoteWriteReceiver: Sendable {
    /// What one POST did.
    public enum Outcome: Sendable, Equatable {
        /// A 2xx.
        case delivered
        /// Worth another attempt: a network error (`network`, no status), a 429 (`http_429`) or a 5xx (`http_5xx`),
        /// with the receiver's status and its answer (or the network error), and its `Retry-After` in seconds (the
        /// delta-seconds form; nil without one).
        case retry(reason: String, status: Int?, detail: String, retryAfter: Double? = nil)
        /// Final: any other status (`http_4xx`, `http_other`), with the receiver's answer.
        case rejected(reason: String, status: Int, body: String)
    }

    /// Host name or address.
    public let host: String
    /// TCP port.
    public let port: UInt16
    /// The request path (`/api/v1/write`).
    public let path: String
    /// Extra request headers (a tenant's `X-Scope-OrgID`, an `Authorization`).
    public let headers: [(name: String, value: String)]
    /// The `User-Agent` sent: the sender's name and version (the remote-write spec requires both).
    public let userAgent: String

    /// Parses `url` (`http://host[:port]/path`; https is not supported).
    public init(
        url: String, headers: [(name: String, value: String)] = [], userAgent: String = "mlops-exporter"
    ) throws(PushError) {
        let endpoint = try HTTPEndpoint(url: url)
        guard !endpoint.path.isEmpty else { throw .invalidURL("\(url): name the receiver's path (/api/v1/write)") }
        host = endpoint.host
        port = endpoint.port
        path = endpoint.path
        self.headers = headers
        self.userAgent = userAgent
    }

    /// POSTs one snappy-compressed `WriteRequest`, waiting at most `timeout` seconds per socket operation.
    public func post(_ body: [UInt8], timeout: Double) -> Outcome {
        do throws(PushError) {
            let response = try HTTPExchange.send(
                method: "POST", host: host, port: port, path: path, contentType: "application/x-protobuf",
                body: body, timeout: timeout, userAgent: userAgent,
                headers: [("Content-Encoding", "snappy"), ("X-Prometheus-Remote-Write-Version", "0.1.0")] + headers)
            let retryAfter = response.header("retry-after").flatMap { Double($0) }.flatMap { $0 >= 0 ? $0 : nil }
            switch response.status {
            case 200..<300: return .delivered
            case 429:
                return .retry(
                    reason: "http_429", status: 429, detail: PushError.oneLine(response.body), retryAfter: retryAfter)
            case 500..<600:
                return .retry(
                    reason: "http_5xx", status: response.status, detail: PushError.oneLine(response.body),
                    retryAfter: retryAfter)
            case 400..<500: return .rejected(reason: "http_4xx", status: response.status, body: response.body)
            default: return .rejected(reason: "http_other", status: response.status, body: response.body)
            }
        } catch {
            return .retry(reason: "network", status: nil, detail: error.description)
        }
    }

    /// POSTs every body in order, each retried per `retry` (network errors, 429, 5xx), all of them within its deadline.
    public func postAll(_ bodies: [[UInt8]], retry: PushRetry, log: (String) -> Void = { _ in }) throws(PushError) {
        let end = Pushgateway.monotonicNow() + retry.deadline
        for body in bodies {
            var left = retry
            left.deadline = max(0.001, end - Pushgateway.monotonicNow())
            _ = try Pushgateway.run(retry: left, what: "remote write", log: log) { timeout in
                switch post(body, timeout: timeout) {
                case .delivered: return .success(status: 200)
                case .retry(_, let status?, let detail, let retryAfter):
                    return .status(status, body: detail, retryAfter: retryAfter)
                case .retry(_, nil, let detail, _): return .failed(detail)
                case .rejected(_, let status, let body): return .status(status, body: body, retryAfter: nil)
                }
            }
        }
    }
}
