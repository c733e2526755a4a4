import Glibc
import Synchronization

/// An ``HTTPHandler`` that forwards every request to one HTTP/1.1 upstream and streams the response back: the
/// reverse proxy of the exporter's sidecar mode, on the server's own event loops (no thread of its own).
///
/// - Upstream connections are kept alive in a pool per event loop (``Configuration/maxConnections`` and
///   ``Configuration/maxWaiting`` split over the loops, their shares adding up to the totals, as nginx's `keepalive`
///   is per worker), and spoken to
///   in HTTP/1.1 whatever the client spoke.
/// - Bodies stream both ways with back-pressure. An HTTP/1.x request body is forwarded piece by piece as it arrives
///   (with its `Content-Length`, or chunked), the client's reading paused while 256 KiB wait for the upstream; the
///   response body is streamed back piece by piece, and when the client does not read, the upstream is not read
///   either. An HTTP/2 request body arrives whole (the server's body limits apply) and is sent with a
///   `Content-Length`. Over HTTP/2 the response streams too, per stream (its flow-control window is the client's
///   room).
/// - Hop-by-hop fields are removed both ways; `X-Forwarded-For`/`-Proto`/`-Host` are added, `Host` is kept; the
///   request id header is passed on, or generated (``Configuration/makeRequestID``) and returned to the client.
/// - The ``ReverseProxyObserver`` sees each request and the end of each exchange; the proxy keeps no metrics.
public final class ReverseProxy: HTTPHandler, Sendable {
    /// Where and how to forward.
    public struct Configuration: Sendable {
        /// The upstream's resolved address.
        public var upstream: UpstreamAddress
        /// Prefix of every upstream path (the upstream URL's path), empty or starting with `/`, no trailing `/`.
        public var basePath: String = ""
        /// Upstream connections at most, over all event loops (default 64).
        public var maxConnections: Int = 64
        /// Requests waiting for a connection at most, over all event loops (default 1024); beyond: 503.
        public var maxWaiting: Int = 1024
        /// Longest wait for a new upstream connection to be established.
        public var connectTimeout: Duration = .seconds(5)
        /// From the last request byte written to the response head.
        public var responseTimeout: Duration = .seconds(60)
        /// Longest gap between reads of the response body.
        public var readTimeout: Duration = .seconds(60)
        /// An idle pooled connection closes after this (keep it under the upstream's keep-alive timeout).
        public var idleTimeout: Duration = .seconds(4)
        /// `X-Forwarded-Proto`: the scheme clients use to reach the proxy (`http`, or `https` behind TLS).
        public var forwardedProto: String = "http"
        /// The request id field (passed on, or generated and returned).
        public var requestIDHeader: String = "X-Request-Id"
        /// Makes a request id when the client sent none.
        public var makeRequestID: @Sendable () -> String
        /// The event loops of the server this handler runs in (``HTTPServer/Configuration/eventLoopCount``).
        public var eventLoopCount: Int

        /// A configuration with the defaults above.
        public init(
            upstream: UpstreamAddress, eventLoopCount: Int, makeRequestID: @escaping @Sendable () -> String
        ) {
            self.upstream = upstream
            self.eventLoopCount = max(1, eventLoopCount)
            self.makeRequestID = makeRequestID
        }
    }

    /// One loop's pool, made on that loop's thread at its first request and touched only there.
    private final class PoolSlot: @unchecked Sendable {
        @exclusivity(unchecked) var pool: UpstreamPool?
    }

    /// What it was made with.
    public let configuration: Configuration
    let observer: (any ReverseProxyObserver)?
    private let poolObserver: (any UpstreamPoolObserver)?
    private let pools: [PoolSlot]
    private let timeouts: UpstreamPool.Timeouts
    private let retired = RetiredFlag()
    /// The `Host` sent when the client sent none: the upstream's `host:port`, rendered once, not per request.
    private let hostFallback: String
    /// `<requestIDHeader>: ` as bytes, the start of the field line returning a generated id to an HTTP/1.x client;
    /// nil when the name is no token (such a field is never sent).
    let requestIDLinePrefix: [UInt8]?
    /// The request id header's bit in a received section's name filter (``HTTPHeaders/mayHaveReceived(nameBit:)``):
    /// whether an upstream's answer may hold that field is one test per response, no `String` looked at.
    let requestIDNameBit: UInt32

    /// A proxy to `configuration.upstream`, reporting to `observer` and `poolObserver`.
    public init(
        configuration: Configuration, observer: (any ReverseProxyObserver)?,
        poolObserver: (any UpstreamPoolObserver)? = nil
    ) {
        self.configuration = configuration
        self.observer = observer
        self.poolObserver = poolObserver
        self.pools = (0..<configuration.eventLoopCount).map { _ in PoolSlot() }
        self.hostFallback = configuration.upstream.description
        let idName = configuration.requestIDHeader
        self.requestIDLinePrefix =
            HTTPHeaders.isSendable(name: idName.utf8, value: "") ? Array((idName + ": ").utf8) : nil
        self.requestIDNameBit = HTTPHeaders.nameBit(count: idName.utf8.count, first: idName.utf8.first ?? 0)
        self.timeouts = UpstreamPool.Timeouts(
            connect: configuration.connectTimeout.nanoseconds, response: configuration.responseTimeout.nanoseconds,
            read: configuration.readTimeout.nanoseconds, idle: configuration.idleTimeout.nanoseconds)
    }

    /// Says that another proxy took this one's place (a reload's new upstream settings): its pools close each
    /// connection once it is done with the exchanges in flight or waiting, instead of keeping it for requests that
    /// now go to the new proxy's pools. What is idle already closes at its idle timeout. Thread-safe.
    public func retire() { retired.set() }

    /// HTTP/1.x request bodies are forwarded as they arrive.
    public var streamsRequestBodies: Bool { true }

    /// Every body is admitted (the server's limits still apply): no admission round per request.
    public var screensRequestBodies: Bool { false }

    /// The parser plans how each HTTP/1.x head's field lines are forwarded.
    public var forwardsRequests: Bool { true }

    /// Forwards `request` on the calling event loop's pool (the server calls it there). The request is consumed: the
    /// exchange keeps it, uncopied, for its record.
    public func handle(_ request: consuming HTTPRequest, respond: HTTPResponder) {
        guard let loop = respond.eventLoop, loop.isOnLoopThread, loop.index < pools.count else {
            respond(HTTPResponse(status: 500, text: "the proxy runs only on its server's event loops\n"))
            return
        }
        if let refusal = Self.targetRefusal(request) {
            refuse(refusal, respond)
            return
        }
        // The parser's plan for this request's field lines (HTTP/1.x), lent for this call.
        var plan = loop.lentForwardPlan
        if request.method == "TRACE" || request.method == "OPTIONS", request.headers.contains("Max-Forwards") {
            // A singleton field (RFC 9110 §7.6.2) given twice: which one counts is anybody's guess.
            guard request.headers.values(for: "Max-Forwards").count == 1 else {
                refuse("Max-Forwards given more than once\n", respond)
                return
            }
            // Not `1*DIGIT` (`abc`, `-1`): passed on unchanged, it stopped no loop.
            guard let forwards = Self.maxForwards(request.headers) else {
                refuse("Max-Forwards is not a number of digits\n", respond)
                return
            }
            // RFC 9110 §7.6.2: at 0 the proxy is the final recipient; else the upstream gets the lesser of one less
            // and the largest value the proxy recognises (a value of 23 digits went on unchanged).
            guard forwards > 0 else {
                respond(Self.finalRecipientResponse(request))
                return
            }
            let next = String(min(forwards - 1, Self.largestMaxForwards))
            request.headers.storage = request.headers.storage.map {
                HTTPHeaders.namesEqual($0.name, "max-forwards") ? ($0.name, next) : $0
            }
            plan = nil  // the fields are no longer the received lines
        }
        if let refusal = requestIDRefusal(request.headers) {
            refuse(refusal, respond)
            return
        }
        // A stream is attached to every request the server is still serving (HTTP/1.x and HTTP/2); none means the
        // client is gone, and the answer below goes nowhere.
        guard let stream = respond.makeStream() else {
            respond(HTTPResponse(status: 500, text: "the request's connection cannot take a streamed response\n"))
            return
        }
        let pool = self.pool(on: loop)
        // The client's id, unless empty, or named by `Connection` (hop-by-hop: dropped, and the proxy's sent instead).
        // A plan exists only when `Connection` names no field.
        var clientID = request.headers[configuration.requestIDHeader].flatMap { $0.isEmpty ? nil : $0 }
        if clientID != nil, plan == nil,
            ForwardedRequest.isListed(
                configuration.requestIDHeader.utf8, ForwardedRequest.connectionListed(request.headers))
        {
            clientID = nil
        }
        let requestID = clientID ?? configuration.makeRequestID()
        let tap = observer?.proxyRequestStarted(request, requestID: requestID) ?? ProxyTap()
        // A whole body (HTTP/2) the watcher holds is offered before anything is encoded.
        if let watcher = tap.watcher, request.bodyStream == nil, !request.body.isEmpty,
            request.body.count <= watcher.requestBodyHoldLimit,
            let replacement = watcher.rewriteRequestBody(request.body)
        {
            request.body = replacement
        }
        forward(
            consume request, plan: plan, requestID: consume requestID, generatedID: clientID == nil, tap: consume tap,
            pool: consume pool, loop: loop, stream: consume stream)
    }

    /// A request whose HTTP/2 stream closed before its body was complete (or while it waited for the client to take
    /// earlier answers): counted as an exchange its client left before anything went upstream (cancelled; when the
    /// server ended the connection, its body failed instead), as an HTTP/1.x request whose client leaves mid-body
    /// is; what came of its body is seen by the tap's watcher and copied for the record as it would have been. One
    /// the proxy would have refused at once (``targetRefusal(_:)``, ``requestIDRefusal(_:)``) counts as that refusal.
    /// No request id is generated for it.
    public func abandoned(_ head: HTTPRequest, clientLeft: Bool) {
        guard let observer else { return }
        guard Self.targetRefusal(head) == nil, requestIDRefusal(head.headers) == nil else {
            observer.proxyRequestRefused(reason: "bad_request")
            return
        }
        let requestID = head.headers[configuration.requestIDHeader] ?? ""
        let tap = observer.proxyRequestStarted(head, requestID: requestID)
        // What came of the body, as an HTTP/1.x exchange whose client left mid-body has it: seen by the watcher (an
        // LLM route's model is the one its body names so far), copied up to the tap's limit.
        let body = head.body
        if let watcher = tap.watcher, !body.isEmpty { body.withUnsafeBytes { watcher.requestBody($0) } }
        let overLimit = tap.captureLimit > 0 && body.count > tap.captureLimit
        var record = ProxyExchangeRecord(
            head, requestBody: tap.captureLimit > 0 && !overLimit ? body : nil, requestBodyOverLimit: overLimit,
            requestBodyCut: true, requestID: requestID, tap: tap, status: nil, cancelled: true,
            requestBodyFailed: !clientLeft, durationSeconds: 0)
        observer.proxyExchangeEnded(&record)
    }

    /// Why the proxy refuses `request`'s target itself (400), nil when it does not: a dot segment (a path the upstream
    /// may resolve to another one than the route matched), or a fragment, no part of a request target (RFC 9112 §3.2):
    /// upstreams cut it off, so the path the route attributed (`/v2/models/credit/infer#x`: to no model) was not the
    /// one served.
    @inline(__always)
    static func targetRefusal(_ request: borrowing HTTPRequest) -> String? {
        if DotSegments.present(in: request.path) { return "the request path has a dot segment (. or ..)\n" }
        if hasFragment(request.path) || (request.query.map(hasFragment) ?? false) {
            return "the request target has a fragment (#)\n"
        }
        return nil
    }

    /// Why the proxy refuses the request id of `headers` (400), nil when it does not. Given twice: the upstream (or a
    /// mesh) may take the other line, and a label posted with that id found no prediction (the first line was the
    /// event id; both went upstream). Not UTF-8: read with U+FFFD in place of its bad bytes, two such ids were one
    /// event id (the second prediction replaced the first) and neither could be labelled by its own bytes (a capture
    /// probe); refused as the KServe logger receiver refuses such a `ce-id` (its bytes checked when a U+FFFD shows).
    @inline(__always)
    func requestIDRefusal(_ headers: HTTPHeaders) -> String? {
        guard headers.mayHaveReceived(nameBit: requestIDNameBit) else { return nil }
        let name = configuration.requestIDHeader
        if headers.isRepeated(name) { return "\(name) given more than once\n" }
        if let id = headers[name], id.unicodeScalars.contains("\u{FFFD}"), !headers.firstValueIsValidUTF8(name) {
            return "\(name) is not valid UTF-8\n"
        }
        return nil
    }

    /// Answers a request the proxy refuses itself: 400 with `text`, counted `bad_request` as the server's own refusals
    /// of malformed requests are.
    private func refuse(_ text: String, _ respond: HTTPResponder) {
        observer?.proxyRequestRefused(reason: "bad_request")
        respond(HTTPResponse(status: 400, text: text))
    }

    /// Whether `text` holds a `#` (one library scan of its bytes).
    static func hasFragment(_ text: String) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { bytes in
            bytes.baseAddress.map { memchr($0, Int32(UInt8(ascii: "#")), bytes.count) != nil } ?? false
        } ?? text.utf8.contains(UInt8(ascii: "#"))
    }

    /// The largest `Max-Forwards` the proxy recognises (nine digits): a larger value is taken for one more than it.
    static let largestMaxForwards = 999_999_999

    /// The `Max-Forwards` value of a TRACE or OPTIONS request, when it is `1*DIGIT` (over nine digits:
    /// ``largestMaxForwards`` + 1); nil when absent or not a number.
    static func maxForwards(_ headers: HTTPHeaders) -> Int? {
        guard let text = headers["Max-Forwards"], !text.isEmpty,
            text.utf8.allSatisfy({ $0 &- UInt8(ascii: "0") < 10 })
        else { return nil }
        let digits = text.utf8.drop { $0 == UInt8(ascii: "0") }
        return digits.count > 9 ? largestMaxForwards + 1 : Int(text)
    }

    /// The proxy's answer as the final recipient of a TRACE or OPTIONS request whose `Max-Forwards` is 0: OPTIONS
    /// 200 with no content; TRACE 200 with the request message it received as `message/http` (RFC 9110 §9.3.8),
    /// without the fields likely to hold credentials (`Authorization`, `Proxy-Authorization`, `Cookie`).
    static func finalRecipientResponse(_ request: borrowing HTTPRequest) -> HTTPResponse {
        guard request.method == "TRACE" else { return HTTPResponse(status: 200) }  // the server sends Content-Length: 0
        var text = request.method + " " + request.path + (request.query.map { "?" + $0 } ?? "") + " HTTP/1.1\r\n"
        for field in request.headers {
            let name = field.name.lowercased()
            guard name != "authorization" && name != "proxy-authorization" && name != "cookie" else { continue }
            text += field.name + ": " + field.value + "\r\n"
        }
        text += "\r\n"
        return HTTPResponse(status: 200, headers: ["Content-Type": "message/http"], body: Array(text.utf8))
    }

    /// Encodes `request` for the upstream and starts its exchange. What the exchange keeps is consumed (moved into it,
    /// not copied: a borrowed id, tap, pool and stream were retained as the exchange stored them, and released by the
    /// caller after).
    private func forward(
        _ request: consuming HTTPRequest, plan: RequestFieldPlan?, requestID: consuming String, generatedID: Bool,
        tap: consuming ProxyTap, pool: consuming UpstreamPool, loop: EventLoop, stream: consuming HTTPResponseStream
    ) {
        let bytes = ForwardedRequest.encode(
            request, plan: plan, basePath: configuration.basePath, hostFallback: hostFallback,
            forwardedProto: configuration.forwardedProto, requestIDHeader: configuration.requestIDHeader,
            requestID: requestID, addRequestID: generatedID, arrays: loop.byteArrays)
        let exchange = ProxyExchange(
            proxy: self, pool: consume pool, loop: loop, request: consume request, requestID: consume requestID,
            generatedID: generatedID, tap: consume tap, upstreamRequest: bytes, stream: consume stream)
        exchange.start()
    }

    /// Loop `loop`'s part of `total` split over `loops`: the shares add up to `total` exactly (the first
    /// `total % loops` loops take one more). A server with more loops than ``Configuration/maxConnections`` still
    /// gives each loop one connection: run it with at most that many loops (the exporter does).
    static func share(of total: Int, loop: Int, loops: Int) -> Int {
        total / loops + (loop < total % loops ? 1 : 0)
    }

    private func pool(on loop: EventLoop) -> UpstreamPool {
        let slot = pools[loop.index]
        if let pool = slot.pool { return pool }
        let pool = UpstreamPool(
            loop: loop, address: configuration.upstream,
            maxConnections: max(1, Self.share(of: configuration.maxConnections, loop: loop.index, loops: pools.count)),
            maxWaiting: Self.share(of: configuration.maxWaiting, loop: loop.index, loops: pools.count),
            timeouts: timeouts, observer: poolObserver, retired: retired)
        slot.pool = pool
        return pool
    }
}
