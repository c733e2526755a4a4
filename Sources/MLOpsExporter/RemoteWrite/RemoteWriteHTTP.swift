import ExporterConfig
import MetricsPush

/// ``RemoteWriter``'s transport: one POST per request to the configured receiver.
struct RemoteWriteHTTP: Sendable {
    let receiver: RemoteWriteReceiver?
    let timeout: Double

    init(configuration: RemoteWriteConfiguration) {
        receiver = try? RemoteWriteReceiver(
            url: configuration.url.description,
            headers: configuration.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
            userAgent: MLOpsExporterVersion.userAgent)
        timeout = configuration.timeout.seconds
    }

    func send(_ body: [UInt8]) -> RemoteWriter.Outcome {
        guard let receiver else { return .rejected("http_other", "the receiver's URL cannot be used") }
        switch receiver.post(body, timeout: timeout) {
        case .delivered: return .delivered
        case .retry(let reason, let status, let detail, let retryAfter):
            return .retry(reason, retryAfter: retryAfter, detail: status.map { "\($0): \(detail)" } ?? detail)
        case .rejected(let reason, let status, let body): return .rejected(reason, "\(status): \(body)")
        }
    }
}
