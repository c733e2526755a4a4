import Testing

@testable import Exposition

@Suite("Counter")
struct CounterTests {
    @Test("starts at zero and adds whole and fractional amounts")
    func operations() throws {
        let registry = plainRegistry()
        let c = try registry.counter("requests", help: "Requests served.")
        #expect(c.value == 0)
        c.inc()
        c.inc(by: 2)
        c.inc(by: 0.5)
        c.inc(by: 0.25)
        #expect(c.value == 3.75)
    }

    /// Whole increments that pass 2^64 carry into the double part: the total goes on up (it wrapped round to 8, read
    /// by Prometheus as a counter reset).
    @Test("whole increments past 2^64 keep the counter going up")
    func pastTwoToThe64() throws {
        let registry = plainRegistry()
        let c = try registry.counter("big", help: "Big.")
        c.inc(by: Int.max)
        c.inc(by: Int.max)
        let before = c.value
        c.inc(by: 10)
        #expect(c.value >= before)
        #expect(c.value == 0x1p64)  // 2^64 + 8, as a double
        c.inc()
        #expect(c.value >= 0x1p64)
        let text = String(decoding: registry.render(format: .text), as: UTF8.self)
        #expect(text.contains("big_total 1.8446744073709552e+19\n"))
    }

    @Test("unlabelled counter in text 0.0.4: family named with _total")
    func renderText() throws {
        let registry = plainRegistry()
        let c = try registry.counter("requests", help: "Requests served.")
        c.inc(by: 3)
        #expect(
            rendered(registry, .text) == """
                # HELP requests_total Requests served.
                # TYPE requests_total counter
                requests_total 3

                """)
    }

    @Test("unlabelled counter in OpenMetrics: family without _total, sample with it, # EOF")
    func renderOpenMetrics() throws {
        let registry = plainRegistry()
        let c = try registry.counter("requests", help: "Requests served.")
        c.inc(by: 3)
        #expect(
            rendered(registry, .openMetrics) == """
                # TYPE requests counter
                # HELP requests Requests served.
                requests_total 3
                # EOF

                """)
    }

    @Test("a zero counter is written as 0")
    func zero() throws {
        let registry = plainRegistry()
        _ = try registry.counter("idle", help: "Never incremented.")
        #expect(lines(rendered(registry), startingWith: "idle_total ") == ["idle_total 0"])
    }

    @Test("a name given with _total is the same family, written once with _total")
    func nameWithTotal() throws {
        let registry = plainRegistry()
        let c = try registry.counter("jobs_total", help: "Jobs.")
        c.inc()
        #expect(registry.descriptors.map(\.name) == ["jobs"])
        #expect(
            rendered(registry, .openMetrics) == """
                # TYPE jobs counter
                # HELP jobs Jobs.
                jobs_total 1
                # EOF

                """)
        #expect(throws: ExpositionError.alreadyRegistered(name: "jobs", reason: "already registered")) {
            try registry.counter("jobs", help: "Jobs.")
        }
    }

    @Test("a unit is written in OpenMetrics only")
    func unit() throws {
        let registry = plainRegistry()
        let c = try registry.counter("io_bytes_total", help: "Bytes.", unit: "bytes")
        c.inc(by: 4096)
        #expect(
            rendered(registry, .openMetrics) == """
                # TYPE io_bytes counter
                # UNIT io_bytes bytes
                # HELP io_bytes Bytes.
                io_bytes_total 4096
                # EOF

                """)
        #expect(
            rendered(registry, .text) == """
                # HELP io_bytes_total Bytes.
                # TYPE io_bytes_total counter
                io_bytes_total 4096

                """)
    }

    @Test("fractional totals are written in shortest round-trip form; whole ones without .0")
    func fractional() throws {
        let registry = plainRegistry()
        let c = try registry.counter("work_seconds", help: "Work.")
        c.inc(by: 0.5)
        #expect(lines(rendered(registry), startingWith: "work_seconds_total") == ["work_seconds_total 0.5"])
        c.inc(by: 0.5)
        c.inc(by: 2)
        #expect(lines(rendered(registry), startingWith: "work_seconds_total") == ["work_seconds_total 3"])
        c.inc(by: 0.1)
        #expect(lines(rendered(registry), startingWith: "work_seconds_total") == ["work_seconds_total 3.1"])
    }

    @Test("amounts of 2^53 and more are kept as doubles")
    func huge() throws {
        let registry = plainRegistry()
        let c = try registry.counter("bytes", help: "Bytes.")
        c.inc(by: 1e17)
        #expect(c.value == 1e17)
        #expect(lines(rendered(registry), startingWith: "bytes_total") == ["bytes_total 1e+17"])
    }

    @Test("negative, NaN and infinite increments are refused and counted as invalid_value")
    func invalidIncrements() throws {
        let registry = Registry()
        let family = try registry.counterFamily("requests", help: "Requests.", labelNames: [])
        let c = try family.labels()
        c.inc(by: 2)
        c.inc(by: -1)
        c.inc(by: -0.5)
        c.inc(by: Double.nan)
        c.inc(by: Double.infinity)
        c.inc(by: -Double.infinity)
        c.inc(by: 1, exemplar: try Exemplar(labels: [:], value: 1))
        c.inc(by: -1, exemplar: try Exemplar(labels: [:], value: 1))
        #expect(c.value == 3)
        #expect(family.droppedUpdates.invalidValue == 6)
        #expect(family.droppedUpdates.removedSeries == 0)
        #expect(
            rendered(registry, .text) == """
                # HELP mlops_exporter_updates_dropped_total Metric updates dropped: through a removed series' handle, or with an invalid value.
                # TYPE mlops_exporter_updates_dropped_total counter
                mlops_exporter_updates_dropped_total{metric="requests_total",reason="invalid_value"} 6
                # HELP requests_total Requests.
                # TYPE requests_total counter
                requests_total 3

                """)
    }

    @Test("labelled counters: one series per label values, label names sorted, series sorted")
    func labelled() throws {
        let registry = plainRegistry()
        let family = try registry.counterFamily("http_requests", help: "Requests.", labelNames: ["method", "code"])
        try family.labels("POST", "500").inc(by: 3)
        try family.labels("GET", "200").inc()
        try family.labels(["code": "200", "method": "GET"]).inc()
        #expect(family.seriesCount == 2)
        #expect(
            rendered(registry, .text) == """
                # HELP http_requests_total Requests.
                # TYPE http_requests_total counter
                http_requests_total{code="200",method="GET"} 2
                http_requests_total{code="500",method="POST"} 3

                """)
        #expect(
            rendered(registry, .openMetrics) == """
                # TYPE http_requests counter
                # HELP http_requests Requests.
                http_requests_total{code="200",method="GET"} 2
                http_requests_total{code="500",method="POST"} 3
                # EOF

                """)
    }

    @Test("an exemplar is written after the _total sample in OpenMetrics only")
    func exemplar() throws {
        let registry = plainRegistry()
        let c = try registry.counter("requests", help: "Requests.")
        c.inc(
            by: 2, exemplar: try Exemplar(labels: ["trace_id": "KOO5S4vxi0o"], value: 2, timestamp: 1_520_879_607.789))
        #expect(
            rendered(registry, .openMetrics) == """
                # TYPE requests counter
                # HELP requests Requests.
                requests_total 2 # {trace_id="KOO5S4vxi0o"} 2 1520879607.789
                # EOF

                """)
        #expect(lines(rendered(registry, .text), startingWith: "requests_total") == ["requests_total 2"])
        // The latest exemplar replaces the previous one.
        c.inc(by: 1, exemplar: try Exemplar(labels: ["trace_id": "b"], value: 1))
        #expect(
            lines(rendered(registry, .openMetrics), startingWith: "requests_total") == [
                "requests_total 3 # {trace_id=\"b\"} 1"
            ])
    }

    @Test("_created is written in OpenMetrics when enabled, as the creation time in Unix seconds")
    func created() throws {
        let before = Clock.unixSeconds()
        let registry = plainRegistry(emitCreated: true)
        let c = try registry.counter("requests", help: "Requests.")
        let after = Clock.unixSeconds()
        c.inc()
        let om = rendered(registry, .openMetrics)
        let createdLines = lines(om, startingWith: "requests_created ")
        try #require(createdLines.count == 1)
        let value = try #require(Double(createdLines[0].dropFirst("requests_created ".count)))
        #expect(value >= before && value <= after)
        // Order: the _total sample, then _created.
        #expect(lines(om, startingWith: "requests_").first == "requests_total 1")
        #expect(!rendered(registry, .text).contains("_created"))
        // Off by default.
        let plain = plainRegistry()
        _ = try plain.counter("requests", help: "Requests.")
        #expect(!rendered(plain, .openMetrics).contains("_created"))
    }
}
