import Logging
import Synchronization

/// State shared by all event loops of one server: configuration converted for the hot path, the
/// handler and observer, and the connection count that enforces ``HTTPServer/Configuration/maxConnections``.
final class ServerContext: Sendable {
    let configuration: HTTPServer.Configuration
    let limits: HTTP1Parser.Limits
    let headerReadTimeout: UInt64
    let bodyReadTimeout: UInt64
    let idleTimeout: UInt64
    let writeStallTimeout: UInt64
    let tlsHandshakeTimeout: UInt64
    let tlsHandshakeOffload: HTTPServer.TLSHandshakeOffload?
    /// ``HTTPServer/Configuration/capacityEvictionAge`` in nanoseconds.
    let capacityEvictionAge: UInt64
    let bodyTimeout: UInt64
    let bodyRateGrace: UInt64
    /// Most body bytes one connection may hold (at least ``HTTPServer/Configuration/maxBodySize``).
    let connectionBodyLimit: Int
    /// Body bytes held over all connections, and connections receiving a body.
    let bodyBudget: BodyBudget
    /// How long a closing connection keeps draining unread input after its last response (see
    /// ``Connection``): closing a socket with unread data sends RST, which can destroy that response.
    let lingerTimeout: UInt64 = 2_000_000_000
    /// The largest whole answer to an HTTP/2 GET delivered so far, at least ``HTTP2Session/minimumAnswerEstimate``:
    /// what each GET a session has under way may add to the answers it holds for its peer.
    let largestWholeAnswer = Atomic<Int>(HTTP2Session.minimumAnswerEstimate)
    /// The body and unread-answer bounds, the process's when ``HTTPServer/Configuration/sharedMemory`` gives them,
    /// else this server's own.
    let memory: SharedMemoryBounds
    /// Whether the answer bytes that connections are left holding after their writes
    /// (``SharedMemoryBounds/unreadAnswerBytes``) are over their bound: new requests are then answered 503 (one
    /// relaxed load: checked per request).
    var holdsTooManyUnreadAnswers: Bool {
        memory.unreadAnswerBytes.load(ordering: .relaxed) > memory.maxUnreadAnswerBytes
    }
    let handler: any HTTPHandler
    /// ``HTTPHandler/streamsRequestBodies`` and ``HTTPHandler/screensRequestBodies``, read once: each read through
    /// the existential copied it (per request with a body).
    let handlerStreamsBodies: Bool
    let handlerScreensBodies: Bool
    /// ``HTTPHandler/forwardsRequests``, read once.
    let handlerForwardsRequests: Bool
    let observer: (any HTTPServerObserver)?
    let logger: Logger

    /// Connections accepted and not yet closed, across all loops (including those in transit to a loop).
    let openConnections = Atomic<Int>(0)
    /// Set by the acceptor when it stopped polling its listeners because of the cap.
    let acceptPausedAtCapacity = Atomic<Bool>(false)
    /// The TLS context new connections use; nil serves cleartext. Swapped by ``HTTPServer/reloadTLS(_:)``.
    let tls = Mutex<TLSContext?>(nil)

    /// The TLS context for a connection accepted now.
    var currentTLS: TLSContext? { tls.withLock { $0 } }

    init(
        configuration: HTTPServer.Configuration, handler: any HTTPHandler, observer: (any HTTPServerObserver)?,
        logger: Logger
    ) {
        self.configuration = configuration
        self.limits = HTTP1Parser.Limits(
            maxRequestTargetLength: configuration.maxRequestTargetLength,
            maxHeaderBytes: configuration.maxHeaderBytes,
            maxHeaderCount: configuration.maxHeaderCount,
            maxBodySize: configuration.maxBodySize)
        self.headerReadTimeout = configuration.headerReadTimeout.nanoseconds
        self.bodyReadTimeout = configuration.bodyReadTimeout.nanoseconds
        self.idleTimeout = configuration.idleTimeout.nanoseconds
        self.writeStallTimeout = configuration.writeStallTimeout.nanoseconds
        self.tlsHandshakeTimeout = configuration.tlsHandshakeTimeout.nanoseconds
        self.tlsHandshakeOffload = configuration.tlsHandshakeOffload
        self.capacityEvictionAge = configuration.capacityEvictionAge.nanoseconds
        self.bodyTimeout = configuration.bodyTimeout.nanoseconds
        self.bodyRateGrace = configuration.bodyRateGrace.nanoseconds
        self.connectionBodyLimit = max(configuration.maxConnectionBodyBytes, configuration.maxBodySize)
        let memory =
            configuration.sharedMemory
            ?? SharedMemoryBounds(
                maxBufferedBodyBytes: configuration.maxBufferedBodyBytes,
                maxUnreadAnswerBytes: configuration.maxUnreadAnswerBytes)
        self.memory = memory
        self.bodyBudget = BodyBudget(
            shared: memory, limit: max(memory.maxBufferedBodyBytes, configuration.maxBodySize),
            connectionLimit: configuration.maxConnections - configuration.effectiveReservedConnections)
        self.handler = handler
        self.handlerStreamsBodies = handler.streamsRequestBodies
        self.handlerScreensBodies = handler.screensRequestBodies
        self.handlerForwardsRequests = handler.forwardsRequests
        self.observer = observer
        self.logger = logger
    }

    /// The deadline (monotonic ns) of a body admitted at `start` that has delivered `received` bytes so far:
    /// the earlier of the total ``HTTPServer/Configuration/bodyTimeout`` and the moment it falls below
    /// ``HTTPServer/Configuration/minBodyRate``.
    func bodyDeadline(start: UInt64, received: Int) -> UInt64 {
        let total = start &+ bodyTimeout
        let rate = configuration.minBodyRate
        guard rate > 0 else { return total }
        let allowance =
            UInt64(received) / UInt64(rate) &* 1_000_000_000
            &+ (UInt64(received) % UInt64(rate)) &* 1_000_000_000 / UInt64(rate)
        return min(total, start &+ bodyRateGrace &+ allowance)
    }

    /// Claims a connection slot before `accept`; false at the cap.
    func reserveConnectionSlot() -> Bool {
        var current = openConnections.load(ordering: .sequentiallyConsistent)
        while current < configuration.maxConnections {
            let (exchanged, original) = openConnections.compareExchange(
                expected: current, desired: current + 1, ordering: .sequentiallyConsistent)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Returns a slot; true when the acceptor is paused at the cap and must be told to resume.
    func releaseConnectionSlot() -> Bool {
        openConnections.subtract(1, ordering: .sequentiallyConsistent)
        return acceptPausedAtCapacity.load(ordering: .sequentiallyConsistent)
    }
}
