import Testing

@testable import Exposition

@Suite("Histogram")
struct HistogramTests {
    /// Buckets 0.5, 1, 10 with observations 0.25, 0.5, 1, 5, 50 (sum 56.75).
    func sample(_ registry: Registry, unit: String = "") throws -> Histogram {
        let h = try registry.histogram("latency_seconds", help: "Latency.", unit: unit, buckets: [0.5, 1, 10])
        for v in [0.25, 0.5, 1, 5, 50] { h.observe(v) }
        return h
    }

    @Test("observe: bounds are inclusive, counts cumulative, count and sum")
    func operations() throws {
        let h = try sample(plainRegistry())
        #expect(h.count == 5)
        #expect(h.sum == 56.75)
        #expect(h.cumulativeCounts == [2, 3, 4, 5])
    }

    @Test("text 0.0.4 bytes: le in Go form, +Inf bucket equals _count")
    func renderText() throws {
        let registry = plainRegistry()
        _ = try sample(registry, unit: "seconds")
        #expect(
            rendered(registry, .text) == """
                # HELP latency_seconds Latency.
                # TYPE latency_seconds histogram
                latency_seconds_bucket{le="0.5"} 2
                latency_seconds_bucket{le="1"} 3
                latency_seconds_bucket{le="10"} 4
                latency_seconds_bucket{le="+Inf"} 5
                latency_seconds_sum 56.75
                latency_seconds_count 5

                """)
    }

    @Test("OpenMetrics bytes: le in canonical form")
    func renderOpenMetrics() throws {
        let registry = plainRegistry()
        _ = try sample(registry, unit: "seconds")
        #expect(
            rendered(registry, .openMetrics) == """
                # TYPE latency_seconds histogram
                # UNIT latency_seconds seconds
                # HELP latency_seconds Latency.
                latency_seconds_bucket{le="0.5"} 2
                latency_seconds_bucket{le="1.0"} 3
                latency_seconds_bucket{le="10.0"} 4
                latency_seconds_bucket{le="+Inf"} 5
                latency_seconds_sum 56.75
                latency_seconds_count 5
                # EOF

                """)
    }

    @Test("an empty histogram writes zero buckets, _sum 0 and _count 0")
    func empty() throws {
        let registry = plainRegistry()
        _ = try registry.histogram("h", help: "", buckets: [1])
        #expect(
            rendered(registry, .text) == """
                # TYPE h histogram
                h_bucket{le="1"} 0
                h_bucket{le="+Inf"} 0
                h_sum 0
                h_count 0

                """)
    }

    @Test("labels are sorted and le comes last")
    func labelled() throws {
        let registry = plainRegistry()
        let family = try registry.histogramFamily(
            "size_bytes", help: "", labelNames: ["model", "api"], buckets: [1e3, 1e6])
        try family.labels("m", "v1").observe(2e6)
        #expect(
            rendered(registry, .text) == """
                # TYPE size_bytes histogram
                size_bytes_bucket{api="v1",model="m",le="1000"} 0
                size_bytes_bucket{api="v1",model="m",le="1e+06"} 0
                size_bytes_bucket{api="v1",model="m",le="+Inf"} 1
                size_bytes_sum{api="v1",model="m"} 2000000
                size_bytes_count{api="v1",model="m"} 1

                """)
        #expect(
            lines(rendered(registry, .openMetrics), startingWith: "size_bytes_bucket") == [
                #"size_bytes_bucket{api="v1",model="m",le="1000.0"} 0"#,
                #"size_bytes_bucket{api="v1",model="m",le="1e+06"} 0"#,
                #"size_bytes_bucket{api="v1",model="m",le="+Inf"} 1"#,
            ])
    }

    @Test("the default buckets are client_golang's DefBuckets")
    func defaultBuckets() throws {
        let registry = plainRegistry()
        let h = try registry.histogram("d", help: "")
        #expect(h.cumulativeCounts.count == 12)
        let le = lines(rendered(registry), startingWith: "d_bucket").map {
            $0.split(separator: "\"")[1]
        }
        #expect(le == ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"])
    }

    @Test("NaN observations are refused and counted; infinities land in the edge buckets")
    func specialValues() throws {
        let registry = Registry()
        let family = try registry.histogramFamily("h", help: "", labelNames: [], buckets: [0, 1])
        let h = try family.labels()
        h.observe(.nan)
        h.observe(.nan, exemplar: try Exemplar(labels: [:], value: 1))
        #expect(h.count == 0)
        #expect(family.droppedUpdates.invalidValue == 2)
        #expect(
            lines(rendered(registry), startingWith: "mlops_exporter_updates_dropped_total{") == [
                #"mlops_exporter_updates_dropped_total{metric="h",reason="invalid_value"} 2"#
            ])
        h.observe(.infinity)
        #expect(h.cumulativeCounts == [0, 0, 1])
        #expect(h.sum == .infinity)
        #expect(lines(rendered(registry), startingWith: "h_sum") == ["h_sum +Inf"])
        h.observe(-.infinity)
        #expect(h.cumulativeCounts == [1, 1, 2])
        #expect(h.sum.isNaN)
    }

    @Test("negative bounds: OpenMetrics omits _sum and _count, text keeps them")
    func negativeBounds() throws {
        let registry = plainRegistry()
        let h = try registry.histogram("delta", help: "", buckets: [-1, 0, 1])
        h.observe(-2)
        h.observe(0.5)
        #expect(
            rendered(registry, .openMetrics) == """
                # TYPE delta histogram
                delta_bucket{le="-1.0"} 1
                delta_bucket{le="0.0"} 1
                delta_bucket{le="1.0"} 2
                delta_bucket{le="+Inf"} 2
                # EOF

                """)
        #expect(
            rendered(registry, .text) == """
                # TYPE delta histogram
                delta_bucket{le="-1"} 1
                delta_bucket{le="0"} 1
                delta_bucket{le="1"} 2
                delta_bucket{le="+Inf"} 2
                delta_sum -1.5
                delta_count 2

                """)
    }

    /// Buckets from 0 and a negative value observed: OpenMetrics leaves `_sum` and `_count` out from then on, whatever
    /// the sum's sign (before, the sum went down 5 → 4 as a counter, then both vanished while it was negative and came
    /// back with it positive: `_count` went stale in Prometheus). Text keeps them throughout.
    @Test("a negative observation with non-negative bounds drops _sum and _count for good in OpenMetrics")
    func negativeObservationKeepsSumOut() throws {
        let registry = plainRegistry()
        let h = try registry.histogram("value", help: "", buckets: [0, 1, 10])
        var sums: [[String]] = []
        for x in [5.0, -1, -10, 20, 30] {
            h.observe(x)
            sums.append(lines(rendered(registry, .openMetrics), startingWith: "value_sum"))
            #expect(lines(rendered(registry, .text), startingWith: "value_count") == ["value_count \(sums.count)"])
        }
        #expect(sums == [["value_sum 5"], [], [], [], []])
        #expect(lines(rendered(registry, .openMetrics), startingWith: "value_count").isEmpty)
        #expect(
            lines(rendered(registry, .openMetrics), startingWith: "value_bucket{le=\"+Inf\"}") == [
                #"value_bucket{le="+Inf"} 5"#
            ])
    }

    @Test("exemplars are attached to the observation's bucket, OpenMetrics only")
    func exemplars() throws {
        let registry = plainRegistry()
        let h = try registry.histogram("foo", help: "", buckets: [1, 10])
        h.observe(
            0.67, exemplar: try Exemplar(labels: ["trace_id": "KOO5S4vxi0o"], value: 0.67, timestamp: 1_520_879_607.789)
        )
        h.observe(20, exemplar: try Exemplar(labels: ["trace_id": "x"], value: 20))
        #expect(
            rendered(registry, .openMetrics) == """
                # TYPE foo histogram
                foo_bucket{le="1.0"} 1 # {trace_id="KOO5S4vxi0o"} 0.67 1520879607.789
                foo_bucket{le="10.0"} 1
                foo_bucket{le="+Inf"} 2 # {trace_id="x"} 20
                foo_sum 20.67
                foo_count 2
                # EOF

                """)
        #expect(!rendered(registry, .text).contains("#  {"))
        #expect(!rendered(registry, .text).contains("trace_id"))
    }

    @Test("_created follows _count in OpenMetrics when enabled")
    func created() throws {
        let registry = plainRegistry(emitCreated: true)
        _ = try registry.histogram("h", help: "", buckets: [1])
        let om = lines(rendered(registry, .openMetrics), startingWith: "h_")
        #expect(om.count == 5)
        #expect(om[3] == "h_count 0")
        #expect(om[4].hasPrefix("h_created "))
        #expect(!rendered(registry, .text).contains("h_created"))
    }
}

@Suite("Buckets")
struct BucketTests {
    func register(_ buckets: [Double]) throws(ExpositionError) {
        _ = try plainRegistry().histogram("h", help: "", buckets: buckets)
    }

    @Test("unsorted bounds are refused (swift-prometheus defect 4)")
    func unsorted() {
        #expect(
            throws: ExpositionError.invalidBuckets(metric: "h", reason: "bounds must increase strictly (1.0 then 0.5)")
        ) {
            try register([1, 0.5])
        }
    }

    @Test("duplicate bounds are refused")
    func duplicate() {
        #expect(throws: ExpositionError.invalidBuckets(metric: "h", reason: "duplicate bound 1.0")) {
            try register([0.5, 1, 1, 2])
        }
    }

    @Test(
        "non-finite bounds other than a trailing +Inf are refused",
        arguments: [[Double.nan], [0.5, .nan], [-Double.infinity, 1], [1, .infinity, 2], [.infinity, .infinity]])
    func nonFinite(bounds: [Double]) {
        #expect {
            try register(bounds)
        } throws: { error in
            guard case .invalidBuckets(metric: "h", let reason) = error as? ExpositionError else { return false }
            return reason.hasSuffix("is not finite") || reason.hasPrefix("at least one")
        }
    }

    @Test("no finite bound is refused", arguments: [[], [Double.infinity]])
    func empty(bounds: [Double]) {
        #expect(throws: ExpositionError.invalidBuckets(metric: "h", reason: "at least one finite bound is needed")) {
            try register(bounds)
        }
    }

    @Test("a trailing +Inf is dropped: exactly one le=\"+Inf\" bucket (swift-prometheus defect 4)")
    func trailingInfinity() throws {
        let registry = plainRegistry()
        let h = try registry.histogram("h", help: "", buckets: [1, .infinity])
        h.observe(5)
        #expect(h.cumulativeCounts == [0, 1])
        #expect(
            lines(rendered(registry), startingWith: "h_bucket") == [#"h_bucket{le="1"} 0"#, #"h_bucket{le="+Inf"} 1"#])
    }

    @Test("linear buckets")
    func linear() throws {
        #expect(try Buckets.linear(start: 1, width: 2, count: 3) == [1, 3, 5])
        #expect(try Buckets.linear(start: -1, width: 0.5, count: 4) == [-1, -0.5, 0, 0.5])
        #expect(throws: ExpositionError.self) { try Buckets.linear(start: 0, width: 1, count: 0) }
        #expect(throws: ExpositionError.self) { try Buckets.linear(start: 0, width: 0, count: 3) }
        #expect(throws: ExpositionError.self) { try Buckets.linear(start: 0, width: -1, count: 3) }
        #expect(throws: ExpositionError.self) { try Buckets.linear(start: .nan, width: 1, count: 3) }
        #expect(throws: ExpositionError.self) { try Buckets.linear(start: 0, width: .infinity, count: 3) }
    }

    @Test("exponential buckets")
    func exponential() throws {
        #expect(try Buckets.exponential(start: 1, factor: 2, count: 4) == [1, 2, 4, 8])
        #expect(try Buckets.exponential(start: 0.001, factor: 10, count: 1) == [0.001])
        #expect(throws: ExpositionError.self) { try Buckets.exponential(start: 1, factor: 2, count: 0) }
        #expect(throws: ExpositionError.self) { try Buckets.exponential(start: 0, factor: 2, count: 3) }
        #expect(throws: ExpositionError.self) { try Buckets.exponential(start: -1, factor: 2, count: 3) }
        #expect(throws: ExpositionError.self) { try Buckets.exponential(start: 1, factor: 1, count: 3) }
        #expect(throws: ExpositionError.self) { try Buckets.exponential(start: 1, factor: 0.5, count: 3) }
    }

    @Test("exponential range buckets: both ends exact, constant ratio")
    func exponentialRange() throws {
        let b = try Buckets.exponentialRange(min: 1, max: 1000, count: 4)
        #expect(b.count == 4)
        #expect(b.first == 1)
        #expect(b.last == 1000)
        #expect(abs(b[1] - 10) < 1e-9)
        #expect(abs(b[2] - 100) < 1e-9)
        let two = try Buckets.exponentialRange(min: 0.5, max: 8, count: 2)
        #expect(two == [0.5, 8])
        #expect(throws: ExpositionError.self) { try Buckets.exponentialRange(min: 1, max: 10, count: 1) }
        #expect(throws: ExpositionError.self) { try Buckets.exponentialRange(min: 0, max: 10, count: 3) }
        #expect(throws: ExpositionError.self) { try Buckets.exponentialRange(min: 10, max: 10, count: 3) }
        #expect(throws: ExpositionError.self) { try Buckets.exponentialRange(min: 10, max: 1, count: 3) }
        #expect(throws: ExpositionError.self) { try Buckets.exponentialRange(min: 1, max: .infinity, count: 3) }
        // The helpers' output is accepted by a histogram.
        _ = try plainRegistry().histogram("h", help: "", buckets: b)
    }
}
