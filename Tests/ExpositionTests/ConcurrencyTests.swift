import Synchronization
import Testing

@testable import Exposition

@Suite("Concurrency")
struct ConcurrencyTests {
    static let threads = 8
    static let perThread = 1_000_000

    @Test("8 threads × 1,000,000 inc() on one counter count exactly 8,000,000")
    func counter() async throws {
        let registry = plainRegistry()
        let c = try registry.counter("hits", help: "")
        await onThreads(Self.threads) { _ in
            for _ in 0..<Self.perThread { c.inc() }
        }
        #expect(c.value == 8_000_000)
        #expect(rendered(registry) == "# TYPE hits_total counter\nhits_total 8000000\n")
    }

    @Test("8 threads × 1,000,000 observe() on one histogram: exact count, buckets and sum")
    func histogram() async throws {
        let registry = plainRegistry()
        let h = try registry.histogram("h", help: "", buckets: [1])
        await onThreads(Self.threads) { _ in
            for i in 0..<Self.perThread { h.observe(i & 1 == 0 ? 0.5 : 2) }
        }
        #expect(h.count == 8_000_000)
        #expect(h.cumulativeCounts == [4_000_000, 8_000_000])
        #expect(h.sum == 10_000_000)
        #expect(
            rendered(registry) == """
                # TYPE h histogram
                h_bucket{le="1"} 4000000
                h_bucket{le="+Inf"} 8000000
                h_sum 10000000
                h_count 8000000

                """)
    }

    @Test("8 threads × 1,000,000 inc() through one labelled handle")
    func labelledHandle() async throws {
        let registry = plainRegistry()
        let family = try registry.counterFamily("req", help: "", labelNames: ["model"])
        let handle = try family.labels("a")
        let other = try family.labels("b")
        await onThreads(Self.threads) { i in
            for _ in 0..<Self.perThread { handle.inc() }
            other.inc(by: i)
        }
        #expect(handle.value == 8_000_000)
        #expect(other.value == 28)
        #expect(
            lines(rendered(registry), startingWith: "req_total{") == [
                #"req_total{model="a"} 8000000"#, #"req_total{model="b"} 28"#,
            ])
    }

    @Test("concurrent fractional increments and gauge adds lose nothing")
    func compareAndSwapLoops() async throws {
        let registry = plainRegistry()
        let c = try registry.counter("c", help: "")
        let g = try registry.gauge("g", help: "")
        await onThreads(Self.threads) { i in
            for _ in 0..<100_000 {
                c.inc(by: 0.5)
                if i.isMultiple(of: 2) { g.inc(by: 2) } else { g.dec(by: 1) }
            }
        }
        #expect(c.value == 400_000)
        #expect(g.value == 400_000)
    }

    @Test("concurrent labels() for the same values return one series")
    func labelsFromManyThreads() async throws {
        let registry = plainRegistry()
        let family = try registry.counterFamily("c", help: "", labelNames: ["model", "version"])
        let box = SharedSeen()
        await onThreads(Self.threads) { t in
            var mine: [String: Set<ObjectIdentifier>] = [:]
            for i in 0..<20_000 {
                let m = "m\(i % 10)"
                let series =
                    t.isMultiple(of: 2)
                    ? try! family.labels(m, "1") : try! family.labels(["version": "1", "model": m])
                series.inc()
                mine[m, default: []].insert(ObjectIdentifier(series))
            }
            box.add(mine)
        }
        #expect(family.seriesCount == 10)
        let ids = box.all()
        #expect(ids.count == 10)
        #expect(ids.values.allSatisfy { $0.count == 1 })
        for m in 0..<10 { #expect(try family.labels("m\(m)", "1").value == 16_000) }
    }

    @Test("renders during updates see monotonic counter values and end at the exact total")
    func renderWhileUpdating() async throws {
        let registry = plainRegistry()
        let c = try registry.counter("c", help: "")
        let observed = SharedValue<[Int]>()
        await onThreads(Self.threads + 1) { i in
            if i == Self.threads {
                var values: [Int] = []
                for _ in 0..<200 {
                    let line = lines(rendered(registry), startingWith: "c_total ").first ?? ""
                    values.append(Int(line.dropFirst("c_total ".count)) ?? -1)
                }
                observed.set(values)
            } else {
                for _ in 0..<100_000 { c.inc() }
            }
        }
        let values = try #require(observed.value)
        #expect(values.allSatisfy { $0 >= 0 })
        #expect(zip(values, values.dropFirst()).allSatisfy { $0 <= $1 })
        #expect(rendered(registry) == "# TYPE c_total counter\nc_total 800000\n")
    }

    @Test("concurrent registration of the same name: exactly one wins")
    func registrationRace() async throws {
        let registry = plainRegistry()
        let box = AtomicBox()
        await onThreads(Self.threads) { _ in
            if (try? registry.counter("once", help: "")) != nil { box.value.add(1, ordering: .relaxed) }
        }
        #expect(box.value.load(ordering: .relaxed) == 1)
        #expect(registry.descriptors.map(\.name) == ["once"])
    }
}

final class AtomicBox: Sendable {
    let value = Atomic<Int>(0)
}

final class SharedSeen: Sendable {
    let seen = Mutex<[String: Set<ObjectIdentifier>]>([:])
    func add(_ ids: [String: Set<ObjectIdentifier>]) {
        seen.withLock { all in for (k, v) in ids { all[k, default: []].formUnion(v) } }
    }
    func all() -> [String: Set<ObjectIdentifier>] { seen.withLock { $0 } }
}
