import Testing

@testable import Exposition

/// A collector with one family of each kind, label values that need escaping, and a block of constant lines.
private struct EveryKind: Collector {
    let name = "every_kind"
    let schema: CollectorSchema
    let counter: CounterHandle
    let gauge: GaugeHandle
    let constant: GaugeHandle
    let histogram: HistogramHandle
    let info: InfoHandle
    let state: StateSetHandle
    let block: ConstantSeries

    init() throws {
        var s = CollectorSchema()
        counter = try s.counter("snap_events", help: "c", labels: ["kind"])
        gauge = try s.gauge("snap_level", help: "g", labels: ["name", "other"])
        constant = try s.gauge("snap_share", help: "shares", labels: ["bin"])
        histogram = try s.histogram("snap_latency_seconds", help: "h", labels: ["path"])
        info = try s.info("snap_build", help: "i", labels: ["version"])
        state = try s.stateSet("snap_mode", help: "s", labels: ["unit"])
        block = try ConstantSeries(
            constant,
            [(try constant.labels("1"), FormattedValue(0.25)), (try constant.labels("x\"y"), FormattedValue(0.75))])
        schema = s
    }

    func collect(into sink: inout CollectorSink) throws {
        sink.counter(counter, ["a\\b"], value: 3)
        sink.counter(counter, ["new\nline"], value: 5.5)
        sink.gauge(gauge, ["<script>", "q\"uote"], value: -1.25)
        sink.gauge(constant, constant: block)
        sink.histogram(histogram, ["/x"], bounds: [0.1, 1], counts: [2, 3, 4], sum: 7.5)
        sink.info(info, ["1.0"])
        sink.stateSet(state, ["u"], states: [("on", true), ("off", false)])
    }
}

@Suite("MetricSnapshot")
struct MetricSnapshotTests {
    @Test("rendered label pairs parse back: plain values in place, escapes undone, a truncated pair never traps")
    func labelPairs() {
        let parsed = MetricSnapshot.labels(Array(#"a="x",bb="q\"u\\o\nte",c="",d="ünï""#.utf8))
        #expect(parsed.map(\.name) == ["a", "bb", "c", "d"])
        #expect(parsed.map(\.value) == ["x", "q\"u\\o\nte", "", "ünï"])
        // In a sample line: from after `{` to the `}` that closes the pairs, not one inside a value.
        let line = Array(#"m{a="}x",b="y\"}"} 1"#.utf8)
        let (pairs, end) = line.withUnsafeBufferPointer { TextFormatLabels.parse($0, from: 2) }
        #expect(pairs.map(\.value) == ["}x", "y\"}"] && end == line.count - 3 && line[end] == UInt8(ascii: "}"))
        for truncated in [#"a"#, #"a="#, #"a="x"#, #"a="x\"#, #"a="x","#] {
            let pairs = MetricSnapshot.labels(Array(truncated.utf8))
            #expect(pairs.count == 1 && pairs[0].name == "a", "\(truncated)")
        }
    }

    @Test("a snapshot holds the values and unescaped labels that the text format writes")
    func matchesTheRender() throws {
        let registry = Registry()
        let collector = try EveryKind()
        try registry.register(collector)
        let snapshot = registry.snapshot(of: [CollectorPart(collector)])
        #expect(snapshot.skipped.isEmpty)
        #expect(snapshot.value("snap_events_total", ["kind": "a\\b"]) == 3)
        #expect(snapshot.value("snap_events_total", ["kind": "new\nline"]) == 5.5)
        #expect(snapshot.value("snap_level", ["name": "<script>", "other": "q\"uote"]) == -1.25)
        #expect(snapshot.value("snap_share", ["bin": "1"]) == 0.25)
        #expect(snapshot.value("snap_share", ["bin": "x\"y"]) == 0.75)
        let h = try #require(snapshot.samples("snap_latency_seconds").first?.histogram)
        #expect(h.bounds == [0.1, 1] && h.counts == [2, 3, 4] && h.sum == 7.5 && h.count == 9)
        #expect(snapshot.value("snap_build_info", ["version": "1.0"]) == 1)
        #expect(snapshot.value("snap_mode", ["unit": "u", "snap_mode": "on"]) == 1)
        #expect(snapshot.value("snap_mode", ["unit": "u", "snap_mode": "off"]) == 0)
        // The render writes the same label bytes the snapshot read back.
        let text = rendered(registry)
        #expect(text.contains(#"snap_events_total{kind="a\\b"} 3"#))
        #expect(text.contains(#"snap_events_total{kind="new\nline"} 5.5"#))
        #expect(text.contains(#"snap_share{bin="x\"y"} 0.75"#))
    }
}
