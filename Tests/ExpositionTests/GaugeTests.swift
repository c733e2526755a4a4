import Testing

@testable import Exposition

@Suite("Gauge")
struct GaugeTests {
    @Test("set, inc, dec")
    func operations() throws {
        let registry = plainRegistry()
        let g = try registry.gauge("queue_depth", help: "Depth.")
        #expect(g.value == 0)
        g.set(10)
        #expect(g.value == 10)
        g.inc()
        g.inc(by: 2.5)
        #expect(g.value == 13.5)
        g.dec()
        g.dec(by: 20)
        #expect(g.value == -7.5)
        g.inc(by: -0.5)
        #expect(g.value == -8)
    }

    @Test("setToCurrentTime sets Unix seconds")
    func currentTime() throws {
        let registry = plainRegistry()
        let g = try registry.gauge("last_run_timestamp_seconds", help: "Last run.", unit: "seconds")
        let before = Clock.unixSeconds()
        g.setToCurrentTime()
        let after = Clock.unixSeconds()
        #expect(g.value >= before && g.value <= after)
        #expect(g.value > 1_600_000_000)
    }

    @Test("text 0.0.4 and OpenMetrics bytes")
    func render() throws {
        let registry = plainRegistry()
        let g = try registry.gauge("temperature_celsius", help: "Temperature.", unit: "celsius")
        g.set(-3.5)
        #expect(
            rendered(registry, .text) == """
                # HELP temperature_celsius Temperature.
                # TYPE temperature_celsius gauge
                temperature_celsius -3.5

                """)
        #expect(
            rendered(registry, .openMetrics) == """
                # TYPE temperature_celsius gauge
                # UNIT temperature_celsius celsius
                # HELP temperature_celsius Temperature.
                temperature_celsius -3.5
                # EOF

                """)
    }

    @Test(
        "values are written as both formats require",
        arguments: [
            (0.0, "0"), (42, "42"), (-42, "-42"), (0.25, "0.25"), (1e-5, "1e-05"), (1e6, "1000000"),
            (1e300, "1e+300"), (Double.nan, "NaN"), (Double.infinity, "+Inf"), (-Double.infinity, "-Inf"),
        ] as [(Double, String)])
    func values(value: Double, expected: String) throws {
        let registry = plainRegistry()
        let g = try registry.gauge("g", help: "")
        g.set(value)
        #expect(rendered(registry, .text) == "# TYPE g gauge\ng \(expected)\n")
        #expect(rendered(registry, .openMetrics) == "# TYPE g gauge\ng \(expected)\n# EOF\n")
    }

    @Test("empty help writes no HELP line")
    func emptyHelp() throws {
        let registry = plainRegistry()
        try registry.gauge("g", help: "").set(1)
        #expect(rendered(registry, .text) == "# TYPE g gauge\ng 1\n")
    }

    @Test("labelled gauges")
    func labelled() throws {
        let registry = plainRegistry()
        let family = try registry.gaugeFamily("model_drift", help: "Drift.", labelNames: ["version", "model"])
        try family.labels("2", "resnet").set(0.125)
        try family.labels("1", "resnet").set(0.5)
        try family.labels("1", "bert").set(1)
        #expect(
            rendered(registry, .text) == """
                # HELP model_drift Drift.
                # TYPE model_drift gauge
                model_drift{model="bert",version="1"} 1
                model_drift{model="resnet",version="1"} 0.5
                model_drift{model="resnet",version="2"} 0.125

                """)
    }

    @Test("a gauge never counts drops: NaN and infinities are legal values")
    func noDrops() throws {
        let registry = Registry()
        let family = try registry.gaugeFamily("g", help: "G.", labelNames: [])
        try family.labels().set(.nan)
        try family.labels().inc(by: .infinity)
        #expect(family.droppedUpdates == (0, 0))
        #expect(!rendered(registry).contains("updates_dropped"))
    }
}
