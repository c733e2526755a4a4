import Foundation
import Testing

@testable import MLOpsExporter

@Suite struct CloudEventPairsTests {
    func half(_ bytes: Int, at t: Double) -> CloudEventPairs.Half {
        CloudEventPairs.Half(body: [UInt8](repeating: 1, count: bytes), arrival: t, eventTime: nil, endpoint: nil)
    }

    @Test func halvesPairInEitherOrderAndDuplicatesReplace() {
        let pairs = CloudEventPairs(maxPending: 10, maxBytes: 1 << 20, ttl: 60)
        #expect(pairs.add(half(3, at: 0), kind: .response, key: "a", now: 0).waits)
        let pair = pairs.add(half(5, at: 1), kind: .request, key: "a", now: 1).pair
        #expect(pair?.request.body.count == 5 && pair?.response.body.count == 3)
        #expect(pairs.add(half(2, at: 2), kind: .request, key: "b", now: 2).waits)
        #expect(pairs.add(half(4, at: 3), kind: .request, key: "b", now: 3).waits)
        let counts = pairs.counts
        #expect(counts.pending == 1 && counts.bytes == 4 && counts.duplicates == 1)
        #expect(pairs.add(half(1, at: 4), kind: .response, key: "b", now: 4).pair?.request.body.count == 4)
    }

    /// Ids are bytes: `é` composed and `e` with a combining accent are two ids (a `String` key paired them, as
    /// canonically equivalent).
    /// Halves stored while the wall clock ran a day ahead, then the clock set right (an NTP step back), then more: they
    /// all expire as orphans by their ages. Before, a half stored ahead kept every later one from expiring for a day.
    @Test func halvesStoredByAClockAheadStillExpire() {
        let pairs = CloudEventPairs(maxPending: 100, maxBytes: 1 << 20, ttl: 60)
        let day = 86_400.0
        for i in 0..<3 {
            _ = pairs.add(half(3, at: day + Double(i)), kind: .request, key: "a\(i)", now: day + Double(i))
        }
        for i in 0..<3 { _ = pairs.add(half(3, at: Double(i)), kind: .request, key: "b\(i)", now: Double(i)) }
        pairs.expire(now: 30)
        #expect(pairs.counts.pending == 6)
        pairs.expire(now: 200)
        #expect(pairs.counts.pending == 0 && pairs.counts.orphans[0] == [6, 0, 0])
        // A half taken before the step and put back after it (no worker was free) arrives now, and moves the
        // others no second time: they still expire by their ages, not at once.
        let again = CloudEventPairs(maxPending: 100, maxBytes: 1 << 20, ttl: 60)
        _ = again.add(half(3, at: day), kind: .request, key: "x", now: day)
        _ = again.add(half(3, at: 10), kind: .request, key: "y", now: 10)
        again.restore(half(3, at: day + 1), kind: .response, key: "z", now: 40)
        again.expire(now: 60)
        #expect(again.counts.pending == 3)
        again.expire(now: 150)
        #expect(again.counts.pending == 0)
    }

    @Test func canonicallyEquivalentIdsAreTwoIds() {
        let pairs = CloudEventPairs(maxPending: 10, maxBytes: 1 << 20, ttl: 60)
        #expect(pairs.add(half(3, at: 0), kind: .request, key: CloudEventPairs.Key("s\u{1F}\u{E9}X1"), now: 0).waits)
        #expect(pairs.add(half(3, at: 1), kind: .response, key: CloudEventPairs.Key("s\u{1F}e\u{301}X1"), now: 1).waits)
        #expect(pairs.counts.pending == 2)
    }

    @Test func countBytesAndTimeAreBoundedAndCounted() {
        let pairs = CloudEventPairs(maxPending: 3, maxBytes: 100, ttl: 10)
        for i in 0..<5 { _ = pairs.add(half(10, at: Double(i)), kind: .request, key: "r\(i)", now: Double(i)) }
        #expect(pairs.counts.pending == 3 && pairs.counts.orphans[0] == [0, 2, 0])
        // A large half evicts as many as its bytes need.
        _ = pairs.add(half(95, at: 5), kind: .response, key: "big", now: 5)
        #expect(pairs.counts.pending == 1 && pairs.counts.bytes == 95 && pairs.counts.orphans[0] == [0, 5, 0])
        pairs.expire(now: 16)
        #expect(pairs.counts.pending == 0 && pairs.counts.orphans[1] == [1, 0, 0])
    }

    /// A half larger than the byte bound alone is refused, not kept beyond the bound (it evicted every other half
    /// and stayed); it still completes a pair whose other half waits (pairing stores nothing).
    @Test func aHalfLargerThanTheByteBoundIsRefusedUnlessItPairs() {
        let pairs = CloudEventPairs(maxPending: 10, maxBytes: 100, ttl: 60)
        #expect(pairs.add(half(10, at: 0), kind: .request, key: "small", now: 0).waits)
        guard case .tooLarge = pairs.add(half(101, at: 1), kind: .request, key: "big", now: 1) else {
            Issue.record("a 101-byte half was kept under a 100-byte bound")
            return
        }
        #expect(pairs.counts.pending == 1 && pairs.counts.bytes == 10 && pairs.counts.orphans[0] == [0, 0, 0])
        #expect(pairs.add(half(500, at: 2), kind: .response, key: "small", now: 2).pair?.response.body.count == 500)
        #expect(pairs.counts.pending == 0 && pairs.counts.bytes == 0)
    }

    /// A retry too large to wait is refused and the earlier copy keeps waiting (before, the copy was dropped, counted
    /// as a duplicate replaced by nothing, never as an orphan).
    @Test func aTooLargeRetryLeavesTheWaitingCopy() {
        let pairs = CloudEventPairs(maxPending: 10, maxBytes: 100, ttl: 60)
        #expect(pairs.add(half(50, at: 0), kind: .request, key: "k", now: 0).waits)
        #expect(pairs.add(half(150, at: 1), kind: .request, key: "k", now: 1).isTooLarge)
        let counts = pairs.counts
        #expect(counts.pending == 1 && counts.bytes == 50 && counts.duplicates == 0)
        #expect(pairs.add(half(10, at: 2), kind: .response, key: "k", now: 2).pair != nil)
    }

    /// A half put back (its pair found no worker) waits for the retry of its other half; when the key holds a half
    /// again meanwhile, the newer is kept and the restored one counted.
    @Test func aRestoredHalfWaitsAgain() {
        let pairs = CloudEventPairs(maxPending: 10, maxBytes: 100, ttl: 60)
        pairs.restore(half(20, at: 0), kind: .request, key: "a", now: 1)
        #expect(pairs.counts.pending == 1)
        #expect(pairs.add(half(10, at: 2), kind: .response, key: "a", now: 2).pair != nil)
        // The same kind waiting already: a duplicate; the other kind: an evicted orphan.
        _ = pairs.add(half(10, at: 3), kind: .request, key: "b", now: 3)
        pairs.restore(half(20, at: 0), kind: .request, key: "b", now: 3)
        pairs.restore(half(20, at: 0), kind: .response, key: "b", now: 3)
        let counts = pairs.counts
        #expect(counts.pending == 1 && counts.duplicates == 1)
        #expect(counts.orphans[CloudEventPairs.Kind.response.rawValue][CloudEventPairs.OrphanReason.evicted.slot] == 1)
    }

    /// At shutdown every waiting half is dropped and counted `shutdown`, by kind.
    @Test func halvesWaitingAtShutdownAreCountedDropped() {
        let pairs = CloudEventPairs(maxPending: 10, maxBytes: 1000, ttl: 60)
        let half = CloudEventPairs.Half(body: [1], arrival: 0, eventTime: nil, endpoint: nil)
        _ = pairs.add(half, kind: .request, key: "a", now: 0)
        _ = pairs.add(half, kind: .response, key: "b", now: 0)
        _ = pairs.add(half, kind: .request, key: "c", now: 0)
        #expect(pairs.dropAllAtShutdown() == 3)
        let counts = pairs.counts
        #expect(counts.pending == 0 && counts.bytes == 0)
        #expect(counts.orphans[0] == [0, 0, 2] && counts.orphans[1] == [0, 0, 1])
        #expect(pairs.dropAllAtShutdown() == 0)
    }

    @Test func reasonSlotsAreTheirPositions() {
        #expect(CloudEventsMetrics.RejectReason.allCases.map(\.slot) == Array(0..<5))
        #expect(CloudEventPairs.OrphanReason.allCases.map(\.slot) == Array(0..<3))
        #expect(
            CloudEventsMetrics.RejectReason.allCases.map(\.rawValue) == [
                "invalid_event", "unknown_type", "unknown_service", "overloaded", "too_large",
            ])
    }

    @Test func attributesCountInTheBytes() {
        let pairs = CloudEventPairs(maxPending: 10, maxBytes: 1000, ttl: 60)
        let half = CloudEventPairs.Half(
            body: [1, 2, 3], arrival: 0, eventTime: nil, endpoint: nil, attributes: [("ce-id", "abc"), ("ce-x", "")])
        // Each attribute with the memory of its pair and strings (the text alone was a fifth of it).
        #expect(half.bytes == 3 + 8 + 4 + 2 * CloudEventPairs.Half.attributeOverhead)
        _ = pairs.add(half, kind: .request, key: "a", now: 0)
        #expect(pairs.counts.bytes == 15 + 2 * 96)
    }

    @Test func pairedKeysNeverGrowTheOrderBeyondItsBound() {
        let pairs = CloudEventPairs(maxPending: 4, maxBytes: 1 << 20, ttl: 1_000)
        // One half waits forever (within the TTL) while 100,000 pairs complete behind it.
        _ = pairs.add(half(1, at: 0), kind: .request, key: "stuck", now: 0)
        for i in 0..<100_000 {
            _ = pairs.add(half(1, at: 1), kind: .request, key: "k\(i)", now: 1)
            _ = pairs.add(half(1, at: 1), kind: .response, key: "k\(i)", now: 1)
        }
        let order = pairs.state.withLock { $0.order.count - $0.head }
        #expect(order <= 4 * 4 + 1024 + 1)
        #expect(pairs.counts.pending == 1)
    }

    @Test(arguments: [
        "2026-12-02T18:40:48Z", "2026-12-02T18:40:48.123456Z", "1999-02-28T23:59:59+01:30", "2024-02-29T00:00:00-08:00",
        "1970-01-01T00:00:00Z", "2038-01-19T03:14:08.5Z",
    ])
    func rfc3339AgreesWithFoundation(text: String) throws {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        let expected = try #require(formatter.date(from: text) ?? plain.date(from: text)).timeIntervalSince1970
        #expect(abs(try #require(RFC3339.instant(text)?.unix) - expected) < 1e-3)
    }

    @Test(arguments: [
        "2026-13-02T18:40:48Z", "2026-12-02T24:00:00Z", "2026-12-02T18:40:48", "yesterday", "",
        // Dates that do not exist and offsets past 23:59 (they were taken).
        "2026-02-29T00:00:00Z", "2026-02-30T00:00:00Z", "2026-04-31T00:00:00Z", "1900-02-29T00:00:00Z",
        "2026-12-02T18:40:48+24:00", "2026-12-02T18:40:48-01:60",
    ])
    func rfc3339RefusesWhatItIsNot(text: String) {
        #expect(RFC3339.instant(text) == nil)
    }

    /// The difference of two times is exact to their fractions' precision: as one Double near 1.8e9 each, a 1 µs
    /// difference read 0.954 µs.
    @Test func rfc3339DifferencesKeepTheFractionsPrecision() throws {
        let start = try #require(RFC3339.instant("2026-12-02T18:40:48.000001Z"))
        let end = try #require(RFC3339.instant("2026-12-02T18:40:48.000002Z"))
        #expect(abs(end.seconds(since: start) - 1e-6) < 1e-12)
        let later = try #require(RFC3339.instant("2026-12-02T19:40:48.5+01:00"))
        #expect(abs(later.seconds(since: start) - 0.499999) < 1e-9)
        #expect(RFC3339.instant("2024-02-29T00:00:00Z") != nil && RFC3339.instant("2000-02-29T00:00:00Z") != nil)
    }
}

extension CloudEventPairs.Outcome {
    /// Whether the half was stored to wait.
    var waits: Bool {
        if case .waiting = self { return true }
        return false
    }

    /// The pair completed, if any.
    var pair: CloudEventPairs.Pair? {
        if case .paired(let pair) = self { return pair }
        return nil
    }

    /// Whether the half was refused as too large to wait.
    var isTooLarge: Bool {
        if case .tooLarge = self { return true }
        return false
    }
}
