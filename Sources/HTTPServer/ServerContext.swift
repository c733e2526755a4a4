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
    /// How long a closing connection keeps draining unread input after its last response (see
    /// ``Connection``): closing a socket with unread data sends RST, which can destroy that response.
    let lingerTimeout: UInt64 = 2_000_000_000
    let handler: any HTTPHandler
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
        self.handler = handler
        self.observer = observer
        self.logger = logger
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
