import CSystemShims
import Glibc
import Logging
import Synchronization

/// One epoll event loop on its own pthread, serving the connections assigned to it.
///
/// Threading model: all connection state (sockets, buffers, parsers, deadlines) is confined to the
/// loop's thread, so it needs no locks. Other threads talk to a loop only through ``post(_:)``: a
/// message is appended to a `Mutex`-protected inbox and the loop is woken through an eventfd (one
/// write per batch, not per message). Handlers run on the loop thread; a response given
/// synchronously there is queued directly, without the inbox.
///
/// Accepting: loop 0 is the acceptor. It owns every listener, accepts, and hands each connection to
/// the loop with the fewest connections (itself included, without a hop). One acceptor rather than
/// one `SO_REUSEPORT` listener per loop because it keeps the connection cap exact and race-free, keeps
/// EMFILE back-off and shutdown in one place, and because `SO_REUSEPORT` would let a second process
/// (a stale exporter instance) silently bind the same port and steal half the scrapes. Connection
/// rates of a metrics endpoint are low; the per-connection hand-off costs one eventfd write.
///
/// At the cap the acceptor stops accepting and watches its listeners for one notification (`EPOLLONESHOT`): a client
/// waiting in the backlog makes it ask the loop holding the oldest connection that has had no request yet (each loop
/// keeps those in accept order and publishes the oldest one's accept time in ``oldestAwaitingSince``) to close it, once
/// it is ``HTTPServer/Configuration/capacityEvictionAge`` old; the freed slot resumes accepting.
///
/// The loop never polls: `epoll_wait` sleeps until I/O, a message, or the earliest connection
/// deadline (kept in a ``DeadlineHeap``).
///
/// Exclusivity: the stored properties of the loop-confined classes (this one, ``Connection``, ``HTTP1Session``,
/// ``UpstreamConnection``, ``UpstreamPool``, ``ProxyExchange``, the two streams) are `@exclusivity(unchecked)`: only
/// the loop's thread touches them, and the runtime's dynamic checks of their accesses cost about 12k instructions per
/// proxied request (some 140 `swift_beginAccess` calls, each an access-set insert through thread-local storage). A
/// conflicting access to one of them is therefore not trapped, in debug builds either: a mutation of such a property
/// must not call out to code that touches the same property (pass values out of `inout` scopes, as the code does).
final class EventLoop: @unchecked Sendable {
    /// Cross-thread work for a loop.
    enum Message: Sendable {
        /// Serve this freshly accepted socket, accepted at `acceptedAt` (monotonic ns, the acceptor's clock).
        case adopt(fileDescriptor: Int32, remoteAddress: String, acceptedAt: UInt64)
        /// A handler answered off the loop thread.
        case deliver(connectionID: UInt64, requestID: UInt64, response: HTTPResponse)
        /// A handler decided a body's admission off the loop thread (nil: accepted).
        case admission(connectionID: UInt64, requestID: UInt64, rejection: HTTPResponse?)
        /// A connection closed while the acceptor was paused at the connection cap.
        case resumeAccepting
        /// To a loop, from the acceptor at the cap with a client waiting: close the oldest connection awaiting its first
        /// request if it was accepted at or before `acceptedBy` (monotonic ns).
        case evictAwaiting(acceptedBy: UInt64)
        /// To the acceptor: the loop it asked had no such connection any more (look again).
        case evictionFailed
        /// To a loop, from the acceptor at the cap with a client waiting and no connection awaiting its first request
        /// old enough to evict: close the connection kept alive idle the longest, if idle since `idleBy` (monotonic
        /// ns) or before, and nothing of a next request has come in.
        case evictIdle(idleBy: UInt64)
        /// To the acceptor: the loop it asked had no such idle connection.
        case idleEvictionFailed
        /// A connection's TLS handshake step ran off the loop (``HTTPServer/Configuration/tlsHandshakeOffload``).
        case handshakeStepped(connectionID: UInt64)
        /// Start a graceful shutdown; force-close what remains at `deadline` (monotonic ns).
        case beginShutdown(deadline: UInt64)
    }

    private struct Inbox {
        var messages: [Message] = []
        var wakePending = false
    }

    let index: Int
    let context: ServerContext
    /// Byte arrays the proxied exchanges of this loop reuse (``ByteArrayPool``).
    let byteArrays = ByteArrayPool()
    /// Connections served by this loop; read by the acceptor to balance load.
    let connectionCount = Atomic<Int>(0)
    /// Wake-ups of the loop (`epoll_wait` returns): how tests tell an idle loop from a spinning one. Written by the
    /// loop's thread only (a load and a store, no locked update), read from any.
    let wakeUps = Atomic<Int>(0)
    /// When the oldest of this loop's connections awaiting their first request was accepted (monotonic ns), `.max`
    /// when there is none: read by the acceptor to choose whom to evict at the cap.
    let oldestAwaitingSince = Atomic<UInt64>(.max)

    private let epoll: Epoll
    private let wakeFD: Int32
    private let inbox = Mutex(Inbox())
    /// Whether the inbox holds messages: set with them and cleared with them under the inbox's lock, read by the loop
    /// without it, so that an iteration with nothing posted takes no lock (a message posted after the read wakes the
    /// loop through the eventfd, and the next iteration reads it).
    private let inboxHasMessages = Atomic<Bool>(false)
    private let threadID = Atomic<UInt>(0)

    // Thread-confined state below.
    /// Monotonic nanoseconds, refreshed after every `epoll_wait`.
    @exclusivity(unchecked) private(set) var now: UInt64
    @exclusivity(unchecked) var dateCache = DateCache()
    /// The ``RequestFieldPlan`` of the HTTP/1.x request being handed to a handler that
    /// ``HTTPHandler/forwardsRequests``, lent by its session for the duration of the handler's `handle` call (nil
    /// otherwise): how ``ReverseProxy`` gets it without a bigger ``HTTPRequest`` (moved by `memcpy` wherever it goes).
    @exclusivity(unchecked) var lentForwardPlan: RequestFieldPlan?
    /// Gather-write vector shared by this loop's connections.
    let iovecScratch: UnsafeMutableBufferPointer<iovec>
    /// The connections, by slot: a connection's id (its epoll token) is `generation << 32 | slot`, so that the events
    /// and deliveries of the hot path find it by index, with no hashing (a reused slot gets a new generation: a late
    /// delivery for its former connection is dropped).
    @exclusivity(unchecked) private var connectionSlots: [Connection?] = []
    @exclusivity(unchecked) private var freeConnectionSlots: [Int] = []
    @exclusivity(unchecked) private var connectionGeneration: UInt64 = 0
    @exclusivity(unchecked) private var openConnections = 0
    @exclusivity(unchecked) private var deadlines = DeadlineHeap<Connection>()
    /// The connections that have had no request yet (``Connection/awaitingFirstRequest``), oldest first: a list through
    /// the connections themselves, so that joining and leaving it cost no lookup.
    @exclusivity(unchecked) private var oldestAwaiting: Connection?
    @exclusivity(unchecked) private var newestAwaiting: Connection?
    @exclusivity(unchecked) private var dirty: [Connection] = []
    /// epoll tokens: 0 = wake-up eventfd, `listenerTokenBit | index` = listeners, `upstreamTokenBit | …` = upstream
    /// sockets, others (a generation of 1 or more in bits 32-61) = connections.
    static let listenerTokenBit: UInt64 = 1 << 63
    @exclusivity(unchecked) private var draining = false
    @exclusivity(unchecked) private var shutdownDeadline: UInt64?
    @exclusivity(unchecked) private var stopped = false
    @exclusivity(unchecked) private var onExit: (@Sendable () -> Void)?

    // Acceptor state (loop 0 only).
    @exclusivity(unchecked) private var listeners: [Listener] = []
    /// All loops, set by the server before the threads start; cleared at exit to break the cycle.
    @exclusivity(unchecked) var peers: [EventLoop] = []
    /// The acceptor loop (loop 0), to resume it at the cap; cleared at exit.
    @exclusivity(unchecked) var acceptor: EventLoop?
    @exclusivity(unchecked) private var listenerMode = ListenerMode.off
    /// At the cap: a loop was asked to evict a connection and has not answered (by closing it or `evictionFailed`).
    @exclusivity(unchecked) private var evictionPending = false
    /// At the cap, with a client waiting and no connection old enough to evict: when to look again (monotonic ns).
    @exclusivity(unchecked) private var evictionRetryAt: UInt64?
    /// At the cap: the loops asked in turn for an idle connection (``evictIdle(idleBy:)``) since one was last closed,
    /// and the next to ask.
    @exclusivity(unchecked) private var idleEvictionsFailed = 0
    @exclusivity(unchecked) private var idleEvictionCursor = 0
    /// Acceptor: the accept time given to the last accepted connection (monotonic ns); each is later than the last.
    @exclusivity(unchecked) private var lastAcceptedAt: UInt64 = 0
    @exclusivity(unchecked) private var acceptBackoffUntil: UInt64?
    @exclusivity(unchecked) private var acceptBackoff: UInt64 = 0

    private static let wakeToken: UInt64 = 0

    // Upstream sockets (the reverse proxy's client side), thread-confined like the connections.
    /// Token bit of upstream sockets; the low 32 bits are the slot, the next 30 a generation (a reused slot never
    /// gets a stale event of its former socket).
    static let upstreamTokenBit: UInt64 = 1 << 62
    @exclusivity(unchecked) private var upstreams: [UpstreamConnection?] = []
    @exclusivity(unchecked) private var freeUpstreamSlots: [Int] = []
    @exclusivity(unchecked) private var upstreamGeneration: UInt64 = 0
    @exclusivity(unchecked) private var upstreamDeadlines = DeadlineHeap<UpstreamConnection>()
    /// Upstream pools with exchanges waiting for a connection: each at its oldest waiter's give-up time.
    @exclusivity(unchecked) private var poolDeadlines = DeadlineHeap<UpstreamPool>()
    /// Upstream connections with request bytes queued in this iteration: written once, after the connections
    /// were processed, so that a request's head and body leave in one write.
    @exclusivity(unchecked) private var dirtyUpstreams: [UpstreamConnection] = []
    /// The batches being processed: swapped with ``dirty`` and ``dirtyUpstreams`` so that neither list is copied
    /// or reallocated per iteration.
    @exclusivity(unchecked) private var dirtyBatch: [Connection] = []
    @exclusivity(unchecked) private var dirtyUpstreamBatch: [UpstreamConnection] = []
    /// Proxied exchanges that ended and are not yet reported to the observer (``reportAfterFlush(_:)``), and the
    /// batch being reported. Bound: ``unreportedExchangesBound`` plus the exchanges that end within one iteration.
    @exclusivity(unchecked) private var endedExchanges: [ProxyExchange] = []
    @exclusivity(unchecked) private var endedBatch: [ProxyExchange] = []
    /// When the oldest of ``endedExchanges`` ended (the iteration's ``now``).
    @exclusivity(unchecked) private var firstUnreportedEndedAt: UInt64 = 0
    /// Ended exchanges wait for a moment with no event ready at most this many at once and this long (ns), so that a
    /// loop kept busy (saturation, a long stream) still reports them promptly; each holds its captured bodies.
    static let unreportedExchangesBound = 32
    static let unreportedExchangesDelay: UInt64 = 1_000_000
    /// Exchanges handed to ``reportAfterFlush(_:)`` so far, and how many of them were reported: written by this loop
    /// only (a plain store each), read by ``HTTPServer/waitForEndedExchangesReported(timeout:)``. The first is
    /// stored before the exchange's last bytes are written, so a client that read its answer finds it counted.
    let exchangesEnded = Atomic<UInt64>(0)
    let exchangesReported = Atomic<UInt64>(0)

    init(index: Int, context: ServerContext) throws(HTTPServerError) {
        self.index = index
        self.context = context
        self.epoll = try Epoll()
        let fd = eventfd(0, cshims_efd_nonblock_cloexec())
        guard fd >= 0 else { throw HTTPServerError(.eventLoopFailed, "eventfd failed", errno: errno) }
        self.wakeFD = fd
        self.now = Syscall.monotonicNow()
        self.iovecScratch = .allocate(capacity: 64)
        if let error = epoll.add(fd, interest: .readable, token: Self.wakeToken) {
            Syscall.close(fd)
            throw HTTPServerError(.eventLoopFailed, "epoll_ctl(eventfd) failed", errno: error)
        }
    }

    deinit {
        // The eventfd lives as long as the object: a late `post` from a responder must never write to a
        // descriptor number that was closed and reused.
        Syscall.close(wakeFD)
        iovecScratch.deallocate()
    }

    /// Whether the caller runs on this loop's thread.
    var isOnLoopThread: Bool {
        let id = threadID.load(ordering: .acquiring)
        return id != 0 && pthread_equal(pthread_self(), pthread_t(id)) != 0
    }

    // MARK: - Cross-thread API

    /// Queues `message` for the loop and wakes it. Thread-safe.
    func post(_ message: Message) {
        let mustWake = inbox.withLock { inbox in
            inbox.messages.append(message)
            inboxHasMessages.store(true, ordering: .releasing)
            if inbox.wakePending { return false }
            inbox.wakePending = true
            return true
        }
        if mustWake {
            var one: UInt64 = 1
            _ = Glibc.write(wakeFD, &one, 8)
        }
    }

    /// Routes a handler's response to its connection: directly on the loop thread, else via the inbox.
    func deliver(_ response: HTTPResponse, connectionID: UInt64, requestID: UInt64) {
        if isOnLoopThread {
            deliverNow(response, connectionID: connectionID, requestID: requestID)
        } else {
            post(.deliver(connectionID: connectionID, requestID: requestID, response: response))
        }
    }

    /// Routes a handler's admission decision to its connection, like ``deliver(_:connectionID:requestID:)``.
    func decideAdmission(_ rejection: HTTPResponse?, connectionID: UInt64, requestID: UInt64) {
        if isOnLoopThread {
            decideAdmissionNow(rejection, connectionID: connectionID, requestID: requestID)
        } else {
            post(.admission(connectionID: connectionID, requestID: requestID, rejection: rejection))
        }
    }

    // MARK: - Setup (before the thread starts)

    /// Adds a bound listener to this (acceptor) loop. Called before ``start(onExit:)``.
    func addListener(_ listener: Listener) {
        listener.token = Self.listenerTokenBit | UInt64(listeners.count)
        listeners.append(listener)
    }

    /// Starts the loop thread; `onExit` runs on it after the loop has released everything.
    func start(onExit: @escaping @Sendable () -> Void) throws(HTTPServerError) {
        self.onExit = onExit
        if !listeners.isEmpty { setListenerMode(.accepting) }
        let box = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let result = pthread_create(
            &thread, nil,
            { argument in
                let loop = Unmanaged<EventLoop>.fromOpaque(argument!).takeRetainedValue()
                loop.run()
                return nil
            }, box.toOpaque())
        guard result == 0 else {
            box.release()
            throw HTTPServerError(.eventLoopFailed, "pthread_create failed", errno: result)
        }
        pthread_detach(thread)
    }

    // MARK: - The loop

    private func run() {
        threadID.store(UInt(pthread_self()), ordering: .releasing)
        _ = pthread_setname_np(pthread_self(), "http-loop-\(index)")
        while !stopped {
            // With ended exchanges not yet reported, only look for what is ready: they are reported when nothing is
            // (or at their bound), so that recording them never holds back an answer that is already there.
            let reportsWaiting = !endedExchanges.isEmpty
            let count = epoll.wait(timeoutMilliseconds: reportsWaiting ? 0 : nextTimeout())
            wakeUps.store(wakeUps.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
            now = Syscall.monotonicNow()
            for eventIndex in 0..<count {
                let (events, token) = epoll.event(at: eventIndex)
                if token == Self.wakeToken {
                    var value: UInt64 = 0
                    _ = Glibc.read(wakeFD, &value, 8)
                } else if token & Self.listenerTokenBit != 0 {
                    if listenerMode == .watching {
                        clientWaitsAtCapacity()
                    } else {
                        acceptConnections(from: listeners[Int(token & ~Self.listenerTokenBit)])
                    }
                } else if token & Self.upstreamTokenBit != 0 {
                    let slot = Int(truncatingIfNeeded: token & 0xFFFF_FFFF)
                    if slot < upstreams.count, let upstream = upstreams[slot], upstream.token == token {
                        upstream.handle(events)
                    }
                } else if let connection = connection(withID: token) {
                    connection.handle(events)
                    markDirty(connection)
                }
                // Output waits for the end of a batch of events; a long batch (many streams at once) is flushed every
                // 16 events, so that what was read first is not held behind all the rest (a proxied stream's chunk
                // waited up to a whole batch of 128: milliseconds at saturation).
                if eventIndex & 15 == 15 { processDirty() }
            }
            drainInbox()
            expireDeadlines()
            resumeAcceptingAfterBackoff()
            retryEvictionIfDue()
            processDirty()
            if !endedExchanges.isEmpty,
                count == 0 || draining || endedExchanges.count >= Self.unreportedExchangesBound
                    || now &- firstUnreportedEndedAt >= Self.unreportedExchangesDelay
            {
                reportEnded()
            }
            if draining {
                if let shutdownDeadline, now >= shutdownDeadline { forceCloseAll() }
                if openConnections == 0 { stopped = true }
            }
        }
        tearDown()
    }

    private func nextTimeout() -> Int32 {
        var earliest = deadlines.earliest
        if let upstream = upstreamDeadlines.earliest { earliest = min(earliest ?? upstream, upstream) }
        if let pool = poolDeadlines.earliest { earliest = min(earliest ?? pool, pool) }
        if let backoff = acceptBackoffUntil { earliest = min(earliest ?? backoff, backoff) }
        if let retry = evictionRetryAt { earliest = min(earliest ?? retry, retry) }
        if let shutdownDeadline { earliest = min(earliest ?? shutdownDeadline, shutdownDeadline) }
        guard let earliest else { return -1 }
        let current = Syscall.monotonicNow()
        if earliest <= current { return 0 }
        let milliseconds = (earliest - current + 999_999) / 1_000_000  // round up: never wake early
        return Int32(clamping: milliseconds)
    }

    private func drainInbox() {
        guard inboxHasMessages.load(ordering: .acquiring) else { return }
        let messages = inbox.withLock { inbox in
            inboxHasMessages.store(false, ordering: .relaxed)
            inbox.wakePending = false
            var taken: [Message] = []
            swap(&taken, &inbox.messages)
            return taken
        }
        for message in messages {
            switch message {
            case .adopt(let fd, let remoteAddress, let acceptedAt):
                adopt(fd, remoteAddress: remoteAddress, acceptedAt: acceptedAt)
            case .deliver(let connectionID, let requestID, let response):
                deliverNow(response, connectionID: connectionID, requestID: requestID)
            case .admission(let connectionID, let requestID, let rejection):
                decideAdmissionNow(rejection, connectionID: connectionID, requestID: requestID)
            case .resumeAccepting:
                resumeAcceptingAtCapacity()
            case .evictAwaiting(let acceptedBy):
                evictAwaiting(acceptedBy: acceptedBy)
            case .evictionFailed:
                evictionFailed()
            case .evictIdle(let idleBy):
                evictIdle(idleBy: idleBy)
            case .idleEvictionFailed:
                idleEvictionFailed()
            case .handshakeStepped(let connectionID):
                guard let connection = connection(withID: connectionID) else { break }  // closed meanwhile
                connection.handshakeStepped()
                markDirty(connection)
            case .beginShutdown(let deadline):
                beginShutdown(deadline: deadline)
            }
        }
    }

    private func deliverNow(_ response: HTTPResponse, connectionID: UInt64, requestID: UInt64) {
        guard let connection = connection(withID: connectionID) else { return }  // closed meanwhile: drop
        connection.protocolHandler.deliver(response, requestID: requestID, connection: connection)
        markDirty(connection)
    }

    private func decideAdmissionNow(_ rejection: HTTPResponse?, connectionID: UInt64, requestID: UInt64) {
        guard let connection = connection(withID: connectionID) else { return }  // closed meanwhile: drop
        connection.protocolHandler.admissionDecided(rejection, requestID: requestID, connection: connection)
        markDirty(connection)
    }

    /// The open connection with `id`, if any (on the loop thread).
    @inline(__always)
    func connection(withID id: UInt64) -> Connection? {
        let slot = Int(truncatingIfNeeded: id & 0xFFFF_FFFF)
        guard slot < connectionSlots.count, let connection = connectionSlots[slot], connection.id == id else {
            return nil
        }
        return connection
    }

    /// The open connections (a copy: closing one while going through them is fine).
    private var openConnectionList: [Connection] { connectionSlots.compactMap { $0 } }

    func markDirty(_ connection: Connection) {
        if !connection.isDirty {
            connection.isDirty = true
            dirty.append(connection)
        }
    }

    private func processDirty() {
        while !dirty.isEmpty || !dirtyUpstreams.isEmpty {
            swap(&dirty, &dirtyBatch)  // `dirty` is empty again (the previous batch was cleared), capacity kept
            // The batch holds each element until it is emptied below, and nothing else touches it meanwhile (marking
            // goes to `dirty`): the elements are used without a retain and release of their own.
            for index in dirtyBatch.indices {
                Unmanaged.passUnretained(dirtyBatch[index])._withUnsafeGuaranteedRef { connection in
                    connection.isDirty = false
                    connection.process()
                }
            }
            Self.empty(&dirtyBatch)
            swap(&dirtyUpstreams, &dirtyUpstreamBatch)
            for index in dirtyUpstreamBatch.indices {
                Unmanaged.passUnretained(dirtyUpstreamBatch[index])._withUnsafeGuaranteedRef { upstream in
                    upstream.isDirty = false
                    upstream.flushQueued()
                }
            }
            Self.empty(&dirtyUpstreamBatch)
        }
    }

    /// Reports `exchange`, which ended, to the proxy's observer once what this iteration wrote is flushed and no
    /// event is ready: recording an exchange (decoding a capture) then never holds back the responses that ended in
    /// the same batch of events, its own included, nor those of the next batch already there (a burst of requests
    /// answered over a few iterations). Bounds: ``unreportedExchangesBound`` exchanges, ``unreportedExchangesDelay``.
    func reportAfterFlush(_ exchange: ProxyExchange) {
        if endedExchanges.isEmpty { firstUnreportedEndedAt = now }
        endedExchanges.append(exchange)
        exchangesEnded.store(exchangesEnded.load(ordering: .relaxed) &+ 1, ordering: .releasing)
    }

    private func reportEnded() {
        while !endedExchanges.isEmpty {
            swap(&endedExchanges, &endedBatch)
            for index in endedBatch.indices {
                Unmanaged.passUnretained(endedBatch[index])._withUnsafeGuaranteedRef { $0.report() }
            }
            Self.empty(&endedBatch)
        }
        exchangesReported.store(exchangesEnded.load(ordering: .relaxed), ordering: .releasing)
    }

    /// Empties a batch, keeping its capacity: popping its few elements costs a fraction of
    /// `removeAll(keepingCapacity:)` (a generic `replaceSubrange`, even on an empty array), twice per iteration.
    @inline(__always)
    private static func empty<Element>(_ batch: inout [Element]) {
        while batch.popLast() != nil {}
    }

    /// Writes `upstream`'s queued request bytes at the end of this iteration (see ``dirtyUpstreams``).
    func markDirty(_ upstream: UpstreamConnection) {
        if !upstream.isDirty {
            upstream.isDirty = true
            dirtyUpstreams.append(upstream)
        }
    }

    private func expireDeadlines() {
        while let expired = deadlines.popExpired(now: now) {
            expired.timerExpired()
            markDirty(expired)
        }
        while let expired = upstreamDeadlines.popExpired(now: now) {
            expired.timerExpired()
        }
        while let expired = poolDeadlines.popExpired(now: now) {
            expired.timerExpired()
        }
    }

    /// A free slot of `slots` (one that `free` lists, else a new one at the end), still nil.
    private static func takeSlot<Element>(in slots: inout [Element?], free: inout [Int]) -> Int {
        if let slot = free.popLast() { return slot }
        slots.append(nil)
        return slots.count - 1
    }

    // MARK: - Upstream sockets

    /// The connection of `pool` that has waited on its client the longest, since `since` or before
    /// (``UpstreamConnection/clientBoundSince``); a scan, made only while requests wait for a connection of the pool.
    func longestClientBound(in pool: UpstreamPool, since: UInt64) -> UpstreamConnection? {
        var victim: UpstreamConnection?
        var oldest = since &+ 1
        for case let upstream? in upstreams where upstream.pool === pool {
            if let bound = upstream.clientBoundSince, bound < oldest {
                victim = upstream
                oldest = bound
            }
        }
        return victim
    }

    /// Polls `upstream`'s descriptor with `interest` on this loop; returns errno on failure.
    func register(_ upstream: UpstreamConnection, interest: EpollEvents) -> Int32? {
        let slot = Self.takeSlot(in: &upstreams, free: &freeUpstreamSlots)
        upstreamGeneration = (upstreamGeneration &+ 1) & 0x3FFF_FFFF
        let token = Self.upstreamTokenBit | (upstreamGeneration << 32) | UInt64(slot)
        if let error = epoll.add(upstream.fileDescriptor, interest: interest, token: token) {
            freeUpstreamSlots.append(slot)
            return error
        }
        upstream.token = token
        upstreams[slot] = upstream
        return nil
    }

    /// Changes what `upstream` is polled for; returns errno on failure.
    func modifyInterest(of upstream: UpstreamConnection, to interest: EpollEvents) -> Int32? {
        epoll.modify(upstream.fileDescriptor, interest: interest, token: upstream.token)
    }

    /// Takes `upstream`'s descriptor out of the epoll set for now (its slot and token stay).
    func stopPolling(_ upstream: UpstreamConnection) {
        epoll.remove(upstream.fileDescriptor)
    }

    /// Puts back a descriptor taken out by ``stopPolling(_:)``; returns errno on failure.
    func resumePolling(_ upstream: UpstreamConnection, interest: EpollEvents) -> Int32? {
        epoll.add(upstream.fileDescriptor, interest: interest, token: upstream.token)
    }

    /// Stops polling `upstream` and drops its deadline (before its descriptor is closed).
    func unregister(_ upstream: UpstreamConnection) {
        upstreamDeadlines.remove(upstream)
        guard upstream.token & Self.upstreamTokenBit != 0 else { return }
        let slot = Int(truncatingIfNeeded: upstream.token & 0xFFFF_FFFF)
        epoll.remove(upstream.fileDescriptor)
        if slot < upstreams.count, upstreams[slot] === upstream {
            upstreams[slot] = nil
            freeUpstreamSlots.append(slot)
        }
        upstream.token = 0
    }

    /// Arms `pool`'s timer (for its waiting exchanges) at `deadline` (monotonic ns), or disarms it (nil).
    func schedule(_ pool: UpstreamPool, at deadline: UInt64?) {
        if let deadline {
            poolDeadlines.schedule(pool, at: deadline)
        } else {
            poolDeadlines.cancel(pool)
        }
    }

    /// Arms `upstream`'s timer at `deadline` (monotonic ns), or disarms it (nil).
    func schedule(_ upstream: UpstreamConnection, at deadline: UInt64?) {
        if let deadline {
            upstreamDeadlines.schedule(upstream, at: deadline)
        } else {
            upstreamDeadlines.cancel(upstream)
        }
    }

    // MARK: - Connections

    /// Starts serving an accepted socket on this loop; `acceptedAt`: when the acceptor accepted it (default: now).
    func adopt(_ fd: Int32, remoteAddress: String, acceptedAt: UInt64? = nil) {
        if draining {
            Syscall.close(fd)
            releaseSlot()
            return
        }
        let transport: any ConnectionTransport
        if let tls = context.currentTLS {
            guard let secure = TLSTransport(fileDescriptor: fd, context: tls, offload: context.tlsHandshakeOffload)
            else {
                context.logger.warning("SSL_new failed for a new connection")
                Syscall.close(fd)
                releaseSlot()
                return
            }
            transport = secure
        } else {
            transport = PlainSocketTransport(fileDescriptor: fd)
        }
        let slot = Self.takeSlot(in: &connectionSlots, free: &freeConnectionSlots)
        // Generations 1 ..< 2^30: an id is never 0 (the wake-up token) nor has a listener's or an upstream's bit.
        connectionGeneration = connectionGeneration % 0x3FFF_FFFF + 1
        let id = connectionGeneration << 32 | UInt64(slot)
        if let secure = transport as? TLSTransport, secure.offload != nil {
            secure.stepFinished = { [self] in post(.handshakeStepped(connectionID: id)) }
        }
        let connection = Connection(
            id: id, loop: self, transport: transport, remoteAddress: remoteAddress,
            protocolHandler: HTTP1Session(context: context), acceptedAt: acceptedAt)
        if let error = epoll.add(fd, interest: Connection.initialInterest, token: id) {
            context.logger.warning("epoll_ctl(ADD) failed for a new connection: \(Syscall.describe(error))")
            freeConnectionSlots.append(slot)
            Syscall.close(fd)
            releaseSlot()
            return
        }
        connection.markRegistered(Connection.initialInterest)
        connectionSlots[slot] = connection
        joinAwaiting(connection)
        openConnections += 1
        connectionCount.add(1, ordering: .relaxed)
        context.observer?.connectionOpened()
        markDirty(connection)  // arms the header timeout
    }

    func modifyInterest(of connection: Connection, to interest: EpollEvents) {
        if let error = epoll.modify(connection.transport.fileDescriptor, interest: interest, token: connection.id) {
            context.logger.warning("epoll_ctl(MOD) failed: \(Syscall.describe(error))")
            connection.close(reason: "reset")
        }
    }

    /// Arms the connection's timer for `phase`, started at `base`, and no later than `notAfter`.
    func schedule(_ connection: Connection, phase: TimerPhase, from base: UInt64, notAfter: UInt64? = nil) {
        let timeout: UInt64
        switch phase {
        case .none:
            deadlines.cancel(connection)
            return
        case .idle: timeout = context.idleTimeout
        case .head: timeout = context.headerReadTimeout
        case .body: timeout = context.bodyReadTimeout
        case .write: timeout = context.writeStallTimeout
        case .linger: timeout = context.lingerTimeout
        case .handshake: timeout = context.tlsHandshakeTimeout
        }
        let (deadline, overflow) = base.addingReportingOverflow(timeout)
        deadlines.schedule(connection, at: min(overflow ? .max : deadline, notAfter ?? .max))
    }

    /// Bookkeeping for a connection that is closing (its descriptor is closed right after).
    func connectionWillClose(_ connection: Connection) {
        epoll.remove(connection.transport.fileDescriptor)
        deadlines.remove(connection)
        firstRequestArrived(connection)  // leaves the list of connections awaiting a request
        let slot = Int(truncatingIfNeeded: connection.id & 0xFFFF_FFFF)
        if slot < connectionSlots.count, connectionSlots[slot] === connection {
            connectionSlots[slot] = nil
            freeConnectionSlots.append(slot)
            openConnections -= 1
        }
        connectionCount.subtract(1, ordering: .relaxed)
        context.observer?.connectionClosed()
        releaseSlot()
    }

    private func releaseSlot() {
        if context.releaseConnectionSlot() {
            if index == 0 { resumeAcceptingAtCapacity() } else { acceptor?.post(.resumeAccepting) }
        }
    }

    func responseCompleted(_ response: CompletedResponse) {
        guard let observer = context.observer else { return }
        // A fresh clock reading: `now` dates from the start of this iteration, before the handler ran.
        let duration = Double(Syscall.monotonicNow() &- response.receivedAt) / 1e9
        observer.requestCompleted(
            method: response.method, status: response.status, protocolName: response.protocolName,
            responseBytes: response.bytes, durationSeconds: max(0, duration))
    }

    // MARK: - Accepting (loop 0)

    private func acceptConnections(from listener: Listener) {
        for _ in 0..<64 {
            guard context.reserveConnectionSlot() else {
                pauseAtCapacity()
                return
            }
            switch listener.accept() {
            case .connection(let fd, let remoteAddress):
                acceptBackoff = 0
                // Strictly increasing across accepts, though `now` is read once per iteration: connections accepted
                // in one iteration are evicted in accept order (with equal times the loop order decided, and a
                // connection accepted later could go first).
                let acceptedAt = max(now, lastAcceptedAt &+ 1)
                lastAcceptedAt = acceptedAt
                let target =
                    peers.min {
                        $0.connectionCount.load(ordering: .relaxed) < $1.connectionCount.load(ordering: .relaxed)
                    } ?? self
                if target === self {
                    adopt(fd, remoteAddress: remoteAddress, acceptedAt: acceptedAt)
                } else {
                    target.post(.adopt(fileDescriptor: fd, remoteAddress: remoteAddress, acceptedAt: acceptedAt))
                }
            case .wouldBlock:
                _ = context.releaseConnectionSlot()
                return
            case .retry:
                _ = context.releaseConnectionSlot()
            case .outOfDescriptors(let error):
                _ = context.releaseConnectionSlot()
                context.observer?.connectionError(reason: "emfile")
                backOff(error: error, label: "out of file descriptors")
                makeRoomForDescriptors()
                return
            case .failed(let error):
                _ = context.releaseConnectionSlot()
                context.observer?.connectionError(reason: "accept_failed")
                backOff(error: error, label: "accept failed")
                return
            }
        }
    }

    /// Stops polling the listeners for a while (10 ms doubling to 1 s) after an accept failure that
    /// would otherwise repeat at once: the listener stays readable, so level-triggered epoll would spin.
    private func backOff(error: Int32, label: String) {
        acceptBackoff = acceptBackoff == 0 ? 10_000_000 : min(acceptBackoff * 2, 1_000_000_000)
        if acceptBackoff >= 1_000_000_000 || acceptBackoff == 10_000_000 {
            context.logger.warning(
                "\(label); pausing accept",
                metadata: ["error": "\(Syscall.describe(error))", "pause_ms": "\(acceptBackoff / 1_000_000)"])
        }
        acceptBackoffUntil = now + acceptBackoff
        setListenerMode(.off)
    }

    private func resumeAcceptingAfterBackoff() {
        guard let until = acceptBackoffUntil, now >= until else { return }
        acceptBackoffUntil = nil
        guard !draining else { return }
        setListenerMode(context.acceptPausedAtCapacity.load(ordering: .sequentiallyConsistent) ? .watching : .accepting)
    }

    /// At the cap: stops accepting, and watches the listeners for a client waiting in the backlog (one notification,
    /// ``clientWaitsAtCapacity()``).
    private func pauseAtCapacity() {
        context.acceptPausedAtCapacity.store(true, ordering: .sequentiallyConsistent)
        setListenerMode(.watching)
        // A connection may have closed between the failed reservation and the flag: re-check.
        if context.openConnections.load(ordering: .sequentiallyConsistent) < context.configuration.maxConnections {
            resumeAcceptingAtCapacity()
        }
    }

    private func resumeAcceptingAtCapacity() {
        guard context.acceptPausedAtCapacity.load(ordering: .sequentiallyConsistent) else { return }
        guard context.openConnections.load(ordering: .sequentiallyConsistent) < context.configuration.maxConnections
        else { return }
        context.acceptPausedAtCapacity.store(false, ordering: .sequentiallyConsistent)
        evictionPending = false
        evictionRetryAt = nil
        idleEvictionsFailed = 0
        if !draining && acceptBackoffUntil == nil { setListenerMode(.accepting) }
    }

    /// How the acceptor polls its listeners.
    private enum ListenerMode {
        /// Not polled (accept failures backing off, shutdown).
        case off
        /// Polled level-triggered: every pending connection is accepted.
        case accepting
        /// At the cap: polled for one notification (`EPOLLONESHOT`) that a client waits, re-armed by ``watchAgain()``.
        case watching
    }

    /// `EPOLLONESHOT`: the registration reports once, then stays silent until it is modified again.
    private static let oneShot = EpollEvents(rawValue: UInt32(EPOLLONESHOT.rawValue))

    private func setListenerMode(_ mode: ListenerMode) {
        guard mode != listenerMode else { return }
        let wasRegistered = listenerMode != .off
        listenerMode = mode
        for listener in listeners {
            let result: Int32?
            switch mode {
            case .off:
                epoll.remove(listener.fileDescriptor)
                result = nil
            case .accepting, .watching:
                let interest: EpollEvents = mode == .watching ? [.readable, Self.oneShot] : .readable
                result =
                    wasRegistered
                    ? epoll.modify(listener.fileDescriptor, interest: interest, token: listener.token)
                    : epoll.add(listener.fileDescriptor, interest: interest, token: listener.token)
            }
            if let result { context.logger.error("epoll_ctl on a listener failed: \(Syscall.describe(result))") }
        }
    }

    // MARK: - Eviction at the cap

    /// Re-arms the one notification of ``ListenerMode/watching`` (it fires at once if a client still waits).
    private func watchAgain() {
        guard listenerMode == .watching else { return }
        for listener in listeners {
            if let error = epoll.modify(
                listener.fileDescriptor, interest: [.readable, Self.oneShot], token: listener.token)
            {
                context.logger.error("epoll_ctl on a listener failed: \(Syscall.describe(error))")
            }
        }
    }

    /// Acceptor, at the cap: a client waits in the backlog. Asks the loop with the oldest connection awaiting its first
    /// request to close it, if it is ``HTTPServer/Configuration/capacityEvictionAge`` old; the slot it frees resumes
    /// accepting. When none is that old, asks the loops in turn for the connection kept alive idle the longest, however
    /// briefly (``evictIdle(idleBy:)``; an age would let clients that renew their requests more often keep their
    /// slots: before, clients that made a request on every slot and then renewed it now and then held the server from
    /// everyone else for good); looks again at the oldest's age, or within 100 ms (a listed connection may have had its
    /// request since; a request may end; an adoption may be on its way).
    private func clientWaitsAtCapacity() {
        guard !evictionPending, evictionRetryAt == nil, !draining else { return }
        // A connection closed meanwhile (its `resumeAccepting` is on its way): no one needs to go.
        guard context.openConnections.load(ordering: .sequentiallyConsistent) >= context.configuration.maxConnections
        else {
            resumeAcceptingAtCapacity()
            return
        }
        let oldest = oldestAwaitingPeer()
        let age = context.capacityEvictionAge
        guard let oldest, oldest.since &+ age <= now else {
            // None old enough: the connection kept alive idle the longest goes instead, young connections awaiting
            // their first request notwithstanding (the one accepted after each eviction is one: waiting for it paced
            // evictions to ~15 a second, and a flood of silent connections switched idle eviction off, a probe).
            let loops = peers.isEmpty ? [self] : peers
            if idleEvictionsFailed < loops.count {
                evictionPending = true
                let loop = loops[idleEvictionCursor % loops.count]
                idleEvictionCursor &+= 1
                if loop === self { evictIdle(idleBy: now) } else { loop.post(.evictIdle(idleBy: now)) }
                return
            }
            idleEvictionsFailed = 0
            // Look again when the oldest awaiting connection reaches the age, but within 100 ms: it may have had its
            // request meanwhile (published by its loop a moment later: a connection answered just now may still be
            // listed), and a connection may go idle (a request ending).
            evictionRetryAt = min(oldest.map { $0.since &+ age } ?? .max, now &+ min(age, 100_000_000))
            return
        }
        evictionPending = true
        askToEvict(oldest.loop, acceptedBy: now &- age)
    }

    /// The loop holding the oldest connection still awaiting its first request, with that connection's accept time.
    private func oldestAwaitingPeer() -> (loop: EventLoop, since: UInt64)? {
        oldestAwaiting(among: peers.isEmpty ? [self] : peers)
    }

    /// Of `loops`, the one holding the oldest connection still awaiting its first request, with its accept time.
    private func oldestAwaiting(among loops: [EventLoop]) -> (loop: EventLoop, since: UInt64)? {
        var oldest: (loop: EventLoop, since: UInt64)?
        for peer in loops {
            let since = peer.oldestAwaitingSince.load(ordering: .relaxed)
            if since < (oldest?.since ?? .max) { oldest = (peer, since) }
        }
        return oldest
    }

    /// Has `loop` close its oldest connection awaiting a request if it was accepted at or before `acceptedBy`.
    private func askToEvict(_ loop: EventLoop, acceptedBy: UInt64) {
        if loop === self {
            evictAwaiting(acceptedBy: acceptedBy)
        } else {
            loop.post(.evictAwaiting(acceptedBy: acceptedBy))
        }
    }

    /// Acceptor, out of descriptors (the process's open-file limit below the connection cap): a client waits in the
    /// backlog as at the cap, so the oldest connection awaiting its first request, if it is
    /// ``HTTPServer/Configuration/capacityEvictionAge`` old, is closed (counted `evicted`); the descriptor it frees is
    /// taken when the back-off ends. When none is that old, the connection kept alive idle the longest goes instead,
    /// asked of the loops in turn, as at the cap (``evictIdle(idleBy:)``). Before, no eviction ran below the cap:
    /// connections that sent nothing held every descriptor, and a scrape waited for their header timeout; and then
    /// connections kept alive idle (a scraper's, a pooled client's) held them, and it waited for their idle timeout.
    /// With ``HTTPServer/Configuration/sharedDescriptors``, the connections of every server sharing them are
    /// candidates (a failed eviction on another server's loop is reported to that server's acceptor, which then looks
    /// again at its own state).
    private func makeRoomForDescriptors() {
        guard !draining else { return }
        let age = context.capacityEvictionAge
        let shared = context.configuration.sharedDescriptors?.loops ?? []
        let loops = shared.isEmpty ? (peers.isEmpty ? [self] : peers) : shared
        if let oldest = oldestAwaiting(among: loops), oldest.since &+ age <= now {
            askToEvict(oldest.loop, acceptedBy: now &- age)
            return
        }
        let loop = loops[idleEvictionCursor % loops.count]
        idleEvictionCursor &+= 1
        if loop === self { evictIdle(idleBy: now) } else { loop.post(.evictIdle(idleBy: now)) }
    }

    private func retryEvictionIfDue() {
        guard let retry = evictionRetryAt, now >= retry else { return }
        evictionRetryAt = nil
        watchAgain()
    }

    /// Closes this loop's oldest connection awaiting its first request if it was accepted at or before `acceptedBy`
    /// (counted `evicted`); otherwise tells the acceptor to look again.
    private func evictAwaiting(acceptedBy: UInt64) {
        if let victim = oldestAwaiting, victim.acceptedAt <= acceptedBy {
            context.logger.debug(
                "evicting a connection that sent no request, to make room",
                metadata: ["peer": "\(victim.remoteAddress)"])
            victim.close(reason: "evicted")  // its slot, freed, resumes the acceptor
            return
        }
        if index == 0 { evictionFailed() } else { acceptor?.post(.evictionFailed) }
    }

    private func evictionFailed() {
        evictionPending = false
        watchAgain()
    }

    /// Closes this loop's connection kept alive idle the longest (counted `evicted_idle`) if it has been idle since
    /// `idleBy` or before and nothing of a next request waits in its socket (a request already sent is not cut: the
    /// connection is passed over); otherwise tells the acceptor. A scan of the loop's connections: it runs only at the
    /// cap with a client waiting, never per request.
    private func evictIdle(idleBy: UInt64) {
        var passedOver = 0
        while passedOver < 8 {
            var victim: Connection?
            var since = idleBy &+ 1
            for case let connection? in connectionSlots {
                if let idle = connection.idleSince, idle < since, !connection.evictionPassedOver {
                    victim = connection
                    since = idle
                }
            }
            guard let victim else { break }
            if Syscall.hasPendingInput(victim.transport.fileDescriptor) {
                victim.evictionPassedOver = true
                passedOver += 1
                continue
            }
            context.logger.debug(
                "evicting a kept-alive idle connection, to make room", metadata: ["peer": "\(victim.remoteAddress)"])
            victim.evict()  // its slot, freed, resumes the acceptor
            clearPassedOver()
            return
        }
        clearPassedOver()
        if index == 0 { idleEvictionFailed() } else { acceptor?.post(.idleEvictionFailed) }
    }

    private func clearPassedOver() {
        for case let connection? in connectionSlots where connection.evictionPassedOver {
            connection.evictionPassedOver = false
        }
    }

    private func idleEvictionFailed() {
        idleEvictionsFailed += 1
        evictionPending = false
        watchAgain()
    }

    /// Adds a freshly adopted connection to the newest end of the list awaiting a first request.
    private func joinAwaiting(_ connection: Connection) {
        connection.olderAwaiting = newestAwaiting
        if let newest = newestAwaiting {
            newest.newerAwaiting = connection
        } else {
            oldestAwaiting = connection
            oldestAwaitingSince.store(connection.acceptedAt, ordering: .relaxed)
        }
        newestAwaiting = connection
    }

    /// `connection` had its first request (or closes): it leaves the list of connections awaiting one, for good.
    func firstRequestArrived(_ connection: Connection) {
        guard connection.awaitingFirstRequest else { return }
        connection.awaitingFirstRequest = false
        let older = connection.olderAwaiting
        let newer = connection.newerAwaiting
        connection.olderAwaiting = nil
        connection.newerAwaiting = nil
        if let older { older.newerAwaiting = newer } else if oldestAwaiting === connection { oldestAwaiting = newer }
        if let newer { newer.olderAwaiting = older } else if newestAwaiting === connection { newestAwaiting = older }
        if older == nil {
            oldestAwaitingSince.store(oldestAwaiting?.acceptedAt ?? .max, ordering: .relaxed)
        }
    }

    // MARK: - Shutdown

    private func beginShutdown(deadline: UInt64) {
        guard !draining else { return }
        draining = true
        shutdownDeadline = deadline
        // Stop accepting at once: close the listeners (new connection attempts are refused).
        setListenerMode(.off)
        for listener in listeners { listener.close() }
        listeners = []
        acceptBackoffUntil = nil
        evictionRetryAt = nil
        // The acceptor tells the other loops only now, after its last hand-off: each inbox is FIFO, so
        // every `adopt` it posted is seen before `beginShutdown` (and closed there if unwanted).
        for peer in peers where peer !== self {
            peer.post(.beginShutdown(deadline: deadline))
        }
        for connection in openConnectionList {
            connection.beginDrain()
            markDirty(connection)
        }
    }

    private func forceCloseAll() {
        for connection in openConnectionList {
            connection.close(reason: "shutdown")
        }
    }

    private func tearDown() {
        for connection in openConnectionList { connection.close(reason: "shutdown") }
        for case let upstream? in upstreams {
            upstream.close()
            upstream.pool.forget(upstream)
        }
        for listener in listeners { listener.close() }
        listeners = []
        reportEnded()  // the exchanges the closes ended
        // Sockets handed to this loop after it stopped are closed here; late deliveries are dropped.
        let leftovers = inbox.withLock { inbox in
            defer { inbox.messages = [] }
            return inbox.messages
        }
        for case .adopt(let fd, _, _) in leftovers {
            Syscall.close(fd)
            releaseSlot()
        }
        peers = []
        acceptor = nil
        releaseHeldObjects()
        threadID.store(0, ordering: .releasing)
        let onExit = self.onExit
        self.onExit = nil
        onExit?()
    }

    /// Empties every table, heap and list of connections, upstream connections and exchanges. Connections and upstream
    /// connections hold their loop strongly (a `let` read in place, no retain on the hot path): nothing the loop keeps
    /// may still hold one once it stops, or the loop and its descriptors would outlive the server. The tear-down calls
    /// it; so does a harness that drove a connection by hand without running the loop (Fuzz/).
    func releaseHeldObjects() {
        connectionSlots = []
        deadlines = DeadlineHeap()
        oldestAwaiting = nil
        newestAwaiting = nil
        dirty = []
        dirtyBatch = []
        upstreams = []
        upstreamDeadlines = DeadlineHeap()
        poolDeadlines = DeadlineHeap()
        dirtyUpstreams = []
        dirtyUpstreamBatch = []
        endedExchanges = []
        endedBatch = []
        lentForwardPlan = nil
    }
}
