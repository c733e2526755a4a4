/// The application side of the server: turns requests into responses.
///
/// Implementation requirements:
/// - ``handle(_:respond:)`` is called on an event-loop thread, one request at a time per loop.
///   It must return quickly: anything slow (I/O, heavy rendering) must be moved to another thread
///   or task by the handler itself, which then calls `respond` from there.
/// - `respond` must be called exactly once per request, from any thread, during or after `handle`.
///   Extra calls are ignored. A request that never gets a response keeps its connection open
///   (until the peer resets it or the shutdown deadline passes); on HTTP/1.1 it also blocks the
///   responses pipelined after it, on HTTP/2 only its own stream waits.
public protocol HTTPHandler: Sendable {
    /// Handles one request; see the protocol's requirements. The request is the handler's (`consuming`: a handler
    /// that keeps it, like the reverse proxy, stores it without a copy; one that does not may declare it borrowed).
    func handle(_ request: consuming HTTPRequest, respond: HTTPResponder)

    /// Decides whether the server may receive the body announced by `head` (an HTTP/1.x request with
    /// `Content-Length` > 0 or `Transfer-Encoding: chunked`, or an HTTP/2 HEADERS frame without
    /// END_STREAM), before any of it is buffered: authentication and cheap checks belong here, so that a
    /// client without credentials never gets the server to hold its body. `head.body` is empty.
    ///
    /// Called on an event-loop thread, like ``handle(_:respond:)``; it must return quickly and call the
    /// admission exactly once, from any thread, during or after the call. While undecided the body is not
    /// read (HTTP/1.1) or not acknowledged (HTTP/2 flow control). A rejection is sent as the request's
    /// response and the body is discarded (HTTP/1.1 closes the connection after it). The default admits.
    func admit(_ head: HTTPRequest, admission: HTTPAdmission)

    /// Whether an admitted HTTP/1.x request body is handed over as it arrives rather than whole: the request is
    /// dispatched once its head is read, with the body to come piece by piece (the server's reverse proxy; an
    /// internal stream, so only handlers of this module can read it). Default: false. A fixed-length body that
    /// arrived whole with its head (at most the 64 KiB streaming window) comes whole, as over HTTP/2 every body
    /// does. Read once, when the server starts.
    var streamsRequestBodies: Bool { get }

    /// Whether ``admit(_:admission:)`` decides anything: false for a handler that admits every body (the default
    /// `admit`), so that the server admits at once without building a request head for it (a round per request
    /// with a body). Default: true; only a handler that does not implement `admit` may answer false. Read once, when
    /// the server starts (HTTP/1.1; HTTP/2 reads it per request).
    var screensRequestBodies: Bool { get }

    /// Whether requests go to the server's reverse proxy (``ReverseProxy``): the HTTP/1.x parser then works out, as
    /// it reads each head, how the proxy forwards its field lines (no second pass over them; see
    /// ``RequestFieldPlan``). Only a handler that hands its requests to a ``ReverseProxy`` should answer true (the
    /// work is wasted otherwise). Default: false. Read once, when the server starts.
    var forwardsRequests: Bool { get }
    /// A request the server took up but will never hand to ``handle(_:respond:)`` nor answer: an HTTP/2 stream whose
    /// head was valid and whose body was admitted (or whose complete request waited for the peer to take earlier
    /// answers) closed first: its client reset it, or its connection ended. `head.body` holds what came of the body.
    /// `clientLeft`: false when the server cut it (a malformed body, a protocol error, a timeout: counted by the server
    /// by reason; or the shutdown's deadline). Called on the event-loop thread, inside the server's HTTP/2 processing,
    /// once per such request: it must return quickly and call nothing of the server. HTTP/1.x requests never come
    /// here (a client that leaves mid-body leaves a streaming handler's request, handed over at its head, cancelled).
    /// Default: nothing.
    func abandoned(_ head: HTTPRequest, clientLeft: Bool)
}

extension HTTPHandler {
    /// Bodies arrive whole.
    public var streamsRequestBodies: Bool { false }

    /// Admits every body.
    public func admit(_ head: HTTPRequest, admission: HTTPAdmission) {
        admission.accept()
    }

    /// `admit` is asked.
    public var screensRequestBodies: Bool { true }

    /// Requests are not forwarded.
    public var forwardsRequests: Bool { false }
    /// Nothing is counted.
    public func abandoned(_ head: HTTPRequest, clientLeft: Bool) {}
}

/// The answer to ``HTTPHandler/admit(_:admission:)``: call ``accept()`` or ``reject(_:)`` once.
/// Thread-safe; only the first call counts.
public struct HTTPAdmission: Sendable {
    /// Where the decision goes: the request's connection (no closures per request), or a closure.
    private enum Destination: Sendable {
        case connection(EventLoop, connectionID: UInt64, liveness: ConnectionLiveness)
        case closure(@Sendable (HTTPResponse?) -> Void, isCancelled: @Sendable () -> Bool)
    }

    private let destination: Destination
    /// The request on its connection, for a caller that drives a connection by hand (the fuzz harness).
    let requestID: UInt64?

    /// An admission that hands the decision to `decide` (nil: accepted); `isCancelled` tells whether the
    /// client is gone. The server makes these; a handler's tests may too.
    public init(
        isCancelled: @escaping @Sendable () -> Bool = { false }, _ decide: @escaping @Sendable (HTTPResponse?) -> Void
    ) {
        self.destination = .closure(decide, isCancelled: isCancelled)
        self.requestID = nil
    }

    /// The admission of request `requestID` on connection `connectionID` of `loop`.
    init(loop: EventLoop, connectionID: UInt64, liveness: ConnectionLiveness, requestID: UInt64) {
        self.destination = .connection(loop, connectionID: connectionID, liveness: liveness)
        self.requestID = requestID
    }

    private func decide(_ rejection: HTTPResponse?) {
        switch destination {
        case .connection(let loop, let connectionID, _):
            loop.decideAdmission(rejection, connectionID: connectionID, requestID: requestID ?? 0)
        case .closure(let decide, _):
            decide(rejection)
        }
    }

    /// Whether the connection has closed: the decision will be dropped, so expensive work for it (a password
    /// hash) can be skipped. Thread-safe, cheap (one atomic load).
    public var isCancelled: Bool {
        switch destination {
        case .connection(_, _, let liveness): liveness.isClosed
        case .closure(_, let isCancelled): isCancelled()
        }
    }

    /// The body may be received; the request is handed to ``HTTPHandler/handle(_:respond:)`` when complete.
    public func accept() { decide(nil) }

    /// The body is refused: `response` (a 401, 403, 413, 429 or 503, typically) is the request's answer.
    public func reject(_ response: HTTPResponse) { decide(response) }
}

/// The completion of one request: call it once with the response.
///
/// Calling it on the request's own event-loop thread (typically synchronously inside
/// ``HTTPHandler/handle(_:respond:)``) queues the response without a thread hop; from any other
/// thread the response is posted to the loop, which is woken through its eventfd.
public struct HTTPResponder: Sendable {
    /// Where the response goes: the request's connection, or a closure (a handler mounted elsewhere).
    enum Destination: Sendable {
        case connection(EventLoop, connectionID: UInt64, liveness: ConnectionLiveness)
        case closure(@Sendable (HTTPResponse) -> Void, isCancelled: @Sendable () -> Bool)
    }

    let destination: Destination
    let requestID: UInt64
    /// Fields set on the response before it is sent (see ``settingHeaders(_:)``).
    var extraHeaders: [(name: String, value: String)] = []

    /// The responder of request `requestID` on `connection`; `liveness` is the request's own (an HTTP/2 stream's,
    /// closed by a reset), else the connection's.
    init(connection: Connection, requestID: UInt64, liveness: ConnectionLiveness? = nil) {
        self.destination = .connection(
            connection.loop, connectionID: connection.id, liveness: liveness ?? connection.liveness)
        self.requestID = requestID
    }

    /// A responder that hands the response to `deliver` instead of a connection: how a handler is driven
    /// without this server (another HTTP server, tests). `deliver` is called from whatever thread the handler
    /// answers on, as many times as the handler calls the responder (once, by the handler's contract);
    /// `isCancelled` answers ``isCancelled``.
    public init(
        isCancelled: @escaping @Sendable () -> Bool = { false }, _ deliver: @escaping @Sendable (HTTPResponse) -> Void
    ) {
        self.destination = .closure(deliver, isCancelled: isCancelled)
        self.requestID = 0
    }

    /// Whether the request's connection has closed (or its HTTP/2 stream was reset): a response would be dropped, so
    /// work still queued for it can be skipped. Thread-safe, cheap (an atomic load or two).
    public var isCancelled: Bool {
        switch destination {
        case .connection(_, _, let liveness): liveness.isClosed
        case .closure(_, let isCancelled): isCancelled()
        }
    }

    /// Sends `response` for the request this responder belongs to. Thread-safe; only the first call counts.
    public func callAsFunction(_ response: HTTPResponse) {
        var response = response
        for field in extraHeaders { response.headers.setWrapping(name: field.name, value: field.value) }
        switch destination {
        case .connection(let loop, let connectionID, _):
            loop.deliver(response, connectionID: connectionID, requestID: requestID)
        case .closure(let deliver, _):
            deliver(response)
        }
    }

    /// The event loop serving the request's connection: the thread ``handle(_:respond:)`` runs on. Nil for a
    /// closure responder.
    var eventLoop: EventLoop? {
        if case .connection(let loop, _, _) = destination { return loop }
        return nil
    }

    /// On the request's event-loop thread only: a stream through which the response is sent piece by piece
    /// (``HTTPResponseStream``), instead of calling the responder. Nil off the loop thread, for a closure
    /// responder, when the client is gone, or when the protocol cannot stream the request.
    func makeStream() -> HTTPResponseStream? {
        guard case .connection(let loop, let connectionID, _) = destination, loop.isOnLoopThread,
            let connection = loop.connection(withID: connectionID), !connection.isClosed
        else { return nil }
        let stream = HTTPResponseStream(requestID: requestID, connection: connection, extraHeaders: extraHeaders)
        return connection.protocolHandler.attachStream(stream, connection: connection) ? stream : nil
    }

    /// A responder for the same request that also sets `fields` on the response, replacing any field of
    /// the same name (a `Content-Security-Policy` is added beside the response's own: both apply): how a wrapping
    /// handler adds headers (security headers) to whatever the inner one says.
    public func settingHeaders(_ fields: [(name: String, value: String)]) -> HTTPResponder {
        var copy = self
        copy.extraHeaders.append(contentsOf: fields)
        return copy
    }
}

/// Adapts a closure to ``HTTPHandler``, handy for tests and small servers.
public struct HTTPClosureHandler: HTTPHandler {
    let body: @Sendable (HTTPRequest, HTTPResponder) -> Void

    /// Wraps `body`, which has the same contract as ``HTTPHandler/handle(_:respond:)``.
    public init(_ body: @escaping @Sendable (HTTPRequest, HTTPResponder) -> Void) {
        self.body = body
    }

    /// Calls the wrapped closure.
    public func handle(_ request: HTTPRequest, respond: HTTPResponder) {
        body(request, respond)
    }
}

/// Hooks through which the embedding application observes the server, e.g. to export self metrics.
/// The server itself keeps no metrics.
///
/// Implementation requirements: a class (the server reads it per request: a class existential is copied with a
/// retain); methods are called synchronously on event-loop threads, concurrently from different loops, so they
/// must be thread-safe and cheap (an atomic increment, not I/O).
public protocol HTTPServerObserver: AnyObject, Sendable {
    /// A connection was accepted and is now served.
    func connectionOpened()
    /// A connection was closed, for whatever reason; pairs with ``connectionOpened()``.
    func connectionClosed()
    /// The last byte of a handler's response was handed to the kernel.
    /// `responseBytes` counts head and body as written; `durationSeconds` runs from the moment the
    /// request was fully received to that last write. Parse-error responses are not reported here.
    func requestCompleted(
        method: String, status: Int, protocolName: String, responseBytes: Int, durationSeconds: Double)
    /// Something went wrong on a connection or listener. `reason` is one of a small fixed set of labels:
    /// `header_timeout`, `body_timeout`, `idle_timeout`, `write_stall`, `bad_request` (400, 501, 505),
    /// `too_large` (413, 414, 431), `incomplete_request` (peer closed mid-request), `reset` (peer reset or
    /// write failed), `shutdown` (closed at the shutdown deadline), `emfile` (accept ran out of descriptors),
    /// `accept_failed`; bodies: `body_too_slow` (408: below ``HTTPServer/Configuration/minBodyRate`` or over
    /// ``HTTPServer/Configuration/bodyTimeout``), `body_memory` (503: the body budget is full), `body_connections`
    /// (503: every connection slot for bodies is taken); HTTP/2: `stream_refused` (a stream beyond the limit of unanswered requests); TLS:
    /// the labels of ``HTTPServer/tlsErrorReasons`` (`tls_handshake_timeout`, `tls_no_client_certificate`, …).
    /// A connection that an error ends is reported once, under its first reason (a client that leaves before
    /// reading its 400 is not a `reset` as well); HTTP/2 stream-level errors (`stream_refused`, a stream's
    /// `too_large` or refused body, a proxied stream's `write_stall`) are reported per stream.
    func connectionError(reason: String)
}
