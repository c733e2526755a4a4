@preconcurrency import Benchmark
import BenchmarkFixtures
import Exposition

#if canImport(Glibc)
    import Glibc
#endif

/// Metrics reported by the render benchmarks on top of the defaults (one value per render).
enum RenderMetric {
    /// Wall-clock nanoseconds of one render divided by its number of sample lines.
    static let nsPerSeries = BenchmarkMetric.custom("ns per series", polarity: .prefersSmaller, useScalingFactor: false)
    /// Size of the rendered body.
    static let bytes = BenchmarkMetric.custom("bytes rendered", polarity: .prefersSmaller, useScalingFactor: false)
    /// Minor page faults taken by the process during one render (fresh memory being touched).
    static let pageFaults = BenchmarkMetric.custom("page faults", polarity: .prefersSmaller, useScalingFactor: false)
}

/// Minor page faults of the whole process so far.
func minorFaults() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_minflt
}

/// The allocation count, when the benchmark executable links the malloc interposer (the default; see
/// `Package.swift`). Without it every allocation is 16 bytes smaller, as in the exporter itself, which is
/// what the render timings at 100k series should be measured with.
#if MALLOC_INTERPOSER
    let mallocMetrics: [BenchmarkMetric] = [.mallocCountTotal]
#else
    let mallocMetrics: [BenchmarkMetric] = []
#endif

/// Hot-path benchmarks: one million updates per iteration (`scalingFactor: .mega`), so the reported
/// wall clock (`*`, scaled) is nanoseconds per update and `mallocCountTotal` counts allocations in a
/// million updates. Static thresholds in `Thresholds/` pin `mallocCountTotal` to 0.
func hotPathConfiguration() -> Benchmark.Configuration {
    .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 5,
        scalingFactor: .mega,
        maxDuration: .seconds(2),
        maxIterations: 1_000,
        thresholds: [.mallocCountTotal: .init(absolute: BenchmarkThresholds.Absolute.strict)]
    )
}

/// Render benchmarks: one render per iteration; `ns per series` and `bytes rendered` are recorded per render.
func renderConfiguration() -> Benchmark.Configuration {
    .init(
        metrics: [.wallClock, RenderMetric.nsPerSeries, RenderMetric.bytes, RenderMetric.pageFaults] + mallocMetrics,
        timeUnits: .microseconds,
        warmupIterations: 3,
        scalingFactor: .one,
        maxDuration: .seconds(3),
        maxIterations: 500
    )
}

let benchmarks: @Sendable () -> Void = {
    #if MALLOC_INTERPOSER
        hotPathBenchmarks()
    #endif
    renderBenchmarks()
    registrationBenchmark()
}

/// Benchmarks 0-4; their thresholds need the allocation counts, so they exist only with the interposer.
func hotPathBenchmarks() {
    let hotPath = hotPathConfiguration()

    // MARK: - 0. Control: the harness alone

    // The hot-path configuration and setup-state plumbing with nothing in the loop: what the harness
    // itself costs and allocates per iteration. (`.cpuTotal` is left out of every benchmark: on Linux
    // its sampling allocates 16 times per iteration here and it only has 10 ms resolution.)
    Benchmark("Control empty loop", configuration: hotPath) { benchmark, counter in
        for _ in benchmark.scaledIterations {}
        blackHole(counter)
    } setup: {
        try Registry().counter("bench_control", help: "Never updated.")
    }

    // MARK: - 1. Counter inc, unlabelled

    Benchmark("Counter inc unlabelled", configuration: hotPath) { benchmark, counter in
        for _ in benchmark.scaledIterations {
            counter.inc()
        }
    } setup: {
        try Registry().counter("bench_events", help: "Events.")
    }

    // MARK: - 2. Counter inc through a labelled handle

    Benchmark("Counter inc labelled handle", configuration: hotPath) { benchmark, counter in
        for _ in benchmark.scaledIterations {
            counter.inc()
        }
    } setup: {
        try Registry().counterFamily("bench_requests", help: "Requests.", labelNames: ["handler", "code"])
            .labels("/api/v1/resource", "200")
    }

    // MARK: - 3/4. Histogram observe (11 default buckets), 0 allocations

    Benchmark("Histogram observe random", configuration: hotPath) {
        (benchmark: Benchmark, state: (Histogram, Observations)) in
        let (histogram, observations) = state
        let values = observations.values
        for i in benchmark.scaledIterations {
            histogram.observe(values[i & Observations.mask])
        }
    } setup: {
        let h = try Registry().histogramFamily(
            "bench_latency_seconds", help: "Latency.", labelNames: ["handler"]
        ).labels("/api/v1/resource")
        return (h, Observations())
    }

    // The same with one value (always bucket 0.5): the branch predictor's best case, for comparison.
    Benchmark("Histogram observe constant", configuration: hotPath) { benchmark, histogram in
        for _ in benchmark.scaledIterations {
            histogram.observe(0.3)
        }
    } setup: {
        try Registry().histogram("bench_latency_seconds", help: "Latency.")
    }
}

/// Benchmark 5: render 10k and 100k series, both formats, into a reused buffer.
func renderBenchmarks() {
    for series in [10_000, 100_000] {
        for (format, formatName) in [(ExpositionFormat.text, "text"), (.openMetrics, "OpenMetrics")] {
            Benchmark(
                "Render \(formatName) \(series / 1000)k series", configuration: renderConfiguration()
            ) { (benchmark: Benchmark, fixture: RenderFixture) in
                let faults = minorFaults()
                let clock = ContinuousClock()
                let start = clock.now
                fixture.registry.render(format: format, into: &fixture.buffer)
                let elapsed = start.duration(to: clock.now)
                benchmark.stopMeasurement()
                benchmark.measurement(RenderMetric.pageFaults, minorFaults() - faults)
                let (s, a) = elapsed.components
                let nanos = Int(s) * 1_000_000_000 + Int(a / 1_000_000_000)
                // Rounded, not truncated: the metric is an integer.
                benchmark.measurement(RenderMetric.nsPerSeries, (nanos + fixture.series / 2) / fixture.series)
                benchmark.measurement(RenderMetric.bytes, fixture.buffer.count)
            } setup: {
                let fixture = try RenderFixture(series: series)
                precondition(fixture.mix.lines == series)
                fixture.registry.render(format: format, into: &fixture.buffer)  // sizes the buffer, sorts once
                let lines = fixture.buffer.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
                let comments = fixture.buffer.split(separator: UInt8(ascii: "\n")).count {
                    $0.first == UInt8(ascii: "#")
                }
                precondition(lines - comments == series, "rendered \(lines - comments) samples, expected \(series)")
                return fixture
            }
        }
    }
}

/// Benchmark 6: register 100k labelled series.
func registrationBenchmark() {
    let registrations = 100_000
    Benchmark(
        "Register 100k labelled series",
        configuration: .init(
            metrics: [.wallClock] + mallocMetrics,
            timeUnits: .milliseconds,
            warmupIterations: 1,
            scalingFactor: .one,
            maxDuration: .seconds(20),
            maxIterations: 15
        )
    ) { (benchmark: Benchmark, labels: [(String, String)]) in
        // A fresh registry and family each iteration, outside the measurement.
        let registry = Registry()
        let family = try! registry.counterFamily(
            "bench_http_requests", help: "HTTP requests by handler and status code.", labelNames: ["handler", "code"])
        benchmark.startMeasurement()
        for (handler, code) in labels {
            blackHole(try! family.labels(handler, code))
        }
        benchmark.stopMeasurement()
        precondition(family.seriesCount == registrations)
        withExtendedLifetime(registry) {}
    } setup: {
        registrationLabels(count: registrations)
    }
}
