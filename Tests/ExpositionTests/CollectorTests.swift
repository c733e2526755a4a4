import Dispatch
import Foundation
import Synchronization
import Testing

@testable import Exposition

/// A registry with self metrics, for tests that check skip counting.
private func countingRegistry() -> Registry { Registry(options: .init(selfMetricsPrefix: "t")) }

private func skipped(_ registry: Registry, _ collector: String, _ reason: String) -> [String] {
    lines(
        rendered(registry),
        startingWith: "t_collector_skipped_total{collector=\"\(collector)\",model=\"\",reason=\"\(reason)\"}")
}

@Suite("Collectors")
struct CollectorTests {
    @Test("collected families are merged with registered ones in name order, label names sorted")
    func merged() throws {
        let registry = plainRegistry()
        try registry.gauge("b_gauge", help: "B.").set(2)
        try registry.gauge("d_gauge", help: "D.").set(4)
        let descriptors = [
            try MetricDescriptor(name: "a_counter_total", type: .counter, help: "A.", labelNames: ["z", "y"]),
            try MetricDescriptor(name: "c_info", type: .info, help: "C.", labelNames: ["version"]),
            try MetricDescriptor(name: "e_hist", type: .histogram, help: "E.", labelNames: []),
            try MetricDescriptor(name: "f_summary", type: .summary, help: "F.", labelNames: []),
            try MetricDescriptor(name: "g_state", type: .stateset, help: "G.", labelNames: []),
        ]
        try registry.register(
            ClosureCollector("c", descriptors) { sink in
                sink.counter("a_counter_total", ["2", "1"], value: 3)
                sink.counter("a_counter_total", ["1", "9"], value: 1.5)
                sink.info("c_info", ["1.0"])
                sink.histogram("e_hist", bounds: [1, 10], counts: [1, 2, 3], sum: 40)
                sink.summary("f_summary", quantiles: [(0.9, 7), (0.5, 5)], count: 4, sum: 20)
                sink.stateSet("g_state", states: [("on", true), ("off", false)])
            })
        #expect(
            rendered(registry) == """
                # HELP a_counter_total A.
                # TYPE a_counter_total counter
                a_counter_total{y="1",z="2"} 3
                a_counter_total{y="9",z="1"} 1.5
                # HELP b_gauge B.
                # TYPE b_gauge gauge
                b_gauge 2
                # HELP c_info C.
                # TYPE c_info gauge
                c_info{version="1.0"} 1
                # HELP d_gauge D.
                # TYPE d_gauge gauge
                d_gauge 4
                # HELP e_hist E.
                # TYPE e_hist histogram
                e_hist_bucket{le="1"} 1
                e_hist_bucket{le="10"} 3
                e_hist_bucket{le="+Inf"} 6
                e_hist_sum 40
                e_hist_count 6
                # HELP f_summary F.
                # TYPE f_summary summary
                f_summary{quantile="0.5"} 5
                f_summary{quantile="0.9"} 7
                f_summary_sum 20
                f_summary_count 4
                # HELP g_state G.
                # TYPE g_state gauge
                g_state{g_state="off"} 0
                g_state{g_state="on"} 1

                """)
        let om = rendered(registry, .openMetrics)
        #expect(om.contains("# TYPE c info\n# HELP c C.\nc_info{version=\"1.0\"} 1\n"))
        #expect(om.contains("e_hist_bucket{le=\"1.0\"} 1\n"))
        #expect(om.contains("# TYPE g_state stateset\n"))
        #expect(om.hasSuffix("# EOF\n"))
    }

    @Test("a throwing collector is skipped and counted; everything else is still written")
    func throwing() throws {
        let registry = countingRegistry()
        try registry.gauge("ok_gauge", help: "").set(1)
        try registry.register(
            ClosureCollector("bad", [try MetricDescriptor(name: "bad_value", type: .gauge, help: "")]) { sink in
                sink.gauge("bad_value", value: 1)
                throw TestError()
            })
        var out: [UInt8] = []
        let report = registry.render(format: .text, into: &out)
        let text = String(decoding: out, as: UTF8.self)
        #expect(
            report.skipped == [
                .init(collector: "bad", model: "", reason: "error", detail: "collector failed on purpose")
            ])
        #expect(text.contains("ok_gauge 1\n"))
        #expect(!text.contains("bad_value"))
        // The counter was incremented by the first render and again by the one that reads it.
        #expect(
            skipped(registry, "bad", "error") == [
                #"t_collector_skipped_total{collector="bad",model="",reason="error"} 2"#
            ])
    }

    @Test(
        "collected series come out in emission order, label names sorted; values that differ only as bytes are distinct series",
        arguments: [false, true])
    func seriesOrder(reversed: Bool) throws {
        // Byte order, not String order: "\u{E9}" (C3 A9) and "e\u{301}" (65 CC 81) are different series, "B" < "a",
        // "a" < "a\u{0}" < "ab", "10" < "9", and the tuple compares value by value ("a","z") < ("a\u{0}b","c")).
        let values: [[String]] = [
            ["B", "x"], ["a", "z"], ["a", "\u{0}"], ["a\u{0}b", "c"], ["ab", "a"], ["e\u{301}", "1"], ["\u{E9}", "1"],
            ["10", "1"], ["9", "1"], ["", "1"],
        ]
        let expected = values.sorted { x, y in
            for (a, b) in zip(x, y) where Array(a.utf8) != Array(b.utf8) {
                return Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8))
            }
            return x.count < y.count
        }
        let emitted = reversed ? expected.reversed() : expected
        let registry = plainRegistry()
        try registry.register(
            ClosureCollector("o", [try MetricDescriptor(name: "v", type: .gauge, help: "V.", labelNames: ["b", "a"])]) {
                sink in
                // Label names are emitted as declared (b, a) and rendered sorted (a, b): swap the tuple's order.
                for (i, pair) in emitted.enumerated() { sink.gauge("v", [pair[1], pair[0]], value: Double(i)) }
            })
        // Each sample line up to its closing brace (no value here contains one).
        let series = rendered(registry).split(separator: "\n").filter { $0.hasPrefix("v{") }.map {
            $0.prefix { $0 != "}" }
        }
        // As bytes: `==` on Strings would take the two spellings of "é" for one another.
        #expect(series.map { Array($0.utf8) } == emitted.map { Array(#"v{a="\#($0[0])",b="\#($0[1])""#.utf8) })
    }

    @Test("a duplicate series is found wherever it is in the emission order")
    func duplicateFarApart() throws {
        let registry = countingRegistry()
        try registry.register(
            ClosureCollector("dup", [try MetricDescriptor(name: "v", type: .gauge, help: "", labelNames: ["k"])]) {
                sink in
                for k in ["a", "b", "c", "d"] { sink.gauge("v", [k], value: 1) }
                // Canonically equal to each other but other bytes: not duplicates.
                sink.gauge("v", ["e\u{301}"], value: 1)
                sink.gauge("v", ["\u{E9}"], value: 1)
                sink.gauge("v", ["b"], value: 2)
            })
        var out: [UInt8] = []
        let report = registry.render(format: .text, into: &out)
        #expect(report.skipped.map(\.reason) == ["invalid"])
        #expect(report.skipped.first?.detail.contains("emitted twice") == true)
    }

    static let invalidEmissions: [(String, @Sendable (inout CollectorSink) -> Void)] = [
        ("undescribed family", { $0.gauge("other", value: 1) }),
        ("wrong label count", { $0.gauge("v", ["a", "b"], value: 1) }),
        ("wrong type", { $0.counter("v", ["a"], value: 1) }),
        (
            "duplicate series",
            { sink in
                sink.gauge("v", ["a"], value: 1)
                sink.gauge("v", ["a"], value: 2)
            }
        ),
        ("negative counter", { _ in }),
    ]

    @Test("invalid emissions skip the collector with reason invalid", arguments: 0..<4)
    func invalid(index: Int) throws {
        let registry = countingRegistry()
        let (what, body) = Self.invalidEmissions[index]
        try registry.register(
            ClosureCollector("inv", [try MetricDescriptor(name: "v", type: .gauge, help: "", labelNames: ["k"])], body))
        var out: [UInt8] = []
        let report = registry.render(format: .text, into: &out)
        #expect(report.skipped.map(\.reason) == ["invalid"], "\(what)")
        #expect(!String(decoding: out, as: UTF8.self).contains("\nv{"), "\(what)")
    }

    @Test("repeated states, repeated quantiles and bad histograms are invalid too")
    func invalidShapes() throws {
        let cases: [(MetricDescriptor, @Sendable (inout CollectorSink) -> Void)] = [
            (
                try MetricDescriptor(name: "st", type: .stateset, help: ""),
                {
                    $0.stateSet("st", states: [("a", true), ("a", false)])
                }
            ),
            (
                try MetricDescriptor(name: "s", type: .summary, help: ""),
                {
                    $0.summary("s", quantiles: [(0.5, 1), (0.5, 2)], count: 1, sum: 1)
                }
            ),
            (
                try MetricDescriptor(name: "s", type: .summary, help: ""),
                {
                    $0.summary("s", quantiles: [(1.5, 1)], count: 1, sum: 1)
                }
            ),
            (
                try MetricDescriptor(name: "h", type: .histogram, help: ""),
                {
                    $0.histogram("h", bounds: [2, 1], counts: [0, 0, 0], sum: 0)
                }
            ),
            (
                try MetricDescriptor(name: "h", type: .histogram, help: ""),
                {
                    $0.histogram("h", bounds: [1], counts: [0], sum: 0)
                }
            ),
            (try MetricDescriptor(name: "c", type: .counter, help: ""), { $0.counter("c", value: -1) }),
        ]
        for (descriptor, body) in cases {
            let registry = plainRegistry()
            try registry.register(ClosureCollector("x", [descriptor], body))
            var out: [UInt8] = []
            let report = registry.render(format: .text, into: &out)
            #expect(report.skipped.map(\.reason) == ["invalid"], "\(descriptor.name)")
            #expect(out.isEmpty, "\(descriptor.name)")
        }
    }

    @Test("a collector late for the deadline is skipped; while it still runs the next render says still_running")
    func deadline() throws {
        let registry = countingRegistry()
        try registry.gauge("ok_gauge", help: "").set(1)
        let gate = Gate()
        defer { gate.release.signal() }
        try registry.register(try blockingCollector("slow", gate: gate))
        let start = ContinuousClock.now
        var out: [UInt8] = []
        let report = registry.render(format: .text, into: &out, timeout: .milliseconds(200))
        let elapsed = ContinuousClock.now - start
        #expect(elapsed < .seconds(5))
        #expect(report.skipped.map(\.reason) == ["deadline"])
        #expect(String(decoding: out, as: UTF8.self).contains("ok_gauge 1\n"))
        let second = registry.render(format: .text, into: &out, timeout: .milliseconds(200))
        #expect(second.skipped.map(\.reason) == ["still_running"])
        gate.release.signal()
        // Once it has finished, it is collected again (poll with a deadline).
        let deadline = ContinuousClock.now + .seconds(10)
        var text = ""
        while ContinuousClock.now < deadline {
            text = rendered(registry, timeout: .seconds(5))
            if text.contains("slow_value 1\n") { break }
        }
        #expect(text.contains("slow_value 1\n"))
        #expect(text.contains(#"t_collector_skipped_total{collector="slow",model="",reason="deadline"} 1"#))
        // At least the one counted above; polling renders may also have found it still finishing.
        #expect(
            !lines(text, startingWith: #"t_collector_skipped_total{collector="slow",model="",reason="still_running"}"#)
                .isEmpty)
    }

    @Test("an overlapping render joins the collector's run under way instead of starting another")
    func overlappingRendersShareARun() throws {
        let registry = countingRegistry()
        let gate = Gate()
        defer { gate.release.signal() }
        let runs = Mutex(0)
        try registry.register(
            ClosureCollector("shared", [try MetricDescriptor(name: "shared_value", type: .gauge, help: "")]) { sink in
                runs.withLock { $0 += 1 }
                gate.pass()
                sink.gauge("shared_value", value: 7)
            })
        let first = SharedValue<String>()
        let firstDone = DispatchSemaphore(value: 0)
        Thread {
            first.set(rendered(registry, .text, timeout: .seconds(20)))
            firstDone.signal()
        }.start()
        #expect(gate.entered.wait(timeout: .now() + 20) == .success)
        // While the first render's run is blocked, another render (another format) joins that run: it does
        // not invoke the collector again, and gives up at its own deadline.
        var out: [UInt8] = []
        let report = registry.render(format: .openMetrics, into: &out, timeout: .milliseconds(300))
        #expect(report.skipped.map(\.reason) == ["still_running"])
        #expect(runs.withLock { $0 } == 1)
        gate.release.signal()
        #expect(firstDone.wait(timeout: .now() + 30) == .success)
        #expect(first.value?.contains("shared_value 7\n") == true)
        #expect(runs.withLock { $0 } == 1)
    }

    @Test("an absurd render timeout does not trap")
    func hugeTimeout() throws {
        let registry = plainRegistry()
        try registry.register(
            ClosureCollector("c", [try MetricDescriptor(name: "v", type: .gauge, help: "")]) { $0.gauge("v", value: 1) }
        )
        #expect(rendered(registry, timeout: .seconds(10_000_000_000)) == "# TYPE v gauge\nv 1\n")
    }

    @Test("collector descriptors clash with registered names, and unregistering frees them")
    func clashes() throws {
        let registry = plainRegistry()
        _ = try registry.counter("taken_total", help: "")
        let c = ClosureCollector("c", [try MetricDescriptor(name: "taken_created", type: .gauge, help: "")]) { _ in }
        #expect(throws: ExpositionError.self) { try registry.register(c) }
        let ok = ClosureCollector("c", [try MetricDescriptor(name: "free", type: .gauge, help: "")]) {
            $0.gauge("free", value: 1)
        }
        let registration = try registry.register(ok)
        #expect(throws: ExpositionError.self) { try registry.gauge("free", help: "") }
        #expect(registry.unregister(registration))
        #expect(!registry.unregister(registration))
        #expect(rendered(registry).contains("free") == false)
        try registry.gauge("free", help: "").set(1)
    }
}
