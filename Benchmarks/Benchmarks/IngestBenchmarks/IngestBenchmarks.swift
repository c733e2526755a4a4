@preconcurrency import Benchmark
import BenchmarkFixtures
import IngestFixtures
import Ingestion
import ModelMonitoring

/// Per-event metrics of the batch benchmark (one value per 100-event batch).
enum IngestMetric {
    /// Wall-clock nanoseconds of one `ingest` call divided by its 100 events.
    static let nsPerEvent = BenchmarkMetric.custom("ns per event", polarity: .prefersSmaller, useScalingFactor: false)
    /// The thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) per event or per record: not inflated by other
    /// processes running on the same core (this machine is shared).
    static let cpuNsPerEvent = BenchmarkMetric.custom(
        "CPU ns per event", polarity: .prefersSmaller, useScalingFactor: false)
}

/// The in-process cost of the ingestion path (issue 5, "record() cost in-process"), on the model and
/// batch of `scripts/bench-ingest` (Fixtures/ingest-models.yaml, Fixtures/ingest-batch.ndjson).
let benchmarks: @Sendable () -> Void = {
    // 1000 records per iteration (`scalingFactor: .kilo`): the scaled wall clock (`*`) is ns per record and
    // `mallocCountTotal` counts the allocations of 1000 records (static threshold 0 in Thresholds/).
    let perRecord = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal, IngestMetric.cpuNsPerEvent],
        timeUnits: .nanoseconds,
        warmupIterations: 5,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 10_000,
        thresholds: [.mallocCountTotal: .init(absolute: BenchmarkThresholds.Absolute.strict)]
    )

    // `record(_:)` as embedding code calls it: a pre-shaped event (20 features, score, probabilities,
    // latency, attributes), `receivedAt` defaulting to the wall clock.
    Benchmark("Record 20-feature event", configuration: perRecord) { benchmark, fixture in
        let model = fixture.model
        let event = fixture.event
        let cpu = threadCPUNanos()
        for _ in benchmark.scaledIterations {
            blackHole(model.record(event))
        }
        let used = threadCPUNanos() - cpu
        benchmark.stopMeasurement()
        benchmark.measurement(IngestMetric.cpuNsPerEvent, used / benchmark.scaledIterations.count)
    } setup: {
        try IngestFixture()
    }

    // The same with `receivedAt` given: the cost without reading the clock.
    Benchmark("Record 20-feature event, receivedAt given", configuration: perRecord) { benchmark, fixture in
        let model = fixture.model
        let event = fixture.event
        let cpu = threadCPUNanos()
        for _ in benchmark.scaledIterations {
            blackHole(model.record(event, receivedAt: 1_764_410_000))
        }
        let used = threadCPUNanos() - cpu
        benchmark.stopMeasurement()
        benchmark.measurement(IngestMetric.cpuNsPerEvent, used / benchmark.scaledIterations.count)
    } setup: {
        try IngestFixture()
    }

    // `MonitoredModel.ingest` of the 100-event NDJSON fixture: decode + validate + record + accounting, what
    // the HTTP endpoint does per request minus HTTP. One batch per iteration; `ns per event` = time / 100.
    Benchmark(
        "Ingest NDJSON batch of 100 events",
        configuration: .init(
            metrics: [.wallClock, .mallocCountTotal, IngestMetric.nsPerEvent, IngestMetric.cpuNsPerEvent],
            timeUnits: .microseconds,
            warmupIterations: 10,
            scalingFactor: .one,
            maxDuration: .seconds(3),
            maxIterations: 20_000
        )
    ) { (benchmark: Benchmark, fixture: IngestFixture) in
        let clock = ContinuousClock()
        let start = clock.now
        let cpu = threadCPUNanos()
        let accepted = fixture.ingestBatch(receivedAt: 1_764_410_000)
        let used = threadCPUNanos() - cpu
        let elapsed = start.duration(to: clock.now)
        benchmark.stopMeasurement()
        benchmark.measurement(IngestMetric.cpuNsPerEvent, used / 100)
        precondition(accepted == 100)
        let (s, a) = elapsed.components
        benchmark.measurement(IngestMetric.nsPerEvent, (Int(s) * 1_000_000_000 + Int(a / 1_000_000_000)) / 100)
    } setup: {
        try IngestFixture()
    }
}
