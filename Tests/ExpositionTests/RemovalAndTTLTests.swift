import Dispatch
import Foundation
import Testing

@testable import Exposition

@Suite("Removal")
struct RemovalTests {
    @Test("remove by exact values; a second removal finds nothing")
    func removeExact() throws {
        let registry = plainRegistry()
        let f = try registry.gaugeFamily("g", help: "", labelNames: ["model", "version"])
        try f.labels("a", "1").set(1)
        try f.labels("b", "1").set(2)
        #expect(try f.remove(["a", "1"]))
        #expect(try !f.remove(["a", "1"]))
        #expect(try f.remove(labels: ["version": "1", "model": "b"]))
        #expect(try !f.remove(labels: ["version": "1", "model": "b"]))
        #expect(f.seriesCount == 0)
        #expect(rendered(registry) == "")
    }

    @Test("remove takes values in declared order, like labels")
    func removeDeclaredOrder() throws {
        let registry = plainRegistry()
        let f = try registry.gaugeFamily("g", help: "", labelNames: ["zeta", "alpha"])
        try f.labels("z", "a").set(1)
        #expect(try !f.remove(["a", "z"]))
        #expect(try f.remove(["z", "a"]))
        #expect(rendered(registry) == "")
    }

    @Test("remove by partial match returns the count")
    func removeMatching() throws {
        let registry = plainRegistry()
        let f = try registry.gaugeFamily("g", help: "", labelNames: ["model", "version"])
        for (m, v) in [("a", "1"), ("a", "2"), ("b", "1"), ("b", "2"), ("c", "3")] { try f.labels(m, v).set(1) }
        #expect(try f.removeMatching(["model": "a"]) == 2)
        #expect(try f.removeMatching(["model": "a"]) == 0)
        #expect(try f.removeMatching(["version": "1"]) == 1)
        #expect(try f.removeMatching(["model": "b", "version": "3"]) == 0)
        #expect(try f.removeMatching(["model": "b", "version": "2"]) == 1)
        #expect(lines(rendered(registry), startingWith: "g{") == [#"g{model="c",version="3"} 1"#])
        #expect(throws: ExpositionError.labelNamesMismatch(metric: "g", expected: ["model", "version"], got: ["zone"]))
        {
            try f.removeMatching(["zone": "x"])
        }
        #expect(f.seriesCount == 1)
    }

    @Test("removeAll empties the family")
    func removeAll() throws {
        let registry = plainRegistry()
        let f = try registry.counterFamily("c", help: "", labelNames: ["k"])
        for k in ["x", "y", "z"] { try f.labels(k).inc() }
        f.removeAll()
        #expect(f.seriesCount == 0)
        #expect(rendered(registry) == "")
        try f.labels("x").inc()
        #expect(rendered(registry) == "# TYPE c_total counter\nc_total{k=\"x\"} 1\n")
    }

    @Test("updates through a removed handle are counted, self-reported and never written")
    func removedHandle() throws {
        let registry = Registry()
        let f = try registry.counterFamily("jobs", help: "Jobs.", labelNames: ["queue"])
        let kept = try f.labels("fast")
        let doomed = try f.labels("slow")
        kept.inc()
        doomed.inc(by: 5)
        #expect(try f.remove(["slow"]))
        doomed.inc()
        doomed.inc(by: 2)
        doomed.inc(by: 0.5)
        #expect(f.droppedUpdates.removedSeries == 3)
        #expect(f.droppedUpdates.invalidValue == 0)
        #expect(
            rendered(registry) == """
                # HELP jobs_total Jobs.
                # TYPE jobs_total counter
                jobs_total{queue="fast"} 1
                # HELP mlops_exporter_updates_dropped_total Metric updates dropped: through a removed series' handle, or with an invalid value.
                # TYPE mlops_exporter_updates_dropped_total counter
                mlops_exporter_updates_dropped_total{metric="jobs_total",reason="removed_series"} 3

                """)
        // Asking again gives a fresh series, not the removed one.
        let fresh = try f.labels("slow")
        #expect(fresh !== doomed)
        #expect(fresh.value == 0)
        #expect(
            lines(rendered(registry), startingWith: "jobs_total{queue=\"slow\"}") == [#"jobs_total{queue="slow"} 0"#])
    }

    @Test("every series type counts updates through removed handles", arguments: 0..<5)
    func allTypes(kind: Int) throws {
        let registry = Registry()
        let name: String
        let count: () -> UInt64
        switch kind {
        case 0:
            let f = try registry.gaugeFamily("g", help: "", labelNames: ["k"])
            let s = try f.labels("x")
            f.removeAll()
            s.set(1)
            s.inc()
            name = "g"
            count = { f.droppedUpdates.removedSeries }
        case 1:
            let f = try registry.histogramFamily("h", help: "", labelNames: ["k"], buckets: [1])
            let s = try f.labels("x")
            f.removeAll()
            s.observe(1)
            s.observe(2, exemplar: try Exemplar(labels: [:], value: 2))
            name = "h"
            count = { f.droppedUpdates.removedSeries }
        case 2:
            let f = try registry.summaryFamily("s", help: "", labelNames: ["k"], quantiles: SummaryQuantiles())
            let s = try f.labels("x")
            f.removeAll()
            s.observe(1)
            s.observe(2)
            name = "s"
            count = { f.droppedUpdates.removedSeries }
        case 3:
            let f = try registry.stateSetFamily("st", help: "", labelNames: ["k"], states: ["a"])
            let s = try f.labels("x")
            f.removeAll()
            try s.set("a", true)
            try s.setOnly("a")
            name = "st"
            count = { f.droppedUpdates.removedSeries }
        default:
            let f = try registry.counterFamily("c", help: "", labelNames: ["k"])
            let s = try f.labels("x")
            f.removeAll()
            s.inc()
            s.inc(by: 3)
            name = "c_total"
            count = { f.droppedUpdates.removedSeries }
        }
        #expect(count() == 2)
        let text = rendered(registry)
        #expect(
            lines(text, startingWith: "mlops_exporter_updates_dropped_total{") == [
                "mlops_exporter_updates_dropped_total{metric=\"\(name)\",reason=\"removed_series\"} 2"
            ])
        #expect(!text.contains("k=\"x\""))
    }

    @Test("an unregistered family stops being written; its handles keep working")
    func unregisterFamily() throws {
        let registry = plainRegistry()
        let c = try registry.counter("c", help: "")
        c.inc()
        #expect(registry.unregister(family: "c_total"))
        #expect(!registry.unregister(family: "c"))
        c.inc()
        #expect(c.value == 2)
        #expect(rendered(registry) == "")
    }
}

@Suite("Time to live")
struct TimeToLiveTests {
    let ttl = nanos(seconds: 60)

    @Test("a series not updated for the time-to-live disappears; a recently updated one stays")
    func expiry() throws {
        let registry = plainRegistry()
        let f = try registry.gaugeFamily("g", help: "", labelNames: ["k"], timeToLive: .seconds(60))
        let idle = try f.labels("idle")
        let busy = try f.labels("busy")
        idle.set(1)
        busy.set(2)
        let t0 = Clock.monotonicNanos()
        #expect(lines(rendered(registry, now: t0), startingWith: "g{").count == 2)
        busy.set(3)
        #expect(lines(rendered(registry, now: t0 + ttl - 1), startingWith: "g{").count == 2)
        #expect(lines(rendered(registry, now: t0 + ttl), startingWith: "g{") == [#"g{k="busy"} 3"#])
        #expect(f.seriesCount == 1)
        // Without updates, the busy one goes too, a time-to-live after the render that first saw it idle.
        #expect(lines(rendered(registry, now: t0 + 2 * ttl - 2), startingWith: "g{") == [#"g{k="busy"} 3"#])
        #expect(rendered(registry, now: t0 + 2 * ttl - 1) == "")
    }

    @Test("an expired series comes back with its value when its handle is updated")
    func comeBack() throws {
        let registry = plainRegistry()
        let f = try registry.counterFamily("c", help: "", labelNames: ["k"], timeToLive: .seconds(60))
        let c = try f.labels("x")
        c.inc(by: 5)
        let t0 = Clock.monotonicNanos()
        _ = rendered(registry, now: t0)
        #expect(rendered(registry, now: t0 + ttl) == "")
        c.inc()
        #expect(f.seriesCount == 1)
        #expect(rendered(registry, now: t0 + ttl + 1) == "# TYPE c_total counter\nc_total{k=\"x\"} 6\n")
        #expect(try f.labels("x") === c)
        #expect(f.droppedUpdates == (0, 0))
    }

    @Test("every series type comes back from expiry through its handle")
    func comeBackAllTypes() throws {
        let registry = plainRegistry()
        let ttlDuration = Duration.seconds(60)
        let h = try registry.histogramFamily("h", help: "", labelNames: [], buckets: [1], timeToLive: ttlDuration)
            .labels()
        let s = try registry.summaryFamily("s", help: "", labelNames: [], timeToLive: ttlDuration).labels()
        let st = try registry.stateSetFamily("st", help: "", labelNames: [], states: ["a"], timeToLive: ttlDuration)
            .labels()
        let g = try registry.gaugeFamily("g", help: "", labelNames: [], timeToLive: ttlDuration).labels()
        h.observe(0.5)
        s.observe(2)
        try st.set("a", true)
        g.set(4)
        let t0 = Clock.monotonicNanos()
        _ = rendered(registry, now: t0)
        #expect(rendered(registry, now: t0 + ttl) == "")
        h.observe(0.5)
        s.observe(2)
        try st.set("a", true)
        g.inc()
        let text = rendered(registry, now: t0 + ttl + 1)
        #expect(lines(text, startingWith: "h_count") == ["h_count 2"])
        #expect(lines(text, startingWith: "s_count") == ["s_count 2"])
        #expect(lines(text, startingWith: "st{") == [#"st{st="a"} 1"#])
        #expect(lines(text, startingWith: "g ") == ["g 5"])
    }

    @Test("labels() after expiry returns the same series with its value")
    func labelsAfterExpiry() throws {
        let registry = plainRegistry()
        let f = try registry.counterFamily("c", help: "", labelNames: ["k"], timeToLive: .seconds(60))
        let old = try f.labels("x")
        old.inc(by: 5)
        let t0 = Clock.monotonicNanos()
        _ = rendered(registry, now: t0)
        #expect(rendered(registry, now: t0 + ttl) == "")
        #expect(f.seriesCount == 0)
        let again = try f.labels("x")
        #expect(again === old)
        #expect(f.seriesCount == 1)
        #expect(lines(rendered(registry, now: t0 + ttl + 1), startingWith: "c_total{") == [#"c_total{k="x"} 5"#])
        #expect(f.droppedUpdates == (0, 0))
    }

    @Test("a long-expired series is forgotten; a stale handle is then counted once a new series took its place")
    func labelsAfterPurge() throws {
        let registry = plainRegistry()
        let f = try registry.counterFamily("c", help: "", labelNames: ["k"], timeToLive: .seconds(60))
        let old = try f.labels("x")
        old.inc(by: 5)
        let t0 = Clock.monotonicNanos()
        let hour = nanos(seconds: 3600)
        _ = rendered(registry, now: t0)
        _ = rendered(registry, now: t0 + ttl)
        // Purged after max(10 × time-to-live, 1 h) expired.
        _ = rendered(registry, now: t0 + ttl + hour)
        let fresh = try f.labels("x")
        #expect(fresh !== old)
        old.inc()
        #expect(f.droppedUpdates.removedSeries == 1)
        old.inc()
        #expect(f.droppedUpdates.removedSeries == 2)
        #expect(lines(rendered(registry, now: t0 + ttl + hour + 1), startingWith: "c_total{") == [#"c_total{k="x"} 0"#])
    }

    @Test("removing a series that the time-to-live has expired is final too")
    func removeAfterExpiry() throws {
        let registry = plainRegistry()
        let f = try registry.gaugeFamily("g", help: "", labelNames: ["k"], timeToLive: .seconds(60))
        let h = try f.labels("x")
        h.set(1)
        let t0 = Clock.monotonicNanos()
        _ = rendered(registry, now: t0)
        #expect(rendered(registry, now: t0 + ttl) == "")
        f.removeAll()
        h.set(2)
        // "A removed series is gone for good: updates through an old handle are counted as dropped."
        #expect(rendered(registry, now: t0 + ttl + 1) == "")
        #expect(f.droppedUpdates.removedSeries == 1)

    }

    @Test("a family without time-to-live keeps idle series forever")
    func noTTL() throws {
        let registry = plainRegistry()
        try registry.gauge("g", help: "").set(1)
        let t0 = Clock.monotonicNanos()
        _ = rendered(registry, now: t0)
        #expect(rendered(registry, now: t0 + nanos(seconds: 1e9)) == "# TYPE g gauge\ng 1\n")
    }

    @Test("a time-to-live must be positive", arguments: [Duration.zero, .seconds(-1)])
    func invalidTTL(ttl: Duration) {
        #expect(throws: ExpositionError.invalidOption(metric: "g", reason: "time-to-live must be positive")) {
            try plainRegistry().gaugeFamily("g", help: "", labelNames: [], timeToLive: ttl)
        }
    }

    @Test("idleness is measured from the first render after the last update (documented lag)")
    func firstRenderAfterTTL() throws {
        let registry = plainRegistry()
        let f = try registry.gaugeFamily("g", help: "", labelNames: [], timeToLive: .seconds(60))
        try f.labels().set(1)
        let t0 = Clock.monotonicNanos()
        // No clock is read on updates, so the first render only notes that the series was updated.
        #expect(rendered(registry, now: t0 + 2 * ttl) == "# TYPE g gauge\ng 1\n")
        #expect(rendered(registry, now: t0 + 3 * ttl) == "")
    }

    @Test("renders whose clock readings arrive out of order do not expire fresh series")
    func outOfOrderRenders() throws {
        let registry = plainRegistry()
        let f = try registry.gaugeFamily("g", help: "", labelNames: [], timeToLive: .seconds(60))
        try f.labels().set(1)
        let t0 = Clock.monotonicNanos()
        // Render B (later reading) sweeps first; render A (earlier reading, e.g. it waited for collectors) second.
        #expect(rendered(registry, now: t0 + nanos(seconds: 10)) == "# TYPE g gauge\ng 1\n")
        #expect(rendered(registry, now: t0 + nanos(seconds: 5)) == "# TYPE g gauge\ng 1\n")

    }

    @Test("two overlapping scrapes with a slow collector expire an idle series (public API)")
    func overlappingScrapes() throws {
        let registry = plainRegistry()
        let g = try registry.gaugeFamily("g", help: "", labelNames: [], timeToLive: .seconds(3600)).labels()
        g.set(1)
        let gate = Gate()
        defer { gate.release.signal() }
        try registry.register(try blockingCollector("slow", gate: gate))
        // Scrape A, on its own thread, takes its clock reading, then waits for the slow collector.
        let resultA = SharedValue<String>()
        let doneA = DispatchSemaphore(value: 0)
        Thread {
            let text = rendered(registry, .text, timeout: .seconds(30))
            resultA.set(text)
            doneA.signal()
        }.start()
        #expect(gate.entered.wait(timeout: .now() + 20) == .success)
        // Scrape B joins the collector's run, gives up at its own short deadline, and sweeps with a later
        // clock reading than A's.
        #expect(rendered(registry, .text, timeout: .milliseconds(300)) == "# TYPE g gauge\ng 1\n")
        gate.release.signal()
        doneA.wait()
        let a = try #require(resultA.value)
        #expect(a.contains("slow_value 1\n"))
        let later = rendered(registry)
        #expect(a.contains("\ng 1\n"))
        #expect(later.contains("\ng 1\n"))

    }

    @Test("a time-to-live of about 584 years does not wrap to a fraction of a second")
    func hugeTTL() throws {
        let registry = plainRegistry()
        // 18_446_744_074 s × 1e9 overflows UInt64 and wraps to ≈ 0.29 s.
        let f = try registry.gaugeFamily("g", help: "", labelNames: [], timeToLive: .seconds(18_446_744_074))
        try f.labels().set(1)
        let t0 = Clock.monotonicNanos()
        _ = rendered(registry, now: t0)
        #expect(rendered(registry, now: t0 + nanos(seconds: 1)) == "# TYPE g gauge\ng 1\n")

    }
}
