/// What receives a streamed request body (the reverse proxy's exchange): held strongly until the body ends or
/// fails, then let go (no closure contexts or weak references per request).
protocol HTTPRequestBodyStreamDelegate: AnyObject {
    /// A piece of the body (valid during the call); false to pause (then ``HTTPRequestBodyStream/resume()``).
    func requestBodyPiece(_ piece: UnsafeRawBufferPointer) -> Bool
    /// The whole body has been given (called once).
    func requestBodyEnded()
    /// The body cannot be completed: the client left, a timeout, invalid framing, a limit (called once).
    func requestBodyFailed()
}

/// The body of a request handed to the handler before it has arrived (``HTTPHandler/streamsRequestBodies``): its
/// pieces are given to the ``delegate`` as they are read, chunked coding removed, then its end (or failure).
///
/// Confined to the event loop of the request's connection (hence `@unchecked Sendable`: it rides in an
/// ``HTTPRequest``, but is touched only there); the handler sets the delegate during
/// ``HTTPHandler/handle(_:respond:)`` (pieces that arrive before are held, at most one read's worth). A piece's call
/// returns false when the handler cannot take more for now: the connection stops reading the body until
/// ``resume()``. While paused, the body's timeouts do not run (the wait is the handler's). The body's limits
/// (``HTTPServer/Configuration/maxBodySize``) still apply; a body that breaks them fails, like one
/// whose client leaves or whose framing is invalid.
final class HTTPRequestBodyStream: @unchecked Sendable {
    /// `Content-Length`, or nil for a chunked body.
    let contentLength: Int?
    /// Gets the pieces, then the end or the failure; held until then (the stream lets it go when it finishes).
    @exclusivity(unchecked) var delegate: (any HTTPRequestBodyStreamDelegate)? {
        didSet { deliverHeld() }
    }

    @exclusivity(unchecked) private(set) var isPaused = false
    @exclusivity(unchecked) private(set) var bytesReceived = 0
    @exclusivity(unchecked) private var held: [[UInt8]] = []
    @exclusivity(unchecked) private var ended = false
    @exclusivity(unchecked) private var failed = false
    @exclusivity(unchecked) private var finished = false
    /// The request was answered with no delegate taken: the rest of the body is read and dropped.
    @exclusivity(unchecked) private var discarding = false
    /// Strong, not weak: the connection holds the stream only while the body is being received (its session lets go
    /// when the body ends or the connection closes), so the two never keep each other; a weak reference would send
    /// every retain and release of the connection, many per request, through its side table. Let go once the body has
    /// ended or failed.
    @exclusivity(unchecked) private var connection: Connection?

    init(contentLength: Int?, connection: Connection) {
        self.contentLength = contentLength
        self.connection = connection
    }

    /// Reading goes on after a piece's call returned false.
    func resume() {
        guard isPaused else { return }
        isPaused = false
        if let connection, !connection.isClosed { connection.loop.markDirty(connection) }
    }

    // MARK: - Session side

    /// The request was answered whole without its handler taking the body (a proxy refusing it: a dot segment, a
    /// repeated request id): what is held and what follows is dropped as it is read. Held instead, it grew to the body
    /// limit, 16 MiB a connection, outside the buffered-body budget.
    func discardUnclaimed() {
        guard delegate == nil else { return }
        discarding = true
        held = []
    }

    /// A piece of the body; false when the handler paused.
    func deliver(_ piece: UnsafeRawBufferPointer) -> Bool {
        bytesReceived += piece.count
        guard let delegate, held.isEmpty else {
            if !discarding { held.append([UInt8](piece)) }
            return true
        }
        if !delegate.requestBodyPiece(piece) { isPaused = true }
        return !isPaused
    }

    func end() {
        ended = true
        connection = nil
        deliverHeld()
    }

    func fail() {
        guard !ended else { return }
        failed = true
        connection = nil
        deliverHeld()
    }

    private func deliverHeld() {
        guard !finished, let delegate else { return }
        while !held.isEmpty {
            let piece = held.removeFirst()
            if !piece.withUnsafeBytes({ delegate.requestBodyPiece($0) }) { isPaused = true }
        }
        if ended, held.isEmpty {
            finished = true
            self.delegate = nil
            delegate.requestBodyEnded()
        } else if failed {
            finished = true
            held = []
            self.delegate = nil
            delegate.requestBodyFailed()
        }
    }
}
