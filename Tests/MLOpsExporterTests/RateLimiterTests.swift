import Testing

@testable import MLOpsExporter

@Suite struct RateLimiterTests {
    /// `burst` at once from a full bucket, then one per interval.
    @Test func aBurstThenOnePerInterval() {
        let limiter = RateLimiter(interval: .seconds(2), burst: 3)
        let t0: UInt64 = 1_000_000_000_000
        #expect((0..<5).map { _ in limiter.allow(now: t0) } == [true, true, true, false, false])
        #expect(!limiter.allow(now: t0 + 1_999_999_999))
        #expect(limiter.allow(now: t0 + 2_000_000_000))
        #expect(!limiter.allow(now: t0 + 2_000_000_000))
        #expect(limiter.retryAfterSeconds == 2)
    }

    /// The bucket's size in nanoseconds saturates: a day's interval times a burst past 213,503 wrapped around 2^64
    /// and made a bucket of a few tokens, or none (every request 429), though the configuration took it.
    @Test(arguments: [213_503, 213_504, 1_000_000])
    func aHugeBucketDoesNotWrap(_ burst: Int) {
        let limiter = RateLimiter(interval: .seconds(86_400), burst: burst)
        let t0: UInt64 = 5_000_000_000
        let allowed = (0..<1000).filter { _ in limiter.allow(now: t0) }.count
        #expect(allowed == 1000)
        #expect(limiter.retryAfterSeconds == 86_400)
    }
}
