extension PendingStore {
    /// Writes the waiting entries, shard by shard in arrival order: each shard's count, then per entry its key,
    /// its arrival time (exactly: the difference of its Double's bit pattern from the previous entry's, a few bytes
    /// for times close together) and its payload (by
    /// `payload`). Each shard's arrays are taken under its lock without copying (copy-on-write), so an insert or a
    /// label waits for no encoding. Also writes the running totals of expired, evicted and duplicate
    /// entries.
    public func save(into w: inout StateWriter, payload: (Payload, Double, inout StateWriter) -> Void) {
        let (_, expired, evicted, duplicates) = counts
        w.varint(expired)
        w.varint(evicted)
        w.varint(duplicates)
        w.count(shards.count)
        for shard in shards {
            // Under the lock, only the ring's arrays are taken (copy-on-write: three reference counts), so an insert
            // or a label for this shard waits for no more than that; the shard's next write then copies them (once
            // per checkpoint). The entries are encoded outside the lock.
            let (keys, times, payloads, head, count, live) = shard.mutex.withLock { s in
                (s.keys, s.times, s.payloads, s.head, s.count, s.index.count)
            }
            let capacity = keys.count
            // Through buffer pointers: each payload is borrowed where it lies, never copied (a copy retains and
            // releases every array it holds).
            keys.withUnsafeBufferPointer { keys in
                times.withUnsafeBufferPointer { times in
                    payloads.withUnsafeBufferPointer { payloads in
                        // A slot holds a payload exactly when its key is in the index.
                        w.count(live)
                        var previous: Int64 = 0
                        var read = head
                        for _ in 0..<count {
                            if payloads[read] != nil {
                                w.fixed64(keys[read])
                                let bits = Int64(bitPattern: times[read].bitPattern)
                                w.signed(bits &- previous)
                                previous = bits
                                payload(payloads[read].unsafelyUnwrapped, times[read], &w)
                            }
                            read = read + 1 == capacity ? 0 : read + 1
                        }
                    }
                }
            }
        }
    }

    /// Reads what ``save(into:payload:)`` wrote into this store, which nothing writes into yet. Entries past the
    /// time-to-live at `now` are counted as expired, entries over the capacity (a smaller `max_pending`) as
    /// evicted, as they would have been had the process kept running. Returns the saved totals of expired,
    /// evicted and duplicate entries (the caller carries them over), and the number of entries read.
    public func restore(
        from r: inout StateReader, now: Double, payload: (inout StateReader, Double) throws(StateError) -> Payload
    ) throws(StateError) -> (expired: UInt64, evicted: UInt64, duplicates: UInt64, entries: Int) {
        let expired = try r.varint()
        let evicted = try r.varint()
        let duplicates = try r.varint()
        let savedShards = try r.count(max: 1 << 16)
        var entries = 0
        let deadline = now - timeToLive
        // Saved under another sharding (another `max_pending` step): the entries of every saved shard, put back in
        // arrival order before they are placed, so that eviction and expiry (which take each shard's oldest first)
        // drop the oldest, as they would have had the process kept running.
        var resharded: [(key: UInt64, time: Double, payload: Payload)] = []
        for shardIndex in 0..<savedShards {
            let n = try r.count(max: Int(Int32.max))
            var previous: Int64 = 0
            var decoded: [(key: UInt64, time: Double, payload: Payload)] = []
            decoded.reserveCapacity(Swift.min(n, 1 << 20))
            for _ in 0..<n {
                let key = try r.fixed64()
                previous = previous &+ (try r.signed())
                // An arrival after now (the wall clock set back since, or a checkpoint from a host whose clock ran
                // ahead) is taken as now: it outlived `join_ttl` by the skew (a day back: held a day longer).
                let time = Swift.min(Double(bitPattern: UInt64(bitPattern: previous)), now)
                decoded.append((key, time, try payload(&r, time)))
            }
            entries += n
            // Every entry through `Shard.restore` (expired ones counted and remembered, capacity enforced); with the
            // same sharding a saved shard is one shard here, filled under one lock.
            if savedShards == shards.count {
                shards[shardIndex].mutex.withLock { s in
                    s.index.reserveCapacity(Swift.min(decoded.count, s.limit))
                    for e in decoded { s.restore(e.key, e.time, e.payload, deadline: deadline) }
                }
            } else {
                resharded.append(contentsOf: decoded)
            }
        }
        if !resharded.isEmpty {
            // Stable: entries of equal time keep their saved order.
            let ordered = resharded.indices.sorted {
                resharded[$0].time < resharded[$1].time || (resharded[$0].time == resharded[$1].time && $0 < $1)
            }
            for i in ordered {
                let e = resharded[i]
                shards[shard(e.key)].mutex.withLock { $0.restore(e.key, e.time, e.payload, deadline: deadline) }
            }
        }
        return (expired, evicted, duplicates, entries)
    }

}

extension PendingStore.Shard {
    /// Appends a restored entry (arrival order): one past the time-to-live is counted as expired (and remembered
    /// as such, so that its label is answered `expired`), the rest as ``append(_:_:_:)`` does.
    mutating func restore(_ key: UInt64, _ time: Double, _ payload: Payload, deadline: Double) {
        guard limit > 0 else {
            evicted += 1
            return
        }
        if time < deadline {
            expired += 1
            rememberDropped(key, .expired)
            return
        }
        append(key, time, payload)
    }
}

extension PendingStore {
    /// Reads past what ``save(into:payload:)`` wrote without keeping it (the model's configuration changed): returns
    /// the saved totals and the number of entries that were waiting.
    public static func skip(
        from r: inout StateReader, payload: (inout StateReader) throws(StateError) -> Void
    ) throws(StateError) -> (expired: UInt64, evicted: UInt64, duplicates: UInt64, entries: Int) {
        let expired = try r.varint()
        let evicted = try r.varint()
        let duplicates = try r.varint()
        let shards = try r.count(max: 1 << 16)
        var entries = 0
        for _ in 0..<shards {
            let n = try r.count(max: Int(Int32.max))
            for _ in 0..<n {
                _ = try r.fixed64()
                _ = try r.signed()
                try payload(&r)
            }
            entries += n
        }
        return (expired, evicted, duplicates, entries)
    }
}
