import Synchronization

/// A reference that many threads read without a lock and one writer replaces now and then (the proxy's routing
/// snapshot, its upstream settings): reading is one atomic load. A replaced value is kept alive for
/// ``gracePeriod`` after it was replaced (a reader that loaded it a moment before takes its own strong
/// reference at once), then released at a later ``publish(_:now:)`` or ``prune(now:)`` (the owner calls it every few
/// seconds): at most the values replaced within the last grace period are held. Before, the period was 60 s and
/// only a publish released: a routing holds its models (a quality collector is megabytes), so each reload that
/// rebuilt models held ~13 MB for a minute, and the last ones until the next reload.
final class PublishedReference<Value: AnyObject & Sendable>: Sendable {
    /// How long a replaced value stays alive: far longer than the few instructions between a reader's load and its
    /// retain.
    static var gracePeriod: Duration { .seconds(5) }

    private let bits: Atomic<UInt>
    /// The current value (owning it) and the replaced ones with the time they were replaced.
    private let owned: Mutex<(current: Value, retired: [(value: Value, at: ContinuousClock.Instant)])>

    init(_ value: Value) {
        bits = Atomic(UInt(bitPattern: Unmanaged.passUnretained(value).toOpaque()))
        owned = Mutex((value, []))
    }

    /// The current value.
    var value: Value {
        let pointer = UnsafeRawPointer(bitPattern: bits.load(ordering: .acquiring))!
        return Unmanaged<Value>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// Releases the values replaced more than ``gracePeriod`` ago.
    func prune(now: ContinuousClock.Instant = .now) {
        // Taken out under the lock, released after it (a routing's deinit releases models).
        let released = owned.withLock { owned in
            let expired = owned.retired.partition { now - $0.at > Self.gracePeriod }
            defer { owned.retired.removeSubrange(expired...) }
            return Array(owned.retired[expired...])
        }
        _ = released
    }

    /// The number of replaced values still held (for tests).
    var retiredCount: Int { owned.withLock { $0.retired.count } }

    /// Makes `value` current; values replaced more than ``gracePeriod`` ago are released.
    func publish(_ value: Value, now: ContinuousClock.Instant = .now) {
        owned.withLock { owned in
            owned.retired.removeAll { now - $0.at > Self.gracePeriod }
            owned.retired.append((owned.current, now))
            owned.current = value
            bits.store(UInt(bitPattern: Unmanaged.passUnretained(value).toOpaque()), ordering: .releasing)
        }
    }
}
