/// What the application does with proxied traffic (the exporter: route to a model, measure, decode the capture).
/// The proxy itself keeps no metrics.
///
/// Implementation requirements: a class (the proxy keeps a reference and reads it per request: a class existential
/// is copied with a retain, any other through the generic witness); both methods are called on the event loop that
/// serves the request, concurrently from different loops; they must be thread-safe and cheap. Decoding or anything
/// heavy goes to other threads.
public protocol ReverseProxyObserver: AnyObject, Sendable {
    /// A request arrived and is about to be forwarded (its body was received whole). Returns how much of the
    /// response body to copy for ``proxyExchangeEnded(_:)`` and any state the application wants back then.
    func proxyRequestStarted(_ request: HTTPRequest, requestID: String) -> ProxyTap
    /// The exchange is over: the response was sent to the client whole, or it failed, or the client left.
    ///
    /// The record is lent for the call: the observer may move parts out of it (a body handed to another thread)
    /// instead of copying them; the proxy destroys what is left after the call. (`inout`: a record passed by value
    /// was copied into the call and the original destroyed, a retain and a release of every field per request.)
    func proxyExchangeEnded(_ exchange: inout ProxyExchangeRecord)
    /// The proxy answered a request 400 itself, without forwarding it (a path with a dot segment); `reason` is
    /// `bad_request`, as the server's own refusals of malformed requests are counted. The default does nothing.
    func proxyRequestRefused(reason: String)
    /// An interim (1xx) response from the upstream was not passed on: the request had already had
    /// ``ProxyExchange/maxInformational`` of them (`reason`: `over_limit`). The default does nothing.
    func proxyInterimResponseDropped(reason: String)
}

extension ReverseProxyObserver {
    /// Does nothing: an observer that counts no refusals.
    public func proxyRequestRefused(reason: String) {}
    /// Does nothing: an observer that counts no dropped interim responses.
    public func proxyInterimResponseDropped(reason: String) {}
}

/// Watches one proxied exchange's bytes as they pass, for an application that measures a stream as it goes (an LLM's
/// tokens as they arrive). Given in ``ProxyTap/watcher``.
///
/// Implementation requirements: every method is called on the event loop that serves the exchange, in the order of
/// the bytes, and never concurrently; then ``ReverseProxyObserver/proxyExchangeEnded(_:)`` gets the tap (and so
/// the watcher) on the same loop. The methods must be cheap: they run for each piece read, before it is forwarded.
/// The pieces are only valid during the call. Times are seconds since the request arrived at the proxy, read once
/// per event-loop iteration (so pieces read in one iteration have the same time).
public protocol ProxyExchangeWatcher: AnyObject, Sendable {
    /// A piece of the client's request body (the whole body at once when it arrived whole).
    func requestBody(_ bytes: UnsafeRawBufferPointer)
    /// The client's request is complete (its last byte received), `elapsed` seconds after it arrived.
    func requestEnded(elapsed: Double)
    /// The upstream's response head.
    func responseHead(status: Int, headers: HTTPHeaders, elapsed: Double)
    /// A piece of the upstream's response body (after transfer decoding), read `elapsed` seconds after the request
    /// arrived.
    func responseBody(_ bytes: UnsafeRawBufferPointer, elapsed: Double)
    /// Hold the request body until it is complete, if it is at most this long, and offer it to
    /// ``rewriteRequestBody(_:)`` before anything of the request is sent upstream (0, the default: the body is
    /// forwarded as it arrives and never changed). A longer body is forwarded unchanged from the moment it passes
    /// the limit. Read once, when the exchange starts.
    var requestBodyHoldLimit: Int { get }
    /// The whole request body, held (see ``requestBodyHoldLimit``): the body to send instead, or nil to send it as it
    /// is. Called at most once, before any of the request is sent upstream (a streamed body: after
    /// ``requestEnded(elapsed:)``; a body that arrived whole: before ``requestBody(_:)``).
    func rewriteRequestBody(_ body: [UInt8]) -> [UInt8]?
    /// The upstream's work for the request is costly to finish (a text generation): when the client leaves, the
    /// upstream connection is closed at once, so that the upstream stops (servers such as vLLM abort a request whose
    /// connection closes, in their queue or prefill too), also before the response head, where the connection
    /// otherwise keeps its place in the pool while the response is read and dropped (``UpstreamConnection/abandon(closing:)``).
    /// Read when the client leaves.
    var cancelClosesUpstream: Bool { get }
}

extension ProxyExchangeWatcher {
    /// Bodies are not held by default.
    public var requestBodyHoldLimit: Int { 0 }
    /// Bodies are not changed by default.
    public func rewriteRequestBody(_ body: [UInt8]) -> [UInt8]? { nil }
    /// A client that leaves before the response head lets the upstream finish, by default.
    public var cancelClosesUpstream: Bool { false }
}

/// The application's per-request decision (``ReverseProxyObserver/proxyRequestStarted(_:requestID:)``).
public struct ProxyTap: Sendable {
    /// Copy at most this many bytes of the request body and of the response body (0: none). A longer body is still
    /// proxied whole; the record then says so (``ProxyExchangeRecord/requestBodyOverLimit``,
    /// ``ProxyExchangeRecord/responseBodyOverLimit``).
    public var captureLimit: Int
    /// Whatever the application needs again at the end (a route, a model), returned untouched: an object, so that
    /// copying the tap (per request) is a retain, not a generic existential copy.
    public var context: (any AnyObject & Sendable)?
    /// Sees the exchange's bytes as they pass (nil: nothing watches).
    public var watcher: (any ProxyExchangeWatcher)?

    /// Creates a tap.
    public init(
        captureLimit: Int = 0, context: (any AnyObject & Sendable)? = nil, watcher: (any ProxyExchangeWatcher)? = nil
    ) {
        self.captureLimit = captureLimit
        self.context = context
        self.watcher = watcher
    }
}

/// How a proxied exchange ended, for the application (``ReverseProxyObserver/proxyExchangeEnded(_:)``).
public struct ProxyExchangeRecord: Sendable {
    /// The client's request head (and its whole body when it was not streamed: an HTTP/2 request).
    public var request: HTTPRequest
    /// The first bytes of the request body, up to the tap's limit (none when its length, announced or whole, was
    /// over the limit: it is not copied); nil when nothing was to be captured.
    public var requestBody: [UInt8]?
    /// Whether the request body was longer than the tap's limit.
    public var requestBodyOverLimit: Bool
    /// Whether the client's body stopped short after the exchange had ended (the upstream answered, or the proxy failed
    /// it, before the body was in; then the client left, or was too slow), or never completed (an HTTP/2 stream
    /// abandoned mid-body): ``requestBody`` holds only what came. (An exchange that ends before the whole body waits
    /// for the rest of it, read for the capture and the watcher alone.)
    public var requestBodyCut: Bool = false
    /// The request id sent upstream (the client's, or a generated one, also returned to the client).
    public var requestID: String
    /// What ``ReverseProxyObserver/proxyRequestStarted(_:requestID:)`` returned.
    public var tap: ProxyTap
    /// The status the client got: the upstream's, or 502/503/504 from the proxy; nil when nothing was sent
    /// (the client left first).
    public var status: Int?
    /// The upstream's response head fields (hop-by-hop included), nil when no head came.
    public var responseHeaders: HTTPHeaders?
    /// The first bytes of the response body, up to the tap's limit (none when its `Content-Length` was over the
    /// limit: it is not copied); nil when nothing was to be captured (a request over the limit: nothing is).
    public var responseBody: [UInt8]?
    /// Whether the response body was longer than the tap's limit (then ``responseBody`` holds only its start, none
    /// when its `Content-Length` said so).
    public var responseBodyOverLimit: Bool
    /// Body bytes received from the upstream.
    public var responseBodyBytes: Int
    /// Why the upstream exchange failed, if it did.
    public var failure: UpstreamFailure?
    /// The client went away before the response was complete (or its request body could not be completed:
    /// ``requestBodyFailed``); the upstream request was dropped.
    public var cancelled: Bool
    /// The client's request body could not be completed (malformed, over the limit, too slow): the server answered the
    /// client itself and counted it by reason. The exchange is ``cancelled`` too, but the client did not leave.
    public var requestBodyFailed: Bool = false
    /// From the request's arrival at the proxy to the end of the exchange, in seconds.
    public var durationSeconds: Double
    /// From the request's arrival to the upstream's response head, in seconds; nil without a head.
    public var timeToHeadSeconds: Double?
    // The proxy builds its records with the implicit memberwise initializer, kept by declaring the public initializer
    // in an extension: the written-out one (even inlined) built the record in a temporary, then copied it out and
    // destroyed the temporary (a retain and a release of every field, per request).
}

extension ProxyExchangeRecord {
    /// Creates a record (the proxy makes these; an application's tests may too). The request is unlabelled so that this
    /// initializer differs from the memberwise one the proxy uses.
    public init(
        _ request: HTTPRequest, requestBody: [UInt8]? = nil, requestBodyOverLimit: Bool = false,
        requestBodyCut: Bool = false, requestID: String,
        tap: ProxyTap, status: Int?, responseHeaders: HTTPHeaders? = nil,
        responseBody: [UInt8]? = nil, responseBodyOverLimit: Bool = false, responseBodyBytes: Int = 0,
        failure: UpstreamFailure? = nil, cancelled: Bool = false, requestBodyFailed: Bool = false,
        durationSeconds: Double, timeToHeadSeconds: Double? = nil
    ) {
        self.request = request
        self.requestBody = requestBody
        self.requestBodyOverLimit = requestBodyOverLimit
        self.requestBodyCut = requestBodyCut
        self.requestID = requestID
        self.tap = tap
        self.status = status
        self.responseHeaders = responseHeaders
        self.responseBody = responseBody
        self.responseBodyOverLimit = responseBodyOverLimit
        self.responseBodyBytes = responseBodyBytes
        self.failure = failure
        self.cancelled = cancelled
        self.requestBodyFailed = requestBodyFailed
        self.durationSeconds = durationSeconds
        self.timeToHeadSeconds = timeToHeadSeconds
    }
}
