import Exposition

/// The hand-written fixture: every metric type, awkward values, labels and help texts. Everything in
/// it must round-trip; inputs that expose known library bugs live in `Scenarios.swift` instead, so a
/// bug there cannot hide the rest of this coverage.
enum Fixture {
    /// A 4,096-scalar label value cycling through every character class that needs care.
    static let longValue: String = {
        let pieces = ["abc", "\"", "\\", "\n", "ü", "🚀", " ", "{", "}", ",", "=", "#", "\t", "\r", "\u{0}", "中"]
        var s = ""
        var i = 0
        while s.unicodeScalars.count < 4096 {
            s += pieces[i % pieces.count]
            i += 1
        }
        return s
    }()

    static let longName: String = "exposition_" + (1...20).map { "segment\($0)" }.joined(separator: "_")

    static func plan() throws -> RegistryPlan {
        var p = RegistryPlan()
        p.families = counters() + gauges() + (try histograms()) + summaries() + infos() + stateSets()
        p.collected = collected()
        return p
    }

    static func counters() -> [FamilyPlan] {
        [
            FamilyPlan(
                kind: .counter, apiName: "jobs_processed_total", name: "jobs_processed", help: "Jobs processed.",
                series: [
                    SeriesPlan(
                        labelValues: [],
                        ops: [
                            .inc, .inc, .inc, .incInt(2), .incDouble(0.5), .incDouble(0.25),
                            // Refused: negative, NaN and infinite increments.
                            .incInt(-3), .incDouble(-1), .incDouble(.nan), .incDouble(.infinity),
                        ])
                ], style: .convenience),
            FamilyPlan(
                kind: .counter, apiName: "http_requests", name: "http_requests",
                help: "Requests \"served\"\nby code\\", labelNames: ["method", "code"],
                series: [
                    SeriesPlan(labelValues: ["GET", "200"], ops: [.incInt(3)]),
                    SeriesPlan(
                        labelValues: ["POST", "500"], ops: [.incDouble(0.1), .incDouble(0.1), .incDouble(0.1)]),
                    SeriesPlan(labelValues: ["ünï©ødé 🚀", ""], ops: [.inc]),
                    SeriesPlan(
                        labelValues: ["PUT", "201"],
                        ops: [
                            .incExemplar(
                                1,
                                ExemplarPlan(labels: [("trace_id", "abc123")], value: 1, timestamp: 1_520_879_607.789)),
                            // The latest exemplar replaces the previous one.
                            .incExemplar(
                                2.5,
                                ExemplarPlan(
                                    labels: [("trace_id", "ünï🚀"), ("span", "a\\b\nc")], value: 2.5, timestamp: nil)),
                        ]),
                    SeriesPlan(labelValues: ["HUGE", "299"], ops: [.incInt(9_007_199_254_740_993)]),
                    SeriesPlan(labelValues: ["BIG", "298"], ops: [.incDouble(1e300)]),
                    SeriesPlan(
                        labelValues: ["EMPTY_EXEMPLAR", "297"],
                        ops: [.incExemplar(4, ExemplarPlan(labels: [], value: 4, timestamp: 1_700_000_000))]),
                ], style: .dictionary),
            FamilyPlan(
                kind: .counter, apiName: "processed_bytes_total", name: "processed_bytes", help: "Bytes processed.",
                unit: "bytes", labelNames: ["shard"],
                series: [
                    SeriesPlan(labelValues: ["0"], ops: [.incInt(1_048_576)]),
                    SeriesPlan(labelValues: ["1"], ops: [.incDouble(2.5e9)]),
                    SeriesPlan(labelValues: ["2"], ops: []),
                ]),
            // Registered without series: written nowhere.
            FamilyPlan(
                kind: .counter, apiName: "idle_events_total", name: "idle_events", help: "Never used.",
                labelNames: ["kind"]),
        ]
    }

    static let specialValues: [(String, Double)] = [
        ("negative", -12.25), ("nan", .nan), ("pos_inf", .infinity), ("neg_inf", -.infinity),
        ("min_subnormal", .leastNonzeroMagnitude), ("min_normal", 2.2250738585072014e-308), ("huge", 1e300),
        ("max", .greatestFiniteMagnitude), ("lowest", -.greatestFiniteMagnitude), ("integral_1e6", 1e6),
        ("two_pow_53", 9_007_199_254_740_992), ("two_pow_53_plus_2", 9_007_199_254_740_994),
        ("two_pow_53_minus_1", 9_007_199_254_740_991), ("neg_two_pow_53", -9_007_199_254_740_992),
        ("two_pow_64", 18_446_744_073_709_551_616), ("tenth", 0.1), ("third", 1.0 / 3), ("tiny_negative", -1e-300),
        ("e_minus_7", 1e-7), ("e_plus_22", 1e22), ("zero", 0), ("negative_zero", -0.0), ("pi", Double.pi),
        ("decimal", 123_456.789), ("neg_integral", -42),
    ]

    static func gauges() -> [FamilyPlan] {
        let escapes: [[String]] = [
            ["quote\"inside", "back\\slash", "new\nline"],
            ["ünï©ødé 🚀", "", "tab\there"],
            ["cr\rhere", "nul\u{0}byte", "}{,=# "],
            [longValue, "\\n literal", "ends with backslash\\"],
            ["\u{2028}\u{2029}\u{85}\u{FEFF}", "👨‍👩‍👧‍👦🇩🇪", "\"\"\""],
            ["", "", ""],
            ["e\u{301} combining", "\u{7F}\u{1B}[31m", "\\\""],
        ]
        var plans = [
            FamilyPlan(
                kind: .gauge, apiName: "queue_depth", name: "queue_depth", help: "Items waiting.",
                series: [SeriesPlan(labelValues: [], ops: [.set(10), .add(2.5), .sub(1)])], style: .convenience),
            FamilyPlan(
                kind: .gauge, apiName: "special_values", name: "special_values", help: "Awkward doubles.",
                labelNames: ["case"],
                series: specialValues.map { SeriesPlan(labelValues: [$0.0], ops: [.set($0.1)]) }),
            FamilyPlan(
                kind: .gauge, apiName: "temperature_celsius", name: "temperature_celsius", help: "Temperature.",
                unit: "celsius", labelNames: ["sensor"],
                series: [
                    SeriesPlan(labelValues: ["b"], ops: [.set(21.5)]),
                    SeriesPlan(labelValues: ["a"], ops: [.set(-40)]),
                ]),
            FamilyPlan(
                kind: .gauge, apiName: "label_escapes", name: "label_escapes", help: "Awkward label values.",
                labelNames: ["zeta", "alpha", "mid"],
                series: escapes.enumerated().map {
                    SeriesPlan(labelValues: $0.element, ops: [.set(Double($0.offset))])
                },
                style: .dictionary),
            FamilyPlan(
                kind: .gauge, apiName: longName, name: longName, help: "A long name.",
                series: [SeriesPlan(labelValues: [], ops: [.set(1)])], style: .convenience),
        ]
        let helps: [(String, String)] = [
            ("help_quotes", "Quote \"this\" and 'that'."),
            ("help_backslashes", "C:\\path\\to\\file and \\n is not a newline."),
            ("help_newlines", "line one\nline two\n\nline four"),
            ("help_unicode", "ünï©ødé 🚀 — ✓ 中文"),
            ("help_trailing_backslash", "ends with a backslash\\"),
            ("help_mixed", "a\"b\\c\nd\re\tf 🚀 \\\" z"),
        ]
        for (name, help) in helps {
            plans.append(
                FamilyPlan(
                    kind: .gauge, apiName: name, name: name, help: help,
                    series: [SeriesPlan(labelValues: [], ops: [.set(1)])], style: .convenience))
        }
        return plans
    }

    static func histograms() throws -> [FamilyPlan] {
        [
            FamilyPlan(
                kind: .histogram, apiName: "request_duration_seconds", name: "request_duration_seconds",
                help: "Request latency.", unit: "seconds", labelNames: ["route"], buckets: nil,
                series: [
                    SeriesPlan(
                        labelValues: ["/api"],
                        ops: [
                            .observe(0.001), .observe(0.005), .observe(0.0051), .observe(0.1),
                            .observeExemplar(
                                0.3,
                                ExemplarPlan(labels: [("trace_id", "t-0.3")], value: 0.3, timestamp: 1_700_000_000.5)),
                            .observe(2.5), .observe(10), .observe(11), .observe(.nan),
                            .observeExemplar(
                                11, ExemplarPlan(labels: [("trace_id", "t-inf")], value: 11, timestamp: nil)),
                        ]),
                    SeriesPlan(labelValues: ["/empty"], ops: []),
                    SeriesPlan(labelValues: ["/inf"], ops: [.observe(.infinity), .observe(1)]),
                ]),
            FamilyPlan(
                kind: .histogram, apiName: "payload_size_bytes", name: "payload_size_bytes", help: "Payload sizes.",
                unit: "bytes", buckets: [0.001, 1, 100_000, 1e6, 1e16, .infinity],
                series: [
                    SeriesPlan(
                        labelValues: [],
                        ops: [0, 0.0005, 0.001, 1, 1.5, 99_999, 100_000, 1e6, 5e6, 1e16, 1e17].map { .observe($0) })
                ], style: .convenience),
            FamilyPlan(
                kind: .histogram, apiName: "batch_fill_ratio", name: "batch_fill_ratio", help: "Linear buckets.",
                buckets: try Buckets.linear(start: 0.5, width: 0.25, count: 5),
                series: [SeriesPlan(labelValues: [], ops: [0.4, 0.5, 0.6, 1.0, 1.6].map { .observe($0) })],
                style: .convenience),
            FamilyPlan(
                kind: .histogram, apiName: "work_queue_length", name: "work_queue_length", help: "Exponential buckets.",
                labelNames: ["queue"], buckets: try Buckets.exponential(start: 1, factor: 2, count: 8),
                series: [
                    SeriesPlan(
                        labelValues: ["q1"], ops: [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233].map { .observe($0) })
                ]),
            FamilyPlan(
                kind: .histogram, apiName: "io_latency_seconds", name: "io_latency_seconds", help: "Range buckets.",
                unit: "seconds", buckets: try Buckets.exponentialRange(min: 0.001, max: 1000, count: 7),
                series: [SeriesPlan(labelValues: [], ops: [0.0005, 0.001, 0.5, 999, 1000, 1001].map { .observe($0) })],
                style: .convenience),
            FamilyPlan(
                kind: .histogram, apiName: "temperature_delta_celsius", name: "temperature_delta_celsius",
                help: "Negative bounds: no _sum in OpenMetrics.", unit: "celsius", labelNames: ["probe"],
                buckets: [-10, -1, 0, 1, 10],
                series: [
                    SeriesPlan(labelValues: ["p1"], ops: [-20, -10, -5, -0.5, 0, 0.5, 5, 50].map { .observe($0) }),
                    SeriesPlan(labelValues: ["p2"], ops: [-0.25].map { .observe($0) }),
                ]),
            FamilyPlan(
                kind: .histogram, apiName: "tiny_duration_seconds", name: "tiny_duration_seconds",
                help: "Tiny bounds.", unit: "seconds", buckets: [1e-10, 1e-9, 1e-5, 0.0001, 0.1],
                series: [SeriesPlan(labelValues: [], ops: [1e-11, 1e-10, 5e-6, 0.05, 7].map { .observe($0) })],
                style: .convenience),
        ]
    }

    static func summaries() -> [FamilyPlan] {
        // 1...100 in a fixed scrambled order (37 is coprime with 101).
        let scrambled = (1...100).map { Double(($0 * 37) % 101) }
        return [
            FamilyPlan(
                kind: .summary, apiName: "rpc_latency_seconds", name: "rpc_latency_seconds", help: "RPC latency.",
                unit: "seconds", labelNames: ["service"], quantiles: [0.5, 0.9, 0.99],
                series: [
                    SeriesPlan(labelValues: ["auth"], ops: scrambled.map { .observe($0) }),
                    SeriesPlan(labelValues: ["empty"], ops: []),
                    SeriesPlan(labelValues: ["nan_only"], ops: [.observe(.nan)]),
                ]),
            FamilyPlan(
                kind: .summary, apiName: "batch_size_bytes", name: "batch_size_bytes", help: "No quantiles.",
                unit: "bytes", quantiles: nil,
                series: [SeriesPlan(labelValues: [], ops: [512, 1024, 0.5].map { .observe($0) })], style: .convenience),
            FamilyPlan(
                kind: .summary, apiName: "queue_age_seconds", name: "queue_age_seconds", help: "Custom quantiles.",
                unit: "seconds", quantiles: [0.999, 0.25, 0.001, 0.75],
                series: [SeriesPlan(labelValues: [], ops: (1...37).map { .observe(Double($0) / 8) })],
                style: .convenience),
        ]
    }

    static func infos() -> [FamilyPlan] {
        [
            FamilyPlan(
                kind: .info, apiName: "build_info", name: "build", help: "Build information.",
                labelNames: ["version", "revision", "weird", "unicode", "empty"],
                series: [
                    SeriesPlan(labelValues: ["1.2.3", "abc\"def\\", "line\nbreak", "ünï©ødé 🚀", ""], ops: [])
                ], style: .convenience),
            FamilyPlan(
                kind: .info, apiName: "model_info", name: "model", help: "Models loaded.",
                labelNames: ["name", "version"],
                series: [
                    SeriesPlan(labelValues: ["resnet", "50"], ops: []),
                    SeriesPlan(labelValues: ["bert \"base\"", "1.0"], ops: []),
                ]),
        ]
    }

    static func stateSets() -> [FamilyPlan] {
        [
            FamilyPlan(
                kind: .stateset, apiName: "service_mode", name: "service_mode", help: "Service mode.",
                states: ["starting", "running", "stopped"],
                series: [SeriesPlan(labelValues: [], ops: [.only("running")])],
                style: .convenience),
            FamilyPlan(
                kind: .stateset, apiName: "feature_flags", name: "feature_flags", help: "Feature flags.",
                labelNames: ["region"], states: ["a\"quote", "beta", "ünï", "back\\slash", "new\nline"],
                series: [
                    SeriesPlan(
                        labelValues: ["eu"], ops: [.state("beta", true), .state("ünï", true), .state("beta", false)]),
                    SeriesPlan(labelValues: ["us"], ops: [.only("a\"quote")]),
                    SeriesPlan(labelValues: ["apac"], ops: []),
                ], style: .dictionary),
        ]
    }

    static func collected() -> [CollectedFamilyPlan] {
        [
            CollectedFamilyPlan(
                kind: .gauge, name: "collected_temperature_celsius", emitName: "collected_temperature_celsius",
                help: "Collected gauge.", unit: "celsius", labelNames: ["room"],
                series: [
                    (["kitchen"], .gauge(21.25)), (["attic"], .gauge(-3)), (["void"], .gauge(.nan)),
                    (["ünï \"🚀\"\n"], .gauge(.leastNonzeroMagnitude)),
                ]),
            CollectedFamilyPlan(
                kind: .counter, name: "collected_events", emitName: "collected_events_total",
                help: "Collected counter.",
                labelNames: ["source"],
                series: [(["disk"], .counter(42, created: 1_600_000_000.5)), (["net"], .counter(0.125, created: nil))]),
            CollectedFamilyPlan(
                kind: .counter, name: "collected_restarts", emitName: "collected_restarts", help: "Unlabelled counter.",
                series: [([], .counter(3, created: 1_700_000_000))]),
            CollectedFamilyPlan(
                kind: .histogram, name: "collected_size_bytes", emitName: "collected_size_bytes",
                help: "Collected histogram.", unit: "bytes", labelNames: ["pool"],
                series: [
                    (["a"], .histogram(bounds: [1, 10, 100], observations: [0.5, 1, 5, 50, 500, 1000])),
                    (["b"], .histogram(bounds: [1, 10, 100, .infinity], observations: [])),
                ]),
            CollectedFamilyPlan(
                kind: .histogram, name: "collected_offset_seconds", emitName: "collected_offset_seconds",
                help: "Collected histogram with negative bounds.", unit: "seconds",
                series: [([], .histogram(bounds: [-1, 0, 1], observations: [-2, -0.5, 0.5, 3]))]),
            CollectedFamilyPlan(
                kind: .summary, name: "collected_latency_seconds", emitName: "collected_latency_seconds",
                help: "Collected summary.", unit: "seconds", labelNames: ["op"],
                series: [
                    (["read"], .summary(quantiles: [(0.99, 1.5), (0.5, 0.25)], count: 10, sum: 4.5)),
                    (["write"], .summary(quantiles: [], count: 0, sum: 0)),
                    (["idle"], .summary(quantiles: [(0.5, .nan)], count: 0, sum: 0)),
                ]),
            CollectedFamilyPlan(
                kind: .info, name: "collected_host", emitName: "collected_host_info", help: "Collected info.",
                labelNames: ["hostname", "kernel"], series: [(["node-1 \"primary\"", "6.1.0\n-rt"], .info)]),
            CollectedFamilyPlan(
                kind: .stateset, name: "collected_power", emitName: "collected_power", help: "Collected state set.",
                labelNames: ["psu"],
                series: [
                    (["1"], .stateSet([("on", true), ("off", false), ("ünï", false)])),
                    (["2"], .stateSet([("on", false), ("off", true), ("ünï", false)])),
                ]),
            CollectedFamilyPlan(
                kind: .unknown, name: "collected_mystery", emitName: "collected_mystery", help: "Collected unknown.",
                series: [([], .unknown(7.5))]),
            // Described but never emitted: written nowhere.
            CollectedFamilyPlan(
                kind: .gauge, name: "collected_silent", emitName: "collected_silent", help: "Never emitted."),
        ]
    }
}
