import Testing

@testable import Exposition

@Suite("Render")
struct RenderTests {
    @Test("content types are exact")
    func contentTypes() {
        #expect(ExpositionFormat.text.contentType == "text/plain; version=0.0.4; charset=utf-8")
        #expect(
            ExpositionFormat.openMetrics.contentType == "application/openmetrics-text; version=1.0.0; charset=utf-8")
    }

    @Test("an empty registry: nothing in text, only # EOF in OpenMetrics (self metrics without series are not written)")
    func empty() {
        let registry = Registry()
        #expect(rendered(registry, .text) == "")
        #expect(rendered(registry, .openMetrics) == "# EOF\n")
        var out: [UInt8] = []
        #expect(registry.render(format: .text, into: &out).families == 0)
    }

    /// One family of every type, registered out of order.
    static func mixed() throws -> Registry {
        let registry = plainRegistry()
        try registry.stateSet("mode", help: "Mode.", states: ["serve", "train"]).setOnly("train")
        let s = try registry.summary("rpc_seconds", help: "RPC time.", unit: "seconds")
        s.observe(0.5)
        s.observe(1.5)
        let h = try registry.histogram("payload_bytes", help: "Payload.", unit: "bytes", buckets: [100, 1e6])
        h.observe(50)
        h.observe(2e6)
        try registry.info("build", help: "Build.", labels: ["version": "1.0"])
        let f = try registry.counterFamily("requests", help: "Requests.", labelNames: ["code"])
        try f.labels("500").inc()
        try f.labels("200").inc(by: 41)
        try registry.gauge("temperature", help: "Temp.").set(21.5)
        return registry
    }

    @Test("every type in text 0.0.4")
    func mixedText() throws {
        #expect(
            try rendered(Self.mixed(), .text) == """
                # HELP build_info Build.
                # TYPE build_info gauge
                build_info{version="1.0"} 1
                # HELP mode Mode.
                # TYPE mode gauge
                mode{mode="serve"} 0
                mode{mode="train"} 1
                # HELP payload_bytes Payload.
                # TYPE payload_bytes histogram
                payload_bytes_bucket{le="100"} 1
                payload_bytes_bucket{le="1e+06"} 1
                payload_bytes_bucket{le="+Inf"} 2
                payload_bytes_sum 2000050
                payload_bytes_count 2
                # HELP requests_total Requests.
                # TYPE requests_total counter
                requests_total{code="200"} 41
                requests_total{code="500"} 1
                # HELP rpc_seconds RPC time.
                # TYPE rpc_seconds summary
                rpc_seconds_sum 2
                rpc_seconds_count 2
                # HELP temperature Temp.
                # TYPE temperature gauge
                temperature 21.5

                """)
    }

    @Test("every type in OpenMetrics")
    func mixedOpenMetrics() throws {
        #expect(
            try rendered(Self.mixed(), .openMetrics) == """
                # TYPE build info
                # HELP build Build.
                build_info{version="1.0"} 1
                # TYPE mode stateset
                # HELP mode Mode.
                mode{mode="serve"} 0
                mode{mode="train"} 1
                # TYPE payload_bytes histogram
                # UNIT payload_bytes bytes
                # HELP payload_bytes Payload.
                payload_bytes_bucket{le="100.0"} 1
                payload_bytes_bucket{le="1e+06"} 1
                payload_bytes_bucket{le="+Inf"} 2
                payload_bytes_sum 2000050
                payload_bytes_count 2
                # TYPE requests counter
                # HELP requests Requests.
                requests_total{code="200"} 41
                requests_total{code="500"} 1
                # TYPE rpc_seconds summary
                # UNIT rpc_seconds seconds
                # HELP rpc_seconds RPC time.
                rpc_seconds_sum 2
                rpc_seconds_count 2
                # TYPE temperature gauge
                # HELP temperature Temp.
                temperature 21.5
                # EOF

                """)
    }

    @Test("structure: text ends in a newline without # EOF; OpenMetrics ends in exactly one # EOF")
    func structure() throws {
        let registry = try Self.mixed()
        let text = rendered(registry, .text)
        let om = rendered(registry, .openMetrics)
        #expect(text.hasSuffix("\n"))
        #expect(!text.contains("# EOF"))
        #expect(!text.contains("# UNIT"))
        #expect(om.hasSuffix("\n# EOF\n"))
        #expect(lines(om, startingWith: "# EOF") == ["# EOF"])
        #expect(!om.contains("\r") && !text.contains("\r"))
        // In OpenMetrics, every family's metadata is TYPE, then UNIT, then HELP.
        let comments = om.split(separator: "\n").filter { $0.hasPrefix("#") && $0 != "# EOF" }
        #expect(comments.allSatisfy { $0.hasPrefix("# TYPE ") || $0.hasPrefix("# UNIT ") || $0.hasPrefix("# HELP ") })
        #expect(comments.filter { $0.hasPrefix("# TYPE ") }.count == 6)
    }

    @Test("render(into:) replaces the buffer's contents and reports the families written")
    func intoBuffer() throws {
        let registry = try Self.mixed()
        var out = Array("garbage that must disappear\n".utf8)
        let report = registry.render(format: .text, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == rendered(registry, .text))
        #expect(report.families == 6)
        #expect(report.skipped.isEmpty)
        let capacity = out.capacity
        registry.render(format: .openMetrics, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == rendered(registry, .openMetrics))
        #expect(out.capacity >= capacity)
    }

    @Test("families without series are not written at all")
    func emptyFamilies() throws {
        let registry = plainRegistry()
        _ = try registry.counterFamily("c", help: "C.", labelNames: ["k"])
        _ = try registry.histogramFamily("h", help: "H.", labelNames: ["k"])
        try registry.gauge("g", help: "").set(1)
        #expect(rendered(registry, .text) == "# TYPE g gauge\ng 1\n")
        #expect(rendered(registry, .openMetrics) == "# TYPE g gauge\ng 1\n# EOF\n")
    }

    @Test("_created: counters, histograms and summaries, OpenMetrics only, never gauges")
    func created() throws {
        let registry = Registry(options: .init(emitCreated: true, selfMetricsPrefix: nil))
        _ = try registry.counter("c", help: "")
        _ = try registry.histogram("h", help: "", buckets: [1])
        _ = try registry.summary("s", help: "")
        _ = try registry.gauge("g", help: "")
        _ = try registry.stateSet("st", help: "", states: ["a"])
        try registry.info("i", help: "", labels: [:])
        let om = rendered(registry, .openMetrics)
        #expect(
            om.split(separator: "\n").filter { $0.contains("_created") }.map { $0.prefix { $0 != " " } } == [
                "c_created", "h_created", "s_created",
            ])
        #expect(!rendered(registry, .text).contains("_created"))
    }
}

@Suite("Exemplars")
struct ExemplarTests {
    @Test("rendering: labels sorted by name, empty set allowed, optional timestamp")
    func rendering() throws {
        #expect(
            String(decoding: try Exemplar(labels: ["b": "2", "a": "1"], value: 0.5).rendered, as: UTF8.self)
                == #" # {a="1",b="2"} 0.5"#)
        #expect(String(decoding: try Exemplar(labels: [:], value: 3).rendered, as: UTF8.self) == " # {} 3")
        #expect(
            String(decoding: try Exemplar(labels: [:], value: 1, timestamp: 1_520_879_607.789).rendered, as: UTF8.self)
                == " # {} 1 1520879607.789")
        #expect(try Exemplar(labels: [:], value: 0.25).value == 0.25)
    }

    @Test("label names and values together: 128 characters are allowed, 129 are not")
    func length() throws {
        _ = try Exemplar(labels: ["trace_id": String(repeating: "x", count: 120)], value: 1)
        _ = try Exemplar(labels: ["a": String(repeating: "é", count: 127)], value: 1)
        #expect(
            throws: ExpositionError.invalidExemplar(reason: "labels have 129 characters, at most 128 are allowed")
        ) {
            try Exemplar(labels: ["trace_id": String(repeating: "x", count: 121)], value: 1)
        }
        #expect(throws: ExpositionError.self) {
            try Exemplar(
                labels: ["a": String(repeating: "x", count: 64), "b": String(repeating: "y", count: 63)], value: 1)
        }
    }

    @Test("the 128-character limit counts code points, as OpenMetrics says")
    func codePoints() {
        // 1 + 127 grapheme clusters, but 1 + 254 code points ("e" + combining acute accent).
        let value = String(repeating: "e\u{301}", count: 127)
        #expect(throws: ExpositionError.self) { try Exemplar(labels: ["a": value], value: 1) }

    }

    @Test("invalid exemplars are refused")
    func invalid() {
        #expect(throws: ExpositionError.self) { try Exemplar(labels: ["bad-name": "x"], value: 1) }
        #expect(throws: ExpositionError.self) { try Exemplar(labels: ["__reserved": "x"], value: 1) }
        #expect(throws: ExpositionError.self) { try Exemplar(labels: ["": "x"], value: 1) }
        #expect(throws: ExpositionError.invalidExemplar(reason: "value must be finite")) {
            try Exemplar(labels: [:], value: .nan)
        }
        #expect(throws: ExpositionError.self) { try Exemplar(labels: [:], value: .infinity) }
        #expect(throws: ExpositionError.invalidExemplar(reason: "timestamp must be finite")) {
            try Exemplar(labels: [:], value: 1, timestamp: .nan)
        }
    }
}
