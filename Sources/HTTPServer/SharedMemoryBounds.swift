import Synchronization

/// The memory bounds that every server given the same instance shares: the request-body bytes held
/// (``HTTPServer/Configuration/maxBufferedBodyBytes``) and the answer bytes that clients have not read
/// (``HTTPServer/Configuration/maxUnreadAnswerBytes``), each one total over those servers. A process serving on two
/// servers (the exporter's web port and its reverse proxy's port) gives both the same instance
/// (``HTTPServer/Configuration/sharedMemory``), so that each bound holds for the process: with a budget per server, the
/// two ports together held twice the bound. Thread-safe, lock-free.
public final class SharedMemoryBounds: Sendable {
    /// The most request-body bytes held at once by the servers sharing this (a server uses at least its own
    /// ``HTTPServer/Configuration/maxBodySize``).
    public let maxBufferedBodyBytes: Int
    /// The most answer bytes held for clients that have not read them, over the servers sharing this.
    public let maxUnreadAnswerBytes: Int
    /// Request-body bytes reserved now (``BodyBudget``).
    let bodyBytes = Atomic<Int>(0)
    /// Answer bytes that connections are left holding after their writes (``Connection/accountUnreadOutput()``).
    let unreadAnswerBytes = Atomic<Int>(0)

    /// Bounds of `maxBufferedBodyBytes` and `maxUnreadAnswerBytes` (both at least 1).
    public init(maxBufferedBodyBytes: Int, maxUnreadAnswerBytes: Int) {
        precondition(maxBufferedBodyBytes >= 1 && maxUnreadAnswerBytes >= 1)
        self.maxBufferedBodyBytes = maxBufferedBodyBytes
        self.maxUnreadAnswerBytes = maxUnreadAnswerBytes
    }
}
