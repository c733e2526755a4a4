import Ingestion
import Synchronization

/// A set of up to `capacity` names, each given the next slot number when first learned, that hot paths look up
/// without a lock: an open-addressing hash table over slots published with release/acquire atomics. Only learning a
/// new name takes a lock (it happens at most `capacity` times); the names themselves never move or change once
/// published, so a reader that sees a slot sees its name.
///
/// Used for label values learned from events (error kinds): `slot(of:)` answers the name's slot, learns it while
/// room is left, and answers nil once full (the caller counts it under `__other__`).
public final class LearnedNames: @unchecked Sendable {
    // @unchecked Sendable: `names[i]` is written once, under `lock`, before the release store that publishes slot
    // i + 1 in `table`; readers reach it only through an acquire load of that entry, or under `lock`.

    /// The most names.
    public let capacity: Int
    private let names: UnsafeMutablePointer<String>
    /// Hash slots holding `index + 1` of a name, or 0; a power of two, at least twice `capacity`.
    private let table: UnsafeMutablePointer<Atomic<Int>>
    private let mask: Int
    /// How many names are published; writers hold `lock`.
    private let count = Atomic<Int>(0)
    private let lock = Mutex<Void>(())

    /// A set holding `initial` (in slots 0, 1, …; byte-identical duplicates once), with room for `capacity` names in
    /// all.
    public init(_ initial: [String], capacity: Int) {
        self.capacity = max(capacity, 0)
        names = .allocate(capacity: max(self.capacity, 1))
        var size = 4
        while size < self.capacity * 2 { size *= 2 }
        mask = size - 1
        table = .allocate(capacity: size)
        for i in 0..<size { (table + i).initialize(to: Atomic<Int>(0)) }
        for name in initial { _ = slot(of: name) }
    }

    deinit {
        names.deinitialize(count: count.load(ordering: .acquiring))
        names.deallocate()
        table.deinitialize(count: mask + 1)
        table.deallocate()
    }

    /// The names learned so far, in slot order.
    public var all: [String] {
        let n = count.load(ordering: .acquiring)
        return (0..<n).map { names[$0] }
    }

    /// The slot of `name`, learning it when new and room is left; nil when the set is full.
    @inline(__always)
    public func slot(of name: String) -> Int? {
        if let found = index(of: name) { return found }
        return learn(name)
    }

    /// The slot of `name` if it is known (never learns).
    @inline(__always)
    public func index(of name: String) -> Int? {
        var probe = Self.hash(name) & mask
        while true {
            let entry = table[probe].load(ordering: .acquiring)
            if entry == 0 { return nil }
            // Bytes, not `==` (which equates canonically equivalent spellings): the hash is of the bytes, and
            // label values are compared as bytes everywhere else.
            if names[entry - 1].utf8.elementsEqual(name.utf8) { return entry - 1 }
            probe = (probe + 1) & mask
        }
    }

    @inline(never)
    private func learn(_ name: String) -> Int? {
        lock.withLock { _ -> Int? in
            if let found = index(of: name) { return found }  // learned meanwhile by another thread
            let index = count.load(ordering: .relaxed)
            guard index < capacity else { return nil }
            (names + index).initialize(to: name)
            var probe = Self.hash(name) & mask
            while table[probe].load(ordering: .relaxed) != 0 { probe = (probe + 1) & mask }
            table[probe].store(index + 1, ordering: .releasing)
            count.store(index + 1, ordering: .releasing)
            return index
        }
    }

    /// FNV-1a over the UTF-8 bytes (no per-process seed needed: the names come from configuration and events, and
    /// the table is small and bounded).
    @inline(__always)
    private static func hash(_ name: String) -> Int { FNV1a.slotHash(name.utf8) }
}
