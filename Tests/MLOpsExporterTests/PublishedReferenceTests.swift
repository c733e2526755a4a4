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

    /// Publishes back to back hold at most `maxRetired` replaced values: the next waits for the oldest's grace period
    /// (reloads back to back, each rebuilding a model, held one per reload for 5 s: 1.5 GB after 400).
    @Test func publishesBackToBackHoldAtMostMaxRetiredValues() {
        let reference = PublishedReference(Box(0))
        let limit = PublishedReference<Box>.maxRetired
        let start = ContinuousClock.now
        for i in 1...limit { reference.publish(Box(i)) }
        #expect(reference.retiredCount == limit && ContinuousClock.now - start < PublishedReference<Box>.gracePeriod)
        reference.publish(Box(limit + 1))
        #expect(ContinuousClock.now - start > PublishedReference<Box>.gracePeriod)
        #expect(reference.value.n == limit + 1 && reference.retiredCount <= limit)
    }
}
