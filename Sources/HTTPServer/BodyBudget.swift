import Synchronization

/// The budget of request-body bytes the server holds (see ``HTTPServer/Configuration/maxBufferedBodyBytes``: counted in
/// a ``SharedMemoryBounds``, with the other servers of the process that share it), and the count of the server's
/// connections receiving a body (see ``HTTPServer/Configuration/reservedConnections``). Shared by all loops: lock-free.
///
/// A connection reserves bytes before it buffers them and releases them when the request's response is
/// delivered or the connection closes (``Connection`` keeps its own total, so a close returns everything).
final class BodyBudget: Sendable {
    /// Bytes that may be reserved at once.
    let limit: Int
    /// Connections that may be receiving a body at once.
    let connectionLimit: Int
    /// Where the reserved bytes are counted.
    private let shared: SharedMemoryBounds
    private let receiving = Atomic<Int>(0)

    init(shared: SharedMemoryBounds, limit: Int, connectionLimit: Int) {
        self.shared = shared
        self.limit = limit
        self.connectionLimit = connectionLimit
    }

    /// Bytes reserved now (by every server sharing the bounds).
    var reservedBytes: Int { shared.bodyBytes.load(ordering: .relaxed) }

    /// Connections receiving a body now.
    var receivingConnections: Int { receiving.load(ordering: .relaxed) }

    /// Reserves `count` bytes; false (and nothing reserved) when they do not fit.
    func reserve(_ count: Int) -> Bool {
        var current = shared.bodyBytes.load(ordering: .relaxed)
        while current + count <= limit {
            let (exchanged, original) = shared.bodyBytes.compareExchange(
                expected: current, desired: current + count, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Returns `count` reserved bytes.
    func release(_ count: Int) {
        if count > 0 { shared.bodyBytes.subtract(count, ordering: .relaxed) }
    }

    /// Claims one of the connection slots for bodies; false at ``connectionLimit``.
    func claimReceivingSlot() -> Bool {
        var current = receiving.load(ordering: .relaxed)
        while current < connectionLimit {
            let (exchanged, original) = receiving.compareExchange(
                expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Returns a slot claimed with ``claimReceivingSlot()``.
    func releaseReceivingSlot() {
        receiving.subtract(1, ordering: .relaxed)
    }
}

/// Why a connection could not reserve body bytes.
enum BodyReservation {
    case reserved
    /// The connection's own limit: wait for its earlier requests to be answered.
    case connectionLimit
    /// The process-wide budget: answer 503.
    case processLimit
}
