@preconcurrency import Benchmark
import Exposition
import Ingestion
import ModelMonitoring
import QualityBenchFixtures

/// Pending predictions held during every label-join benchmark (`max_pending`).
let pendingCapacity = 1_000_000

/// Label-join benchmarks: 1,000 operations per iteration (`scalingFactor: .kilo`), so the scaled wall clock
/// (`*`) is nanoseconds per operation and `mallocCountTotal` counts the allocations of 1,000 operations.
func joinConfiguration(maxIterations: Int = 1_000) -> Benchmark.Configuration {
    .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 5,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: maxIterations
    )
}

/// A model whose store is full (1,000,000 pending predictions with ids `p0` … `p999999`, in that order, one
/// millisecond apart), the ids `p0` … `p1999999`, and cursors. Ids cycle through the pool: an id comes back
/// 2,000,000 insertions after it was used, long after it left the store.
final class FullStore: @unchecked Sendable {
    let registry: Registry
    let model: MonitoredModel
    let ids: [String]
    /// Eight ready events without id (gender × age × predicted class): an operation sets only `id` and
    /// `score`, which allocates nothing, so the allocations counted are the exporter's.
    let templates: [PredictionEvent]
    /// The next pool index to insert.
    var next = pendingCapacity
    /// The next pool index to label (the oldest pending prediction, when labels come in prediction order).
    var nextLabel = 0
    /// Seconds since `t0` of the next event.
    var clock = 0.0
    let t0: Double

    init() throws {
        (registry, model) = try QualityBench.makeModel(maxPending: pendingCapacity)
        ids = QualityBench.ids(0..<(2 * pendingCapacity))
        let template = QualityBench.template(model)
        var templates: [PredictionEvent] = []
        for gender in 0..<2 {
            for age in 0..<2 {
                for score in [0.25, 0.75] {
                    templates.append(QualityBench.prediction(template, id: nil, score: score, gender: gender, age: age))
                }
            }
        }
        self.templates = templates
        t0 = WallClock.now() - 3600
        for i in 0..<pendingCapacity { predict(i) }
    }

    /// A full store whose `labelled` oldest predictions have been joined already (so that the label benchmark's
    /// first refill does not overfill it).
    convenience init(labelled: Int) throws {
        try self.init()
        for _ in 0..<labelled {
            label(nextLabel)
            nextLabel += 1
        }
    }

    /// Records the prediction of pool index `i` (mod the pool): score, groups and class from `i`'s hash.
    @inline(__always)
    func predict(_ i: Int) {
        let h = UInt64(truncatingIfNeeded: i) &* 0x9E37_79B9_7F4A_7C15
        let score = Double(h >> 11) * 0x1p-53
        var event = templates[Int(h >> 61)]
        event.id = ids[i % ids.count]
        event.score = score
        event.prediction = score >= 0.5 ? .label(QualityBench.classes[1]) : .label(QualityBench.classes[0])
        clock += 0.001
        model.record(event, receivedAt: t0 + clock)
    }

    /// Records the label of pool index `i`: the true class agrees with the score's side 80 % of the time.
    @inline(__always)
    func label(_ i: Int) {
        let h = UInt64(truncatingIfNeeded: i) &* 0x9E37_79B9_7F4A_7C15
        let predictedPositive = Double(h >> 11) * 0x1p-53 >= 0.5
        let agree = (h & 0xFF) < 205
        let positive = predictedPositive == agree
        clock += 0.001
        model.record(
            label: LabelEvent(id: ids[i % ids.count], label: .label(QualityBench.classes[positive ? 1 : 0])),
            receivedAt: t0 + clock)
    }
}

/// A bare store of `PendingStore<Payload>`, full, for the payload comparison.
final class BareStore<Payload: Sendable>: @unchecked Sendable {
    let store = PendingStore<Payload>(capacity: pendingCapacity, timeToLive: 86_400)
    let keys: [UInt64]
    let make: @Sendable (Int) -> Payload
    var next = pendingCapacity
    var clock = 0.0

    init(_ make: @escaping @Sendable (Int) -> Payload) {
        self.make = make
        keys = QualityBench.ids(0..<(2 * pendingCapacity)).map { PendingStore<Payload>.key($0) }
        for i in 0..<pendingCapacity { insert(i) }
    }

    @inline(__always)
    func insert(_ i: Int) {
        clock += 0.001
        store.insert(key: keys[i % keys.count], time: clock, make(i), now: clock)
    }
}

let benchmarks: @Sendable () -> Void = {
    // MARK: - Predictions with an id into a full store

    // Each prediction goes to the three collectors and into the store, which is full: the insertion evicts
    // the oldest pending prediction (counted in mlops_predictions_evicted_total{reason="capacity"}).
    Benchmark("Record prediction with id, full store (evicts)", configuration: joinConfiguration()) {
        benchmark, s in
        for _ in benchmark.scaledIterations {
            s.predict(s.next)
            s.next += 1
        }
        blackHole(s.model)
    } setup: {
        try FullStore()
    }

    // The same predictions without an id: the collectors alone, no join (the cost the join adds is the
    // difference).
    Benchmark("Record prediction without id", configuration: joinConfiguration()) { benchmark, s in
        for _ in benchmark.scaledIterations {
            var event = s.templates[s.next & 7]
            event.score = 0.3
            s.model.record(event, receivedAt: s.t0)
            s.next += 1
        }
        blackHole(s.model)
    } setup: {
        try FullStore()
    }

    // MARK: - Labels joining a full store

    // Labels in prediction order (a constant delay): each takes the oldest pending prediction, and updates
    // quality and fairness. Between iterations, outside the measurement, as many new predictions refill the
    // store to 1,000,000 pending (joined entries at a ring's head are skipped, so nothing live is evicted).
    Benchmark("Join label in prediction order, 1M pending", configuration: joinConfiguration()) { benchmark, s in
        for _ in 0..<benchmark.scaledIterations.count {
            s.predict(s.next)
            s.next += 1
        }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            s.label(s.nextLabel)
            s.nextLabel += 1
        }
        benchmark.stopMeasurement()
        blackHole(s.model)
    } setup: {
        try FullStore(labelled: 1_000)
    }

    // Labels in random order: each joins a pending prediction chosen at random (a pseudo-random permutation
    // of the million). No refill (refilling a ring with holes evicts live entries): the store drains from
    // 1,000,000 pending to no fewer than 594,000 (at most 406 batches of 1,000).
    Benchmark("Join label in random order, 1M to 594k pending", configuration: joinConfiguration(maxIterations: 400)) {
        benchmark, s in
        for _ in benchmark.scaledIterations {
            // An affine permutation of 0..<1,000,000 (the multiplier is coprime with it).
            let j: Int = (s.nextLabel &* 7_919 &+ 12_345) % pendingCapacity
            s.label(j)
            s.nextLabel += 1
        }
        blackHole(s.model)
    } setup: {
        try FullStore()
    }

    // MARK: - Payload layout: the store alone

    // PredictionSnapshot as the exporter builds it (a groups array, probabilities empty) into a full store.
    Benchmark("PendingStore insert full, PredictionSnapshot payload", configuration: joinConfiguration()) {
        benchmark, s in
        for _ in benchmark.scaledIterations {
            s.insert(s.next)
            s.next += 1
        }
        blackHole(s.store)
    } setup: {
        BareStore<PredictionSnapshot>(QualityBench.snapshotPayload)
    }

    // The flat payload proposed in QUALITY_RESULTS.md: no arrays.
    Benchmark("PendingStore insert full, flat payload", configuration: joinConfiguration()) { benchmark, s in
        for _ in benchmark.scaledIterations {
            s.insert(s.next)
            s.next += 1
        }
        blackHole(s.store)
    } setup: {
        BareStore<FlatSnapshot>(QualityBench.flatPayload)
    }
}
