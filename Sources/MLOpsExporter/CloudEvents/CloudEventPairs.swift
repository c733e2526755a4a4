import Exposition
import Synchronization

/// The KServe logger's halves waiting for their other half: a request event waits for the response event with the
/// same `ce-id` (and service), or the other way round. Bounded by count (`max_pending`) and by bytes
/// (`max_pending_bytes`), each half kept at most `ttl`; a half dropped unpaired is counted as an orphan by reason
/// (`expired`, `evicted`, `shutdown`) and by kind.
///
/// One lock for the whole store: a pair costs two short critical sections (a dictionary insert, then a removal), and
/// logger traffic is one event per inference, far below what a lock sustains.
final class CloudEventPairs: Sendable {
    enum Kind: Int, Sendable, CaseIterable {
        case request = 0
        case response = 1

        var name: String { self == .request ? "request" : "response" }
    }

    /// Why a half is dropped unpaired (`mlops_cloudevents_orphans_total{reason}`; the raw value is the label).
    enum OrphanReason: String, Sendable, CaseIterable {
        /// Older than the time-to-live.
        case expired
        /// Dropped to make room (`max_pending`, `max_pending_bytes`).
        case evicted
        /// Waiting when the exporter stopped (halves are not kept across restarts, nor in checkpoints).
        case shutdown

        /// Its slot in ``State/orphans``: its position in `allCases`.
        var slot: Int {
            switch self {
            case .expired: 0
            case .evicted: 1
            case .shutdown: 2
            }
        }
    }

    /// One half: its body, when it arrived, and the `ce-time` it carried (Unix time), if any.
    struct Half: Sendable {
        let body: [UInt8]
        /// Moved back after a step back of the wall clock (``CloudEventPairs/expire(now:)``).
        fileprivate(set) var arrival: Double
        let eventTime: RFC3339.Instant?
        /// `ce-endpoint` (a KServe predictor or canary name), if any.
        let endpoint: String?
        /// The event's attributes as `ce-*` headers (``CloudEvent/attributes``).
        let attributes: [(name: String, value: String)]
        /// What the half holds, counted against `max_pending_bytes`: its body, and its attributes' names and values
        /// with ``attributeOverhead`` each (a half of 90 short attributes took five times the bytes counted).
        let bytes: Int

        /// The memory of one attribute beside its text: its pair in the array and the heap storage of its two
        /// strings (a header's of over 15 bytes: the object's header and capacity rounded up).
        static let attributeOverhead = 96

        init(
            body: [UInt8], arrival: Double, eventTime: RFC3339.Instant?, endpoint: String?,
            attributes: [(name: String, value: String)] = []
        ) {
            self.body = body
            self.arrival = arrival
            self.eventTime = eventTime
            self.endpoint = endpoint
            self.attributes = attributes
            bytes = attributes.reduce(body.count) {
                $0 + $1.name.utf8.count + $1.value.utf8.count + Self.attributeOverhead
            }
        }
    }

    /// A half's key: its service and `ce-id`, compared byte for byte. A `String` key compared them canonically, so
    /// that two different ids (`é` composed and decomposed) paired; the label join compares ids by their bytes too.
    struct Key: Hashable, Sendable, ExpressibleByStringInterpolation {
        let bytes: [UInt8]
        init(_ text: String) { bytes = Array(text.utf8) }
        init(stringLiteral text: String) { self.init(text) }
    }

    /// A request and its response.
    struct Pair: Sendable {
        let request: Half
        let response: Half
    }

    struct State {
        var waiting: [Key: (kind: Kind, half: Half, sequence: UInt64)] = [:]
        /// Keys in arrival order, with the sequence number they were stored under (a key paired or replaced leaves
        /// a stale entry, skipped when reached).
        var order: [(key: Key, sequence: UInt64)] = []
        var head = 0
        var next: UInt64 = 0
        var bytes = 0
        /// Orphans by [kind][``OrphanReason/slot``], and halves replaced by a duplicate of the same kind.
        var orphans = [[UInt64]](
            repeating: [UInt64](repeating: 0, count: OrphanReason.allCases.count), count: Kind.allCases.count)
        var duplicates: UInt64 = 0
        /// The latest arrival stored (``CloudEventPairs/rebase(_:now:)``).
        var newestArrival = -Double.infinity
    }

    let maxPending: Int
    let maxBytes: Int
    let ttl: Double
    let state = Mutex(State())

    init(maxPending: Int, maxBytes: Int, ttl: Double) {
        self.maxPending = maxPending
        self.maxBytes = maxBytes
        self.ttl = ttl
    }

    /// What became of a half given to ``add(_:kind:key:now:)``.
    enum Outcome {
        /// Its other half was waiting (and is removed).
        case paired(Pair)
        /// Stored, waiting for its other half.
        case waiting
        /// Not stored: larger than `max_pending_bytes` alone (it could never wait within the bound).
        case tooLarge
    }

    /// Stores `half` of `kind` under `key`, or pairs it with its other half waiting there.
    func add(_ half: Half, kind: Kind, key: Key, now: Double) -> Outcome {
        state.withLock { s -> Outcome in
            expire(&s, now: now)
            if let other = s.waiting[key] {
                if other.kind != kind {
                    s.waiting.removeValue(forKey: key)
                    s.bytes -= other.half.bytes
                    return .paired(
                        kind == .request
                            ? Pair(request: half, response: other.half) : Pair(request: other.half, response: half))
                }
            }
            // Refused before it replaces anything: a retry too large to wait leaves the earlier copy waiting (before,
            // that copy was dropped, counted as a duplicate replaced by nothing).
            guard half.bytes <= maxBytes else { return .tooLarge }
            if let other = s.waiting[key] {
                // The same half again (a retry): the newer replaces it.
                s.waiting.removeValue(forKey: key)
                s.bytes -= other.half.bytes
                s.duplicates += 1
            }
            store(&s, half, kind: kind, key: key)
            return .waiting
        }
    }

    /// Puts back `half`, taken from the store by a pair that could not be decoded now (no decoding worker): it waits
    /// again, under its arrival time, for a retry of its other half, and is counted as an orphan if none comes. When
    /// the key holds a half again meanwhile, the newer is kept: `half` is counted a duplicate (the same kind) or an
    /// evicted orphan (the other kind: both wait for a retry of this pair, and the store keeps one half per key).
    func restore(_ half: Half, kind: Kind, key: Key, now: Double) {
        state.withLock { s in
            expire(&s, now: now)
            if let other = s.waiting[key] {
                if other.kind == kind {
                    s.duplicates += 1
                } else {
                    s.orphans[kind.rawValue][OrphanReason.evicted.slot] += 1
                }
                return
            }
            // An arrival more than the step tolerance after now (taken before a step back of the wall clock): now's, as the
            // others waiting were moved back; kept, the next expiry would move them all back a second time.
            var half = half
            if half.arrival - now > WallClock.stepBackTolerance { half.arrival = now }
            store(&s, half, kind: kind, key: key)
        }
    }

    /// Stores `half` under `key` (free of a half), the oldest halves dropped first to make room (counted evicted).
    private func store(_ s: inout State, _ half: Half, kind: Kind, key: Key) {
        while !s.waiting.isEmpty && (s.waiting.count >= maxPending || s.bytes + half.bytes > maxBytes) {
            dropOldest(&s, reason: .evicted)
        }
        s.next += 1
        s.waiting[key] = (kind, half, s.next)
        s.order.append((key, s.next))
        s.bytes += half.bytes
        s.newestArrival = Swift.max(s.newestArrival, half.arrival)
    }

    /// Drops the halves older than the time-to-live (also done by ``add(_:kind:key:now:)``; at scrape time so that
    /// the counts are current).
    func expire(now: Double) { state.withLock { expire(&$0, now: now) } }

    private func expire(_ s: inout State, now: Double) {
        rebase(&s, now: now)
        while s.head < s.order.count {
            let (key, sequence) = s.order[s.head]
            guard let entry = s.waiting[key], entry.sequence == sequence else {
                s.head += 1
                continue
            }
            guard entry.half.arrival < now - ttl else { break }
            dropOldest(&s, reason: .expired)
        }
        compact(&s)
    }

    /// When the newest half stored arrived more than ``WallClock/stepBackTolerance`` after `now` (the wall clock stepped back since: an NTP
    /// step), moves every half's arrival back by that much, so that the newest arrived now and the others keep their
    /// ages: arrival order is expiry order only on one clock, and a half stored ahead kept every later one from
    /// expiring until the clock caught up with it.
    private func rebase(_ s: inout State, now: Double) {
        let step = s.newestArrival - now
        guard step > WallClock.stepBackTolerance else { return }
        s.newestArrival = now
        for key in Array(s.waiting.keys) { s.waiting[key]?.half.arrival -= step }
    }

    /// Drops the oldest waiting half, counted as an orphan for `reason`.
    private func dropOldest(_ s: inout State, reason: OrphanReason) {
        while s.head < s.order.count {
            let (key, sequence) = s.order[s.head]
            s.head += 1
            guard let entry = s.waiting[key], entry.sequence == sequence else { continue }
            s.waiting.removeValue(forKey: key)
            s.bytes -= entry.half.bytes
            s.orphans[entry.kind.rawValue][reason.slot] += 1
            return
        }
    }

    /// Forgets the consumed front of the arrival order once it is most of it, and the entries of paired halves once
    /// they outnumber the waiting ones four to one (so the order stays within 4 × `max_pending` + 1,024 entries;
    /// amortised O(1) per half).
    private func compact(_ s: inout State) {
        if s.head > 1024 && s.head * 2 > s.order.count {
            s.order.removeFirst(s.head)
            s.head = 0
        }
        if s.order.count - s.head > 4 * Swift.max(maxPending, s.waiting.count) + 1024 {
            let waiting = s.waiting
            s.order = s.order[s.head...].filter { waiting[$0.key]?.sequence == $0.sequence }
            s.head = 0
        }
    }

    /// Drops every waiting half, counted as an orphan for `shutdown`; returns how many there were. At shutdown, after
    /// the server stopped taking events (before, they went without a count or a word).
    func dropAllAtShutdown() -> Int {
        state.withLock { s in
            let count = s.waiting.count
            while !s.waiting.isEmpty && s.head < s.order.count { dropOldest(&s, reason: .shutdown) }
            return count
        }
    }

    /// Halves waiting, their bytes, orphans by [kind][``OrphanReason/slot``], duplicates.
    var counts: (pending: Int, bytes: Int, orphans: [[UInt64]], duplicates: UInt64) {
        state.withLock { ($0.waiting.count, $0.bytes, $0.orphans, $0.duplicates) }
    }
}
