import Exposition
import Ingestion
import Synchronization

/// Predictions waiting for their label: a bounded, sharded store keyed by the 64-bit hash of the prediction's
/// `id`, with a time-to-live.
///
/// Each shard is a ring of `capacity / shards` entries in arrival order plus a dictionary from key to ring
/// position, behind its own lock (so concurrent writers rarely meet). Because the time-to-live is the same
/// for every entry, arrival order is expiry order: expiring and evicting only ever take the ring's head.
/// - ``insert(key:time:_:now:)`` first expires the shard's entries older than the TTL, then, when the
///   shard holds its share of `capacity` waiting entries, evicts its oldest waiting entry (counted), then
///   appends. `capacity` is split evenly over the shards (by id hash), so the store may start evicting a
///   little before `capacity` ids are pending in total. A second prediction with a pending
///   `id` replaces the first (counted as a duplicate).
/// - ``claim(key:now:)`` removes and returns the pending entry for a label, or says why there is none: the id
///   expired or was evicted (when the shard still remembers dropping it, see below), or it is unknown (never
///   pending, already joined, or dropped and forgotten). ``take(key:now:)`` is the same, answering only the entry.
/// - Dropped ids are remembered, lossily, so that a late label can be told apart from an unknown one: each shard
///   has a direct-mapped table of the keys it expired or evicted (with the reason), as many slots as the smallest
///   power of two at or above its share of `capacity`, the slot chosen by the key's bits; a newer drop overwrites
///   the slot. So at least the last `capacity / shards` ids a shard dropped are remembered whenever they map to
///   distinct slots, and in practice most of them; an older one is answered as unknown. A remembered id is
///   forgotten once a label has claimed it (a second label for it is unknown, like one for a joined id). Predictions
///   dropped by a configuration reload are not remembered (the new store starts with an empty table).
/// - Memory is fixed by capacity whatever the traffic: per entry, the key, the time, the entry's payload
///   (`Payload`, a fixed-size value) and a dictionary slot; plus the dropped-id table, 8 bytes and a bit a slot
///   (at most about 16 bytes per entry of `capacity`).
///
/// Ids are identified by a 64-bit FNV-1a hash: two ids colliding among a million pending ones has a
/// probability of about 3·10⁻⁸.
public final class PendingStore<Payload: Sendable>: Sendable {
    /// Why a pending entry left the store without being claimed.
    public enum DropReason: Sendable, Equatable {
        /// It waited longer than the time-to-live.
        case expired
        /// Its shard was full (`capacity`), and it was the oldest waiting entry.
        case evicted
    }

    /// What ``claim(key:now:)`` found for a key.
    public enum Claim {
        /// The entry was pending: here it is, with its arrival time (it is now removed).
        case pending(Payload, time: Double)
        /// The entry was pending but has left the store (remembered in the shard's dropped-id table).
        case dropped(DropReason)
        /// No pending entry, and no remembered drop: never pending, already claimed, or dropped and forgotten.
        case unknown
    }

    struct Shard {
        var keys: [UInt64]
        var times: [Double]
        /// The waiting entries' payloads; nil for a slot whose entry was joined, replaced or dropped.
        var payloads: [Payload?]
        var index: [UInt64: Int32] = [:]
        var head = 0
        var count = 0
        var expired: UInt64 = 0
        var evicted: UInt64 = 0
        var duplicates: UInt64 = 0
        /// Recently dropped keys, direct-mapped by ``droppedSlot(_:)``; 0 is an empty slot (a key of 0 is never
        /// remembered). A power of two of slots, at least 64.
        var dropped: [UInt64]
        /// One bit per slot of `dropped`: set when its key was evicted, clear when it expired.
        var droppedEvicted: [UInt64]
        /// Most live (waiting) entries; the ring has a quarter more slots, so that labels joined out of order
        /// (holes in the ring) never force a live entry out before the limit is reached.
        let limit: Int

        init(limit: Int) {
            self.limit = limit
            let slots = limit == 0 ? 0 : limit + Swift.max(1, limit / 4)
            keys = Array(repeating: 0, count: slots)
            times = Array(repeating: 0, count: slots)
            payloads = Array(repeating: nil, count: slots)
            // At least 64 slots: a shard of share 0 (`max_pending` below the shard count after a reload) still
            // remembers the ids it evicts at once, so that their labels are answered `evicted`, not `unknown`.
            let droppedSlots = limit == 0 ? 64 : Swift.max(64, 1 << (Int.bitWidth - (limit - 1).leadingZeroBitCount))
            dropped = Array(repeating: 0, count: droppedSlots)
            droppedEvicted = Array(repeating: 0, count: (droppedSlots + 63) / 64)
            index.reserveCapacity(Swift.min(limit, 1 << 16))
        }

        var capacity: Int { keys.count }

        /// Moves the live entries to the front of the ring, in order (when the ring is full of holes). Runs at
        /// most once per `capacity - limit` inserts, so it costs O(1) per insert, amortised. The entries are
        /// gathered first: in a ring that wraps, writing from slot 0 while reading from `head` would overwrite
        /// entries not read yet.
        mutating func compact() {
            var kept: [(key: UInt64, time: Double, payload: Payload)] = []
            kept.reserveCapacity(index.count)
            var read = head
            for _ in 0..<count {
                if let payload = payloads[read] { kept.append((keys[read], times[read], payload)) }
                read = read + 1 == capacity ? 0 : read + 1
            }
            for slot in 0..<capacity { payloads[slot] = nil }
            for (slot, entry) in kept.enumerated() {
                keys[slot] = entry.key
                times[slot] = entry.time
                payloads[slot] = entry.payload
                index[entry.key] = Int32(slot)
            }
            head = 0
            count = kept.count
        }

        /// The dropped-id table's slot of `key`: the high bits of the key through a full 64-bit mixer (splitmix64's
        /// finalizer; the shard was chosen by the low bits of `key` folded with its high half). Before, a single
        /// multiply: ids that differ in their last characters (`order-1000`, `order-1001`, ...) shared slots three
        /// times as often as random ones, and 30 % of the last 200 evictions of a 1,000-entry store were answered
        /// `unknown` instead of `evicted`.
        @inline(__always)
        func droppedSlot(_ key: UInt64) -> Int {
            var z = key
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Int(truncatingIfNeeded: z >> 32) & (dropped.count - 1)
        }

        /// Remembers that `key` was dropped for `reason`.
        @inline(__always)
        mutating func rememberDropped(_ key: UInt64, _ reason: DropReason) {
            guard !dropped.isEmpty else { return }
            let slot = droppedSlot(key)
            dropped[slot] = key
            let bit: UInt64 = 1 << (slot & 63)
            if reason == .evicted {
                droppedEvicted[slot >> 6] |= bit
            } else {
                droppedEvicted[slot >> 6] &= ~bit
            }
        }

        /// Why `key` was dropped, if remembered; forgets it.
        @inline(__always)
        mutating func forgetDropped(_ key: UInt64) -> DropReason? {
            guard !dropped.isEmpty, key != 0 else { return nil }
            let slot = droppedSlot(key)
            guard dropped[slot] == key else { return nil }
            dropped[slot] = 0
            return droppedEvicted[slot >> 6] & (1 << (slot & 63)) != 0 ? .evicted : .expired
        }

        /// Drops the head entry (remembered as dropped for `reason` when it was still waiting); returns whether it
        /// was still waiting.
        mutating func dropHead(_ reason: DropReason) -> Bool {
            let wasLive = payloads[head] != nil
            if wasLive {
                index.removeValue(forKey: keys[head])
                payloads[head] = nil
                rememberDropped(keys[head], reason)
            }
            head = head + 1 == capacity ? 0 : head + 1
            count -= 1
            return wasLive
        }

        /// Appends an entry (the newest): a pending entry with the same key is replaced (a duplicate), a full shard
        /// first evicts its oldest waiting entry. `limit` must be above 0.
        mutating func append(_ key: UInt64, _ time: Double, _ payload: Payload) {
            // A key dropped earlier and sent again waits afresh: a later label for it that finds nothing pending (a
            // duplicate of the one that joined) is `unknown`, not the old drop's reason.
            _ = forgetDropped(key)
            if let old = index[key] {
                payloads[Int(old)] = nil
                index.removeValue(forKey: key)
                duplicates += 1
            }
            if index.count >= limit {
                // Full: the oldest waiting entry goes (joined ones before it are skipped).
                while count > 0 && !dropHead(.evicted) {}
                evicted += 1
            }
            if count == capacity { compact() }
            var slot = head + count
            if slot >= capacity { slot -= capacity }
            keys[slot] = key
            times[slot] = time
            payloads[slot] = payload
            index[key] = Int32(slot)
            count += 1
        }

        /// This shard with a share of `newLimit`: its waiting entries in arrival order (the oldest over the new share
        /// evicted, counted and remembered), its totals kept; the memory of earlier drops starts empty.
        func resized(to newLimit: Int) -> Shard {
            var out = Shard(limit: newLimit)
            out.expired = expired
            out.evicted = evicted
            out.duplicates = duplicates
            var read = head
            for _ in 0..<count {
                if let payload = payloads[read] {
                    if newLimit == 0 { out.evicted += 1 } else { out.append(keys[read], times[read], payload) }
                }
                read = read + 1 == capacity ? 0 : read + 1
            }
            return out
        }

        /// When the newest entry arrived more than ``WallClock/stepBackTolerance`` after `now` (the wall clock stepped back
        /// since: an NTP step), moves every entry's time back by that much, so that the newest arrived now and the
        /// others keep their ages. Arrival order is expiry order only on one clock: a prediction stored a month ahead
        /// stood at the head, and no entry behind it expired for a month (counted pending, its label answered
        /// `expired`).
        mutating func rebase(now: Double) {
            guard count > 0 else { return }
            var tail = head + count - 1
            if tail >= capacity { tail -= capacity }
            let step = times[tail] - now
            guard step > WallClock.stepBackTolerance else { return }
            var read = head
            for _ in 0..<count {
                times[read] -= step
                read = read + 1 == capacity ? 0 : read + 1
            }
        }

        mutating func expire(before deadline: Double) {
            while count > 0 && times[head] < deadline {
                if dropHead(.expired) { expired += 1 }
            }
            // Joined entries at the head hold no memory worth keeping: skip them too.
            while count > 0 && payloads[head] == nil { _ = dropHead(.expired) }
        }
    }

    final class Locked: Sendable {
        let mutex: Mutex<Shard>
        init(_ shard: Shard) { mutex = Mutex(shard) }
    }

    let shards: [Locked]
    let mask: Int
    private let timeToLiveBits: Atomic<UInt64>
    private let capacityValue: Atomic<Int>
    /// Seconds an entry waits before it expires (``reconfigure(capacity:timeToLive:)`` may change it).
    public var timeToLive: Double { Double(bitPattern: timeToLiveBits.load(ordering: .relaxed)) }
    /// Most entries held at once (over all shards).
    public var capacity: Int { capacityValue.load(ordering: .relaxed) }

    /// A store for `capacity` entries kept `timeToLive` seconds.
    public init(capacity: Int, timeToLive: Double) {
        var n = 1
        while n < 16 && n * 1024 < capacity { n *= 2 }
        shards = (0..<n).map { Locked(Shard(limit: Self.share(capacity, shard: $0, of: n))) }
        mask = n - 1
        timeToLiveBits = Atomic(timeToLive.bitPattern)
        capacityValue = Atomic(capacity)
    }

    /// Shard `i`'s share of `capacity` over `n` shards: the shares add up to `capacity` exactly (the first
    /// `capacity % n` shards hold one more). Before, each share was rounded up: a reload from 100,000 to 10 over 16
    /// shards held 16.
    static func share(_ capacity: Int, shard i: Int, of n: Int) -> Int { capacity / n + (i < capacity % n ? 1 : 0) }

    /// Takes a new capacity and time-to-live in place (a reload of `max_pending` or `join_ttl`), keeping the waiting
    /// entries: a shard whose share changes is rebuilt under its lock with its entries in arrival order, the oldest
    /// over a smaller share evicted (counted, remembered); a shorter time-to-live expires entries as they are next
    /// met (counted). The number of shards stays that of the first capacity.
    public func reconfigure(capacity: Int, timeToLive: Double) {
        timeToLiveBits.store(timeToLive.bitPattern, ordering: .relaxed)
        capacityValue.store(capacity, ordering: .relaxed)
        for (i, shard) in shards.enumerated() {
            let share = Self.share(capacity, shard: i, of: shards.count)
            shard.mutex.withLock { s in
                if s.limit != share { s = s.resized(to: share) }
            }
        }
    }

    @inline(__always)
    func shard(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key >> 32) ^ key) & mask }

    /// Adds a pending entry that arrived at `time`.
    public func insert(key: UInt64, time: Double, _ payload: Payload, now: Double) {
        shards[shard(key)].mutex.withLock { s in
            guard s.limit > 0 else {
                s.evicted += 1
                s.rememberDropped(key, .evicted)
                return
            }
            s.rebase(now: now)
            s.expire(before: now - timeToLive)
            s.append(key, time, payload)
        }
    }

    /// Removes and returns the pending entry for `key` with its arrival time; without one (or when it has
    /// expired by `now`, then counted expired), says whether the shard remembers dropping it and why (and forgets
    /// it), else ``Claim/unknown``. Takes the shard's lock only.
    public func claim(key: UInt64, now: Double) -> Claim {
        shards[shard(key)].mutex.withLock { s -> Claim in
            guard let slot = s.index.removeValue(forKey: key).map(Int.init) else {
                return s.forgetDropped(key).map { .dropped($0) } ?? .unknown
            }
            let payload = s.payloads[slot]
            s.payloads[slot] = nil
            if s.times[slot] < now - timeToLive {
                s.expired += 1
                return .dropped(.expired)
            }
            return payload.map { .pending($0, time: s.times[slot]) } ?? .unknown
        }
    }

    /// Removes and returns the pending entry for `key` with its arrival time, or nil when there is none (or
    /// it has expired by `now`): ``claim(key:now:)`` without the reason.
    public func take(key: UInt64, now: Double) -> (payload: Payload, time: Double)? {
        if case .pending(let payload, let time) = claim(key: key, now: now) { return (payload, time) }
        return nil
    }

    /// Expires every shard's old entries (run at scrape time, so that the counts are current), after moving the times
    /// of a shard whose newest entry arrived after now back (``Shard/rebase(now:)``).
    public func expire(now: Double) {
        for shard in shards {
            shard.mutex.withLock { s in
                s.rebase(now: now)
                s.expire(before: now - timeToLive)
            }
        }
    }

    /// Entries waiting now, and the running totals of expired, evicted and replaced (duplicate id) entries.
    public var counts: (pending: Int, expired: UInt64, evicted: UInt64, duplicates: UInt64) {
        var out: (Int, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for shard in shards {
            shard.mutex.withLock { s in
                out.0 += s.index.count
                out.1 += s.expired
                out.2 += s.evicted
                out.3 += s.duplicates
            }
        }
        return out
    }

    /// FNV-1a over the UTF-8 bytes of `id`: the key of a prediction id.
    @inline(__always)
    public static func key(_ id: String) -> UInt64 {
        var copy = id
        return copy.withUTF8 { FNV1a.hash($0) }
    }
}
