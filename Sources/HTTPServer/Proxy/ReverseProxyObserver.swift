/// What the application does with proxied traffic (the exporter: route to a model, measure, decode the capture).
/// The proxy itself keeps no metrics.
///
/// Implementation requirements: both methods are called on the event loop that serves the request, concurrently
/// from different loops; they must be thread-safe and cheap. Decoding or anything heavy goes to other threads.
public protocol ReverseProxyObserver: Sendable {
    /// A request arrived and is about to be forwarded (its body was received whole). Returns how much of the
    /// response body to copy for ``proxyExchangeEnded(_:)`` and any state the application wants back then.
    func proxyRequestStarted(_ request: HTTPRequest, requestID: String) -> ProxyTap
    /// The exchange is over: the response was sent to the client whole, or it failed, or the client left.
    func proxyExchangeEnded(_ exchange: ProxyExchangeRecord)
}

/// The application's per-request decision (``ReverseProxyObserver/proxyRequestStarted(_:requestID:)``).
public struct ProxyTap: Sendable {
    /// Copy at most this many bytes of the response body (0: none). A longer body is still proxied whole; the
    /// record then says ``ProxyExchangeRecord/responseBodyOverLimit``.
    public var responseCaptureLimit: Int
    /// Whatever the application needs again at the end (a route, a model), returned untouched.
    public var context: (any Sendable)?

    /// Creates a tap.
    public init(responseCaptureLimit: Int = 0, context: (any Sendable)? = nil) {
        self.responseCaptureLimit = responseCaptureLimit
        self.context = context
    }
}

/// How a proxied exchange ended, for the application (``ReverseProxyObserver/proxyExchangeEnded(_:)``).
public struct ProxyExchangeRecord: Sendable {
    /// The client's request as received (head and whole body).
    public var request: HTTPRequest
    /// The request id sent upstream (the client's, or a generated one, also returned to the client).
    public var requestID: String
    /// What ``ReverseProxyObserver/proxyRequestStarted(_:requestID:)`` returned.
    public var tap: ProxyTap
    /// The status the client got: the upstream's, or 502/503/504 from the proxy; nil when nothing was sent
    /// (the client left first).
    public var status: Int?
    /// The upstream's response head fields (hop-by-hop included), nil when no head came.
    public var responseHeaders: HTTPHeaders?
    /// The first bytes of the response body, up to the tap's limit; nil when nothing was to be captured.
    public var responseBody: [UInt8]?
    /// Whether the response body was longer than the tap's limit (then ``responseBody`` holds only its start).
    public var responseBodyOverLimit: Bool
    /// Body bytes received from the upstream.
    public var responseBodyBytes: Int
    /// Why the upstream exchange failed, if it did.
    public var failure: UpstreamFailure?
    /// The client went away before the response was complete.
    public var cancelled: Bool
    /// From the request's arrival at the proxy to the end of the exchange, in seconds.
    public var durationSeconds: Double
    /// From the request's arrival to the upstream's response head, in seconds; nil without a head.
    public var timeToHeadSeconds: Double?

    /// Creates a record (the proxy makes these; an application's tests may too).
    public init(
        request: HTTPRequest, requestID: String, tap: ProxyTap, status: Int?, responseHeaders: HTTPHeaders? = nil,
        responseBody: [UInt8]? = nil, responseBodyOverLimit: Bool = false, responseBodyBytes: Int = 0,
        failure: UpstreamFailure? = nil, cancelled: Bool = false, durationSeconds: Double,
        timeToHeadSeconds: Double? = nil
    ) {
        self.request = request
        self.requestID = requestID
        self.tap = tap
        self.status = status
        self.responseHeaders = responseHeaders
        self.responseBody = responseBody
        self.responseBodyOverLimit = responseBodyOverLimit
        self.responseBodyBytes = responseBodyBytes
        self.failure = failure
        self.cancelled = cancelled
        self.durationSeconds = durationSeconds
        self.timeToHeadSeconds = timeToHeadSeconds
    }
}
