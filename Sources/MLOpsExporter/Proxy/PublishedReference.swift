import Foundation
import Synchronization

/// A reference that many threads read without a lock and one writer replaces now and then (the proxy's routing
/// snapshot, its upstream settings): reading is one atomic load. A replaced value is kept alive for
/// ``gracePeriod`` after it was replaced (a reader that loaded it a moment before takes its own strong
/// reference at once), then released at a later ``publish(_:now:)`` or ``prune(now:)`` (the owner calls it several
/// times a second). A publish never waits (a reader may publish, on an event loop); a writer that publishes in bursts
/// (configuration reloads) calls ``waitForRoom()`` first, outside any lock a reader takes, so that about
/// ``maxRetired`` values are held at most. Before, the period was 60 s and only a publish released: a routing holds
/// its models (a quality collector is megabytes), so each reload that rebuilt models held ~13 MB for a minute; then
/// without a count, reloads back to back, each rebuilding a model, held a model per reload: 1.5 GB after 400 (a
/// review).
final class PublishedReference<Value: AnyObject & Sendable>: Sendable {
    /// How long a replaced value stays alive: far longer than the few instructions between a reader's load and its
    /// retain.
    static var gracePeriod: Duration { .seconds(5) }
    /// The replaced values ``waitForRoom()`` lets be held.
    static var maxRetired: Int { 8 }

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

    /// Makes `value` current; values replaced more than ``gracePeriod`` ago are released. Never waits.
    func publish(_ value: Value, now: ContinuousClock.Instant = .now) {
        owned.withLock { owned in
            owned.retired.removeAll { now - $0.at > Self.gracePeriod }
            owned.retired.append((owned.current, now))
            owned.current = value
            bits.store(UInt(bitPattern: Unmanaged.passUnretained(value).toOpaque()), ordering: .releasing)
        }
    }

    /// Waits until fewer than ``maxRetired`` replaced values are held (the oldest's grace period over): for a writer
    /// about to cause a publish, holding no lock a reader takes. A reload flood waits here (on the reloading thread);
    /// a reader never calls it (an earlier version waited in `publish`, which an event loop calls: proxied requests
    /// stalled a second behind reloads, found by a review).
    func waitForRoom() {
        while let wait = owned.withLock({ owned -> Duration? in
            let now = ContinuousClock.now
            owned.retired.removeAll { now - $0.at > Self.gracePeriod }
            return owned.retired.count < Self.maxRetired ? nil : Self.gracePeriod - (now - owned.retired[0].at)
        }) {
            let seconds = Double(wait.components.seconds) + Double(wait.components.attoseconds) * 1e-18
            Thread.sleep(forTimeInterval: min(max(seconds, 0) + 0.001, 6))
        }
    }
}
