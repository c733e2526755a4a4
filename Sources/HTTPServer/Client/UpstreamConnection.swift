import CSystemShims
import Glibc

/// Why an exchange with the upstream failed: the labels the proxy's observer gets.
public enum UpstreamFailure: String, Sendable, CaseIterable {
    /// The upstream refused the connection (nothing listens).
    case connectRefused = "connect_refused"
    /// Connecting failed otherwise (unreachable, reset during the handshake).
    case connectFailed = "connect_failed"
    /// Connecting took longer than the connect timeout.
    case connectTimeout = "connect_timeout"
    /// The upstream closed or reset the connection before the response was complete.
    case reset
    /// No response head within the response timeout after the request was sent.
    case responseTimeout = "response_timeout"
    /// A gap between reads of the response body was longer than the read timeout.
    case readTimeout = "read_timeout"
    /// The response was not valid HTTP/1.x (or over a header limit).
    case badResponse = "bad_response"
    /// Every pooled connection was busy and the waiting queue was full, or a request waited the response timeout
    /// for a connection.
    case poolFull = "pool_full"
    /// The connection was waiting on this request's client (its body still arriving, or its response not taken) while
    /// another request waited for a connection of the full pool: cut to serve it (``UpstreamPool``).
    case reclaimed
}

/// One HTTP/1.1 connection to the upstream, on one event loop: connects without blocking, carries one exchange at
/// a time (request bytes out, response parsed with ``HTTP1ResponseParser``), then goes back to its
/// ``UpstreamPool`` when the response allowed reuse, or closes.
///
/// Timers (one at a time, on the loop's upstream deadline heap): connect, send (before the response head, while
/// request bytes wait for the upstream to take them: the response timeout, restarted by each write that makes
/// progress), response head (from the last request byte written), read gap (between body reads), client stall (while
/// the client side is full and reading is paused: the client server's write-stall timeout, after which the exchange
/// is cut, ``ProxyExchange/clientStalled()``), idle (in the pool). An idle connection is polled for input: anything it reads
/// (the upstream closing, or stray bytes) closes it.
final class UpstreamConnection: DeadlineScheduled {
    enum State { case connecting, active, idle, closed }
    private enum Timer { case none, connect, send, response, read, idle, clientStall }

    /// The loop the connection is registered with and whose thread runs all of its code. Strong and `let`, read in
    /// place with no retain (as ``Connection/loop``); the loop lets go of its upstream connections when it stops.
    let loop: EventLoop
    /// Its pool, kept alive by it: a proxy a reload replaced is freed with its pools, and an idle connection of
    /// such a pool still had its idle timer on the loop, which then reached a freed pool (`unowned`: a crash, after
    /// any reload that built a new pool while a connection of the old one was busy or idle, a review found). The
    /// cycle with the pool's idle list ends when the connection closes (idle timer, upstream, failure, teardown).
    let pool: UpstreamPool
    /// The pool's timeouts, copied: read on every timer change (several per response), where a load through the
    /// checked `unowned` reference costs an atomic retain and release.
    private let timeouts: UpstreamPool.Timeouts
    let fileDescriptor: Int32
    private let transport: PlainSocketTransport
    /// The loop's epoll token (0 when not registered).
    @exclusivity(unchecked) var token: UInt64 = 0
    @exclusivity(unchecked) var deadline: UInt64 = 0
    @exclusivity(unchecked) var due: UInt64 = 0
    @exclusivity(unchecked) var heapIndex = -1
    /// In the loop's list of upstreams to write at the end of the iteration.
    @exclusivity(unchecked) var isDirty = false

    @exclusivity(unchecked) private(set) var state: State
    @exclusivity(unchecked) private var input = InputBuffer()
    @exclusivity(unchecked) private var output = OutputQueue()
    @exclusivity(unchecked) private var parser: HTTP1ResponseParser
    @exclusivity(unchecked) private var exchange: ProxyExchange?
    @exclusivity(unchecked) private var isHEAD = false
    /// Responses this connection delivered whole, and whether any byte of the current one arrived.
    @exclusivity(unchecked) private var responsesServed = 0
    @exclusivity(unchecked) private var responseStarted = false
    @exclusivity(unchecked) private var paused = false
    /// Since when (monotonic ns; 0: not) the upstream has been waiting on the client's body: all of it so far written,
    /// more to come.
    @exclusivity(unchecked) private var bodyWaitSince: UInt64 = 0
    /// Since when (monotonic ns; 0: not) the response has been held for its client: paused, and through resumptions
    /// that never caught up with the upstream (a read that took all the socket had, the client with room to spare,
    /// clears it). An HTTP/2 client opening its window a little at a time stays held from its first pause.
    @exclusivity(unchecked) private var readerWaitSince: UInt64 = 0
    /// The whole request is queued (its body may still be streaming in from the client before that).
    @exclusivity(unchecked) private var requestComplete = true
    /// Request bytes queued above which the exchange stops reading its client's body.
    static let requestHighWater = 256 * 1024
    static let requestLowWater = 64 * 1024
    @exclusivity(unchecked) private var timer = Timer.none
    @exclusivity(unchecked) private var interest: EpollEvents = []
    /// The upstream finished sending (or the connection failed): what is buffered is all there is.
    @exclusivity(unchecked) private var inputClosed = false
    /// The input ended by an error (a reset), not the upstream's orderly close: a body delimited by the close is then
    /// cut, not complete.
    @exclusivity(unchecked) private var inputFailed = false
    /// A write failed: the upstream stopped taking the request (an early answer, then a close that the unread request
    /// makes a reset). Nothing more is sent; what it answered is still read, and the connection is never reused.
    @exclusivity(unchecked) private var writeFailed = false
    /// Whether the descriptor is in the loop's epoll set (taken out while nothing is wanted from it: a paused
    /// exchange whose upstream hung up would otherwise be reported again and again).
    @exclusivity(unchecked) private var polled = true
    /// Body bytes handed to the exchange per parse event (the response is never held whole).
    private static let pieceLimit = 64 * 1024
    /// Bytes of this exchange's request written to the upstream (none: the connection can serve another as it is).
    @exclusivity(unchecked) private var wroteRequest = false
    /// The exchange gave up after its whole request was sent and before the response head: the response is read and
    /// dropped (at most ``drainLimit`` bytes of body), then the connection goes back to the pool.
    @exclusivity(unchecked) private var draining = false
    @exclusivity(unchecked) private var drainedBytes = 0
    /// The most response body read and dropped for an exchange that gave up; beyond, the connection closes.
    static let drainLimit = 64 * 1024

    init(loop: EventLoop, pool: UpstreamPool, fileDescriptor: Int32, connected: Bool) {
        self.loop = loop
        self.pool = pool
        self.timeouts = pool.timeouts
        self.fileDescriptor = fileDescriptor
        self.transport = PlainSocketTransport(fileDescriptor: fileDescriptor)
        self.state = connected ? .idle : .connecting
        self.parser = HTTP1ResponseParser(
            limits: (loop.context.configuration.maxHeaderBytes, loop.context.configuration.maxHeaderCount),
            arrays: loop.byteArrays)
    }

    /// Registers with the loop; false (and closed) when epoll refuses.
    func register() -> Bool {
        let wanted: EpollEvents = state == .connecting ? [.writable] : [.readable, .readHangup]
        if loop.register(self, interest: wanted) != nil {
            state = .closed
            Syscall.close(fileDescriptor)
            return false
        }
        interest = wanted
        if state == .connecting { arm(.connect) }
        return true
    }

    // MARK: - Exchanges

    /// Sends the request (`head`, then `body` when it is apart: a large whole body) for `exchange` once connected.
    /// `isHEAD`: the response has no body. `complete`: false when more of the body follows (``send(_:complete:)``).
    func begin(_ exchange: ProxyExchange, head: [UInt8], body: [UInt8]?, isHEAD: Bool, complete: Bool) {
        self.exchange = exchange
        self.isHEAD = isHEAD
        responseStarted = false
        paused = false
        bodyWaitSince = 0
        readerWaitSince = 0
        wroteRequest = false
        draining = false
        requestComplete = complete
        output.append(head)
        if let body { output.append(body) }
        if state == .idle {
            // Out of the pool: its idle timer stops (the response timer starts once the request is written).
            arm(.none)
            state = .active
            loop.markDirty(self)
        }
    }

    /// More of the request (a piece of a streamed body, copied: into the queued head when it has room); `complete`:
    /// it is the last.
    func send(_ bytes: UnsafeRawBufferPointer, complete: Bool) {
        guard state == .active || state == .connecting, !writeFailed else { return }
        output.appendCopy(bytes)
        if complete { requestComplete = true }
        if state == .active { loop.markDirty(self) }
    }

    /// The loop's end-of-iteration write (``EventLoop/markDirty(_:)``).
    func flushQueued() {
        if state == .active { flush() }
    }

    /// Request bytes queued and not yet written.
    var queuedRequestBytes: Int { output.pendingBytes }

    /// Stops reading the response while the client cannot take more. An HTTP/2 client has the write-stall timeout to
    /// take enough for reading to resume: one that opens its window a byte at a time keeps its connection clear of that
    /// timeout (each byte is progress) and would otherwise hold this connection, and so the pool, for ever. (An
    /// HTTP/1.x client cannot trickle so: TCP opens its window by whole segments; its connection's write-stall timeout
    /// cuts it, counted once.)
    func pauseReading() {
        guard state == .active, !paused else { return }
        paused = true
        if readerWaitSince == 0 { readerWaitSince = loop.now }
        arm(exchange?.clientIsMultiplexed == true ? .clientStall : .none)
        updateInterest()
    }

    /// Reads again after ``pauseReading()``; continues with what is already buffered.
    func resumeReading() {
        guard state == .active, paused else { return }
        paused = false
        arm(inputClosed ? .none : .read)
        updateInterest()
        parseResponse()
    }

    /// The exchange gave up (its client left). Its place in the pool is given up only with the upstream's work, so
    /// that requests abandoned at once (an HTTP/2 client's rapid reset) cannot make the proxy open connection after
    /// connection, each carrying a request the upstream still works on: a connection that has sent nothing of the
    /// request serves the next exchange (once connected); one whose whole request was sent and whose response head has
    /// not come keeps its place while the upstream answers (read and dropped, ``drainLimit``, the response timeout
    /// still running), then serves the next; otherwise (the response under way: closing is how an HTTP/1.1 upstream
    /// learns that a stream was cancelled; a request half sent) it closes. Before, it always closed: each reset
    /// request freed its place at once and the next opened a new connection. With `closing` (the upstream's work is
    /// costly to finish: a generation), a connection that sent the request closes at once, the response head awaited
    /// or not: closing is how the upstream learns to stop.
    func abandon(closing: Bool = false) {
        exchange = nil
        switch state {
        case .connecting:
            forgetRequest()  // goes to the pool once connected (``finishConnecting()``)
        case .active where !wroteRequest && !writeFailed && !paused:
            forgetRequest()
            idleOrClose(reusable: true)
        case .active
        where !closing && requestComplete && output.isEmpty && !writeFailed && !paused && timer == .response:
            draining = true
            drainedBytes = 0
            parseResponse()
        case .active, .idle, .closed:
            closeAndRelease()
        }
    }

    /// Drops the request of an exchange that gave up before any of it was written.
    private func forgetRequest() {
        output.removeAll()
        requestComplete = true
    }

    // MARK: - Events

    func handle(_ events: EpollEvents) {
        switch state {
        case .closed:
            return
        case .connecting:
            finishConnecting()
        case .idle:
            // An idle connection reads nothing: the upstream closed it, or sent bytes it must not have.
            closeAndRelease()
        case .active:
            if events.contains(.writable) { flush() }
            guard state == .active else { return }
            if paused {
                // Only a hang-up or an error is reported while paused: keep what the socket still holds (at most
                // its receive buffer) for when the client has room, and stop polling.
                if events.contains(.hangup) || events.contains(.error) { drainAfterHangUp() }
                return
            }
            if events.contains(.readable) || events.contains(.readHangup) || events.contains(.hangup)
                || events.contains(.error)
            {
                readResponse()
            }
        }
    }

    func timerExpired() {
        let expired = timer
        timer = .none
        switch expired {
        case .none: return
        case .idle:
            if state == .idle { closeAndRelease() }
        case .connect: fail(.connectTimeout)
        case .send, .response: fail(.responseTimeout)
        case .read: fail(.readTimeout)
        case .clientStall:
            let exchange = self.exchange
            self.exchange = nil
            closeAndRelease()
            exchange?.clientStalled()
        }
    }

    private func finishConnecting() {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fileDescriptor, SOL_SOCKET, SO_ERROR, &error, &length) != 0 { error = errno }
        guard error == 0 else {
            fail(error == ECONNREFUSED ? .connectRefused : .connectFailed)
            return
        }
        state = exchange == nil ? .idle : .active
        arm(.none)
        if state == .idle {
            // Its exchange gave up while it connected: idle, with the idle timer as any idle connection (it had
            // none: kept until the upstream closed it, and now holding its pool).
            arm(.idle)
            updateInterest()
            pool.connectionReady(self)
        } else {
            flush()
        }
    }

    /// Writes queued request bytes; once all are out, the response timer runs. While some wait because the upstream
    /// is not taking them, the send timer runs: the upstream must take more within the response timeout.
    private func flush() {
        let pending = output.pendingBytes
        if !output.isEmpty {
            let result = output.write(to: transport, scratch: loop.iovecScratch, arrays: loop.byteArrays) { _ in }
            if output.pendingBytes < pending { wroteRequest = true }
            if case .failed = result {
                // An upstream that answers before taking the whole request and closes (nginx's early 413, Python's
                // http.server's 501) resets the connection, the unread body making its close a reset: the answer it
                // sent is still in the socket. Read it; the exchange fails `reset` only if no whole response comes
                // (before, every such write failure was a 502, though the answer had arrived).
                writeFailed = true
                output.removeAll()
                requestComplete = true
                bodyWaitSince = 0  // its answer is read now: not waiting on the client
                if timer != .read { arm(.response) }
                updateInterest()
                exchange?.upstreamWritable()  // a client paused by back-pressure goes on (its body is dropped)
                readResponse()
                return
            }
        }
        if output.isEmpty && requestComplete {
            if timer == .none || timer == .connect || timer == .send { arm(.response) }
        } else if !output.isEmpty {
            // Restarted by progress only: an upstream that stops reading the request (its socket full) would
            // otherwise hold the exchange for ever, its client paused by the back-pressure with no timer of its own.
            // Not once a response head came (an early answer: the read timer governs its body).
            if timer == .none || timer == .connect || (timer == .send && output.pendingBytes < pending) {
                arm(.send)
            }
        } else if timer == .connect || timer == .send {
            arm(.none)  // all written so far; the client is still sending the body (its own timeouts apply)
        }
        if output.isEmpty && !requestComplete {
            if bodyWaitSince == 0 { bodyWaitSince = loop.now }
        } else if requestComplete {
            bodyWaitSince = 0
        }
        if output.pendingBytes < Self.requestLowWater { exchange?.upstreamWritable() }
        updateInterest()
    }

    private func readResponse() {
        for _ in 0..<8 {
            guard state == .active, !paused else { return }
            let (outcome, filled) = input.read(from: transport, minimumSpace: 16 * 1024)
            switch outcome {
            case .bytes:
                responseStarted = true
                if timer == .read { arm(.read) }
                parseResponse()
                if !filled {
                    // The socket had no more (a short read) and the client took it all: it keeps up with the
                    // upstream (a review: only a read that found nothing cleared it, which a short read never makes,
                    // so a stream that paused once stayed reclaimable for good).
                    if !paused { readerWaitSince = 0 }
                    return
                }
            case .wouldBlock:
                readerWaitSince = 0  // the client took all the upstream had
                return
            case .endOfFile, .failed:
                inputClosed = true
                if case .failed = outcome { inputFailed = true }
                arm(.none)
                updateInterest()
                parseResponse()  // ends the exchange once the buffered bytes are used up (maybe after a pause)
                return
            }
        }
    }

    private func drainAfterHangUp() {
        for _ in 0..<64 {
            guard case .bytes = input.read(from: transport, minimumSpace: 16 * 1024).0 else { break }
        }
        inputClosed = true
        updateInterest()  // the client-stall timer goes on: the client must still take what is kept
    }

    private func handleEndOfInput(_ event: UpstreamEvent) {
        switch event {
        case .end:
            exchange?.upstreamEnded()
            exchange = nil
            closeAndRelease()
        case .error(let error):
            fail(error.kind == .truncated ? .reset : .badResponse)
        default:
            fail(.reset)
        }
    }

    /// Hands parsed events to the exchange until the input runs out, reading pauses, or the response ends.
    private func parseResponse() {
        if draining {
            drainResponse()
            return
        }
        // The exchange bound once, not per event (a retain and a release each): it changes only by ending (nil), which
        // the identity check sees; another is attached only once this one's response ended and the loop returned.
        guard let exchange else { return }
        while state == .active, !paused, self.exchange === exchange {
            var keepReading = true
            // The event is returned, not stored in a variable outside the closure: that copied a head (its fields).
            let (consumed, event) = input.withReadableBytes { bytes -> (Int, UpstreamEvent) in
                let parsed = parser.parse(bytes, isHEAD: isHEAD, limit: Self.pieceLimit)
                // The range read through an accessor of the borrowed event: matching `parsed.event` here copied the
                // whole result (an outlined copy through the event's metadata, ~160 instructions a response).
                if let range = parsed.event.bodyRange {
                    keepReading = exchange.upstreamBody(
                        UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[range])))
                }
                return parsed
            }
            guard state == .active else { return }  // the exchange gave up meanwhile
            input.consume(consumed)
            switch consume event {
            case .needMore:
                if inputClosed { handleEndOfInput(parser.inputEnded(reset: inputFailed)) }
                return
            case .informational(let status, let headers):
                exchange.upstreamInformational(status: status, headers: headers)
                continue
            case .head(let head):
                arm(.read)
                exchange.upstreamHead(head)
            case .body:
                if !keepReading { pauseReading() }
            case .end:
                let reusable =
                    parser.canReuseConnection && input.isEmpty && output.isEmpty && requestComplete && !writeFailed
                responsesServed += 1
                self.exchange = nil
                exchange.upstreamEnded()
                idleOrClose(reusable: reusable)
                return
            case .error(let error):
                fail(error.kind == .truncated ? .reset : .badResponse)
                return
            }
        }
    }

    /// Reads and drops the response of an exchange that gave up (``abandon(closing:)``); a reusable end returns the connection
    /// to the pool, anything else (a body over ``drainLimit``, an error, the upstream closing) closes it.
    private func drainResponse() {
        while state == .active {
            var bodyBytes = 0
            let (consumed, event) = input.withReadableBytes { bytes -> (Int, UpstreamEvent) in
                let parsed = parser.parse(bytes, isHEAD: isHEAD, limit: Self.pieceLimit)
                if let range = parsed.event.bodyRange { bodyBytes = range.count }
                return parsed
            }
            input.consume(consumed)
            drainedBytes += bodyBytes
            switch consume event {
            case .needMore:
                if inputClosed { closeAndRelease() }
                return
            case .informational:
                continue
            case .head:
                arm(.read)
            case .body:
                if drainedBytes > Self.drainLimit {
                    closeAndRelease()
                    return
                }
            case .end:
                draining = false
                idleOrClose(reusable: parser.canReuseConnection && input.isEmpty && output.isEmpty && !writeFailed)
                return
            case .error:
                closeAndRelease()
                return
            }
        }
    }

    /// The exchange is over: a `reusable` connection still active goes back to the pool (to the next waiting exchange,
    /// or idle), any other closes.
    private func idleOrClose(reusable: Bool) {
        guard reusable && state == .active else {
            closeAndRelease()
            return
        }
        state = .idle
        arm(.idle)
        updateInterest()
        pool.connectionReady(self)
    }

    /// Since when the connection has waited on its exchange's client (its body, or room for its response), or nil
    /// when it is not waiting on it or has no exchange.
    var clientBoundSince: UInt64? {
        guard state == .active, exchange != nil else { return nil }
        let since =
            bodyWaitSince == 0
            ? readerWaitSince : (readerWaitSince == 0 ? bodyWaitSince : min(bodyWaitSince, readerWaitSince))
        return since == 0 ? nil : since
    }

    /// Cut for a request waiting for a connection of the full pool (``UpstreamPool``): the exchange fails `reclaimed`
    /// (503 before its response head, the response cut after), the connection closes and its place goes to the waiter.
    func reclaim() { fail(.reclaimed) }

    private func fail(_ failure: UpstreamFailure) {
        let exchange = self.exchange
        self.exchange = nil
        closeAndRelease()
        // A pooled connection that answered before and closed without a byte of this response: the upstream's
        // keep-alive timeout met the request on its way (the exchange may send an idempotent one again).
        exchange?.upstreamFailed(
            failure, beforeAnyResponse: failure == .reset && responsesServed > 0 && !responseStarted)
    }

    // MARK: - Bookkeeping

    private func arm(_ next: Timer) {
        timer = next
        let timeout: UInt64? =
            switch next {
            case .none: nil
            case .connect: timeouts.connect
            case .send, .response: timeouts.response
            case .read: timeouts.read
            case .idle: timeouts.idle
            case .clientStall: loop.context.writeStallTimeout
            }
        loop.schedule(self, at: timeout.map { loop.now &+ $0 })
    }

    private func updateInterest() {
        guard state != .closed else { return }
        var wanted: EpollEvents = []
        switch state {
        case .connecting: wanted = [.writable]
        case .idle: wanted = [.readable, .readHangup]
        case .active:
            if !paused && !inputClosed { wanted = [.readable, .readHangup] }
            if !output.isEmpty && !inputClosed { wanted.insert(.writable) }
        case .closed: return
        }
        guard wanted != interest || (wanted.isEmpty == polled) else { return }
        if wanted.isEmpty {
            if polled { loop.stopPolling(self) }
            polled = false
            interest = []
            return
        }
        let error = polled ? loop.modifyInterest(of: self, to: wanted) : loop.resumePolling(self, interest: wanted)
        if error != nil {
            fail(.reset)
            return
        }
        polled = true
        interest = wanted
    }

    /// Closes the socket and gives its place in the pool back, once: a connection closed already (by a timer, a
    /// failure, the upstream) is not counted closed again when its exchange gives up.
    func closeAndRelease() {
        guard state != .closed else { return }
        close()
        pool.connectionClosed(self)
    }

    /// Closes the socket (idempotent). The pool is told by the caller (``closeAndRelease()``).
    func close() {
        guard state != .closed else { return }
        state = .closed
        timer = .none
        loop.unregister(self)
        transport.close()
        output.removeAll()
    }
}
