import Testing

@testable import Exposition

/// A group whose parts are given by the test.
private struct FixedGroup: CollectorGroup {
    let descriptors: [MetricDescriptor]
    let all: [CollectorPart]
    func parts() -> [CollectorPart] { all }
}

@Suite("Collector groups")
struct CollectorGroupTests {
    static let (schema, value) = try! CollectorSchema.build { s in
        try s.gauge("g_value", help: "Value.", labels: ["model"])
    }

    static func part(_ model: String, emitting models: [String]) -> CollectorPart {
        CollectorPart(collector: "c", model: model, schema: schema) { sink in
            for m in models { sink.gauge(value, [m], value: 1) }
        }
    }

    @Test("a series written by two parts is kept from the first; the second part is left out and counted")
    func duplicateAcrossParts() throws {
        let registry = Registry(options: .init(selfMetricsPrefix: "t"))
        let group = FixedGroup(
            descriptors: Self.schema.descriptors,
            all: [
                Self.part("a", emitting: ["a"]), Self.part("b", emitting: ["b", "a"]), Self.part("c", emitting: ["c"]),
            ])
        try registry.register(group)
        for round in 1...2 {
            var out: [UInt8] = []
            let report = registry.render(format: .text, into: &out)
            let text = String(decoding: out, as: UTF8.self)
            #expect(text.contains("g_value{model=\"a\"} 1\ng_value{model=\"c\"} 1\n"), "round \(round)")
            #expect(!text.contains("g_value{model=\"b\"}"))
            #expect(report.skipped.map(\.model) == ["b"])
            #expect(text.contains("t_collector_skipped_total{collector=\"c\",model=\"b\",reason=\"invalid\"} \(round)"))
        }
    }

    @Test("a part writing a family its group did not declare is left out, not a crash")
    func undeclaredFamily() throws {
        let registry = Registry(options: .init(selfMetricsPrefix: "t"))
        let (other, handle) = try CollectorSchema.build { try $0.gauge("other_value", help: "") }
        let stray = CollectorPart(collector: "stray", model: "x", schema: other) { $0.gauge(handle, value: 1) }
        try registry.register(
            FixedGroup(descriptors: Self.schema.descriptors, all: [Self.part("a", emitting: ["a"]), stray]))
        var out: [UInt8] = []
        let report = registry.render(format: .text, into: &out)
        let text = String(decoding: out, as: UTF8.self)
        #expect(text.contains("g_value{model=\"a\"} 1"))
        #expect(!text.contains("other_value"))
        #expect(report.skipped.map(\.collector) == ["stray"] && report.skipped.map(\.reason) == ["invalid"])
    }
}

@Suite("Constant series")
struct ConstantSeriesTests {
    static let (schema, share) = try! CollectorSchema.build { s in
        try s.gauge("c_share", help: "Share.", labels: ["bin"])
    }

    static func render(_ emit: @escaping @Sendable (inout CollectorSink) -> Void) -> (String, RenderReport) {
        let registry = Registry(options: .init(selfMetricsPrefix: nil))
        try! registry.register(ClosureCollector("c", schema.descriptors) { sink in emit(&sink) })
        var out: [UInt8] = []
        let report = registry.render(format: .openMetrics, into: &out)
        return (String(decoding: out, as: UTF8.self), report)
    }

    @Test("a constant block renders as the same series emitted one by one, and its lines count as series")
    func sameBytes() throws {
        let labels = try ["1", "2", "x\"y"].map { try Self.share.labels($0) }
        let values = [0.25, 0.5, 1.0 / 3]
        let block = try ConstantSeries(Self.share, Array(zip(labels, values.map(FormattedValue.init))))
        // The handle from the test's own schema copy in ClosureCollector has another schema id: use it there.
        let (one, _) = Self.render { sink in
            let h = GaugeHandle(sink.handle("c_share", .gauge))!
            for (l, v) in zip(labels, values) { sink.gauge(h, l, value: v) }
        }
        let (two, report) = Self.render { sink in
            let h = GaugeHandle(sink.handle("c_share", .gauge))!
            let block = try! ConstantSeries(h, Array(zip(labels, values.map(FormattedValue.init))))
            sink.gauge(h, constant: block)
        }
        #expect(report.skipped.isEmpty)
        #expect(one == two)
        #expect(two.contains(#"c_share{bin="x\"y"} 0.3333333333333333"#))
        // A series also written one by one beside the block is a duplicate: the part is left out.
        let (three, dup) = Self.render { sink in
            let h = GaugeHandle(sink.handle("c_share", .gauge))!
            sink.gauge(h, constant: try! ConstantSeries(h, Array(zip(labels, values.map(FormattedValue.init)))))
            sink.gauge(h, labels[1], value: 9)
        }
        #expect(dup.skipped.map(\.reason) == ["invalid"] && !three.contains("c_share"))
        // Built for one family, refused by another.
        #expect(throws: ExpositionError.self) {
            try ConstantSeries(Self.share, [(labels[0], FormattedValue(1)), (labels[0], FormattedValue(2))])
        }
        _ = block
    }
}
