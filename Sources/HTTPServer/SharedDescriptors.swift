import Synchronization

/// The servers of one process that share its open-file limit (the exporter's web port's and its proxy's). A server out
/// of descriptors with a client waiting makes room among all of their connections: the oldest without a request, once
/// ``HTTPServer/Configuration/capacityEvictionAge`` old, else the one kept alive idle the longest. Alone, a server
/// evicted only its own: silent connections on one port held every descriptor, and the other port's clients (a scrape)
/// waited for their header timeout (a probe found it).
public final class SharedDescriptors: Sendable {
    /// Each running server's loops, by server. Strong, added once a server's loops all run and removed when the last
    /// exits: a weak reference gives the loop a side table, and every retain and release of it then takes the slow
    /// path (28 more atomic updates a proxied request, `scripts/count-atomics`).
    private let servers = Mutex<[ObjectIdentifier: [EventLoop]]>([:])

    /// An empty set of servers: give it to each server's configuration (``HTTPServer/Configuration/sharedDescriptors``).
    public init() {}

    func add(_ loops: [EventLoop], of server: ObjectIdentifier) {
        servers.withLock { $0[server] = loops }
    }

    func remove(_ server: ObjectIdentifier) {
        servers.withLock { $0[server] = nil }
    }

    /// The event loops of the running servers that share this.
    var loops: [EventLoop] { servers.withLock { $0.values.flatMap { $0 } } }
}
