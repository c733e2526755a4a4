import Testing

@testable import Exposition

@Suite("Registry")
struct RegistryTests {
    @Test("registering the same family twice fails; there is no get-or-create")
    func sameTwice() throws {
        let registry = plainRegistry()
        _ = try registry.counterFamily("c", help: "H.", labelNames: ["a"])
        #expect(throws: ExpositionError.alreadyRegistered(name: "c", reason: "already registered")) {
            try registry.counterFamily("c", help: "H.", labelNames: ["a"])
        }
    }

    @Test("the error says what differs")
    func reasons() throws {
        let registry = plainRegistry()
        _ = try registry.counterFamily("c", help: "H.", labelNames: ["a"])
        #expect(throws: ExpositionError.alreadyRegistered(name: "c", reason: "already registered as a counter")) {
            try registry.gaugeFamily("c", help: "H.", labelNames: ["a"])
        }
        #expect(
            throws: ExpositionError.alreadyRegistered(name: "c", reason: "already registered with label names [\"a\"]")
        ) {
            try registry.counterFamily("c", help: "H.", labelNames: ["b"])
        }
        #expect(
            throws: ExpositionError.alreadyRegistered(
                name: "c", reason: "already registered with a different help text")
        ) {
            try registry.counterFamily("c", help: "Other.", labelNames: ["a"])
        }
        _ = try registry.gauge("g_seconds", help: "", unit: "seconds")
        #expect(
            throws: ExpositionError.alreadyRegistered(
                name: "g_seconds", reason: "already registered with unit \"seconds\"")
        ) {
            try registry.gauge("g_seconds", help: "")
        }
        #expect(throws: ExpositionError.alreadyRegistered(name: "c", reason: "already registered as a counter")) {
            try registry.histogram("c", help: "H.")
        }
    }

    @Test("sample-name clash: gauge foo_total vs counter foo, in both orders")
    func counterTotalClash() throws {
        let a = plainRegistry()
        _ = try a.counter("foo", help: "")
        #expect(
            throws: ExpositionError.alreadyRegistered(
                name: "foo_total", reason: "its sample name \"foo_total\" is already used by counter \"foo\"")
        ) {
            try a.gauge("foo_total", help: "")
        }
        let b = plainRegistry()
        _ = try b.gauge("foo_total", help: "")
        #expect(
            throws: ExpositionError.alreadyRegistered(
                name: "foo", reason: "its sample name \"foo_total\" is already used by gauge \"foo_total\"")
        ) {
            try b.counter("foo", help: "")
        }
    }

    @Test("sample-name clash: counter x_count vs histogram x, in both orders")
    func histogramCountClash() throws {
        let a = plainRegistry()
        _ = try a.counter("x_count", help: "")
        #expect(
            throws: ExpositionError.alreadyRegistered(
                name: "x", reason: "its sample name \"x_count\" is already used by counter \"x_count\"")
        ) {
            try a.histogram("x", help: "")
        }
        let b = plainRegistry()
        _ = try b.histogram("x", help: "")
        #expect(
            throws: ExpositionError.alreadyRegistered(
                name: "x_count", reason: "its sample name \"x_count\" is already used by histogram \"x\"")
        ) {
            try b.counter("x_count", help: "")
        }
    }

    @Test(
        "every reserved sample name clashes",
        arguments: [
            ("counter", "c", "c_created"), ("histogram", "h", "h_bucket"), ("histogram", "h", "h_sum"),
            ("histogram", "h", "h_created"), ("summary", "s", "s_count"), ("summary", "s", "s_sum"),
            ("summary", "s", "s_created"), ("info", "i", "i_info"), ("info", "i", "i"), ("gauge", "g", "g"),
        ])
    func reservedNames(type: String, family: String, gauge: String) throws {
        let registry = plainRegistry()
        switch type {
        case "counter": _ = try registry.counter(family, help: "")
        case "histogram": _ = try registry.histogram(family, help: "")
        case "summary": _ = try registry.summary(family, help: "")
        case "info": try registry.info(family, help: "", labels: [:])
        default: _ = try registry.gauge(family, help: "")
        }
        #expect(throws: ExpositionError.self) { try registry.gauge(gauge, help: "") }
        #expect(throws: ExpositionError.self) {
            try registry.register(
                ClosureCollector("c", [try MetricDescriptor(name: gauge, type: .unknown, help: "")]) { _ in })
        }
    }

    @Test("names that merely share a prefix do not clash")
    func noFalseClash() throws {
        let registry = plainRegistry()
        _ = try registry.histogram("x", help: "")
        _ = try registry.gauge("x_counts", help: "")
        _ = try registry.gauge("x_buckets", help: "")
        _ = try registry.counter("xx", help: "")
        _ = try registry.gauge("x_total", help: "")
        #expect(registry.descriptors.map(\.name) == ["x", "x_buckets", "x_counts", "x_total", "xx"])
    }

    @Test("collector descriptors are checked against families, and families against collectors")
    func collectorClash() throws {
        let registry = plainRegistry()
        _ = try registry.gauge("temp", help: "")
        let clashing = ClosureCollector("c", [try MetricDescriptor(name: "temp", type: .gauge, help: "")]) { _ in }
        #expect(throws: ExpositionError.alreadyRegistered(name: "temp", reason: "already registered")) {
            try registry.register(clashing)
        }
        let ok = ClosureCollector("c", [try MetricDescriptor(name: "load", type: .counter, help: "")]) { _ in }
        try registry.register(ok)
        #expect(throws: ExpositionError.self) { try registry.gauge("load_total", help: "") }
        #expect(throws: ExpositionError.self) { try registry.counter("load", help: "") }
        // Two collectors cannot describe the same family either.
        #expect(throws: ExpositionError.self) { try registry.register(ok) }
    }

    @Test("a collector cannot declare the same family twice, or siblings that clash")
    func collectorSelfClash() throws {
        var schema = CollectorSchema()
        _ = try schema.gauge("a", help: "")
        #expect(
            throws: ExpositionError.alreadyRegistered(name: "a", reason: "declared twice in one collector schema")
        ) {
            _ = try schema.gauge("a", help: "")
        }
        let siblings = ClosureCollector(
            "c",
            [
                try MetricDescriptor(name: "h", type: .histogram, help: ""),
                try MetricDescriptor(name: "h_sum", type: .gauge, help: ""),
            ]
        ) { _ in }
        #expect(throws: ExpositionError.self) { try plainRegistry().register(siblings) }
    }

    @Test("a failed registration reserves nothing")
    func atomicRegistration() throws {
        let registry = plainRegistry()
        _ = try registry.gauge("b", help: "")
        let c = ClosureCollector(
            "c",
            [
                try MetricDescriptor(name: "a", type: .gauge, help: ""),
                try MetricDescriptor(name: "b", type: .gauge, help: ""),
            ]
        ) { _ in }
        #expect(throws: ExpositionError.self) { try registry.register(c) }
        _ = try registry.gauge("a", help: "")
    }

    @Test("self-metric names are reserved")
    func selfMetricNames() throws {
        let registry = Registry()
        #expect(throws: ExpositionError.self) { try registry.gauge("mlops_exporter_updates_dropped_total", help: "") }
        #expect(throws: ExpositionError.self) { try registry.counter("mlops_exporter_collector_skipped", help: "") }
        #expect(throws: ExpositionError.self) {
            try registry.gauge("mlops_exporter_collector_duration_seconds", help: "")
        }
        // With self metrics off, the names are free.
        _ = try plainRegistry().gauge("mlops_exporter_updates_dropped_total", help: "")
        // Another prefix.
        let other = Registry(options: .init(selfMetricsPrefix: "my_app"))
        #expect(throws: ExpositionError.self) { try other.counter("my_app_updates_dropped", help: "") }
        _ = try other.counter("mlops_exporter_updates_dropped", help: "")
    }

    @Test("unregistering a family frees its name and every sample name")
    func unregisterFamily() throws {
        let registry = plainRegistry()
        _ = try registry.histogram("x", help: "")
        #expect(registry.unregister(family: "x"))
        #expect(!registry.unregister(family: "x"))
        _ = try registry.counter("x_count", help: "")
        _ = try registry.gauge("x", help: "")
        #expect(registry.unregister(family: "x_count"))
        _ = try registry.gauge("x_count_total", help: "")
        try registry.gauge("x_sum", help: "").set(1)
        #expect(
            rendered(registry)
                == "# TYPE x gauge\nx 0\n# TYPE x_count_total gauge\nx_count_total 0\n# TYPE x_sum gauge\nx_sum 1\n")
    }

    @Test("unregister(family:) takes a family name, or a counter's _total or an info's _info name")
    func unregisterByName() throws {
        let registry = plainRegistry()
        _ = try registry.counter("c", help: "")
        try registry.info("build", help: "", labels: [:])
        #expect(registry.unregister(family: "build_info"))
        #expect(registry.unregister(family: "c_total"))
        #expect(registry.descriptors.isEmpty)
    }

    @Test("unregister(family:) does not remove a family by one of its other sample names")
    func unregisterBySampleName() throws {
        let registry = plainRegistry()
        _ = try registry.histogram("x", help: "")
        _ = try registry.counter("c", help: "")
        #expect(!registry.unregister(family: "x_sum"))
        #expect(!registry.unregister(family: "c_created"))
    }

    @Test("unregistering a collector frees its names and stops it")
    func unregisterCollector() throws {
        let registry = plainRegistry()
        let registration = try registry.register(
            ClosureCollector("c", [try MetricDescriptor(name: "load", type: .gauge, help: "")]) { sink in
                sink.gauge("load", value: 1)
            })
        #expect(rendered(registry) == "# TYPE load gauge\nload 1\n")
        #expect(!registry.unregister(family: "load"))
        #expect(registry.unregister(registration))
        #expect(!registry.unregister(registration))
        #expect(rendered(registry) == "")
        try registry.gauge("load", help: "").set(2)
        #expect(rendered(registry) == "# TYPE load gauge\nload 2\n")
    }

    @Test("descriptors lists families and collector families sorted by name")
    func descriptors() throws {
        let registry = Registry()
        _ = try registry.gauge("zz", help: "")
        try registry.register(
            ClosureCollector("c", [try MetricDescriptor(name: "aa", type: .gauge, help: "")]) { _ in })
        #expect(
            registry.descriptors.map(\.name) == [
                "aa", "mlops_exporter_collector_duration_seconds", "mlops_exporter_collector_skipped",
                "mlops_exporter_updates_dropped", "zz",
            ])
    }

    @Test(
        "output is deterministic: families by name, series by label values, same bytes every time (swift-prometheus defect 5)"
    )
    func deterministic() throws {
        func build(_ order: [Int]) throws -> Registry {
            let registry = plainRegistry()
            for i in order {
                switch i {
                case 0:
                    let f = try registry.gaugeFamily("zeta", help: "", labelNames: ["k"])
                    for k in ["b", "c", "a", "B", "aa"] { try f.labels(k).set(1) }
                case 1: try registry.counter("alpha", help: "").inc()
                case 2:
                    let f = try registry.counterFamily("mid", help: "", labelNames: ["y", "x"])
                    for (x, y) in [("2", "1"), ("1", "2"), ("1", "1")] { try f.labels(y, x).inc() }
                default: try registry.gauge("alpha_2", help: "").set(2)
                }
            }
            return registry
        }
        let expected = """
            # TYPE alpha_total counter
            alpha_total 1
            # TYPE alpha_2 gauge
            alpha_2 2
            # TYPE mid_total counter
            mid_total{x="1",y="1"} 1
            mid_total{x="1",y="2"} 1
            mid_total{x="2",y="1"} 1
            # TYPE zeta gauge
            zeta{k="B"} 1
            zeta{k="a"} 1
            zeta{k="aa"} 1
            zeta{k="b"} 1
            zeta{k="c"} 1

            """
        let one = try build([0, 1, 2, 3])
        #expect(rendered(one) == expected)
        #expect(rendered(one) == rendered(one))
        #expect(try rendered(build([3, 2, 1, 0])) == expected)
        #expect(try rendered(build([2, 0, 3, 1])) == expected)
        #expect(try rendered(build([2, 0, 3, 1]), .openMetrics) == rendered(one, .openMetrics))
    }

    @Test("an invalid self-metrics prefix is a programming error and traps")
    func invalidPrefix() async {
        await #expect(processExitsWith: .failure) {
            _ = Registry(options: .init(selfMetricsPrefix: "bad-prefix"))
        }
    }
}
