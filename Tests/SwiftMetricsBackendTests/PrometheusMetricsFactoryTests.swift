import CoreMetrics
import Exposition
import SwiftMetricsBackend
import Testing

// Every metric is created through the public swift-metrics API with an explicit factory:
// `MetricsSystem.bootstrap` is process-global and is never called here.

/// A registry without its own self metrics, and a factory over it.
func makeFactory(
    _ configuration: PrometheusMetricsFactory.Configuration = .init()
) throws -> (Registry, PrometheusMetricsFactory) {
    let registry = Registry(options: .init(selfMetricsPrefix: nil))
    return (registry, try PrometheusMetricsFactory(registry: registry, configuration: configuration))
}

/// The registry in text 0.0.4.
func text(_ registry: Registry) -> String {
    String(decoding: registry.render(format: .text), as: UTF8.self)
}

/// The lines of the rendered registry that start with `prefix`.
func lines(_ registry: Registry, _ prefix: String) -> [String] {
    text(registry).split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix) }
}

/// The dropped-counter line of one reason.
func dropped(_ registry: Registry, _ reason: String) -> [String] {
    lines(registry, "mlops_exporter_swift_metrics_dropped_total{reason=\"\(reason)\"}")
}

@Test func counterIsExportedWithTotalAndSanitisedNames() throws {
    let (registry, factory) = try makeFactory()
    let counter = CoreMetrics.Counter(
        label: "http.server.requests", dimensions: [("http.method", "GET")], factory: factory)
    counter.increment()
    counter.increment(by: 2)
    CoreMetrics.Counter(label: "jobs_total", factory: factory).increment(by: 5)
    #expect(
        text(registry).contains(
            """
            # HELP http_server_requests_total swift-metrics counter "http.server.requests".
            # TYPE http_server_requests_total counter
            http_server_requests_total{http_method="GET"} 3

            """))
    #expect(lines(registry, "jobs") == ["jobs_total 5"])
    #expect(lines(registry, "# TYPE jobs") == ["# TYPE jobs_total counter"])
}

@Test func floatingPointCounterAddsFractions() throws {
    let (registry, factory) = try makeFactory()
    let counter = FloatingPointCounter(label: "energy_joules", factory: factory)
    counter.increment(by: 0.5)
    counter.increment(by: 1.0)
    counter.increment(by: 0.25)
    #expect(lines(registry, "energy_joules_total") == ["energy_joules_total 1.75"])
}

@Test func counterResetStartsAgainFromZero() throws {
    let (registry, factory) = try makeFactory()
    let counter = CoreMetrics.Counter(label: "retries", factory: factory)
    counter.increment(by: 7)
    counter.reset()
    counter.increment()
    #expect(lines(registry, "retries_total") == ["retries_total 1"])
}

@Test func meterIsAGauge() throws {
    let (registry, factory) = try makeFactory()
    let meter = Meter(label: "queue.depth", dimensions: [("queue", "ingest")], factory: factory)
    meter.set(5)
    meter.increment(by: 2.0)
    meter.decrement(by: 0.5)
    #expect(lines(registry, "queue_depth") == ["queue_depth{queue=\"ingest\"} 6.5"])
    #expect(lines(registry, "# TYPE queue_depth") == ["# TYPE queue_depth gauge"])
}

@Test func nonAggregatingRecorderIsAGaugeWithTheLastValue() throws {
    let (registry, factory) = try makeFactory()
    let gauge = CoreMetrics.Gauge(label: "temperature_celsius", factory: factory)
    gauge.record(30)
    gauge.record(21.5)
    #expect(lines(registry, "temperature_celsius") == ["temperature_celsius 21.5"])
    #expect(lines(registry, "# TYPE temperature_celsius") == ["# TYPE temperature_celsius gauge"])
}

@Test func aggregatingRecorderIsAHistogramWithPerLabelBuckets() throws {
    let (registry, factory) = try makeFactory(.init(recorderBuckets: ["payload_bytes": [10, 100]]))
    let recorder = Recorder(label: "payload_bytes", dimensions: [("route", "/x")], factory: factory)
    recorder.record(5)
    recorder.record(50.0)
    recorder.record(500)
    #expect(
        lines(registry, "payload_bytes")
            == [
                "payload_bytes_bucket{route=\"/x\",le=\"10\"} 1",
                "payload_bytes_bucket{route=\"/x\",le=\"100\"} 2",
                "payload_bytes_bucket{route=\"/x\",le=\"+Inf\"} 3",
                "payload_bytes_sum{route=\"/x\"} 555",
                "payload_bytes_count{route=\"/x\"} 3",
            ])
    // Another recorder gets the default buckets.
    Recorder(label: "other", factory: factory).record(1)
    #expect(lines(registry, "other_bucket").count == Buckets.defaultSeconds.count + 1)
}

@Test func timerIsAHistogramInSeconds() throws {
    let (registry, factory) = try makeFactory(.init(timerBuckets: ["db.query": [0.1, 0.3, 1]]))
    let timer = CoreMetrics.Timer(label: "db.query", dimensions: [("table", "users")], factory: factory)
    timer.recordNanoseconds(250_000_000)
    timer.recordMilliseconds(500)
    #expect(
        lines(registry, "db_query")
            == [
                "db_query_seconds_bucket{table=\"users\",le=\"0.1\"} 0",
                "db_query_seconds_bucket{table=\"users\",le=\"0.3\"} 1",
                "db_query_seconds_bucket{table=\"users\",le=\"1\"} 2",
                "db_query_seconds_bucket{table=\"users\",le=\"+Inf\"} 2",
                "db_query_seconds_sum{table=\"users\"} 0.75",
                "db_query_seconds_count{table=\"users\"} 2",
            ])
    // A label that already ends in `_seconds` keeps one suffix; default timer buckets apply.
    CoreMetrics.Timer(label: "render_seconds", factory: factory).recordSeconds(2)
    #expect(lines(registry, "render_seconds_sum") == ["render_seconds_sum 2"])
    #expect(lines(registry, "render_seconds_bucket").count == Buckets.defaultSeconds.count + 1)
    #expect(text(registry).contains("# TYPE render_seconds histogram\n"))
}

@Test func dimensionOrderDoesNotMatter() throws {
    let (registry, factory) = try makeFactory()
    CoreMetrics.Counter(label: "orders", dimensions: [("a", "1"), ("b", "2")], factory: factory).increment()
    CoreMetrics.Counter(label: "orders", dimensions: [("b", "2"), ("a", "1")], factory: factory).increment(by: 2)
    #expect(lines(registry, "orders_total") == ["orders_total{a=\"1\",b=\"2\"} 3"])
    #expect(
        dropped(registry, "label_names_mismatch") == [
            #"mlops_exporter_swift_metrics_dropped_total{reason="label_names_mismatch"} 0"#
        ])
}

@Test func conflictsGetNoOpHandlersAndAreCounted() throws {
    let (registry, factory) = try makeFactory()
    _ = try registry.gauge("taken", help: "Registered outside the factory.")
    let first = CoreMetrics.Counter(label: "c", dimensions: [("a", "1")], factory: factory)
    first.increment()
    // Other dimension keys: label_names_mismatch, and the original series is untouched.
    CoreMetrics.Counter(label: "c", dimensions: [("b", "1")], factory: factory).increment(by: 100)
    CoreMetrics.Counter(label: "c", factory: factory).increment(by: 100)
    // Same family name, another type: type_conflict (`c_total` is counter family `c`).
    Meter(label: "c", dimensions: [("a", "1")], factory: factory).set(9)
    // Unusable names: invalid_name.
    CoreMetrics.Counter(label: "9lives", factory: factory).increment()
    CoreMetrics.Counter(label: "...", factory: factory).increment()
    Recorder(label: "sizes", dimensions: [("le", "x")], factory: factory).record(1)
    CoreMetrics.Counter(label: "dup", dimensions: [("k.x", "1"), ("k_x", "2")], factory: factory).increment()
    // Taken by a family the factory did not create: already_registered.
    CoreMetrics.Counter(label: "taken", factory: factory).increment()
    #expect(lines(registry, "c_total") == [#"c_total{a="1"} 1"#])
    #expect(lines(registry, "c ").isEmpty && lines(registry, "c{").isEmpty)
    #expect(lines(registry, "taken") == ["taken 0"])
    #expect(
        lines(registry, "mlops_exporter_swift_metrics_dropped_total{")
            == [
                #"mlops_exporter_swift_metrics_dropped_total{reason="already_registered"} 1"#,
                #"mlops_exporter_swift_metrics_dropped_total{reason="invalid_name"} 4"#,
                #"mlops_exporter_swift_metrics_dropped_total{reason="label_names_mismatch"} 2"#,
                #"mlops_exporter_swift_metrics_dropped_total{reason="max_families"} 0"#,
                #"mlops_exporter_swift_metrics_dropped_total{reason="max_series"} 0"#,
                #"mlops_exporter_swift_metrics_dropped_total{reason="type_conflict"} 1"#,
            ])
}

@Test func aFamilyHoldsAtMostMaxSeriesPerFamilySeries() throws {
    let (registry, factory) = try makeFactory(.init(maxSeriesPerFamily: 3))
    // A dimension fed from client input (Hummingbird's method token): the fourth value and beyond are dropped.
    for method in ["GET", "POST", "PUT", "X1", "X2"] {
        Meter(label: "active", dimensions: [("method", method)], factory: factory).increment(by: 1)
    }
    #expect(lines(registry, "active{").count == 3)
    #expect(dropped(registry, "max_series") == [#"mlops_exporter_swift_metrics_dropped_total{reason="max_series"} 2"#])
    // An existing series is still found; another family has its own room.
    Meter(label: "active", dimensions: [("method", "GET")], factory: factory).increment(by: 1)
    #expect(lines(registry, #"active{method="GET"}"#) == [#"active{method="GET"} 2"#])
    CoreMetrics.Counter(label: "other", dimensions: [("method", "X1")], factory: factory).increment()
    #expect(lines(registry, "other_total{") == [#"other_total{method="X1"} 1"#])
    // destroy() makes room again.
    let put = Meter(label: "active", dimensions: [("method", "PUT")], factory: factory)
    put.destroy()
    Meter(label: "active", dimensions: [("method", "X1")], factory: factory).increment(by: 1)
    #expect(lines(registry, #"active{method="X1"}"#) == [#"active{method="X1"} 1"#])
    #expect(throws: ExpositionError.self) {
        try PrometheusMetricsFactory(
            registry: Registry(options: .init(selfMetricsPrefix: nil)), configuration: .init(maxSeriesPerFamily: 0))
    }
}

/// Labels built from input (a name per customer) cannot grow the registry without bound: the families the factory
/// makes are bounded too (2,000 labels made 2,000 families, nothing refused).
@Test func theFactoryMakesAtMostMaxFamiliesFamilies() throws {
    let (registry, factory) = try makeFactory(.init(maxFamilies: 3))
    for name in ["a", "b", "c", "d", "e"] { CoreMetrics.Counter(label: name, factory: factory).increment() }
    #expect(["a", "b", "c"].allSatisfy { lines(registry, "\($0)_total ").count == 1 })
    #expect(lines(registry, "d_total").isEmpty && lines(registry, "e_total").isEmpty)
    #expect(
        dropped(registry, "max_families") == [#"mlops_exporter_swift_metrics_dropped_total{reason="max_families"} 2"#])
    // A family already made takes new series.
    CoreMetrics.Counter(label: "a", dimensions: [("k", "v")], factory: factory).increment()
    #expect(
        dropped(registry, "label_names_mismatch") == [
            #"mlops_exporter_swift_metrics_dropped_total{reason="label_names_mismatch"} 1"#
        ])
    CoreMetrics.Counter(label: "b", factory: factory).increment()
    #expect(lines(registry, "b_total ") == ["b_total 2"])
    #expect(throws: ExpositionError.self) {
        try PrometheusMetricsFactory(
            registry: Registry(options: .init(selfMetricsPrefix: nil)), configuration: .init(maxFamilies: 0))
    }
}

@Test func timerAndRecorderWithOneNameConflict() throws {
    let (registry, factory) = try makeFactory()
    CoreMetrics.Timer(label: "step", factory: factory).recordSeconds(1)
    Recorder(label: "step_seconds", factory: factory).record(1)
    CoreMetrics.Gauge(label: "step_seconds", factory: factory).record(1)
    #expect(lines(registry, "step_seconds_count") == ["step_seconds_count 1"])
    #expect(
        dropped(registry, "type_conflict") == [#"mlops_exporter_swift_metrics_dropped_total{reason="type_conflict"} 2"#]
    )
}

@Test func destroyRemovesTheSeries() throws {
    let (registry, factory) = try makeFactory()
    let counter = CoreMetrics.Counter(label: "sessions", dimensions: [("user", "x")], factory: factory)
    let keep = CoreMetrics.Counter(label: "sessions", dimensions: [("user", "y")], factory: factory)
    let fpCounter = FloatingPointCounter(label: "cost", factory: factory)
    let meter = Meter(label: "level", factory: factory)
    let recorder = Recorder(label: "size", factory: factory)
    let gauge = CoreMetrics.Gauge(label: "load", factory: factory)
    let timer = CoreMetrics.Timer(label: "latency", factory: factory)
    counter.increment()
    keep.increment()
    fpCounter.increment(by: 1.5)
    meter.set(1)
    recorder.record(1)
    gauge.record(1)
    timer.recordSeconds(1)
    for prefix in ["sessions_total{user=\"x\"}", "cost_total", "level", "size_count", "load", "latency_seconds_count"] {
        #expect(lines(registry, prefix).count == 1, "\(prefix)")
    }
    counter.destroy()
    fpCounter.destroy()
    meter.destroy()
    recorder.destroy()
    gauge.destroy()
    timer.destroy()
    let after = text(registry)
    for name in ["sessions_total{user=\"x\"}", "cost", "level", "size", "load", "latency"] {
        #expect(!after.contains("\n" + name), "\(name) still written")
    }
    #expect(lines(registry, "sessions_total") == [#"sessions_total{user="y"} 1"#])
    // Updates through a destroyed metric are not written; a new metric starts from zero.
    counter.increment()
    #expect(lines(registry, "sessions_total{user=\"x\"}").isEmpty)
    CoreMetrics.Counter(label: "sessions", dimensions: [("user", "x")], factory: factory).increment(by: 4)
    #expect(lines(registry, "sessions_total{user=\"x\"}") == [#"sessions_total{user="x"} 4"#])
    // Destroying the old metric again does not remove the new series.
    counter.destroy()
    #expect(lines(registry, "sessions_total{user=\"x\"}") == [#"sessions_total{user="x"} 4"#])
}

@Test func invalidConfigurationAndSecondFactoryThrow() throws {
    let registry = Registry(options: .init(selfMetricsPrefix: nil))
    #expect(throws: ExpositionError.self) {
        try PrometheusMetricsFactory(registry: registry, configuration: .init(timerBuckets: ["t": [2, 1]]))
    }
    #expect(throws: ExpositionError.self) {
        try PrometheusMetricsFactory(registry: registry, configuration: .init(defaultRecorderBuckets: []))
    }
    _ = try PrometheusMetricsFactory(registry: registry)
    #expect(throws: ExpositionError.self) { try PrometheusMetricsFactory(registry: registry) }
}

@Test func droppedCounterFollowsTheSelfMetricsPrefix() throws {
    let registry = Registry(options: .init(selfMetricsPrefix: "app"))
    _ = try PrometheusMetricsFactory(registry: registry)
    #expect(lines(registry, #"app_swift_metrics_dropped_total{reason="invalid_name"}"#).count == 1)
}

@Test func concurrentCreationAndUpdatesAreExact() async throws {
    let (registry, factory) = try makeFactory()
    let tasks = 8
    let perTask = 10_000
    await withTaskGroup(of: Void.self) { group in
        for t in 0..<tasks {
            group.addTask {
                let counter = CoreMetrics.Counter(label: "hits", dimensions: [("shard", "all")], factory: factory)
                let own = CoreMetrics.Counter(label: "hits", dimensions: [("shard", "\(t % 2)")], factory: factory)
                let timer = CoreMetrics.Timer(label: "work", factory: factory)
                let meter = Meter(label: "balance", factory: factory)
                for _ in 0..<perTask {
                    counter.increment()
                    own.increment()
                    timer.recordNanoseconds(1_000_000)
                    meter.increment(by: 1.0)
                }
            }
        }
    }
    let total = tasks * perTask
    #expect(
        lines(registry, "hits_total")
            == [
                "hits_total{shard=\"0\"} \(total / 2)",
                "hits_total{shard=\"1\"} \(total / 2)",
                "hits_total{shard=\"all\"} \(total)",
            ])
    #expect(lines(registry, "work_seconds_count") == ["work_seconds_count \(total)"])
    #expect(lines(registry, "balance") == ["balance \(total)"])
    #expect(
        dropped(registry, "label_names_mismatch") == [
            #"mlops_exporter_swift_metrics_dropped_total{reason="label_names_mismatch"} 0"#
        ])
}
