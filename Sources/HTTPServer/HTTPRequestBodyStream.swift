/// The body of a request handed to the handler before it has arrived (``HTTPHandler/streamsRequestBodies``): its
/// pieces are given to ``onData`` as they are read, chunked coding removed, then ``onEnd`` (or ``onFailure``).
///
/// Confined to the event loop of the request's connection (hence `@unchecked Sendable`: it rides in an
/// ``HTTPRequest``, but is touched only there); the handler sets the callbacks during
/// ``HTTPHandler/handle(_:respond:)`` (pieces that arrive before are held, at most one read's worth). ``onData``
/// returns false when the handler cannot take more for now: the connection stops reading the body until
/// ``resume()``. While paused, the body's timeouts do not run (the wait is the handler's). The body's limits
/// (``HTTPServer/Configuration/maxBodySize``) still apply; a body that breaks them fails (``onFailure``), like one
/// whose client leaves or whose framing is invalid.
final class HTTPRequestBodyStream: @unchecked Sendable {
    /// `Content-Length`, or nil for a chunked body.
    let contentLength: Int?
    /// Called with each piece; return false to pause (then ``resume()`` to go on).
    var onData: ((UnsafeRawBufferPointer) -> Bool)? {
        didSet { deliverHeld() }
    }
    /// Called once when the whole body has been given.
    var onEnd: (() -> Void)? {
        didSet { deliverHeld() }
    }
    /// Called once when the body cannot be completed (the client left, a timeout, invalid framing, a limit).
    var onFailure: (() -> Void)? {
        didSet { deliverHeld() }
    }

    private(set) var isPaused = false
    private(set) var bytesReceived = 0
    private var held: [[UInt8]] = []
    private var ended = false
    private var failed = false
    private var finished = false
    private weak var connection: Connection?

    init(contentLength: Int?, connection: Connection) {
        self.contentLength = contentLength
        self.connection = connection
    }

    /// Reading goes on after ``onData`` returned false.
    func resume() {
        guard isPaused else { return }
        isPaused = false
        if let connection, !connection.isClosed { connection.loop.markDirty(connection) }
    }

    // MARK: - Session side

    /// A piece of the body; false when the handler paused.
    func deliver(_ piece: UnsafeRawBufferPointer) -> Bool {
        bytesReceived += piece.count
        guard let onData, held.isEmpty else {
            held.append([UInt8](piece))
            return true
        }
        if !onData(piece) { isPaused = true }
        return !isPaused
    }

    func end() {
        ended = true
        deliverHeld()
    }

    func fail() {
        guard !ended else { return }
        failed = true
        deliverHeld()
    }

    private func deliverHeld() {
        guard !finished else { return }
        if let onData {
            while !held.isEmpty {
                let piece = held.removeFirst()
                if !piece.withUnsafeBytes(onData) { isPaused = true }
            }
        }
        if ended, held.isEmpty, let onEnd {
            finished = true
            self.onEnd = nil
            onEnd()
        } else if failed, let onFailure {
            finished = true
            held = []
            self.onFailure = nil
            onFailure()
        }
    }
}
