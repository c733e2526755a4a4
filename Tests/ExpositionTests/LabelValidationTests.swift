import Testing

@testable import Exposition

@Suite("Names and labels")
struct LabelValidationTests {
    static let badNames: [(String, String)] = [
        ("", "must not be empty"),
        ("1abc", "must start with a letter"),
        ("9", "must start with a letter"),
        ("a-b", "may contain only letters, digits and underscores"),
        ("-a", "must start with a letter"),
        ("a:b", "colons are reserved for recording rules"),
        (":a", "colons are reserved for recording rules"),
        ("a.b", "may contain only letters, digits and underscores"),
        ("a b", "may contain only letters, digits and underscores"),
        ("a\n", "may contain only letters, digits and underscores"),
        ("métrique", "may contain only letters, digits and underscores"),
        ("élan", "must start with a letter"),
        ("a😀", "may contain only letters, digits and underscores"),
        ("__reserved", "names starting with \"_\" are reserved (\"__\" by Prometheus, any by OpenMetrics)"),
        ("__", "names starting with \"_\" are reserved (\"__\" by Prometheus, any by OpenMetrics)"),
        ("_a", "names starting with \"_\" are reserved (\"__\" by Prometheus, any by OpenMetrics)"),
        ("_", "names starting with \"_\" are reserved (\"__\" by Prometheus, any by OpenMetrics)"),
    ]

    static let goodNames = ["a", "A", "a_b", "a__b", "abc123", "a1234567890", "Z9_z8", "a_"]

    @Test("invalid metric names are refused with the reason", arguments: badNames)
    func invalidMetricName(name: String, reason: String) {
        #expect(throws: ExpositionError.invalidMetricName(name, reason: reason)) {
            try plainRegistry().gauge(name, help: "")
        }
        #expect(throws: ExpositionError.invalidMetricName(name, reason: reason)) {
            try MetricDescriptor(name: name, type: .unknown, help: "")
        }
    }

    @Test("valid metric names, including every digit after the first character", arguments: goodNames)
    func validMetricName(name: String) throws {
        let registry = plainRegistry()
        try registry.gauge(name, help: "").set(1)
        #expect(rendered(registry).hasSuffix("\n\(name) 1\n"))
    }

    @Test("every digit 0-9 is accepted after the first character (swift-prometheus defect 7)")
    func digits() throws {
        for d in 0...9 {
            _ = try MetricDescriptor(name: "m\(d)", type: .gauge, help: "", labelNames: ["l\(d)"])
            #expect(throws: ExpositionError.self) { try MetricDescriptor(name: "\(d)m", type: .gauge, help: "") }
        }
    }

    @Test("invalid label names are refused with the reason", arguments: badNames)
    func invalidLabelName(label: String, reason: String) {
        #expect(throws: ExpositionError.invalidLabelName(metric: "m", label: label, reason: reason)) {
            try plainRegistry().counterFamily("m", help: "", labelNames: ["ok", label])
        }
    }

    @Test("valid label names", arguments: goodNames)
    func validLabelName(label: String) throws {
        let registry = plainRegistry()
        try registry.gaugeFamily("m", help: "", labelNames: [label]).labels("v").set(1)
        #expect(rendered(registry).hasSuffix("\nm{\(label)=\"v\"} 1\n"))
    }

    @Test("duplicate label names are refused (swift-prometheus defect 3)")
    func duplicateLabels() {
        #expect(throws: ExpositionError.duplicateLabelName(metric: "m", label: "a")) {
            try plainRegistry().counterFamily("m", help: "", labelNames: ["a", "b", "a"])
        }
    }

    @Test("le is reserved on histograms only (swift-prometheus defect 3)")
    func le() throws {
        #expect(
            throws: ExpositionError.invalidLabelName(metric: "h", label: "le", reason: "reserved by the metric type")
        ) {
            try plainRegistry().histogramFamily("h", help: "", labelNames: ["le"])
        }
        _ = try plainRegistry().counterFamily("c", help: "", labelNames: ["le"])
        _ = try plainRegistry().summaryFamily("s", help: "", labelNames: ["le"])
    }

    @Test("quantile is reserved on summaries only")
    func quantile() throws {
        #expect(
            throws: ExpositionError.invalidLabelName(
                metric: "s", label: "quantile", reason: "reserved by the metric type")
        ) {
            try plainRegistry().summaryFamily("s", help: "", labelNames: ["quantile"])
        }
        _ = try plainRegistry().histogramFamily("h", help: "", labelNames: ["quantile"])
        _ = try plainRegistry().gaugeFamily("g", help: "", labelNames: ["quantile"])
    }

    @Test("a state set's own name is reserved as a label")
    func stateSetName() throws {
        #expect(
            throws: ExpositionError.invalidLabelName(
                metric: "mode", label: "mode", reason: "reserved by the metric type")
        ) {
            try plainRegistry().stateSetFamily("mode", help: "", labelNames: ["mode"], states: ["a"])
        }
        _ = try plainRegistry().gaugeFamily("mode", help: "", labelNames: ["mode"])
    }

    @Test("the number of label values must match")
    func valueCount() throws {
        let f = try plainRegistry().counterFamily("m", help: "", labelNames: ["a", "b"])
        #expect(throws: ExpositionError.labelCountMismatch(metric: "m", expected: 2, got: 1)) { try f.labels("x") }
        #expect(throws: ExpositionError.labelCountMismatch(metric: "m", expected: 2, got: 3)) {
            try f.labels("x", "y", "z")
        }
        #expect(throws: ExpositionError.labelCountMismatch(metric: "m", expected: 2, got: 0)) { try f.labels([]) }
        #expect(throws: ExpositionError.labelCountMismatch(metric: "m", expected: 2, got: 1)) { try f.remove(["x"]) }
        let unlabelled = try plainRegistry().counterFamily("u", help: "", labelNames: [])
        #expect(throws: ExpositionError.labelCountMismatch(metric: "u", expected: 0, got: 1)) {
            try unlabelled.labels("x")
        }
        #expect(f.seriesCount == 0)
    }

    @Test("labels([name: value]) must name exactly the family's labels")
    func labelNamesMismatch() throws {
        let f = try plainRegistry().counterFamily("m", help: "", labelNames: ["b", "a"])
        #expect(throws: ExpositionError.labelNamesMismatch(metric: "m", expected: ["a", "b"], got: ["a"])) {
            try f.labels(["a": "1"])
        }
        #expect(throws: ExpositionError.labelNamesMismatch(metric: "m", expected: ["a", "b"], got: ["a", "b", "c"])) {
            try f.labels(["a": "1", "b": "2", "c": "3"])
        }
        #expect(throws: ExpositionError.labelNamesMismatch(metric: "m", expected: ["a", "b"], got: ["a", "x"])) {
            try f.labels(["a": "1", "x": "2"])
        }
        #expect(throws: ExpositionError.labelNamesMismatch(metric: "m", expected: ["a", "b"], got: ["a"])) {
            try f.remove(labels: ["a": "1"])
        }
        #expect(f.seriesCount == 0)
    }

    @Test("series identity does not depend on label order (swift-prometheus defect 1)")
    func identity() throws {
        let registry = plainRegistry()
        let f = try registry.counterFamily("predictions", help: "", labelNames: ["model", "version"])
        let a = try f.labels(["model": "a", "version": "1"])
        let b = try f.labels(["version": "1", "model": "a"])
        let c = try f.labels("a", "1")
        #expect(a === b)
        #expect(a === c)
        a.inc()
        b.inc()
        #expect(f.seriesCount == 1)
        #expect(
            lines(rendered(registry), startingWith: "predictions_total{") == [
                #"predictions_total{model="a",version="1"} 2"#
            ])
    }

    @Test("output label names are sorted whatever the declared order")
    func sortedOutput() throws {
        func output(_ labelNames: [String]) throws -> String {
            let registry = plainRegistry()
            let f = try registry.gaugeFamily("g", help: "", labelNames: labelNames)
            try f.labels(["zeta": "z", "alpha": "a", "mid": "m"]).set(1)
            return rendered(registry)
        }
        let expected = "# TYPE g gauge\ng{alpha=\"a\",mid=\"m\",zeta=\"z\"} 1\n"
        #expect(try output(["zeta", "alpha", "mid"]) == expected)
        #expect(try output(["alpha", "mid", "zeta"]) == expected)
        #expect(try output(["mid", "zeta", "alpha"]) == expected)
    }

    @Test("positional values follow the declared order")
    func positional() throws {
        let registry = plainRegistry()
        let f = try registry.gaugeFamily("g", help: "", labelNames: ["zeta", "alpha"])
        try f.labels("z", "a").set(1)
        #expect(lines(rendered(registry), startingWith: "g{") == [#"g{alpha="a",zeta="z"} 1"#])
        #expect(try f.labels(["alpha": "a", "zeta": "z"]) === f.labels("z", "a"))
    }

    @Test("any UTF-8 label value is accepted, including the empty string")
    func labelValues() throws {
        let registry = plainRegistry()
        let f = try registry.gaugeFamily("g", help: "", labelNames: ["v"])
        try f.labels("").set(1)
        try f.labels("日本語 😀").set(2)
        #expect(lines(rendered(registry), startingWith: "g{") == [#"g{v=""} 1"#, #"g{v="日本語 😀"} 2"#])
    }

    @Test("units: a valid identifier that suffixes the name")
    func units() throws {
        _ = try MetricDescriptor(name: "latency_seconds", type: .histogram, help: "", unit: "seconds")
        #expect(
            throws: ExpositionError.invalidUnit(
                metric: "latency", unit: "seconds", reason: "the metric name must end with \"_seconds\"")
        ) {
            try MetricDescriptor(name: "latency", type: .histogram, help: "", unit: "seconds")
        }
        #expect(throws: ExpositionError.self) {
            try MetricDescriptor(name: "x_per-s", type: .gauge, help: "", unit: "per-s")
        }
        // A counter's unit goes before _total.
        let d = try MetricDescriptor(name: "sent_bytes_total", type: .counter, help: "", unit: "bytes")
        #expect(d.name == "sent_bytes")
    }

    @Test("a label set different from the registered one is refused (swift-prometheus defect 2)")
    func oneLabelSetPerFamily() throws {
        let registry = plainRegistry()
        let f = try registry.counterFamily("m", help: "", labelNames: ["a"])
        #expect(
            throws: ExpositionError.alreadyRegistered(name: "m", reason: "already registered with label names [\"a\"]")
        ) {
            try registry.counterFamily("m", help: "", labelNames: ["a", "b"])
        }
        #expect(throws: ExpositionError.self) { try f.labels(["b": "1"]) }
    }
}
