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
