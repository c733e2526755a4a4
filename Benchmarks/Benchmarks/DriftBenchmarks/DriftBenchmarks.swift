@preconcurrency import Benchmark
import BenchmarkFixtures
import DriftFixtures
import Exposition
import ModelMonitoring

/// Metrics of the drift benchmarks beyond the defaults.
enum DriftMetric {
    /// The thread's CPU time per event (`CLOCK_THREAD_CPUTIME_ID`): not inflated by other processes on the core.
    static let cpuNsPerEvent = BenchmarkMetric.custom(
        "CPU ns per event", polarity: .prefersSmaller, useScalingFactor: false)
    /// The process's CPU time of one scrape (collectors run on a worker thread), in microseconds.
    static let cpuUsPerScrape = BenchmarkMetric.custom(
        "CPU us per scrape", polarity: .prefersSmaller, useScalingFactor: false)
    /// Size of one scrape's body.
    static let bytes = BenchmarkMetric.custom("bytes rendered", polarity: .prefersSmaller, useScalingFactor: false)
}

/// Drift benchmarks (issue 6): `record(_:)` cost per event with the drift collector for 20 and 100 features,
/// and the scrape cost of 10 models x 50 features with a full window. Fixtures: `Sources/DriftFixtures`.
let benchmarks: @Sendable () -> Void = {
    // 1000 records per iteration (`scalingFactor: .kilo`): the scaled wall clock (`*`) is ns per record and
    // `mallocCountTotal` counts the allocations of 1000 records (static threshold 0 in Thresholds/).
    let perRecord = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal, DriftMetric.cpuNsPerEvent],
        timeUnits: .nanoseconds,
        warmupIterations: 5,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 10_000,
        thresholds: [.mallocCountTotal: .init(absolute: BenchmarkThresholds.Absolute.strict)]
    )

    // `record(_:)` of pre-shaped events (a pool of 1024 different seeded events, 75% numeric features, 25%
    // categorical, 1% missing), `receivedAt` from the wall clock as embedding code calls it.
    for features in [20, 100] {
        for service in [false, true] {
            let name = "Drift record \(features) features, \(service ? "drift + service" : "drift only")"
            Benchmark(name, configuration: perRecord) { benchmark, fixture in
                let model = fixture.models[0]
                let events = fixture.events
                let mask = events.count - 1
                var i = 0
                let cpu = threadCPUNanos()
                for _ in benchmark.scaledIterations {
                    blackHole(model.record(events[i & mask]))
                    i &+= 1
                }
                let used = threadCPUNanos() - cpu
                benchmark.stopMeasurement()
                benchmark.measurement(DriftMetric.cpuNsPerEvent, used / benchmark.scaledIterations.count)
            } setup: {
                try DriftFixture(models: 1, features: features, service: service)
            }
        }
    }

    // One text scrape of 10 models x 50 features (38 numeric, 12 categorical), methods mixed per feature, a
    // full window (12 slices of 1000 events per model, drawn from 16384 seeded events), bin series on: what
    // `/metrics` renders, minus HTTP. Without drift, and with the numeric features' mean shifted by 0.05 sd
    // (mild drift: the KS p-value then takes scipy's exact Smirnov sum, O(n) in the effective sample size).
    for (label, shift) in [("no drift", 0.0), ("mild drift", 0.05)] {
        Benchmark(
            "Drift scrape 10 models x 50 features, \(label)",
            configuration: .init(
                metrics: [.wallClock, .mallocCountTotal, DriftMetric.cpuUsPerScrape, DriftMetric.bytes],
                timeUnits: .microseconds,
                warmupIterations: 3,
                scalingFactor: .one,
                maxDuration: .seconds(5),
                maxIterations: 1000
            )
        ) { (benchmark: Benchmark, fixture: DriftFixture) in
            var buffer: [UInt8] = []
            buffer.reserveCapacity(4 << 20)
            benchmark.startMeasurement()
            // The registry runs collectors on a worker thread: process CPU time, not the thread's.
            let cpu = processCPUNanos()
            let bytes = fixture.scrape(into: &buffer)
            let used = processCPUNanos() - cpu
            benchmark.stopMeasurement()
            benchmark.measurement(DriftMetric.cpuUsPerScrape, used / 1000)
            benchmark.measurement(DriftMetric.bytes, bytes)
        } setup: {
            let fixture = try DriftFixture(
                models: 10, features: 50, service: false, mixedMethods: true, eventPool: 16384, shift: shift)
            precondition(fixture.fillWindow(slices: 12, perSlice: 1000, now: WallClock.now()) == 0)
            return fixture
        }
    }
}
