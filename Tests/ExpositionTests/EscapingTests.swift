import Testing

@testable import Exposition

@Suite("Escaping")
struct EscapingTests {
    static let help = #"Path C:\tmp, "quoted""# + "\nsecond line"

    @Test("HELP in text 0.0.4: backslash and newline escaped, quote not")
    func helpText() throws {
        let registry = plainRegistry()
        try registry.gauge("g", help: Self.help).set(1)
        #expect(
            rendered(registry, .text) == #"""
                # HELP g Path C:\\tmp, "quoted"\nsecond line
                # TYPE g gauge
                g 1

                """#)
    }

    @Test("HELP in OpenMetrics: backslash, newline and quote escaped")
    func helpOpenMetrics() throws {
        let registry = plainRegistry()
        try registry.gauge("g", help: Self.help).set(1)
        #expect(
            rendered(registry, .openMetrics) == #"""
                # TYPE g gauge
                # HELP g Path C:\\tmp, \"quoted\"\nsecond line
                g 1
                # EOF

                """#)
    }

    @Test("HELP newlines are escaped, not removed; other characters are kept as they are (swift-prometheus defect 6)")
    func helpKeepsCharacters() throws {
        let registry = plainRegistry()
        try registry.gauge("g", help: "a\tb \u{202E}rtl\u{202C} ü\r\n\nend").set(1)
        let expectedHelp = "a\tb \u{202E}rtl\u{202C} ü\r\\n\\nend"
        #expect(lines(rendered(registry, .text), startingWith: "# HELP") == ["# HELP g " + expectedHelp])
        #expect(lines(rendered(registry, .openMetrics), startingWith: "# HELP") == ["# HELP g " + expectedHelp])
    }

    @Test("label values: backslash, quote and newline escaped in both formats")
    func labelValues() throws {
        let registry = plainRegistry()
        let f = try registry.gaugeFamily("g", help: "", labelNames: ["path"])
        try f.labels(#"C:\dir "x""# + "\ny").set(1)
        let expected = #"g{path="C:\\dir \"x\"\ny"} 1"#
        #expect(lines(rendered(registry, .text), startingWith: "g{") == [expected])
        #expect(lines(rendered(registry, .openMetrics), startingWith: "g{") == [expected])
    }

    @Test("label values keep UTF-8, tabs and other control characters as they are")
    func labelValuesVerbatim() throws {
        let registry = plainRegistry()
        let f = try registry.gaugeFamily("g", help: "", labelNames: ["v"])
        try f.labels("é\t😀\u{202E}").set(1)
        #expect(lines(rendered(registry), startingWith: "g{") == ["g{v=\"é\t😀\u{202E}\"} 1"])
    }

    @Test("the escaping primitives")
    func primitives() {
        var out: [UInt8] = []
        Escaping.appendLabelValue("a\\b\"c\nd", to: &out)
        #expect(String(decoding: out, as: UTF8.self) == #"a\\b\"c\nd"#)
        out = []
        Escaping.appendHelp("a\\b\"c\nd", format: .text, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == #"a\\b"c\nd"#)
        out = []
        Escaping.appendHelp("a\\b\"c\nd", format: .openMetrics, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == #"a\\b\"c\nd"#)
        #expect(
            String(decoding: Escaping.renderLabelPairs(names: ["a", "b"], values: ["1", "\""]), as: UTF8.self)
                == #"a="1",b="\"""#)
        #expect(Escaping.renderLabelPairs(names: [], values: []).isEmpty)
    }

    @Test("collected label values, state names and exemplar labels are escaped the same way")
    func everywhere() throws {
        let registry = plainRegistry()
        try registry.register(
            ClosureCollector("c", [try MetricDescriptor(name: "v", type: .gauge, help: "", labelNames: ["k"])]) {
                $0.gauge("v", ["q\"\\\n"], value: 1)
            })
        let s = try registry.stateSet("s", help: "", states: ["q\"\\\n"])
        try s.setOnly("q\"\\\n")
        let c = try registry.counter("c", help: "")
        c.inc(by: 1, exemplar: try Exemplar(labels: ["id": "q\"\\\n"], value: 1))
        let om = rendered(registry, .openMetrics)
        #expect(lines(om, startingWith: "v{") == [#"v{k="q\"\\\n"} 1"#])
        #expect(lines(om, startingWith: "s{") == [#"s{s="q\"\\\n"} 1"#])
        #expect(lines(om, startingWith: "c_total") == [#"c_total 1 # {id="q\"\\\n"} 1"#])
    }
}
