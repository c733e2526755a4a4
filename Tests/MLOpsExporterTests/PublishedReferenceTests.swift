import Testing

@testable import MLOpsExporter

/// Replaced values are released once their grace period is over, by a later publish or by a prune.
@Suite struct PublishedReferenceTests {
    final class Box: Sendable {
        let n: Int
        init(_ n: Int) { self.n = n }
    }

    /// A routing holds its models (megabytes each): replaced ones were held for 60 s, and until the next publish
    /// after that (the last reloads' for good); now for the grace period, then pruned.
    @Test func replacedValuesAreReleasedAfterTheGracePeriod() {
        let reference = PublishedReference(Box(0))
        let t0 = ContinuousClock.now
        weak var first: Box?
        do {
            let one = Box(1)
            first = one
            reference.publish(one, now: t0)
        }
        reference.publish(Box(2), now: t0 + .milliseconds(100))
        #expect(reference.value.n == 2 && reference.retiredCount == 2)
        reference.prune(now: t0 + .seconds(1))
        #expect(reference.retiredCount == 2)
        reference.prune(now: t0 + PublishedReference<Box>.gracePeriod + .seconds(1))
        #expect(reference.retiredCount == 0)
        #expect(first == nil)
        #expect(PublishedReference<Box>.gracePeriod <= .seconds(5))
    }

    /// A writer that publishes in bursts (reloads) waits in `waitForRoom` until fewer than `maxRetired` replaced
    /// values are held (reloads back to back, each rebuilding a model, held one per reload: 1.5 GB after 400); a
    /// publish itself never waits (an event loop publishes: proxied requests stalled a second behind reloads when it
    /// did).
    @Test func aBurstWaitsForRoomAndAPublishNeverWaits() {
        let reference = PublishedReference(Box(0))
        let limit = PublishedReference<Box>.maxRetired
        // Replaced "4.8 s ago": their grace periods end 200 ms from now.
        let past = ContinuousClock.now - PublishedReference<Box>.gracePeriod + .milliseconds(200)
        for i in 1...limit { reference.publish(Box(i), now: past) }
        #expect(reference.retiredCount == limit)
        let start = ContinuousClock.now
        reference.waitForRoom()
        #expect(ContinuousClock.now - start >= .milliseconds(150))
        #expect(reference.retiredCount < limit)
        let burst = ContinuousClock.now
        for i in 0..<(2 * limit) { reference.publish(Box(i)) }
        #expect(ContinuousClock.now - burst < .milliseconds(100) && reference.retiredCount == 2 * limit)
    }
}
