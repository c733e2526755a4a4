import Dispatch
import Synchronization
import Testing

@testable import ModelMonitoring

@Suite("Learned names")
struct LearnedNamesTests {
    @Test("initial names take the first slots once; new ones follow until the capacity, then nil")
    func sequential() {
        let names = LearnedNames(["a", "b", "a"], capacity: 4)
        #expect(names.all == ["a", "b"])
        #expect(names.slot(of: "b") == 1)
        #expect(names.index(of: "c") == nil)
        #expect(names.slot(of: "c") == 2)
        #expect(names.slot(of: "d") == 3)
        #expect(names.slot(of: "e") == nil)
        #expect(names.index(of: "e") == nil)
        #expect(names.slot(of: "c") == 2)
        #expect(names.all == ["a", "b", "c", "d"])
        #expect(LearnedNames([], capacity: 0).slot(of: "x") == nil)
    }

    @Test("names are told apart by their bytes: the two spellings of é get two slots")
    func bytesNotCanonicalEquivalence() {
        let names = LearnedNames(["\u{E9}", "e\u{301}", "\u{E9}"], capacity: 3)
        #expect(names.all.map { Array($0.utf8) } == [[0xC3, 0xA9], [0x65, 0xCC, 0x81]])
        #expect(names.index(of: "\u{E9}") == 0)
        #expect(names.index(of: "e\u{301}") == 1)
        let long = String(repeating: "k", count: 300)
        #expect(names.slot(of: long) == 2)
        #expect(names.index(of: long) == 2)
    }

    @Test("8 threads learning 200 names into 120 slots agree on every slot; exactly 120 are learned")
    func concurrent() {
        let names = LearnedNames([], capacity: 120)
        let candidates = (0..<200).map { "kind-\($0)" }
        let seen = Mutex<[[Int?]]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            var mine = [Int?](repeating: nil, count: candidates.count)
            for round in 0..<3 {
                for i in candidates.indices {
                    // A different order per thread: multipliers coprime with 200 make each a permutation.
                    let k = (i * [1, 3, 7, 9, 11, 13, 17, 19][t] + round * 7) % candidates.count
                    let slot = names.slot(of: candidates[k])
                    if round > 0 || mine[k] == nil { mine[k] = slot }
                }
            }
            seen.withLock { $0.append(mine) }
        }
        let all = seen.withLock { $0 }
        #expect(all.count == 8)
        #expect(Set(all.map { $0.map { $0 ?? -1 } }).count == 1, "threads disagree on slots")
        let learned = names.all
        #expect(learned.count == 120)
        #expect(Set(learned).count == 120)
        for (slot, name) in learned.enumerated() { #expect(names.index(of: name) == slot) }
        let slots = all[0].compactMap { $0 }
        #expect(slots.sorted() == Array(0..<120))
    }
}
