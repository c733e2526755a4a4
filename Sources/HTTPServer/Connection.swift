import Glibc
import Synchronization

/// Which timeout currently runs on a connection. Exactly one runs at a time; its clock restarts when
/// the phase changes (and, for `body` and `write`, on every bit of progress).
enum TimerPhase: Equatable {
    /// No timeout: a handler is working on a request.
    case none
    /// Keep-alive: nothing in progress (``HTTPServer/Configuration/idleTimeout``).
    case idle
    /// Receiving a request head (``HTTPServer/Configuration/headerReadTimeout``, not reset by progress).
    case head
    /// Receiving a request body (``HTTPServer/Configuration/bodyReadTimeout`` between reads, and the
    /// protocol's ``ConnectionProtocolHandler/bodyDeadline(_:)``: total time and minimum rate).
    case body
    /// Output queued but the peer is not reading (``HTTPServer/Configuration/writeStallTimeout``).
    case write
    /// Closing: discarding late input before the final close.
    case linger
    /// The TLS handshake is under way (``HTTPServer/Configuration/tlsHandshakeTimeout``).
    case handshake
}

/// The protocol spoken over a ``Connection``: consumes its input buffer, produces into its output
/// queue, and tells the connection what it wants (input, a timeout, to be closed).
///
/// Two sessions implement it: ``HTTP1Session`` and ``HTTP2Session`` (nghttp2 in memory mode). A
/// connection starts with the HTTP/1 session and switches by replacing its `protocolHandler` — when the
/// first bytes are the client preface `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` (checked by the HTTP/1 session
/// before parsing its first request), after answering `101` to `Upgrade: h2c`, or up front when a TLS
/// transport negotiated ALPN `h2`. Bytes not yet consumed stay in the connection's input buffer and are
/// handed over as they are.
protocol ConnectionProtocolHandler: AnyObject {
    /// Consumes buffered input and dispatches requests as far as back-pressure allows. Called after
    /// every change (input read, output written, response delivered); must be idempotent.
    func process(_ connection: Connection)
    /// The handler's response for request `requestID`; unknown or duplicate ids are ignored.
    func deliver(_ response: HTTPResponse, requestID: UInt64, connection: Connection)
    /// Whether the connection should poll for input now.
    func wantsInput(_ connection: Connection) -> Bool
    /// Whether every request is answered and the connection should close once its output is written.
    func isFinished(_ connection: Connection) -> Bool
    /// The timeout that applies while no output is pending.
    func timerPhase(_ connection: Connection) -> TimerPhase
    /// The timeout of `phase` (`idle`, `head` or `body`) expired.
    func timerExpired(_ phase: TimerPhase, connection: Connection)
    /// In the `body` phase: the earliest deadline (monotonic ns) of a body being received, from its total
    /// time and minimum rate (``ServerContext/bodyDeadline(start:received:)``); nil when none applies.
    func bodyDeadline(_ connection: Connection) -> UInt64?
    /// The handler decided the admission of request `requestID` (nil: accepted); unknown or repeated
    /// decisions are ignored.
    func admissionDecided(_ rejection: HTTPResponse?, requestID: UInt64, connection: Connection)
    /// The peer finished sending (read returned 0).
    func inputEnded(_ connection: Connection)
    /// Graceful shutdown started: finish the request in progress, accept no new one.
    func beginDrain(_ connection: Connection)
    /// Whether the protocol stopped producing output only because enough was queued (HTTP/2 pulls frames
    /// below a threshold): once the queue is written, ``process(_:)`` must run again.
    func hasMoreOutput(_ connection: Connection) -> Bool
    /// Ties `stream` to its request (``HTTPResponseStream/requestID``): its head and body are sent as they come.
    /// False when the request is unknown, answered, or the protocol cannot stream it.
    func attachStream(_ stream: HTTPResponseStream, connection: Connection) -> Bool
    /// An attached stream got its head, body bytes, its end or an abort.
    func streamChanged(_ stream: HTTPResponseStream, connection: Connection)
    /// An interim (1xx) response for an attached stream whose head is not sent yet: sent now if the protocol and the
    /// stream's place allow it (HTTP/1.1 at the front of the pipeline, HTTP/2), else dropped (1xx are advisory).
    func streamInformational(_ stream: HTTPResponseStream, status: Int, headers: HTTPHeaders, connection: Connection)
    /// Body bytes of `stream` (which holds no pieces waiting): true when the protocol queued a copy for the peer
    /// right away (the stream is the one being sent, its head is out, its framing needs no piece of its own), false
    /// to leave them to the stream (a piece, then ``streamChanged(_:connection:)``).
    func streamWrite(_ stream: HTTPResponseStream, _ bytes: UnsafeRawBufferPointer, connection: Connection) -> Bool
    /// Some output was written to the peer (streams waiting for room may go on).
    func outputWritten(_ connection: Connection)
    /// While ``timerPhase(_:)`` says `write` (a response body held back only for the peer's flow-control window):
    /// whether body data moved since the last call, which restarts the write-stall timer. Other writes (a PING's or
    /// a SETTINGS acknowledgement) are no progress: a peer that pings but never opens its window is closed at the
    /// timeout. Only asked in that phase.
    func windowProgress(_ connection: Connection) -> Bool
    /// The connection is closing, for whatever reason: attached streams must be cancelled.
    func connectionClosed(_ connection: Connection)
    /// Whether what was read since the last call (`didRead`: something was) is activity that restarts the idle timeout:
    /// for HTTP/1.x anything read (a request, whole or begun); for HTTP/2 only frames that carry requests (HEADERS, DATA
    /// of a stream still receiving), not the PINGs, SETTINGS or WINDOW_UPDATEs a peer may send to hold its slot. Asked
    /// at every update, so that what was read in another phase is not taken for activity later.
    func idleActivity(_ connection: Connection, didRead: Bool) -> Bool
    /// The connection, kept alive idle, is about to be closed to make room (``Connection/evict()``): a protocol that
    /// can say so queues it in the output (HTTP/2: GOAWAY, NO_ERROR, so that the client knows that no request of its
    /// was cut). Written once, without waiting, before the close.
    func sayGoodbye(_ connection: Connection)
}

extension ConnectionProtocolHandler {
    func hasMoreOutput(_ connection: Connection) -> Bool { false }
    func bodyDeadline(_ connection: Connection) -> UInt64? { nil }
    func attachStream(_ stream: HTTPResponseStream, connection: Connection) -> Bool { false }
    func streamChanged(_ stream: HTTPResponseStream, connection: Connection) {}
    func streamInformational(
        _ stream: HTTPResponseStream, status: Int, headers: HTTPHeaders, connection: Connection
    ) {}
    func streamWrite(_ stream: HTTPResponseStream, _ bytes: UnsafeRawBufferPointer, connection: Connection) -> Bool {
        false
    }
    func outputWritten(_ connection: Connection) {}
    func windowProgress(_ connection: Connection) -> Bool { true }
    func connectionClosed(_ connection: Connection) {}
    func idleActivity(_ connection: Connection, didRead: Bool) -> Bool { didRead }
    func sayGoodbye(_ connection: Connection) {}
}

/// A connection's closed flag, shared with the responders and admissions of its requests on other threads; or an
/// HTTP/2 stream's, closed with its stream (a reset) or with its connection (`parent`).
final class ConnectionLiveness: Sendable {
    private let closed = Atomic<Bool>(false)
    private let parent: ConnectionLiveness?

    init(parent: ConnectionLiveness? = nil) { self.parent = parent }

    var isClosed: Bool { closed.load(ordering: .relaxed) || parent?.isClosed == true }

    func markClosed() { closed.store(true, ordering: .relaxed) }
}

/// One accepted socket: owns its transport, input buffer, output queue, timer and protocol handler,
/// and is confined to the thread of its ``EventLoop``.
///
/// The connection does the I/O and the lifecycle; the protocol handler does the HTTP. Flow:
/// the loop calls ``handle(_:)`` with epoll readiness (read into the input buffer, note writability),
/// and after every batch of events, deliveries and timer expiries it calls ``process()`` on each
/// touched connection, which lets the protocol consume input, writes output with one gathered
/// write (`send` of a copy when small, else `sendmsg`), closes when the protocol is finished, and
/// re-arms epoll interest and the deadline.
///
/// Closing after a final response is graceful: `shutdown(SHUT_WR)` first, then unread input is
/// drained for a short while ("lingering close"), because closing a socket that still has unread
/// data sends RST, which may make the peer discard the response it has not read yet.
final class Connection: DeadlineScheduled {
    let id: UInt64
    /// The loop that owns the connection (its table holds it until it closes) and runs all of its code. Strong and
    /// `let`: read in place, borrowed from the connection, with no retain or release around the calls made on it
    /// (`unowned(unsafe)` made each read a copy: 17 retain/release pairs of the loop a proxied request, 34 atomic
    /// updates). The loop lets go of every connection when it stops (``EventLoop``'s tear-down), so no cycle outlives it.
    let loop: EventLoop
    let transport: any ConnectionTransport
    let remoteAddress: String
    /// Replaced only from within its own ``ConnectionProtocolHandler/process(_:)`` (HTTP/1 switching to HTTP/2), which
    /// ``process()`` relies on to keep it in a local.
    @exclusivity(unchecked) var protocolHandler: any ConnectionProtocolHandler
    @exclusivity(unchecked) var input = InputBuffer()
    @exclusivity(unchecked) var output = OutputQueue()

    /// The peer finished sending.
    @exclusivity(unchecked) private(set) var inputClosed = false
    @exclusivity(unchecked) private(set) var isClosed = false
    @exclusivity(unchecked) private var lingering = false
    @exclusivity(unchecked) private var registeredInterest: EpollEvents = []
    @exclusivity(unchecked) private var timerPhase: TimerPhase = .none
    @exclusivity(unchecked) private var timerBase: UInt64 = 0
    /// Set while an eviction scan passes this connection over (``EventLoop``'s `evictIdle`).
    @exclusivity(unchecked) var evictionPassedOver = false

    /// Since when the connection has been kept alive idle (monotonic ns): its requests answered, its output written,
    /// nothing of a next one read; nil otherwise.
    var idleSince: UInt64? { timerPhase == .idle && output.isEmpty && !isClosed ? timerBase : nil }
    @exclusivity(unchecked) private var didRead = false
    @exclusivity(unchecked) private var didWrite = false
    /// Set by the protocol when a request head was complete since the last timer update (``requestHeadEnded()``).
    @exclusivity(unchecked) private var headEnded = false
    @exclusivity(unchecked) var isDirty = false
    /// Set by the protocol when it stops reading in the middle of a request (parse error, timeout):
    /// the peer is probably still sending, so the close must linger.
    @exclusivity(unchecked) var lingerOnClose = false
    /// Whether an error was counted for this connection (``countError(_:)``).
    @exclusivity(unchecked) private(set) var errorCounted = false

    /// Whether this connection has closed, readable from any thread (responders and admissions hold it).
    let liveness = ConnectionLiveness()
    /// Request-body bytes this connection holds in the server's ``BodyBudget`` (bodies being received and
    /// bodies whose response is not yet delivered); all returned when it closes.
    @exclusivity(unchecked) private(set) var bodyBytesReserved = 0
    /// Whether this connection holds one of the budget's receiving slots.
    @exclusivity(unchecked) private(set) var holdsReceivingSlot = false

    // DeadlineScheduled
    @exclusivity(unchecked) var deadline: UInt64 = 0
    @exclusivity(unchecked) var due: UInt64 = 0
    @exclusivity(unchecked) var heapIndex = -1

    // Eviction at the connection cap (``EventLoop``'s list of connections that have had no request yet).
    /// When the acceptor accepted the connection (monotonic ns): ages at the cap count from there, not from when its
    /// loop (perhaps busy) adopted it, so that connections from several loops are evicted in the order they came.
    let acceptedAt: UInt64
    /// No request yet: its TLS handshake, its first request head or (HTTP/2) its first stream is still to come. Cleared
    /// for good by ``EventLoop/firstRequestArrived(_:)`` when the timer phase first says a request is under way.
    @exclusivity(unchecked) var awaitingFirstRequest = true
    /// The neighbours in the loop's list of connections awaiting their first request, oldest first.
    @exclusivity(unchecked) var olderAwaiting: Connection?
    @exclusivity(unchecked) var newerAwaiting: Connection?

    init(
        id: UInt64, loop: EventLoop, transport: any ConnectionTransport, remoteAddress: String,
        protocolHandler: any ConnectionProtocolHandler, acceptedAt: UInt64? = nil
    ) {
        self.id = id
        self.loop = loop
        self.transport = transport
        self.remoteAddress = remoteAddress
        self.protocolHandler = protocolHandler
        self.timerBase = loop.now
        self.acceptedAt = acceptedAt ?? loop.now
    }

    /// The interest the loop registered the descriptor with at adoption.
    static let initialInterest: EpollEvents = [.readable, .readHangup]

    func markRegistered(_ interest: EpollEvents) {
        registeredInterest = interest
    }

    // MARK: - Request bodies

    /// In the `body` phase: whether the gap between reads (``HTTPServer/Configuration/bodyReadTimeout``) ran
    /// out, rather than the protocol's ``ConnectionProtocolHandler/bodyDeadline(_:)``.
    var bodyReadGapExpired: Bool { loop.now >= timerBase &+ loop.context.bodyReadTimeout }

    /// Reserves `count` body bytes against this connection's limit and the process-wide budget.
    func reserveBodyBytes(_ count: Int) -> BodyReservation {
        guard count > 0 else { return .reserved }
        let context = loop.context
        if bodyBytesReserved + count > context.connectionBodyLimit { return .connectionLimit }
        guard context.bodyBudget.reserve(count) else { return .processLimit }
        bodyBytesReserved += count
        return .reserved
    }

    /// The admission through which a handler answers ``HTTPHandler/admit(_:admission:)`` for request `requestID`.
    func admission(requestID: UInt64, liveness: ConnectionLiveness? = nil) -> HTTPAdmission {
        HTTPAdmission(loop: loop, connectionID: id, liveness: liveness ?? self.liveness, requestID: requestID)
    }

    /// Returns `count` bytes reserved with ``reserveBodyBytes(_:)``.
    func releaseBodyBytes(_ count: Int) {
        let count = min(count, bodyBytesReserved)
        bodyBytesReserved -= count
        loop.context.bodyBudget.release(count)
    }

    /// Claims a connection slot for receiving bodies (idempotent); false when every unreserved slot is taken.
    func claimReceivingSlot() -> Bool {
        if holdsReceivingSlot { return true }
        holdsReceivingSlot = loop.context.bodyBudget.claimReceivingSlot()
        return holdsReceivingSlot
    }

    /// Gives the receiving slot back (idempotent).
    func releaseReceivingSlot() {
        guard holdsReceivingSlot else { return }
        holdsReceivingSlot = false
        loop.context.bodyBudget.releaseReceivingSlot()
    }

    // MARK: - Events

    /// Handles epoll readiness. The loop calls ``process()`` afterwards.
    func handle(_ events: EpollEvents) {
        if events.contains(.error) || (events.contains(.hangup) && !lingering) {
            // Reset by the peer (or both directions shut down): nothing can be answered any more.
            close(reason: resetReason)
            return
        }
        if lingering {
            discardInput()
            return
        }
        if events.contains(.readable) || events.contains(.readHangup)
            || (events.contains(.writable) && transport.wantsWritable)
        {
            readInput()  // also drives a TLS handshake that waited for writability
        }
    }

    /// How a reset by the peer is counted: `reset`, unless the connection was idle between requests with nothing left
    /// to send (nil: not an error): such a client lost nothing (a script streaming through the proxy with the openai
    /// SDK that exits without closing its client resets its connection so, most times).
    private var resetReason: String? {
        output.isEmpty && protocolHandler.timerPhase(self) == .idle ? nil : "reset"
    }

    /// A TLS handshake step ran off the loop: its outcome is taken up (and what it allows read) by reading.
    func handshakeStepped() {
        guard !isClosed, !lingering, !inputClosed, let secure = transport as? TLSTransport else { return }
        secure.stepReturned = true
        readInput()
    }

    private func readInput() {
        for _ in 0..<4 {
            let (outcome, filled) = input.read(from: transport, minimumSpace: 4096)
            switch outcome {
            case .bytes:
                didRead = true
                if !filled { return }  // drained the socket for now
            case .wouldBlock:
                return
            case .endOfFile:
                inputClosed = true
                protocolHandler.inputEnded(self)
                return
            case .failed:
                if let detail = transport.failureDetail {
                    loop.context.logger.debug(
                        "TLS failure",
                        metadata: [
                            "peer": "\(remoteAddress)", "reason": "\(transport.failureReason ?? "")",
                            "detail": "\(detail)",
                        ])
                }
                close(reason: transport.failureReason ?? resetReason)
                return
            }
        }
    }

    /// Lingering close: read and drop whatever the peer still sends until it closes or the linger ends.
    private func discardInput() {
        for _ in 0..<16 {
            var outcome = TransportResult.wouldBlock
            _ = input.write(minimumSpace: 16 * 1024) { buffer in
                outcome = transport.read(into: buffer)
                return 0
            }
            switch outcome {
            case .bytes: continue
            case .wouldBlock: return
            case .endOfFile, .failed:
                close(reason: nil)
                return
            }
        }
    }

    /// The deadline of the current timer phase passed.
    func timerExpired() {
        switch timerPhase {
        case .none:
            break
        case .linger:
            close(reason: nil)
        case .write:
            close(reason: "write_stall")
        case .handshake:
            close(reason: "tls_handshake_timeout")
        case .idle, .head, .body:
            protocolHandler.timerExpired(timerPhase, connection: self)
        }
    }

    /// Graceful shutdown started.
    func beginDrain() {
        guard !isClosed, !lingering else { return }
        protocolHandler.beginDrain(self)
    }

    // MARK: - Processing

    /// Lets the protocol consume input, writes output, closes when finished, and re-arms interest and
    /// the timer. Called by the loop after anything touched this connection.
    func process() {
        guard !isClosed else { return }
        // The handler in a local: each read of the stored existential would retain and release it around its call.
        // Only `process(_:)` replaces it (HTTP/1 switching to HTTP/2), so the local is refreshed after that call.
        var handler = protocolHandler
        if !lingering && !inputClosed && transport.hasBufferedInput && handler.wantsInput(self) {
            readInput()
            if isClosed { return }
        }
        if !lingering {
            for _ in 0..<64 {
                handler.process(self)
                if isClosed { return }
                if handler !== protocolHandler { handler = protocolHandler }
                if output.isEmpty { break }
                let responsesBefore = output.pendingResponses
                // A proxy's written arrays are kept for its next exchanges (``ByteArrayPool``; read in the call,
                // borrowed: a local optional copy of the reference was a retain and a release per write).
                let result =
                    loop.context.handlerForwardsRequests
                    ? output.write(to: transport, scratch: loop.iovecScratch, arrays: loop.byteArrays) { completed in
                        loop.responseCompleted(completed)
                    }
                    : output.write(to: transport, scratch: loop.iovecScratch, arrays: nil) { completed in
                        loop.responseCompleted(completed)
                    }
                switch result {
                case .bytes(let count):
                    if count > 0 {
                        didWrite = true
                        handler.outputWritten(self)
                    }
                case .wouldBlock:
                    // Only bytes that went out restart the write-stall timer: a peer that keeps the socket
                    // full while trickling input must not keep the connection alive forever.
                    if output.lastWriteBytes > 0 {
                        didWrite = true
                        handler.outputWritten(self)
                    }
                case .endOfFile:
                    break
                case .failed:
                    close(reason: "reset")
                    return
                }
                // Written responses free pipelining capacity: let the protocol take more requests; a protocol
                // that held output back produces the rest now that the queue is empty.
                if !output.isEmpty { break }
                if output.pendingResponses == responsesBefore && !handler.hasMoreOutput(self) { break }
            }
            if output.isEmpty && handler.isFinished(self) {
                finish()
                if isClosed { return }
            }
            if !inputClosed && transport.hasBufferedInput && handler.wantsInput(self) {
                loop.markDirty(self)  // decrypted input is waiting inside the transport
            }
            if output.isEmpty && handler.hasMoreOutput(self) {
                loop.markDirty(self)  // the 64 rounds above ran out: continue after the other connections
            }
        }
        accountUnreadOutput()
        updateRegistration(handler)
    }

    /// The output bytes this connection last added to ``SharedMemoryBounds/unreadAnswerBytes``.
    @exclusivity(unchecked) private var unreadReported = 0

    /// Brings this connection's part of ``SharedMemoryBounds/unreadAnswerBytes`` to what its queue still holds: one
    /// comparison when nothing is left unwritten and nothing was (the common case), an atomic add otherwise.
    @inline(__always)
    private func accountUnreadOutput() {
        let held = output.pendingBytes
        guard held != unreadReported else { return }
        loop.context.memory.unreadAnswerBytes.add(held &- unreadReported, ordering: .relaxed)
        unreadReported = held
    }

    /// All responses are written: close now, or half-close and linger when the peer may still be
    /// sending (see the type's documentation). Like nginx, linger only when there is evidence of
    /// unread input, so an ordinary `Connection: close` or a shutdown does not wait for the peer.
    private func finish() {
        if inputClosed {
            close(reason: nil)
            return
        }
        if !lingerOnClose && input.isEmpty {
            var outcome = TransportResult.wouldBlock
            _ = input.write(minimumSpace: 4096) { buffer in
                outcome = transport.read(into: buffer)
                return 0
            }
            if case .bytes = outcome {
                // Unread data after all: linger below.
            } else {
                close(reason: nil)
                return
            }
        }
        transport.shutdownOutput()
        lingering = true
        input.removeAll()
        discardInput()
    }

    /// `handler`: ``protocolHandler``, held by the caller (see ``process()``).
    private func updateRegistration(_ handler: any ConnectionProtocolHandler) {
        var interest: EpollEvents = []
        if lingering {
            interest = [.readable, .readHangup]
        } else {
            if !inputClosed && !transport.pausesInput {
                // Without input wanted, still notice a peer that leaves (FIN), so that work waiting for it (an
                // admission) is cancelled; what it sent before leaving is read then, at most a socket buffer.
                interest.formUnion(handler.wantsInput(self) ? [.readable, .readHangup] : [.readHangup])
            }
            if !output.isEmpty || transport.wantsWritable { interest.insert(.writable) }
        }
        if interest != registeredInterest {
            loop.modifyInterest(of: self, to: interest)
            registeredInterest = interest
        }

        let phase: TimerPhase =
            if lingering {
                .linger
            } else if !output.isEmpty {
                .write
            } else if transport.isHandshaking {
                .handshake
            } else {
                handler.timerPhase(self)
            }
        // A timer restarts when its phase begins, and on progress: body bytes read, output written, and for an idle
        // connection what the protocol takes for activity (``ConnectionProtocolHandler/idleActivity(_:didRead:)``:
        // HTTP/1.x anything read, HTTP/2 only frames that carry requests; it is still idle only if whole requests came
        // and were answered in this iteration: a partial head makes it `.head`, whose time is not restarted by
        // progress). Without the idle case a keep-alive connection whose requests were answered at once was closed one
        // idle timeout after it first went idle, however busy; with any read counting, an HTTP/2 peer that sent a PING
        // every few seconds held its slot for ever.
        // The header timeout is per head: a head that ended restarts it for the next one begun in the same read
        // (pipelined heads split across writes; otherwise the phase would stay `.head` from one head to the next).
        // `write` with nothing queued is the handler's: a body held for the peer's flow-control window, restarted
        // only when body data moved (a written PING acknowledgement is no progress); asked at every update in that
        // phase, so that data sent before it began is not taken for progress later.
        let heldForWindow = phase == .write && output.isEmpty
        let bodyMoved = heldForWindow && handler.windowProgress(self)
        let idleActivity = handler.idleActivity(self, didRead: didRead)
        if phase != timerPhase || (didRead && phase == .body) || (idleActivity && phase == .idle)
            || (phase == .write && didWrite && (!heldForWindow || bodyMoved)) || (phase == .head && headEnded)
        {
            timerBase = loop.now
        }
        didRead = false
        didWrite = false
        headEnded = false
        timerPhase = phase
        if awaitingFirstRequest && (phase == .none || phase == .idle || phase == .body) {
            loop.firstRequestArrived(self)  // a request is under way, or was answered: no longer evictable
        }
        loop.schedule(
            self, phase: phase, from: timerBase, notAfter: phase == .body ? handler.bodyDeadline(self) : nil)
    }

    /// The protocol read a whole request head: the header timeout of a head begun after it starts afresh.
    @inline(__always)
    func requestHeadEnded() { headEnded = true }

    /// Counts the error that ends this connection (``HTTPServerObserver/connectionError(reason:)``), once: a
    /// connection is counted under its first reason only (a client that leaves without reading its 400 is not
    /// counted `reset` as well).
    func countError(_ reason: String) {
        guard !errorCounted else { return }
        errorCounted = true
        loop.context.observer?.connectionError(reason: reason)
    }

    /// Closes the connection to make room for a waiting client (idle eviction, counted `evicted_idle`): what the
    /// protocol says in goodbye (``ConnectionProtocolHandler/sayGoodbye(_:)``, HTTP/2's GOAWAY) is written once,
    /// without waiting (an idle connection's send buffer has room for it; if not, it is dropped), then the socket is
    /// closed: the slot is free when this returns.
    func evict() {
        guard !isClosed else { return }
        protocolHandler.sayGoodbye(self)
        if !output.isEmpty {
            _ = output.write(to: transport, scratch: loop.iovecScratch, arrays: nil) { loop.responseCompleted($0) }
        }
        close(reason: "evicted_idle")
    }

    /// Closes the socket at once, dropping queued output. `reason` is counted (``countError(_:)``) when not nil.
    func close(reason: String?) {
        guard !isClosed else { return }
        isClosed = true
        liveness.markClosed()
        if let reason { countError(reason) }
        output.removeAll()
        accountUnreadOutput()
        releaseBodyBytes(bodyBytesReserved)
        releaseReceivingSlot()
        protocolHandler.connectionClosed(self)
        loop.connectionWillClose(self)
        transport.close()
    }
}
