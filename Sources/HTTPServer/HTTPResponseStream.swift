/// What a stream's writer is told (the reverse proxy's exchange), instead of the ``HTTPResponseStream/onCancel`` and
/// ``HTTPResponseStream/onWritable`` closures: held strongly until the stream ends (``HTTPResponseStream/respond(_:)``,
/// ``HTTPResponseStream/finish()``, ``HTTPResponseStream/abort()``, the client leaving) or the writer clears it, so a
/// stream costs no closure contexts or weak references.
protocol HTTPResponseStreamDelegate: AnyObject {
    /// The client went away before the stream ended (called once, like ``HTTPResponseStream/onCancel``).
    func responseStreamCancelled()
    /// The queued output fell below the low-water mark after a write answered false (like
    /// ``HTTPResponseStream/onWritable``).
    func responseStreamWritable()
}

/// The response bytes one HTTP/2 connection holds for its peer and has not framed yet, whole answers and streamed ones
/// together, against ``HTTPServer/Configuration/http2MaxUnsentResponseBytes``; shared by the session and the streams
/// attached to it (``HTTPResponseStream/connectionUnsent``), so that a write needs no lookup. While the connection
/// holds ``limit`` or more, requests wait before the handler and every writer is told to stop (``HTTPResponseStream/
/// write(_:)`` answers false); the writers wait in ``waiting`` and are woken in that order as the peer takes bytes.
/// Before, only whole answers counted: 100 streams of a peer whose windows stay shut held 256 KiB each.
final class UnsentResponseBytes {
    let limit: Int
    /// Bytes of whole answers not yet framed.
    @exclusivity(unchecked) var whole = 0
    /// Bytes of streamed answers not yet framed: pieces queued in the attached streams and the rest of the piece each
    /// one is framing.
    @exclusivity(unchecked) var streamed = 0
    /// Writers of attached streams told to stop, oldest first (each once: ``HTTPResponseStream/waitsForConnection``).
    @exclusivity(unchecked) var waiting: [HTTPResponseStream] = []

    init(limit: Int) { self.limit = limit }

    var total: Int { whole + streamed }
    /// Whether the connection holds its bound: no request is started, no writer may go on.
    var isFull: Bool { whole + streamed >= limit }
}

/// A response whose body is produced piece by piece while it is sent (a proxied upstream response): the head
/// first, then body pieces as they arrive, then the end.
///
/// Confined to the event loop of the request's connection: made there by ``HTTPResponder/makeStream()`` and used
/// only there (the reverse proxy drives it from the same loop's upstream sockets). Contract:
/// - Exactly one of: ``respond(_:)`` (a whole response, e.g. a 502 before any upstream byte), or ``start(status:headers:contentLength:)``
///   followed by ``write(_:)`` calls and then ``finish()`` or ``abort()``.
/// - ``write(_:)`` copies the bytes; it returns whether the caller may go on writing now. After `false` the
///   caller should stop producing until ``onWritable`` is called (what is written anyway is still sent: the
///   bound is the caller's to keep).
/// - When the client goes away first, ``onCancel`` is called once (on the loop) and later calls are ignored.
/// - The session frames the body: `Content-Length` when given to `start`, else chunked (HTTP/1.1) or
///   close-delimited (HTTP/1.0); over HTTP/2 as DATA frames.
final class HTTPResponseStream {
    enum State: Equatable {
        /// Nothing sent yet.
        case idle
        /// The head is given; body pieces may follow.
        case streaming
        /// ``finish()`` was called.
        case finished
        /// ``abort()`` was called: the response is cut (the client sees it incomplete).
        case aborted
        /// The client left, or a whole response was given: nothing more is taken.
        case closed
    }

    /// The head given to ``start(status:headers:contentLength:)`` or ``start(status:fieldLines:hasDate:contentLength:)``.
    struct Head {
        var status: Int
        /// The fields; empty when they came as ``fieldLines``.
        var headers: HTTPHeaders
        var contentLength: Int?
        /// The fields as HTTP/1.1 field lines, written as they are (an HTTP/1.x session only); nil: ``headers``.
        var fieldLines: [UInt8]? = nil
        /// The runs of ``fieldLines`` left out (nil: all of it is written).
        var fieldLinesSkipping: FieldLineCopyPlan? = nil
        /// A field line written after ``fieldLines``: ``lastLinePrefix`` (`Name: `), ``lastLineValue``, CRLF; none when
        /// the prefix is empty. Not an optional tuple: destroying one goes through the runtime's generic witness.
        var lastLinePrefix: [UInt8] = []
        var lastLineValue = ""
        /// Whether ``fieldLines`` hold a `Date` field (the session adds one otherwise).
        var fieldLinesHaveDate = false

        /// The bytes of the field lines written.
        var fieldLinesCount: Int {
            guard let fieldLines else { return 0 }
            let kept = fieldLinesSkipping?.keptCount(of: fieldLines.count) ?? fieldLines.count
            return kept + (lastLinePrefix.isEmpty ? 0 : lastLinePrefix.count + lastLineValue.utf8.count + 2)
        }
    }

    /// Output queued for the client above which ``write(_:)`` answers false.
    static let highWater = 256 * 1024
    /// Output queued below which a writer that was told to stop is called back (``onWritable``).
    static let lowWater = 64 * 1024

    let requestID: UInt64
    /// Strong, not weak: the connection holds the stream only while it is attached (its session lets go when the
    /// response is written or the connection closes, which cancels the stream), so the two never keep each other; a
    /// weak reference would send every retain and release of the connection, many per request, through its side
    /// table. Let go when the stream is cancelled.
    @exclusivity(unchecked) private(set) var connection: Connection?
    @exclusivity(unchecked) private(set) var state = State.idle
    @exclusivity(unchecked) private(set) var head: Head?
    /// The status of the head given to `start` (0 before): kept when an HTTP/1.x session takes the head
    /// (``takeHead()``).
    @exclusivity(unchecked) private(set) var status = 0
    /// Body pieces not yet taken by the session, in order.
    @exclusivity(unchecked) private(set) var pending: [[UInt8]] = []
    @exclusivity(unchecked) private(set) var pendingBytes = 0
    /// Body bytes given so far.
    @exclusivity(unchecked) private(set) var bodyBytes = 0
    /// A writer was told to stop (``write(_:)`` returned false) and waits for ``onWritable``.
    @exclusivity(unchecked) var waitsForSpace = false
    /// The unsent bytes of the HTTP/2 connection the stream is attached to (nil over HTTP/1.x, and once detached):
    /// its pieces count there, and its writer stops while the connection is full.
    @exclusivity(unchecked) var connectionUnsent: UnsentResponseBytes?
    /// In ``UnsentResponseBytes/waiting``.
    @exclusivity(unchecked) var waitsForConnection = false

    /// Called once when the client goes away before the stream ended.
    @exclusivity(unchecked) var onCancel: (() -> Void)?
    /// Called when the queued output fell below ``lowWater`` after ``write(_:)`` answered false.
    @exclusivity(unchecked) var onWritable: (() -> Void)?
    /// Told the same as ``onCancel`` and ``onWritable`` (after them); let go when the stream ends.
    @exclusivity(unchecked) var delegate: (any HTTPResponseStreamDelegate)?

    /// Fields a wrapping handler set on the responder (``HTTPResponder/settingHeaders(_:)``), set on the head too.
    private let extraHeaders: [(name: String, value: String)]

    init(requestID: UInt64, connection: Connection, extraHeaders: [(name: String, value: String)] = []) {
        self.requestID = requestID
        self.connection = connection
        self.extraHeaders = extraHeaders
    }

    /// Set by an HTTP/1.x session when it attaches the stream: it writes ``Head/fieldLines``.
    @exclusivity(unchecked) var sessionTakesFieldLines = false

    /// Whether ``start(status:fieldLines:hasDate:contentLength:)`` may be used: the session writes HTTP/1.1 field
    /// lines as given and no fields of a wrapping handler are to be merged in.
    var acceptsFieldLines: Bool { sessionTakesFieldLines && extraHeaders.isEmpty }

    /// Whether the client is gone (or the stream ended): writing is pointless.
    var isCancelled: Bool { state == .closed }

    /// Sends a whole response instead of a stream (only before ``start(status:headers:contentLength:)``).
    func respond(_ response: HTTPResponse) {
        guard state == .idle, let connection else { return }
        state = .closed
        onCancel = nil
        onWritable = nil
        delegate = nil
        var response = response
        for field in extraHeaders { response.headers.setWrapping(name: field.name, value: field.value) }
        connection.protocolHandler.deliver(response, requestID: requestID, connection: connection)
        connection.loop.markDirty(connection)
    }

    /// Sends an interim response (status 102...199: not 100, which the server answers itself for `Expect`, nor 101)
    /// before the head, when the protocol can (see ``ConnectionProtocolHandler/streamInformational``); ignored once
    /// the head is given.
    func informational(status: Int, headers: HTTPHeaders) {
        guard state == .idle, (102...199).contains(status), let connection, !connection.isClosed else { return }
        var headers = headers
        for field in extraHeaders { headers.setWrapping(name: field.name, value: field.value) }
        connection.protocolHandler.streamInformational(self, status: status, headers: headers, connection: connection)
        connection.loop.markDirty(connection)
    }

    /// Sends the head. `contentLength`: the body's exact length when known (it must then be exactly that long).
    func start(status: Int, headers: HTTPHeaders, contentLength: Int?) {
        guard state == .idle else { return }
        state = .streaming
        var headers = headers
        for field in extraHeaders { headers.setWrapping(name: field.name, value: field.value) }
        head = Head(status: status, headers: headers, contentLength: contentLength)
        self.status = status
        changed()
    }

    /// Sends the head with its fields already written as HTTP/1.1 field lines: each `Name: value` CRLF, the name a
    /// token, the value free of CR, LF and NUL, no `Connection`, `Content-Length` or `Transfer-Encoding` (the session
    /// frames the body); `hasDate`: a `Date` field is among them. Only when ``acceptsFieldLines``. `skipping`: runs of
    /// `fieldLines` left out (whole lines); `lastLinePrefix` (`Name: `) and `lastLineValue` (checked by the
    /// caller), written after them.
    func start(
        status: Int, fieldLines: [UInt8], skipping: FieldLineCopyPlan? = nil, hasDate: Bool,
        lastLinePrefix: [UInt8] = [], lastLineValue: String = "", contentLength: Int?
    ) {
        guard state == .idle else { return }
        precondition(acceptsFieldLines, "field lines given to a stream whose session does not take them")
        state = .streaming
        self.status = status
        head = Head(
            status: status, headers: HTTPHeaders(), contentLength: contentLength, fieldLines: fieldLines,
            fieldLinesSkipping: skipping, lastLinePrefix: lastLinePrefix,
            lastLineValue: lastLineValue, fieldLinesHaveDate: hasDate)
        changed()
    }

    /// The head, moved out: an HTTP/1.x session encodes it once and needs only ``status`` after (reading ``head``
    /// copied it, a retain and a release of each of its arrays and strings).
    func takeHead() -> Head? {
        var taken: Head?
        swap(&taken, &head)
        return taken
    }

    /// Queues a copy of `bytes` for the client; false when the caller should wait for ``onWritable``.
    @discardableResult
    func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard state == .streaming else { return false }
        if !bytes.isEmpty {
            bodyBytes += bytes.count
            if pending.isEmpty, let connection, !connection.isClosed,
                connection.protocolHandler.streamWrite(self, bytes, connection: connection)
            {
                // Copied into the connection's output (no piece of its own): written at the end of the iteration.
                connection.loop.markDirty(connection)
            } else {
                pending.append([UInt8](bytes))
                pendingBytes += bytes.count
                connectionUnsent?.streamed += bytes.count
                changed()
            }
        }
        guard state == .streaming, let connection else { return false }
        if let unsent = connectionUnsent {
            // HTTP/2: this stream's own bound, and the connection's over all its answers.
            guard pendingBytes + connection.output.pendingBytes >= Self.highWater || unsent.isFull else { return true }
            waitsForSpace = true
            if !waitsForConnection {
                waitsForConnection = true
                unsent.waiting.append(self)
            }
            return false
        }
        if pendingBytes + connection.output.pendingBytes >= Self.highWater {
            waitsForSpace = true
            return false
        }
        return true
    }

    /// Ends the body (the chunked coding's last chunk, or nothing more for a known length).
    func finish() {
        guard state == .streaming else { return }
        state = .finished
        onCancel = nil
        onWritable = nil
        delegate = nil
        changed()
    }

    /// Cuts the response so the client can tell the body is incomplete: over HTTP/1.1 what is queued is sent, then
    /// the connection closes; over HTTP/2 the stream is reset (RST_STREAM, INTERNAL_ERROR) and the pieces not yet
    /// framed are dropped. Before ``start(status:headers:contentLength:)`` it does the same without a head.
    func abort() {
        guard state == .streaming || state == .idle else { return }
        state = .aborted
        onCancel = nil
        onWritable = nil
        delegate = nil
        changed()
    }

    // MARK: - Session side

    /// The session takes the queued pieces.
    func takePending() -> [[UInt8]] {
        defer {
            pending = []
            pendingBytes = 0
        }
        return pending
    }

    /// The session takes the first queued piece (HTTP/2 takes them one at a time, as flow control lets them go, so
    /// that what waits for the peer's window still counts in ``pendingBytes``); nil when none is queued.
    func takePiece() -> [UInt8]? {
        guard !pending.isEmpty else { return nil }
        let piece = pending.removeFirst()
        pendingBytes -= piece.count
        return piece
    }

    /// The client went away (or the session dropped the request): tells the writer once.
    func cancel() {
        guard state == .idle || state == .streaming else {
            state = .closed
            return
        }
        state = .closed
        pending = []
        pendingBytes = 0
        connection = nil
        let callback = onCancel
        let delegate = self.delegate
        onCancel = nil
        onWritable = nil
        self.delegate = nil
        callback?()
        delegate?.responseStreamCancelled()
    }

    /// The session wrote output: wakes a writer that waits for space.
    func outputDrained(queuedBytes: Int) {
        guard waitsForSpace, state == .streaming, pendingBytes + queuedBytes < Self.lowWater else { return }
        waitsForSpace = false
        onWritable?()
        delegate?.responseStreamWritable()
    }

    private func changed() {
        guard let connection, !connection.isClosed else { return }
        connection.protocolHandler.streamChanged(self, connection: connection)
        connection.loop.markDirty(connection)
    }
}
