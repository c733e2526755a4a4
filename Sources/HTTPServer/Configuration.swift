import CSystemShims
import Glibc

extension HTTPServer {
    /// Runs a TLS handshake step off the event loop (``Configuration/tlsHandshakeOffload``): `run` on another
    /// thread, or `expired` instead; false: not taken.
    public typealias TLSHandshakeOffload =
        @Sendable (_ run: @escaping @Sendable () -> Void, _ expired: @escaping @Sendable () -> Void) -> Bool

    /// Everything tunable about the server: where it listens, how many threads it runs and the
    /// limits and timeouts that protect it from slow or hostile clients. Every field has a sane
    /// default; ``HTTPServer/start()`` validates the values and throws on nonsense.
    public struct Configuration: Sendable {
        /// Addresses to listen on, each `host:port`: `0.0.0.0:9464` (IPv4), `[::1]:9464` (IPv6),
        /// `:9464` or `*:9464` (all interfaces, dual-stack IPv6 socket, or IPv4 only when the host has
        /// no IPv6), `localhost:9464` (127.0.0.1). Port 0 picks a free port; read it back from
        /// ``HTTPServer/boundAddresses``. Host names other than `localhost` are not resolved.
        public var listenAddresses: [String]
        /// Number of event-loop threads; connections are spread over them. The first loop also owns the
        /// listeners and hands each accepted connection to the least-loaded loop. Default: `min(cores, 2)`.
        public var eventLoopCount: Int
        /// Connections served at once. At the cap the server stops accepting (new clients wait in the
        /// kernel's backlog) until a connection closes, or until it evicts one that has not sent a request yet (see
        /// ``capacityEvictionAge``). Default 1024.
        public var maxConnections: Int
        /// At the ``maxConnections`` cap, with a client waiting in the backlog: the oldest connection that has received
        /// no request yet (its first request head, or its TLS handshake, or, for HTTP/2, its first stream, still to
        /// come) is closed to make room once it is this old, so that clients that hold slots without asking anything
        /// cannot keep new clients out for ``headerReadTimeout``. Younger ones are kept (a burst of real clients does not
        /// evict itself), and so are connections that had a request (``idleTimeout`` applies to those). Counted in
        /// ``HTTPServerObserver/connectionError(reason:)`` as `evicted`. Default 1 s.
        public var capacityEvictionAge: Duration
        /// Time allowed to receive a request's complete head, from the connection's accept or the first
        /// byte of a keep-alive request (slowloris defence). Expiry answers 408 and closes. Default 10 s.
        public var headerReadTimeout: Duration
        /// Longest gap between two reads of a request body; expiry answers 408 and closes. Default 30 s.
        public var bodyReadTimeout: Duration
        /// Longest time a request body may take, from its admission (see ``HTTPHandler/admit(_:admission:)``)
        /// to its last byte, however steadily it trickles in; expiry answers 408 and closes (HTTP/2: the
        /// stream). Default 60 s.
        public var bodyTimeout: Duration
        /// Slowest average rate, in bytes per second, at which a request body may arrive once
        /// ``bodyRateGrace`` has passed: a body must have delivered `minBodyRate × (elapsed − grace)` bytes
        /// at any moment, or it is answered 408 (slow-POST defence). 0 disables the check. Default 4096.
        public var minBodyRate: Int
        /// How long a body may arrive at any rate before ``minBodyRate`` applies. Default 5 s.
        public var bodyRateGrace: Duration
        /// Most request-body bytes held by the server at once, over all connections and both protocols:
        /// bodies being received and bodies handed to the handler whose response is not yet delivered. A new
        /// body that does not fit is answered 503 with `Retry-After` (HTTP/2: on its stream). At least
        /// ``maxBodySize`` is used. Default 256 MiB.
        public var maxBufferedBodyBytes: Int
        /// Most request-body bytes one connection may hold (HTTP/1.1 pipelining, HTTP/2 streams). Beyond it the
        /// connection stops reading (HTTP/1.1) or withholds flow-control credit (HTTP/2) until its earlier
        /// requests are answered; an HTTP/2 stream that could never fit is answered 503. At least
        /// ``maxBodySize`` is used. Default 32 MiB.
        public var maxConnectionBodyBytes: Int
        /// Connection slots that requests with a body may not occupy, so that scrapes and health checks are
        /// still served when uploads fill the rest: at most `maxConnections − reservedConnections`
        /// connections receive a body at once, a body beyond that is answered 503 with `Retry-After`.
        /// nil: `maxConnections / 10`, at least 1 (0 when `maxConnections` is 1).
        public var reservedConnections: Int?
        /// How long a keep-alive connection may sit with no request in progress. Default 60 s.
        public var idleTimeout: Duration
        /// How long queued output may make no progress (peer not reading) before the connection is
        /// dropped. Default 30 s.
        public var writeStallTimeout: Duration
        /// Longest accepted request target; longer answers 414. Default 8 KiB.
        public var maxRequestTargetLength: Int
        /// Largest header section (after the request line, also bounding chunked trailers); larger
        /// answers 431. Default 16 KiB.
        public var maxHeaderBytes: Int
        /// Most header field lines per request; more answers 431. Default 100.
        public var maxHeaderCount: Int
        /// Largest request body after de-chunking; larger answers 413. Default 16 MiB.
        public var maxBodySize: Int
        /// Requests per connection handed to the handler but not yet answered and written. When reached,
        /// the connection stops reading until responses are flushed (pipelining back-pressure). Default 16.
        public var maxPipelinedRequests: Int
        /// Response bytes one HTTP/1.x connection may have queued for its peer (answered, not yet written) before the
        /// session parses no further request head, until the peer takes enough of them: a client that pipelines
        /// requests for big answers and reads none holds this much, plus the answer that crossed it, not
        /// ``maxPipelinedRequests`` answers of any size. The body of a request already taken is still read. Default
        /// 1 MiB (as ``http2MaxUnsentResponseBytes``).
        public var maxPipelinedResponseBytes: Int
        /// Most answer bytes queued over all connections for peers that have not taken them yet (each connection's
        /// counted once it is left holding some after a write: a shared answer counts once per connection holding
        /// it). While over it, a new request (HTTP/1.x, or an HTTP/2 stream) is answered 503 (`Retry-After: 1`), counted `answer_memory`,
        /// without reaching the handler: peers that ask and never read (a scrape of a large /metrics each) cannot
        /// make the process hold answers without bound (``maxPipelinedResponseBytes`` bounds one connection).
        /// Default 256 MiB (as ``maxBufferedBodyBytes``).
        public var maxUnreadAnswerBytes: Int
        /// The body and unread-answer bounds shared with the other servers of the process given the same instance
        /// (they then replace ``maxBufferedBodyBytes`` and ``maxUnreadAnswerBytes``): one total for the process. nil
        /// (the default): the server's own, of those two settings.
        public var sharedMemory: SharedMemoryBounds?
        /// The servers of the process that share its open-file limit, given the same instance: out of descriptors, a
        /// server makes room among the connections of all of them (``SharedDescriptors``). nil (the default): its own.
        public var sharedDescriptors: SharedDescriptors?
        /// `listen(2)` backlog. Default `SOMAXCONN`.
        public var listenBacklog: Int
        /// Whether HTTP/2 is served: h2c (prior knowledge and `Upgrade: h2c`) in cleartext, ALPN `h2` with
        /// TLS. Default true.
        public var http2Enabled: Bool
        /// The `SETTINGS_MAX_CONCURRENT_STREAMS` announced to HTTP/2 clients; streams beyond it are
        /// refused (RST_STREAM(REFUSED_STREAM) before the client acknowledged our SETTINGS, a connection error
        /// after), counted in `mlops_exporter_http_errors_total{reason="stream_refused"}` (`bad_request`). Default 100.
        public var http2MaxConcurrentStreams: Int
        /// Response body bytes one HTTP/2 connection may hold for its peer (answered, whole or streamed, waiting for
        /// the peer's flow-control window) before the requests that arrive wait, not handed to the handler, and the
        /// writers of its streamed answers are told to stop (``HTTPResponseStream/write(_:)`` answers false), until the
        /// peer takes enough of them: a peer that never opens its window cannot have answer after answer kept (waiting
        /// requests are open streams, at most ``http2MaxConcurrentStreams``). A request handed over below it may cross
        /// it by its whole answer, a writer by the piece it wrote. Default 1 MiB.
        public var http2MaxUnsentResponseBytes: Int
        /// TLS for every listener; nil serves cleartext. Replace it at run time with
        /// ``HTTPServer/reloadTLS(_:)``.
        public var tls: TLSConfiguration?
        /// Time a client has to complete the TLS handshake after connecting. Default 10 s.
        public var tlsHandshakeTimeout: Duration
        /// Where TLS handshake steps run: nil, on the event loops; otherwise each step (`SSL_do_handshake`, a full
        /// handshake's signature with the server's key among them: milliseconds a client can ask for without
        /// credentials) is handed to this function, which runs its first closure on another thread under a bound of
        /// its own, or its second when the step waited too long (the handshake then fails, counted
        /// `tls_handshake_timeout`), and returns false when it cannot take the step (the handshake fails,
        /// `tls_handshake_failed`). The event loops then keep serving established connections whatever the rate of
        /// handshakes. `Exporter` sets it to a pool of half the cores.
        public var tlsHandshakeOffload: TLSHandshakeOffload?

        /// Creates a configuration listening on `listenAddresses` with default limits.
        public init(listenAddresses: [String] = ["127.0.0.1:0"]) {
            self.listenAddresses = listenAddresses
            self.eventLoopCount = Swift.max(1, Swift.min(Self.processorCount, 2))
            self.maxConnections = 1024
            self.capacityEvictionAge = .seconds(1)
            self.headerReadTimeout = .seconds(10)
            self.bodyReadTimeout = .seconds(30)
            self.bodyTimeout = .seconds(60)
            self.minBodyRate = 4096
            self.bodyRateGrace = .seconds(5)
            self.maxBufferedBodyBytes = 256 * 1024 * 1024
            self.maxConnectionBodyBytes = 32 * 1024 * 1024
            self.reservedConnections = nil
            self.idleTimeout = .seconds(60)
            self.writeStallTimeout = .seconds(30)
            self.maxRequestTargetLength = 8 * 1024
            self.maxHeaderBytes = 16 * 1024
            self.maxHeaderCount = 100
            self.maxBodySize = 16 * 1024 * 1024
            self.maxPipelinedRequests = 16
            self.maxPipelinedResponseBytes = 1024 * 1024
            self.maxUnreadAnswerBytes = 256 * 1024 * 1024
            self.listenBacklog = Int(SOMAXCONN)
            self.http2Enabled = true
            self.http2MaxConcurrentStreams = 100
            self.http2MaxUnsentResponseBytes = 1024 * 1024
            self.tls = nil
            self.tlsHandshakeTimeout = .seconds(10)
        }

        /// The connection slots kept free of body uploads (see ``reservedConnections``).
        var effectiveReservedConnections: Int {
            reservedConnections ?? (maxConnections == 1 ? 0 : Swift.max(1, maxConnections / 10))
        }

        /// The CPUs this process may run on (its affinity, so `taskset -c 0` means one loop).
        static var processorCount: Int { Int(cshims_usable_cpu_count()) }

        /// Throws ``HTTPServerError`` naming the first invalid field.
        func validate() throws(HTTPServerError) {
            func require(_ condition: Bool, _ message: String) throws(HTTPServerError) {
                if !condition { throw HTTPServerError(.invalidConfiguration, message) }
            }
            try require(!listenAddresses.isEmpty, "listenAddresses is empty")
            try require(eventLoopCount >= 1 && eventLoopCount <= 256, "eventLoopCount must be in 1...256")
            try require(maxConnections >= 1, "maxConnections must be at least 1")
            try require(capacityEvictionAge >= .zero, "capacityEvictionAge must not be negative")
            for (name, value) in [
                ("headerReadTimeout", headerReadTimeout), ("bodyReadTimeout", bodyReadTimeout),
                ("idleTimeout", idleTimeout), ("writeStallTimeout", writeStallTimeout),
                ("tlsHandshakeTimeout", tlsHandshakeTimeout), ("bodyTimeout", bodyTimeout),
            ] {
                try require(value > .zero, "\(name) must be positive")
            }
            try require(maxRequestTargetLength >= 16, "maxRequestTargetLength must be at least 16")
            try require(maxHeaderBytes >= 64, "maxHeaderBytes must be at least 64")
            try require(maxHeaderCount >= 1, "maxHeaderCount must be at least 1")
            try require(maxBodySize >= 0, "maxBodySize must not be negative")
            try require(minBodyRate >= 0, "minBodyRate must not be negative")
            try require(bodyRateGrace >= .zero, "bodyRateGrace must not be negative")
            try require(maxBufferedBodyBytes >= 0, "maxBufferedBodyBytes must not be negative")
            try require(maxConnectionBodyBytes >= 0, "maxConnectionBodyBytes must not be negative")
            try require(
                (0..<maxConnections).contains(effectiveReservedConnections),
                "reservedConnections must be in 0..<maxConnections")
            try require(maxPipelinedRequests >= 1, "maxPipelinedRequests must be at least 1")
            try require(maxPipelinedResponseBytes >= 1, "maxPipelinedResponseBytes must be at least 1")
            try require(maxUnreadAnswerBytes >= 1, "maxUnreadAnswerBytes must be at least 1")
            try require(listenBacklog >= 1, "listenBacklog must be at least 1")
            try require(
                (1...1_000_000).contains(http2MaxConcurrentStreams), "http2MaxConcurrentStreams must be in 1...1000000")
            try require(http2MaxUnsentResponseBytes >= 1, "http2MaxUnsentResponseBytes must be at least 1")
        }
    }
}

extension Duration {
    /// Whole nanoseconds, saturating at `UInt64.max` (timeouts are compared on the monotonic clock).
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max }
        let (sum, overflow2) = whole.addingReportingOverflow(UInt64(attoseconds / 1_000_000_000))
        return overflow2 ? .max : sum
    }
}
