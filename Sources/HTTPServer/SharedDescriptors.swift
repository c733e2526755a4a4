import Synchronization

/// The servers of one process that share its open-file limit (the exporter's web port's and its proxy's). A server out
/// of descriptors with a client waiting makes room among all of their connections: the oldest without a request, once
/// ``HTTPServer/Configuration/capacityEvictionAge`` old, else the one kept alive idle the longest. Alone, a server
/// evicted only its own: silent connections on one port held every descriptor, and the other port's clients (a scrape)
/// waited for their header timeout (a probe found it).
public final class SharedDescriptors: Sendable {
    private struct Entry {
        weak var loop: EventLoop?
    }
    private let entries = Mutex<[Entry]>([])

    /// An empty set of servers: give it to each server's configuration (``HTTPServer/Configuration/sharedDescriptors``).
    public init() {}

    /// Adds a server's loops as it starts (those of servers gone are forgotten).
    func add(_ loops: [EventLoop]) {
        entries.withLock { entries in
            entries.removeAll { $0.loop == nil }
            entries += loops.map { Entry(loop: $0) }
        }
    }

    /// The event loops of the servers that share this, still there.
    var loops: [EventLoop] { entries.withLock { $0.compactMap(\.loop) } }
}
