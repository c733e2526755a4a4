import Dispatch
import Foundation
import Synchronization
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

/// What each run of a collector was told about its families.
private final class Runs: Sendable {
    let flags = Mutex<[Bool]>([])
}

/// A group of one part, so that a test holds the part a scrape runs.
private struct OnePart: CollectorGroup {
    let part: CollectorPart
    var descriptors: [MetricDescriptor] { part.schema.descriptors }
    func parts() -> [CollectorPart] { [part] }
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

    /// Two gauges, `sel_kept` and `sel_dropped`; records, per run, whether the sink keeps `sel_dropped`.
    private static func twoFamilies(runs: Runs, gate: Gate? = nil) throws -> ClosureCollector {
        ClosureCollector(
            "sel",
            [
                try MetricDescriptor(name: "sel_kept", type: .gauge, help: ""),
                try MetricDescriptor(name: "sel_dropped", type: .gauge, help: ""),
            ]
        ) { sink in
            let keeps = sink.wants(sink.handle("sel_dropped", .gauge))
            runs.flags.withLock { $0.append(keeps) }
            gate?.pass()
            sink.gauge("sel_kept", value: 1)
            sink.gauge("sel_dropped", value: 2)
        }
    }

    @Test(
        "a selection's run keeps only the selected families, says so to the collector, and runs no part it does not need"
    )
    func selectedFamilies() throws {
        let registry = Registry()
        let runs = Runs()
        let part = CollectorPart(try Self.twoFamilies(runs: runs))
        let unneeded = Mutex<[Bool]>([])
        let other = CollectorPart(
            ClosureCollector("other", [try MetricDescriptor(name: "other_value", type: .gauge, help: "")]) { sink in
                unneeded.withLock { $0.append(true) }
                sink.gauge("other_value", value: 3)
            })
        let selection = FamilySelection(["sel_kept"])
        let snapshot = registry.snapshot(of: [part, other], families: selection)
        #expect(snapshot.skipped.isEmpty)
        #expect(snapshot.value("sel_kept", [:]) == 1)
        #expect(snapshot.samples("sel_dropped").isEmpty && snapshot.samples("other_value").isEmpty)
        #expect(runs.flags.withLock { $0 } == [false])
        #expect(unneeded.withLock { $0 }.isEmpty)
        // The flags are kept per part for the selection (same answer from the cache), and a selection of every
        // family is a full run.
        #expect(part.wanted(by: selection) == [true, false] && part.wanted(by: selection) == [true, false])
        #expect(part.wanted(by: FamilySelection(["sel_kept", "sel_dropped"])) == nil)
        let full = registry.snapshot(of: [part], families: FamilySelection(["sel_kept", "sel_dropped"]))
        #expect(full.value("sel_dropped", [:]) == 2)
        #expect(runs.flags.withLock { $0 } == [false, true])
    }

    /// A registry whose one part (``twoFamilies(runs:gate:)``) blocks on its first run until the gate is released.
    private static func gatedRegistry() throws -> (Registry, CollectorPart, Runs, Gate) {
        let registry = Registry()
        let runs = Runs()
        let gate = Gate()
        let part = CollectorPart(try twoFamilies(runs: runs, gate: gate))
        try registry.register(OnePart(part: part))
        return (registry, part, runs, gate)
    }

    /// Runs `body` on a thread of its own: its result, and a semaphore signalled once it is set.
    private static func onThread<T: Sendable>(
        _ body: @escaping @Sendable () -> T
    ) -> (SharedValue<T>, DispatchSemaphore) {
        let result = SharedValue<T>()
        let done = DispatchSemaphore(value: 0)
        Thread {
            result.set(body())
            done.signal()
        }.start()
        return (result, done)
    }

    @Test("a scrape never takes a selection's run under way: it waits for it and runs the part itself")
    func scrapeDoesNotJoinASelectionRun() throws {
        let (registry, part, runs, gate) = try Self.gatedRegistry()
        defer { gate.release.signal() }
        let (page, pageDone) = Self.onThread {
            registry.snapshot(of: [part], timeout: .seconds(20), families: FamilySelection(["sel_kept"]))
        }
        #expect(gate.entered.wait(timeout: .now() + 20) == .success)
        let (scrape, scrapeDone) = Self.onThread { rendered(registry, .text, timeout: .seconds(20)) }
        // The scrape found the page's run and waits for it (poll with a deadline), then the run may end.
        let deadline = ContinuousClock.now + .seconds(20)
        while part.waitsForOtherRuns.load(ordering: .relaxed) == 0 && ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.001)
        }
        #expect(part.waitsForOtherRuns.load(ordering: .relaxed) == 1)
        gate.release.signal()
        #expect(pageDone.wait(timeout: .now() + 30) == .success)
        #expect(scrapeDone.wait(timeout: .now() + 30) == .success)
        // Before: the scrape joined the page's run and lost sel_dropped.
        #expect(scrape.value?.contains("sel_dropped 2\n") == true)
        #expect(page.value?.value("sel_kept", [:]) == 1)
        #expect(runs.flags.withLock { $0 } == [false, true])
    }

    @Test("a selection joins a full run under way instead of running the part again")
    func selectionJoinsAFullRun() throws {
        let (registry, part, runs, gate) = try Self.gatedRegistry()
        defer { gate.release.signal() }
        let (_, scrapeDone) = Self.onThread { rendered(registry, .text, timeout: .seconds(20)) }
        #expect(gate.entered.wait(timeout: .now() + 20) == .success)
        // While the scrape's run is held, a page joins it rather than running the part: it gives up at its own
        // deadline without a second run.
        let page = registry.snapshot(of: [part], timeout: .milliseconds(300), families: FamilySelection(["sel_kept"]))
        #expect(page.skipped == ["sel/"])
        #expect(runs.flags.withLock { $0 } == [true])
        gate.release.signal()
        #expect(scrapeDone.wait(timeout: .now() + 30) == .success)
        let after = registry.snapshot(of: [part], families: FamilySelection(["sel_kept"]))
        #expect(after.value("sel_kept", [:]) == 1 && after.samples("sel_dropped").isEmpty)
        #expect(runs.flags.withLock { $0 } == [true, false])
    }
}
