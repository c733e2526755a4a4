import ModelMonitoring
import Testing

@Suite("Pending store")
struct PendingStoreTests {
    @Test("compaction of a ring that wraps keeps every waiting entry with its own payload")
    func compactionOfAWrappedRing() {
        // One shard (capacity ≤ 1024), limit 4, ring of 5 slots; no expiry.
        let store = PendingStore<Int>(capacity: 4, timeToLive: 1e9)
        var t = 0.0
        func insert(_ k: UInt64) {
            t += 1
            store.insert(key: k, time: t, Int(k) * 10, now: t)
        }
        for k: UInt64 in 1...6 { insert(k) }  // 1 and 2 evicted
        #expect(store.take(key: 4, now: t)?.payload == 40)
        insert(7)
        #expect(store.take(key: 5, now: t)?.payload == 50)
        insert(8)  // the ring is full of holes and wraps: compaction
        #expect(store.take(key: 6, now: t)?.payload == 60)
        #expect(store.take(key: 7, now: t)?.payload == 70)
        #expect(store.take(key: 3, now: t)?.payload == 30)
        #expect(store.take(key: 8, now: t)?.payload == 80)
        #expect(store.counts.pending == 0)
    }

    @Test("20,000 random inserts and takes agree with a simple model (oldest waiting entry evicted when full)")
    func againstAModel() {
        var rng = SeededRandom(seed: 3)
        for limit in [1, 3, 4, 7, 16] {
            let store = PendingStore<Int>(capacity: limit, timeToLive: 1e9)
            var model: [(key: UInt64, payload: Int)] = []  // waiting entries, oldest first
            var evicted: UInt64 = 0
            for step in 0..<4000 {
                let key = UInt64(rng.next() % 24)
                let t = Double(step)
                if rng.next() % 2 == 0 {
                    if let i = model.firstIndex(where: { $0.key == key }) { model.remove(at: i) }
                    if model.count >= limit {
                        model.removeFirst()
                        evicted += 1
                    }
                    model.append((key, step))
                    store.insert(key: key, time: t, step, now: t)
                } else {
                    let want = model.firstIndex(where: { $0.key == key }).map { model.remove(at: $0).payload }
                    let got = store.take(key: key, now: t)?.payload
                    if got != want {
                        Issue.record(
                            "limit \(limit), step \(step), key \(key): \(String(describing: got)) != \(String(describing: want))"
                        )
                        return
                    }
                }
            }
            #expect(store.counts.pending == model.count, "limit \(limit)")
            #expect(store.counts.evicted == evicted, "limit \(limit)")
        }
    }
}
