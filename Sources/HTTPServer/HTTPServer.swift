import Glibc
import Logging
import Synchronization

/// An HTTP/1.1 and HTTP/2 server, in cleartext or TLS, on non-blocking POSIX sockets and epoll (Linux
/// only), with no knowledge of what it serves.
///
/// It listens on one or more addresses (``Configuration/listenAddresses``), runs
/// ``Configuration/eventLoopCount`` event-loop threads of its own (never threads of the Swift
/// concurrency pool), and hands every request to an ``HTTPHandler``. HTTP/1.1: keep-alive and
/// pipelining (responses in request order), HTTP/1.0, `HEAD`, chunked request bodies and
/// `Expect: 100-continue`. HTTP/2 (nghttp2, when ``Configuration/http2Enabled``): h2c by prior knowledge
/// or `Upgrade: h2c` in cleartext, ALPN `h2` over TLS. TLS (OpenSSL, ``Configuration/tls``, replaceable
/// with ``reloadTLS(_:)``) on every listener. It protects itself with the limits and timeouts of
/// ``Configuration``.
///
/// Lifecycle: ``init(configuration:handler:observer:logger:)`` → ``start()`` (binds; throws a
/// readable error) → serve → ``shutdown(deadline:)``. A server runs at most once. Signal handling is
/// the embedding program's job: install handlers and call `shutdown` from them (or from a task).
///
/// ```swift
/// let server = HTTPServer(
///     configuration: .init(listenAddresses: [":9464"]),
///     handler: HTTPClosureHandler { request, respond in respond(HTTPResponse(status: 200, text: "ok\n")) },
///     logger: Logger(label: "http"))
/// try server.start()
/// print(server.boundAddresses)
/// server.shutdown(deadline: .seconds(5))
/// ```
public final class HTTPServer: Sendable {
    private enum State {
        case created
        case running(loops: [EventLoop], bound: [BoundAddress])
        case stopping(bound: [BoundAddress])
        case stopped(bound: [BoundAddress])
    }

    private struct Lifecycle {
        var state: State = .created
        var loopsRunning = 0
        var shutdownWaiters: [@Sendable () -> Void] = []
    }

    private let context: ServerContext
    private let lifecycle = Mutex(Lifecycle())

    /// Creates a server; nothing is bound until ``start()``.
    ///
    /// - Parameters:
    ///   - configuration: addresses, threads, limits and timeouts.
    ///   - handler: answers every request (see ``HTTPHandler`` for the threading contract).
    ///   - observer: optional hooks for self metrics; called on loop threads.
    ///   - logger: receives start/stop at `info`, accept trouble at `warning`, rejected requests at `debug`.
    public init(
        configuration: Configuration, handler: some HTTPHandler, observer: (any HTTPServerObserver)? = nil,
        logger: Logger
    ) {
        context = ServerContext(configuration: configuration, handler: handler, observer: observer, logger: logger)
    }

    deinit {
        // Without an explicit shutdown, stop the loops now (not waiting) so their threads exit.
        runningLoops.first?.post(.beginShutdown(deadline: Syscall.monotonicNow()))
    }

    /// Validates the configuration, binds every listen address and starts the event-loop threads.
    ///
    /// On return the server accepts connections and ``boundAddresses`` holds the actual ports.
    /// Throws ``HTTPServerError`` (e.g. `bind to 0.0.0.0:9464 failed: Address already in use (errno 98)`)
    /// without leaving anything bound or running; throws `.invalidState` if called twice.
    public func start() throws(HTTPServerError) {
        try lifecycle.withLock { lifecycle throws(HTTPServerError) in
            guard case .created = lifecycle.state else {
                throw HTTPServerError(.invalidState, "the server was already started")
            }
            try context.configuration.validate()
            if let tls = context.configuration.tls {
                let built = try TLSContext(tls, http2: context.configuration.http2Enabled)
                context.tls.withLock { $0 = built }
            }
            var addresses: [ListenAddress] = []
            for text in context.configuration.listenAddresses {
                addresses.append(try ListenAddress(text))
            }

            var listeners: [Listener] = []
            for address in addresses {
                listeners.append(try Listener.bind(address, backlog: context.configuration.listenBacklog))
            }
            var loops: [EventLoop] = []
            for index in 0..<context.configuration.eventLoopCount {
                loops.append(try EventLoop(index: index, context: context))
            }
            let acceptor = loops[0]
            for listener in listeners { acceptor.addListener(listener) }
            acceptor.peers = loops
            for loop in loops { loop.acceptor = acceptor }

            let bound = listeners.map(\.boundAddress)
            lifecycle.state = .running(loops: loops, bound: bound)
            for loop in loops {
                do throws(HTTPServerError) {
                    try loop.start { [weak self] in self?.loopDidExit() }
                    lifecycle.loopsRunning += 1
                } catch {
                    // Stop the loops that did start; they exit without having served anything.
                    acceptor.post(.beginShutdown(deadline: 0))
                    if lifecycle.loopsRunning == 0 {
                        lifecycle.state = .stopped(bound: bound)
                    } else {
                        lifecycle.state = .stopping(bound: bound)
                    }
                    throw error
                }
            }
            context.configuration.sharedDescriptors?.add(loops, of: ObjectIdentifier(self))
        }
        context.logger.info(
            "HTTP server listening",
            metadata: [
                "addresses": "\(boundAddresses.map(\.description).joined(separator: ", "))",
                "event_loops": "\(context.configuration.eventLoopCount)",
            ])
    }

    /// Replaces the TLS settings for connections accepted from now on (connections already open keep
    /// theirs): certificate and key files are read again, so a renewed certificate takes effect. Throws
    /// without changing anything when the files or settings are unusable; nil switches to cleartext.
    public func reloadTLS(_ configuration: TLSConfiguration?) throws(HTTPServerError) {
        let built = try configuration.map { configuration throws(HTTPServerError) in
            try TLSContext(configuration, http2: context.configuration.http2Enabled)
        }
        context.tls.withLock { $0 = built }
    }

    /// Whether connections accepted now use TLS.
    public var servesTLS: Bool { context.currentTLS != nil }

    /// The `reason` labels ``HTTPServerObserver/connectionError(reason:)`` reports for TLS failures.
    public static let tlsErrorReasons = TLSTransport.failureReasons

    /// The addresses actually bound, in ``Configuration/listenAddresses`` order, with port 0 resolved.
    /// Empty before ``start()``; still available after shutdown.
    public var boundAddresses: [BoundAddress] {
        lifecycle.withLock { lifecycle in
            switch lifecycle.state {
            case .created: []
            case .running(_, let bound), .stopping(let bound), .stopped(let bound): bound
            }
        }
    }

    /// Connections currently open (accepted and not yet closed), across all event loops.
    public var openConnections: Int {
        context.openConnections.load(ordering: .relaxed)
    }

    /// Request-body bytes held now (received or being received, and not yet answered), over all connections (and
    /// those of the servers sharing ``Configuration/sharedMemory``): at most ``bufferedBodyLimit``.
    public var bufferedBodyBytes: Int { context.bodyBudget.reservedBytes }

    /// The most request-body bytes held at once (``Configuration/maxBufferedBodyBytes``, or the shared bounds', at
    /// least ``Configuration/maxBodySize``).
    public var bufferedBodyLimit: Int { context.bodyBudget.limit }

    /// Connections receiving a request body now: at most `maxConnections − reservedConnections`.
    public var connectionsReceivingBodies: Int { context.bodyBudget.receivingConnections }

    /// Answer bytes the connections hold for peers that have not taken them (with those of the servers sharing
    /// ``Configuration/sharedMemory``; ``unreadAnswerLimit`` bounds it). Thread-safe.
    public var unreadAnswerBytes: Int { context.memory.unreadAnswerBytes.load(ordering: .relaxed) }

    /// ``Configuration/maxUnreadAnswerBytes``, or the shared bounds'.
    public var unreadAnswerLimit: Int { context.memory.maxUnreadAnswerBytes }

    /// Whether ``start()`` succeeded and shutdown has not completed.
    public var isRunning: Bool {
        lifecycle.withLock { lifecycle in
            if case .running = lifecycle.state { return true }
            if case .stopping = lifecycle.state { return true }
            return false
        }
    }

    // MARK: - Shutdown

    /// Gracefully stops the server and calls `completion` (on an internal thread) when it is done.
    ///
    /// Immediately closes the listeners (new connections are refused) and the idle keep-alive
    /// connections. Requests in progress — being received, being handled, or being written — may
    /// finish until `deadline` from now; their responses carry `Connection: close`. At the deadline the
    /// remaining connections are closed. Then the loop threads exit and `completion` runs.
    /// Calling it again, or before ``start()``, is harmless: `completion` runs when the server is stopped.
    public func shutdown(deadline: Duration, completion: @escaping @Sendable () -> Void) {
        let absoluteDeadline = Syscall.monotonicNow() &+ deadline.nanoseconds
        let (acceptor, runNow): (EventLoop?, Bool) = lifecycle.withLock { lifecycle in
            switch lifecycle.state {
            case .created:
                lifecycle.state = .stopped(bound: [])
                return (nil, true)
            case .stopped:
                return (nil, true)
            case .stopping:
                lifecycle.shutdownWaiters.append(completion)
                return (nil, false)
            case .running(let loops, let bound):
                lifecycle.state = .stopping(bound: bound)
                lifecycle.shutdownWaiters.append(completion)
                return (loops[0], false)
            }
        }
        if let acceptor {
            context.logger.info("HTTP server shutting down", metadata: ["deadline": "\(deadline)"])
            acceptor.post(.beginShutdown(deadline: absoluteDeadline))
        }
        if runNow { completion() }
    }

    /// The event loops while the server runs (none before ``start()`` and once it stops).
    var runningLoops: [EventLoop] {
        lifecycle.withLock { lifecycle in
            if case .running(let loops, _) = lifecycle.state { return loops }
            return []
        }
    }

    /// Wake-ups of all event loops so far (0 when not running): for tests that an idle server does not spin.
    var loopWakeUps: Int { runningLoops.reduce(0) { $0 + $1.wakeUps.load(ordering: .relaxed) } }

    /// Gracefully stops the server and blocks the calling thread until it is stopped; see
    /// ``shutdown(deadline:completion:)``. Must not be called from a handler (an event-loop thread),
    /// where it would wait for itself; use the completion or async variant there.
    public func shutdown(deadline: Duration) {
        let onLoopThread = lifecycle.withLock { lifecycle in
            if case .running(let loops, _) = lifecycle.state { return loops.contains { $0.isOnLoopThread } }
            return false
        }
        precondition(!onLoopThread, "HTTPServer.shutdown(deadline:) would deadlock on an event-loop thread")
        let done = Mutex(false)
        let condition = Condition()
        shutdown(deadline: deadline) {
            done.withLock { $0 = true }
            condition.signal()
        }
        condition.wait { done.withLock { $0 } }
    }

    /// Gracefully stops the server and resumes when it is stopped; see ``shutdown(deadline:completion:)``.
    public func shutdown(deadline: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            shutdown(deadline: deadline) { continuation.resume() }
        }
    }

    private func loopDidExit() {
        let waiters: [@Sendable () -> Void] = lifecycle.withLock { lifecycle in
            lifecycle.loopsRunning -= 1
            guard lifecycle.loopsRunning == 0 else { return [] }
            context.configuration.sharedDescriptors?.remove(ObjectIdentifier(self))
            switch lifecycle.state {
            case .running(_, let bound), .stopping(let bound), .stopped(let bound):
                lifecycle.state = .stopped(bound: bound)
            case .created:
                break
            }
            defer { lifecycle.shutdownWaiters = [] }
            return lifecycle.shutdownWaiters
        }
        if !waiters.isEmpty { context.logger.info("HTTP server stopped") }
        for waiter in waiters { waiter() }
    }
}

/// A minimal condition variable (pthread) for the blocking shutdown.
private final class Condition: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()

    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    func signal() {
        pthread_mutex_lock(&mutex)
        pthread_cond_broadcast(&condition)
        pthread_mutex_unlock(&mutex)
    }

    func wait(until predicate: () -> Bool) {
        pthread_mutex_lock(&mutex)
        while !predicate() {
            pthread_cond_wait(&condition, &mutex)
        }
        pthread_mutex_unlock(&mutex)
    }
}
