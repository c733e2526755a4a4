import Testing

@testable import Exposition

@Suite("Summary")
struct SummaryTests {
    @Test("without quantiles: _sum and _count only, both formats")
    func plain() throws {
        let registry = plainRegistry()
        let s = try registry.summary("rpc_seconds", help: "RPC.", unit: "seconds")
        for v in [1, 2, 3.5] { s.observe(v) }
        #expect(s.observationCount == 3)
        #expect(s.sum == 6.5)
        #expect(s.quantileValues == [])
        #expect(
            rendered(registry, .text) == """
                # HELP rpc_seconds RPC.
                # TYPE rpc_seconds summary
                rpc_seconds_sum 6.5
                rpc_seconds_count 3

                """)
        #expect(
            rendered(registry, .openMetrics) == """
                # TYPE rpc_seconds summary
                # UNIT rpc_seconds seconds
                # HELP rpc_seconds RPC.
                rpc_seconds_sum 6.5
                rpc_seconds_count 3
                # EOF

                """)
    }

    @Test("with quantiles: nearest-rank values, ascending quantile labels in both formats")
    func quantiles() throws {
        let registry = plainRegistry()
        let s = try registry.summary("rpc_seconds", help: "RPC.", quantiles: SummaryQuantiles(quantiles: [0.9, 0.5]))
        for v in [7, 3, 10, 1, 5, 9, 2, 8, 4, 6] as [Double] { s.observe(v) }
        #expect(s.quantileValues == [5, 9])
        let samples = """
            rpc_seconds{quantile="0.5"} 5
            rpc_seconds{quantile="0.9"} 9
            rpc_seconds_sum 55
            rpc_seconds_count 10

            """
        #expect(rendered(registry, .text) == "# HELP rpc_seconds RPC.\n# TYPE rpc_seconds summary\n" + samples)
        #expect(
            rendered(registry, .openMetrics) == "# TYPE rpc_seconds summary\n# HELP rpc_seconds RPC.\n" + samples
                + "# EOF\n")
    }

    @Test("nearest rank over 1...100 in shuffled order")
    func nearestRank() throws {
        let registry = plainRegistry()
        let s = try registry.summary(
            "s", help: "", quantiles: SummaryQuantiles(quantiles: [0.01, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999]))
        var rng = SplitMix64(seed: 7)
        for v in (1...100).shuffled(using: &rng) { s.observe(Double(v)) }
        // ceil(q·n)-th smallest: 1, 25, 50, 75, 90, 99, 100.
        #expect(s.quantileValues == [1, 25, 50, 75, 90, 99, 100])
        #expect(
            lines(rendered(registry), startingWith: "s{") == [
                #"s{quantile="0.01"} 1"#, #"s{quantile="0.25"} 25"#, #"s{quantile="0.5"} 50"#,
                #"s{quantile="0.75"} 75"#, #"s{quantile="0.9"} 90"#, #"s{quantile="0.99"} 99"#,
                #"s{quantile="0.999"} 100"#,
            ])
    }

    @Test("a single observation is every quantile")
    func single() throws {
        let s = try plainRegistry().summary("s", help: "", quantiles: SummaryQuantiles(quantiles: [0.01, 0.99]))
        s.observe(-4.5)
        #expect(s.quantileValues == [-4.5, -4.5])
    }

    @Test("quantiles are NaN with no observations (OpenMetrics)")
    func noObservations() throws {
        let registry = plainRegistry()
        let s = try registry.summary("s", help: "", quantiles: SummaryQuantiles(quantiles: [0.5, 0.99]))
        #expect(s.quantileValues.count == 2)
        #expect(s.quantileValues.allSatisfy { $0.isNaN })
        #expect(
            rendered(registry, .openMetrics) == """
                # TYPE s summary
                s{quantile="0.5"} NaN
                s{quantile="0.99"} NaN
                s_sum 0
                s_count 0
                # EOF

                """)
    }

    @Test("window rotation drops old observations and keeps newer ones")
    func windowRotation() throws {
        // 100 s window in 5 steps of 20 s; `now` is synthetic, observations happen at real time.
        let s = try plainRegistry().summary(
            "s", help: "", quantiles: SummaryQuantiles(quantiles: [0.5], maxAge: .seconds(100), ageBuckets: 5))
        let t0 = Clock.monotonicNanos()
        let step = nanos(seconds: 20)
        for _ in 0..<3 { s.observe(1) }
        #expect(s.quantileValues(now: t0) == [1])
        // Four steps later the first step is still in the window.
        #expect(s.quantileValues(now: t0 + 4 * step + 1) == [1])
        // New observations land in the current step (the fifth).
        for _ in 0..<3 { s.observe(7) }
        #expect(s.quantileValues(now: t0 + 4 * step + 2) == [1])
        // One more step: the first step leaves the window, the newer observations remain.
        #expect(s.quantileValues(now: t0 + 5 * step + 1) == [7])
        // A full window later nothing is left.
        let empty = s.quantileValues(now: t0 + 10 * step + 1)
        #expect(empty.count == 1 && empty[0].isNaN)
        // Count and sum are cumulative, not windowed.
        #expect(s.observationCount == 6)
        #expect(s.sum == 24)
    }

    @Test("a jump of many windows clears everything at once")
    func longJump() throws {
        let s = try plainRegistry().summary(
            "s", help: "", quantiles: SummaryQuantiles(quantiles: [0.5], maxAge: .seconds(10), ageBuckets: 2))
        let t0 = Clock.monotonicNanos()
        s.observe(3)
        let later = s.quantileValues(now: t0 + nanos(seconds: 1_000_000))
        #expect(later.count == 1 && later[0].isNaN)
        s.observe(4)
        #expect(s.quantileValues(now: t0 + nanos(seconds: 1_000_000)) == [4])
    }

    @Test("past the sample cap, quantiles come from a uniform sample; count and sum stay exact")
    func reservoir() throws {
        let s = try plainRegistry().summary(
            "s", help: "", quantiles: SummaryQuantiles(quantiles: [0.5], maxSamplesPerBucket: 100))
        for v in 1...10_000 { s.observe(Double(v)) }
        #expect(s.observationCount == 10_000)
        #expect(s.sum == 50_005_000)
        let median = try #require(s.quantileValues.first)
        #expect(median == median.rounded() && median >= 1 && median <= 10_000)
        // A uniform sample of 100 has its median well inside the middle half.
        #expect(median > 2_500 && median < 7_500)
    }

    @Test("NaN observations are refused and counted")
    func nan() throws {
        let registry = Registry()
        let family = try registry.summaryFamily(
            "s", help: "", labelNames: [], quantiles: SummaryQuantiles(quantiles: [0.5]))
        let s = try family.labels()
        s.observe(.nan)
        s.observe(2)
        #expect(s.observationCount == 1)
        #expect(s.quantileValues == [2])
        #expect(family.droppedUpdates.invalidValue == 1)
        #expect(
            lines(rendered(registry), startingWith: "mlops_exporter_updates_dropped_total{") == [
                #"mlops_exporter_updates_dropped_total{metric="s",reason="invalid_value"} 1"#
            ])
    }

    @Test("labelled summary: quantile label last")
    func labelled() throws {
        let registry = plainRegistry()
        let family = try registry.summaryFamily(
            "s", help: "", labelNames: ["method"], quantiles: SummaryQuantiles(quantiles: [0.5]))
        try family.labels("GET").observe(0.25)
        #expect(
            rendered(registry, .text) == """
                # TYPE s summary
                s{method="GET",quantile="0.5"} 0.25
                s_sum{method="GET"} 0.25
                s_count{method="GET"} 1

                """)
    }

    @Test(
        "invalid quantile options are refused",
        arguments: [
            SummaryQuantiles(quantiles: [0]), SummaryQuantiles(quantiles: [1]), SummaryQuantiles(quantiles: [1.5]),
            SummaryQuantiles(quantiles: [-0.5]), SummaryQuantiles(quantiles: [.nan]),
            SummaryQuantiles(quantiles: [0.5, 0.5]), SummaryQuantiles(ageBuckets: 0),
            SummaryQuantiles(maxSamplesPerBucket: 0), SummaryQuantiles(maxAge: .zero),
            SummaryQuantiles(maxAge: .seconds(-1)),
        ])
    func invalidOptions(options: SummaryQuantiles) {
        #expect {
            try plainRegistry().summary("s", help: "", quantiles: options)
        } throws: { error in
            guard case .invalidQuantiles(metric: "s", _) = error as? ExpositionError else { return false }
            return true
        }
    }

    @Test("_created follows _count in OpenMetrics when enabled")
    func created() throws {
        let registry = plainRegistry(emitCreated: true)
        _ = try registry.summary("s", help: "")
        let om = lines(rendered(registry, .openMetrics), startingWith: "s_")
        #expect(om.count == 3)
        #expect(om[0] == "s_sum 0")
        #expect(om[1] == "s_count 0")
        #expect(om[2].hasPrefix("s_created "))
    }
}
