import Exposition

/// Small, single-purpose registries. Most probe one library bug each, so that a failure stays
/// isolated from the main fixture; the Python tests mark the open ones `xfail(strict=True)` and keep
/// the fixed ones as regression tests.
enum Scenarios {
    static let all: [String: @Sendable (String) throws -> Void] = [
        "unicode-normalization": unicodeNormalization,
        "exemplar-limit": exemplarLimit,
        "histogram-negative-sum": histogramNegativeSum,
        "histogram-nan-sum": histogramNaNSum,
        "summary-negative": summaryNegative,
        "collector-duplicate-states": collectorDuplicateStates,
        "collector-duplicate-quantiles": collectorDuplicateQuantiles,
        "underscore-names": underscoreNames,
        "empty-help": emptyHelp,
        "escaping-golden": escapingGolden,
        "self-metrics": selfMetrics,
    ]

    static func writeRegistry(_ registry: Registry, to dir: String, expected: JSON) throws {
        try RenderSet(plain: registry, withCreated: nil).write(to: dir)
        try Output.write(expected.serialized(), to: dir + "/expected.json")
    }

    /// Label values that are different bytes but canonically equivalent in Unicode (precomposed
    /// U+00E9 and decomposed e + U+0301): Prometheus treats them as two series, and two states.
    static func unicodeNormalization(_ dir: String) throws {
        let states = ["\u{E9}", "e\u{301}"]
        var plan = RegistryPlan()
        plan.families = [
            FamilyPlan(
                kind: .gauge, apiName: "normalization_probe", name: "normalization_probe",
                help: "Precomposed vs decomposed label values.", labelNames: ["v"],
                series: [
                    SeriesPlan(labelValues: ["\u{E9}"], ops: [.set(1)]),
                    SeriesPlan(labelValues: ["e\u{301}"], ops: [.set(2)]),
                ])
        ]
        // The registry may refuse these states as duplicates; only a registered family is planned.
        let statesAccepted =
            (try? quietRegistry(emitCreated: false).stateSet("probe", help: "probe", states: states)) != nil
        if statesAccepted {
            plan.families.append(
                FamilyPlan(
                    kind: .stateset, apiName: "normalization_states", name: "normalization_states",
                    help: "Precomposed vs decomposed states.", states: states,
                    series: [SeriesPlan(labelValues: [], ops: [.state(states[1], true)])], style: .convenience))
        }
        plan.collectorName = "normalization_collector"
        plan.collected = [
            CollectedFamilyPlan(
                kind: .gauge, name: "normalization_collected", emitName: "normalization_collected",
                help: "Collected precomposed vs decomposed label values.", labelNames: ["v"],
                series: [(["\u{E9}"], .gauge(1)), (["e\u{301}"], .gauge(2))])
        ]
        try writeBundle(plan, to: dir, extra: [("states_accepted", .bool(statesAccepted))])
    }

    /// OpenMetrics 1.0: exemplar label names and values together at most 128 UTF-8 code points.
    static func exemplarLimit(_ dir: String) throws {
        let cases: [(String, [String: String])] = [
            ("ascii_128", ["a": String(repeating: "x", count: 127)]),
            ("ascii_129", ["a": String(repeating: "x", count: 128)]),
            ("combining_201", ["a": String(repeating: "e\u{301}", count: 100)]),
            ("zwj_emoji_141", ["a": String(repeating: "👨‍👩‍👧‍👦", count: 20)]),
            ("crlf_129", ["a": String(repeating: "\r\n", count: 64)]),
        ]
        let registry = quietRegistry(emitCreated: false)
        var results: [(String, JSON)] = []
        for (name, labels) in cases {
            let counter = try registry.counter("exemplar_\(name)_total", help: "Exemplar length probe.")
            var accepted = true
            do {
                counter.inc(by: 1, exemplar: try Exemplar(labels: labels, value: 1))
            } catch {
                accepted = false
                counter.inc()
            }
            let codePoints = labels.reduce(0) { $0 + $1.key.unicodeScalars.count + $1.value.unicodeScalars.count }
            results.append(
                (name, .object([("accepted", .bool(accepted)), ("code_points", .uint(UInt64(codePoints)))])))
        }
        try writeRegistry(registry, to: dir, expected: .object([("cases", .object(results))]))
    }

    static func histogramNegativeSum(_ dir: String) throws {
        var plan = RegistryPlan()
        plan.families = [
            FamilyPlan(
                kind: .histogram, apiName: "negative_observation_seconds", name: "negative_observation_seconds",
                help: "Non-negative bounds, negative observation.", unit: "seconds", buckets: [1, 2],
                series: [SeriesPlan(labelValues: [], ops: [.observe(-5), .observe(0.5)])], style: .convenience)
        ]
        try writeBundle(plan, to: dir)
    }

    static func histogramNaNSum(_ dir: String) throws {
        var plan = RegistryPlan()
        plan.families = [
            FamilyPlan(
                kind: .histogram, apiName: "infinite_observation_seconds", name: "infinite_observation_seconds",
                help: "+Inf and -Inf observed: the sum is NaN.", unit: "seconds", buckets: [1],
                series: [SeriesPlan(labelValues: [], ops: [.observe(.infinity), .observe(-.infinity)])],
                style: .convenience)
        ]
        try writeBundle(plan, to: dir)
    }

    static func summaryNegative(_ dir: String) throws {
        var plan = RegistryPlan()
        plan.families = [
            FamilyPlan(
                kind: .summary, apiName: "negative_observed_celsius", name: "negative_observed_celsius",
                help: "Negative observations.", unit: "celsius", quantiles: [0.5],
                series: [SeriesPlan(labelValues: [], ops: [.observe(-5), .observe(-1)])], style: .convenience)
        ]
        try writeBundle(plan, to: dir)
    }

    static func collectorDuplicateStates(_ dir: String) throws {
        var plan = RegistryPlan()
        plan.collectorName = "duplicate_states"
        plan.collected = [
            CollectedFamilyPlan(
                kind: .stateset, name: "duplicate_state", emitName: "duplicate_state", help: "State named twice.",
                series: [([], .stateSet([("a", true), ("a", false), ("b", false)]))])
        ]
        try writeBundle(plan, to: dir)
    }

    static func collectorDuplicateQuantiles(_ dir: String) throws {
        var plan = RegistryPlan()
        plan.collectorName = "duplicate_quantiles"
        plan.collected = [
            CollectedFamilyPlan(
                kind: .summary, name: "duplicate_quantile_seconds", emitName: "duplicate_quantile_seconds",
                help: "Quantile given twice.", unit: "seconds",
                series: [([], .summary(quantiles: [(0.5, 1), (0.5, 2)], count: 2, sum: 3))])
        ]
        try writeBundle(plan, to: dir)
    }

    /// OpenMetrics reserves metric and label names beginning with an underscore.
    static func underscoreNames(_ dir: String) throws {
        let registry = quietRegistry(emitCreated: false)
        var results: [(String, JSON)] = []
        do {
            try registry.gauge("_leading_underscore", help: "Reserved metric name.").set(1)
            results.append(("metric_name", .bool(true)))
        } catch {
            results.append(("metric_name", .bool(false)))
        }
        do {
            try registry.gaugeFamily("underscore_label", help: "Reserved label name.", labelNames: ["_x"]).labels("v")
                .set(1)
            results.append(("label_name", .bool(true)))
        } catch {
            results.append(("label_name", .bool(false)))
        }
        do {
            _ = try Exemplar(labels: ["_trace": "x"], value: 1)
            results.append(("exemplar_label_name", .bool(true)))
        } catch {
            results.append(("exemplar_label_name", .bool(false)))
        }
        try writeRegistry(registry, to: dir, expected: .object([("accepted", .object(results))]))
    }

    static func emptyHelp(_ dir: String) throws {
        var plan = RegistryPlan()
        plan.families = [
            FamilyPlan(
                kind: .gauge, apiName: "no_help_level", name: "no_help_level", help: "",
                series: [SeriesPlan(labelValues: [], ops: [.set(1)])], style: .convenience),
            FamilyPlan(
                kind: .counter, apiName: "no_help_events_total", name: "no_help_events", help: "",
                series: [SeriesPlan(labelValues: [], ops: [.inc])], style: .convenience),
        ]
        try writeBundle(plan, to: dir)
    }

    /// Bytes the Python parsers cannot round-trip (prometheus_client mis-tokenises `\"` inside an
    /// exemplar and strips whitespace around HELP text), checked byte for byte instead.
    static func escapingGolden(_ dir: String) throws {
        let registry = quietRegistry(emitCreated: false)
        try registry.counter("exemplar_escaping_total", help: "Exemplar escaping.")
            .inc(by: 1, exemplar: try Exemplar(labels: ["q": "a\"b\\c\nd", "b": "}{ # "], value: 1))
        try registry.gauge("help_whitespace", help: "  leading and trailing \t ").set(1)
        try registry.gauge("help_only_quote", help: "\"").set(1)
        try writeRegistry(registry, to: dir, expected: .object([]))
    }

    // MARK: - Self metrics

    struct FailingCollector: Collector {
        struct Failure: Error {}
        static let (families, value) = try! CollectorSchema.build {
            try $0.gauge("failing_value", help: "Never written.")
        }
        let name = "failing"
        var schema: CollectorSchema { Self.families }
        func collect(into sink: inout CollectorSink) throws {
            sink.gauge(Self.value, value: 1)
            throw Failure()
        }
    }

    struct InvalidCollector: Collector {
        static let (families, value) = try! CollectorSchema.build {
            try $0.gauge("invalid_value", help: "Never written.")
        }
        /// A handle of another schema: emitting through it is invalid.
        static let (_, undeclared) = try! CollectorSchema.build { try $0.gauge("undescribed_value", help: "") }
        let name = "invalid"
        var schema: CollectorSchema { Self.families }
        func collect(into sink: inout CollectorSink) throws {
            sink.gauge(Self.value, value: 1)
            sink.gauge(Self.undeclared, value: 1)
        }
    }

    struct GoodCollector: Collector {
        static let (families, value) = try! CollectorSchema.build { try $0.gauge("good_value", help: "Written.") }
        let name = "good"
        var schema: CollectorSchema { Self.families }
        func collect(into sink: inout CollectorSink) throws {
            sink.gauge(Self.value, value: 1)
        }
    }

    /// The default registry options (self metrics on): dropped updates and skipped collectors are
    /// counted and written. Each format is rendered from a fresh registry, so every count is that of
    /// exactly one render.
    static func selfMetrics(_ dir: String) throws {
        func build() throws -> Registry {
            let r = Registry()
            let c = try r.counter("drops_total", help: "Counter with refused increments.")
            c.inc(by: -1)
            c.inc(by: Double.nan)
            c.inc()
            let h = try r.histogram(
                "drop_latency_seconds", help: "Histogram with a NaN.", unit: "seconds", buckets: [1])
            h.observe(.nan)
            h.observe(0.5)
            let s = try r.summary("drop_size_bytes", help: "Summary with a NaN.", unit: "bytes")
            s.observe(.nan)
            let g = try r.gaugeFamily("removed_level", help: "Gauge updated after removal.", labelNames: ["k"])
            let stale = try g.labels("x")
            try g.remove(["x"])
            stale.set(5)
            try g.labels("y").set(1)
            try r.register(FailingCollector())
            try r.register(InvalidCollector())
            try r.register(GoodCollector())
            return r
        }
        let text = try build()
        let om = try build()
        try Output.write(text.render(format: .text), to: dir + "/text.prom")
        try Output.write(om.render(format: .openMetrics), to: dir + "/openmetrics.txt")

        let helps = Dictionary(uniqueKeysWithValues: text.descriptors.map { ($0.name, $0.help) })
        func fam(_ name: String, _ kind: Kind, unit: String = "", _ samples: [JSON]) -> JSON {
            // The dropped-updates family is not a registered descriptor: its help is not checked.
            Truth.familyJSON(
                name: name, kind: kind, help: helps[name].map { .string($0) } ?? .null, unit: unit, source: "registry",
                samples: samples)
        }
        let s = Truth.sample
        let families: [JSON] = [
            fam("drops", .counter, [s("drops_total", [], .uint(1), [])]),
            fam(
                "drop_latency_seconds", .histogram, unit: "seconds",
                [
                    s("drop_latency_seconds_bucket", [], .uint(1), [("le", .double(1))]),
                    s("drop_latency_seconds_bucket", [], .uint(1), [("le", .double(.infinity))]),
                    s("drop_latency_seconds_sum", [], .double(0.5), []),
                    s("drop_latency_seconds_count", [], .uint(1), []),
                ]),
            fam(
                "drop_size_bytes", .summary, unit: "bytes",
                [s("drop_size_bytes_sum", [], .double(0), []), s("drop_size_bytes_count", [], .uint(0), [])]),
            fam("removed_level", .gauge, [s("removed_level", [("k", "y")], .double(1), [])]),
            fam("good_value", .gauge, [s("good_value", [], .double(1), [])]),
            fam(
                "mlops_exporter_collector_skipped", .counter,
                [
                    s(
                        "mlops_exporter_collector_skipped_total",
                        [("collector", "failing"), ("model", ""), ("reason", "error")],
                        .uint(1), []),
                    s(
                        "mlops_exporter_collector_skipped_total",
                        [("collector", "invalid"), ("model", ""), ("reason", "invalid")],
                        .uint(1), []),
                ]),
            fam(
                "mlops_exporter_collector_duration_seconds", .gauge, unit: "seconds",
                ["failing", "invalid", "good"].map {
                    s(
                        "mlops_exporter_collector_duration_seconds", [("collector", $0), ("model", "")], .null,
                        [("any_duration", .bool(true))])
                }),
            fam(
                "mlops_exporter_updates_dropped", .counter,
                [
                    s(
                        "mlops_exporter_updates_dropped_total",
                        [("metric", "drops_total"), ("reason", "invalid_value")], .double(2), []),
                    s(
                        "mlops_exporter_updates_dropped_total",
                        [("metric", "drop_latency_seconds"), ("reason", "invalid_value")],
                        .double(1), []),
                    s(
                        "mlops_exporter_updates_dropped_total",
                        [("metric", "drop_size_bytes"), ("reason", "invalid_value")],
                        .double(1), []),
                    s(
                        "mlops_exporter_updates_dropped_total",
                        [("metric", "removed_level"), ("reason", "removed_series")],
                        .double(1), []),
                ]),
        ]
        try Output.write(
            JSON.object([
                ("families", .array(families)),
                ("absent", .array([.string("failing_value"), .string("invalid_value")])),
            ]).serialized(), to: dir + "/expected.json")
    }
}
