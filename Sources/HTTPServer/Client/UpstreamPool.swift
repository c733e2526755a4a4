import Glibc
import Synchronization

/// The keep-alive connections to one upstream that one event loop holds, and the exchanges waiting for one.
///
/// Bounds (per loop: the proxy splits its totals over the loops, as nginx's `keepalive` is per worker): at most
/// `maxConnections` connections (connecting, busy or idle), at most `maxWaiting` exchanges queued for one (beyond,
/// the exchange fails with ``UpstreamFailure/poolFull``). Idle connections are reused last-in first-out (the most
/// recently used is the least likely to have been closed by the upstream) and closed after the idle timeout.
/// An exchange waits at most the response timeout for a connection (what it would wait for a response anyway; the
/// connect timeout, HAProxy's default for its queue, would refuse requests queued behind long generations by an
/// upstream that serves one at a time): beyond, it fails with ``UpstreamFailure/poolFull`` (503). Confined to its
/// loop's thread.
final class UpstreamPool: DeadlineScheduled {
    struct Timeouts {
        var connect: UInt64
        var response: UInt64
        var read: UInt64
        var idle: UInt64
    }

    /// The loop whose thread runs all of the pool's code (and its exchanges'), so it outlives every use. Not strong:
    /// the loop's server holds the proxy that holds the pool (a cycle that kept stopped loops alive). `unowned(unsafe)`
    /// makes each read a copy (a retain and a release), as a checked `unowned` would; the reads per proxied request
    /// did not show in `scripts/count-atomics` (the same count with a strong reference).
    unowned(unsafe) let loop: EventLoop
    let address: UpstreamAddress
    let maxConnections: Int
    let maxWaiting: Int
    let timeouts: Timeouts
    @exclusivity(unchecked) private var idle: [UpstreamConnection] = []
    @exclusivity(unchecked) private(set) var openCount = 0
    /// Exchanges waiting for a connection, oldest first (from `waitingHead`), with when each must give up; the places
    /// before `waitingHead` are emptied as they are taken (an exchange kept there kept its request, its client's
    /// connection and the pool itself alive: a replaced proxy's pool never ran again to drop them).
    @exclusivity(unchecked) private var waiting: [(exchange: ProxyExchange?, giveUpAt: UInt64)] = []
    @exclusivity(unchecked) private var waitingHead = 0
    // DeadlineScheduled: the loop's pool timer, at the oldest waiter's give-up time (or earlier: it checks again).
    @exclusivity(unchecked) var deadline: UInt64 = 0
    @exclusivity(unchecked) var due: UInt64 = 0
    @exclusivity(unchecked) var heapIndex = -1
    private let observer: (any UpstreamPoolObserver)?
    /// Set when the proxy that made the pool was replaced (``ReverseProxy/retire()``): a connection done with its
    /// exchange is closed, not kept (the replacement has a pool of its own).
    private let retired: RetiredFlag

    init(
        loop: EventLoop, address: UpstreamAddress, maxConnections: Int, maxWaiting: Int, timeouts: Timeouts,
        observer: (any UpstreamPoolObserver)?, retired: RetiredFlag = RetiredFlag()
    ) {
        self.retired = retired
        self.loop = loop
        self.address = address
        self.maxConnections = max(1, maxConnections)
        self.maxWaiting = max(0, maxWaiting)
        self.timeouts = timeouts
        self.observer = observer
    }

    /// Exchanges waiting for a connection.
    var waitingCount: Int { waiting.count - waitingHead }

    /// Gives `exchange` a connection now (idle, or a new one), queues it, or fails it with `pool_full`.
    /// `fresh`: a new connection when there is room for one (a request sent again after a pooled connection failed
    /// it: the other idle ones may be as old), else as any.
    func acquire(_ exchange: ProxyExchange, fresh: Bool = false) {
        if fresh && openCount < maxConnections {
            connect(for: exchange)
            return
        }
        if let connection = idle.popLast() {
            observer?.upstreamConnectionBusy(reused: true)
            exchange.attach(connection)
            return
        }
        if openCount < maxConnections {
            connect(for: exchange)
            return
        }
        guard waitingCount < maxWaiting else {
            exchange.upstreamFailed(.poolFull)
            return
        }
        let giveUpAt = loop.now &+ timeouts.response
        waiting.append((exchange, giveUpAt))
        reclaim()
        scheduleWaiting()
    }

    /// How long a connection must have waited on its client before a waiting request may take it (monotonic ns).
    static let reclaimAge: UInt64 = 1_000_000_000

    /// Requests wait for a connection of the full pool: the connection that has waited on its client the longest (its
    /// request body still arriving, or its response held for a client that does not take it), at least
    /// ``reclaimAge``, is cut for each (``UpstreamConnection/reclaim()``; the place it frees goes to the first waiter).
    /// Before, clients that sent their bodies just above the minimum rate, or read their responses a little at a time,
    /// held every connection while the others' requests waited up to the response timeout for a 503. A scan of the
    /// loop's upstream connections, only while requests wait.
    private func reclaim() {
        while waitingCount > 0, let victim = loop.longestClientBound(in: self, since: loop.now &- Self.reclaimAge) {
            victim.reclaim()  // closes: its place connects the first waiter
        }
    }

    /// The pool's timer while requests wait: the first waiter's give-up time, or sooner, to reclaim a connection that
    /// has by then waited ``reclaimAge`` on its client.
    private func scheduleWaiting() {
        guard waitingHead < waiting.count else { return }
        loop.schedule(self, at: min(waiting[waitingHead].giveUpAt, loop.now &+ Self.reclaimAge / 4))
    }

    /// A waiting exchange gave up (its client left): it is skipped when its turn comes.
    func withdraw(_ exchange: ProxyExchange) {
        guard let index = waiting[waitingHead...].firstIndex(where: { $0.exchange === exchange }) else { return }
        waiting.remove(at: index)
    }

    /// The pool's timer: the exchanges that waited the response timeout for a connection fail (503, `pool_full`);
    /// the timer moves to the next waiter's give-up time.
    func timerExpired() {
        let now = loop.now
        while waitingHead < waiting.count, waiting[waitingHead].giveUpAt <= now, let next = nextWaiting() {
            next.upstreamFailed(.poolFull)
        }
        reclaim()
        scheduleWaiting()
    }

    private func connect(for exchange: ProxyExchange) {
        switch address.connect() {
        case .failure(let error):
            exchange.upstreamFailed(
                error.errno == ECONNREFUSED ? .connectRefused : .connectFailed)
        case .success(let (fd, connected)):
            let connection = UpstreamConnection(loop: loop, pool: self, fileDescriptor: fd, connected: connected)
            guard connection.register() else {
                exchange.upstreamFailed(.connectFailed)
                return
            }
            openCount += 1
            observer?.upstreamConnectionOpened()
            observer?.upstreamConnectionBusy(reused: false)
            exchange.attach(connection)
        }
    }

    /// `connection` finished an exchange and may carry another: the next waiting exchange gets it, else it idles.
    /// Only an idle connection is taken: one still connecting reports itself once connected (taken now, it would be
    /// listed twice).
    func connectionReady(_ connection: UpstreamConnection) {
        guard connection.state == .idle else { return }
        if retired.isSet && waitingCount == 0 {
            connection.closeAndRelease()
            return
        }
        if let next = nextWaiting() {
            observer?.upstreamConnectionBusy(reused: true)
            next.attach(connection)
            return
        }
        idle.append(connection)
    }

    /// `connection`, closed, leaves the idle list (which it keeps alive: a replaced proxy's pool and its idle
    /// connections would be left holding each other); alone when its loop stops, else through ``connectionClosed(_:)``.
    func forget(_ connection: UpstreamConnection) {
        if let index = idle.firstIndex(where: { $0 === connection }) { idle.remove(at: index) }
    }

    /// `connection` closed (already): its place may go to a waiting exchange.
    func connectionClosed(_ connection: UpstreamConnection) {
        forget(connection)
        openCount -= 1
        observer?.upstreamConnectionClosed()
        if openCount < maxConnections, let next = nextWaiting() { connect(for: next) }
    }

    private func nextWaiting() -> ProxyExchange? {
        guard waitingHead < waiting.count else { return nil }
        let next = waiting[waitingHead].exchange.take()
        waitingHead += 1
        if waitingHead == waiting.count {
            // None left waiting.
            waiting.removeAll(keepingCapacity: true)
            waitingHead = 0
            loop.schedule(self, at: nil)
        } else if waitingHead >= 64 && waitingHead * 2 >= waiting.count {
            waiting.removeFirst(waitingHead)
            waitingHead = 0
        }
        return next
    }
}

/// Whether a proxy was replaced (set once, read by its pools on their loops when a connection is done).
final class RetiredFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

/// Counts of the proxy's upstream connections, for self metrics. Called on event-loop threads: must be cheap and
/// thread-safe. A class (read per request: a class existential is copied with a retain).
public protocol UpstreamPoolObserver: AnyObject, Sendable {
    /// A connection to the upstream was opened (connecting started).
    func upstreamConnectionOpened()
    /// A connection to the upstream closed.
    func upstreamConnectionClosed()
    /// A connection was given to an exchange: a fresh one, or `reused` from the pool.
    func upstreamConnectionBusy(reused: Bool)
}
