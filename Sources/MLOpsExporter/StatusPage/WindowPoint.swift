import Exposition

/// A model's cumulative counts at one instant, as the status page needs them for rates over the window: the
/// difference of two points is what happened between them. Taken from a ``MetricSnapshot`` of the model's
/// parts (the same figures `/metrics` shows), summed over versions.
struct WindowPoint: Sendable {
    /// Unix seconds.
    var time: Double
    /// `mlops_model_requests_total`, ok and error.
    var ok: Double = 0
    var errors: Double = 0
    /// `mlops_model_latency_seconds` buckets (own counts per bucket, `+Inf` last).
    var latency = Buckets()
    /// `mlops_labels_joined_total`, both sources.
    var joined: Double = 0
    /// `mlops_labels_join_delay_seconds` buckets.
    var joinDelay = Buckets()
    /// `mlops_llm_time_to_first_token_seconds` and `mlops_llm_time_per_output_token_seconds` buckets.
    var ttft = Buckets()
    var tpot = Buckets()
    /// `mlops_llm_requests_total` not cancelled, and `mlops_llm_requests_within_objective_total{objective="all"}`.
    var llmRequests: Double = 0
    var llmGood: Double = 0

    /// A histogram's buckets summed over series.
    struct Buckets: Sendable {
        var bounds: [Double] = []
        var counts: [Double] = []

        var total: Double { counts.reduce(0, +) }

        mutating func add(_ h: MetricSnapshot.HistogramValue) {
            if bounds.isEmpty {
                bounds = h.bounds
                counts = h.counts.map { Double($0) }  // (`map(Double.init)` took init(bitPattern:))
            } else if bounds == h.bounds {
                for i in counts.indices { counts[i] += Double(h.counts[i]) }
            }
        }

        /// `self - earlier`, per bucket; the whole of `self` when the bounds changed or a count went down
        /// (the series restarted), as Prometheus's `increase` treats a reset.
        func since(_ earlier: Buckets) -> Buckets {
            guard earlier.bounds == bounds, earlier.counts.count == counts.count,
                zip(counts, earlier.counts).allSatisfy({ $0 >= $1 })
            else { return self }
            return Buckets(bounds: bounds, counts: zip(counts, earlier.counts).map { $0 - $1 })
        }

        /// The counts of `self` and `later` added per bucket; `later` alone when the bounds changed (the series
        /// restarted with other buckets) or `self` has none, `self` when `later` has none.
        func plus(_ later: Buckets) -> Buckets {
            if later.bounds.isEmpty { return self }
            guard bounds == later.bounds, counts.count == later.counts.count else { return later }
            return Buckets(bounds: bounds, counts: zip(counts, later.counts).map { $0 + $1 })
        }

        /// The `q` quantile as Prometheus's `histogram_quantile` computes it (linear within a bucket, the
        /// first bucket starting at 0 when its bound is positive, the highest finite bound for the `+Inf`
        /// bucket); nil without observations.
        func quantile(_ q: Double) -> Double? {
            let total = self.total
            guard total > 0, !bounds.isEmpty else { return nil }
            let rank = q * total
            var below = 0.0
            for i in counts.indices {
                guard below + counts[i] >= rank else {
                    below += counts[i]
                    continue
                }
                if i == bounds.count { return bounds[bounds.count - 1] }
                let upper = bounds[i]
                if i == 0 && upper <= 0 { return upper }
                let lower = i == 0 ? 0 : bounds[i - 1]
                guard counts[i] > 0 else { return lower }
                return lower + (upper - lower) * (rank - below) / counts[i]
            }
            return bounds[bounds.count - 1]
        }

        /// Whether the `q`-quantile lies beyond the highest finite bound (in the `+Inf` bucket), where
        /// ``quantile(_:)`` gives that bound, as `histogram_quantile` does: a floor, not a measure.
        func isBeyondBounds(_ q: Double) -> Bool {
            let total = self.total
            guard total > 0, !bounds.isEmpty, counts.count > bounds.count else { return false }
            return total - counts[bounds.count] < q * total
        }

        /// The share of observations at or below `bound` (a bucket bound), nil without observations or when
        /// `bound` is not one.
        func share(atMost bound: Double) -> Double? {
            let total = self.total
            guard total > 0, let i = bounds.firstIndex(where: { abs($0 - bound) <= 1e-12 * max(1, abs(bound)) })
            else { return nil }
            return counts[0...i].reduce(0, +) / total
        }
    }

    init(time: Double) { self.time = time }

    /// The families a point is read from.
    static let families = FamilySelection([
        "mlops_model_requests_total", "mlops_model_latency_seconds", "mlops_labels_joined_total",
        "mlops_labels_join_delay_seconds", "mlops_llm_time_to_first_token_seconds",
        "mlops_llm_time_per_output_token_seconds", "mlops_llm_requests_total",
        "mlops_llm_requests_within_objective_total",
    ])

    /// The point of `model` in `snapshot`.
    init(model: String, snapshot: MetricSnapshot, time: Double) {
        self.time = time
        let m = ["model": model]
        for s in snapshot.samples("mlops_model_requests_total", matching: m) {
            if s.label("status") == "error" { errors += s.value } else { ok += s.value }
        }
        for s in snapshot.samples("mlops_model_latency_seconds", matching: m) { s.histogram.map { latency.add($0) } }
        joined = snapshot.sum("mlops_labels_joined_total", m)
        for s in snapshot.samples("mlops_labels_join_delay_seconds", matching: m) {
            s.histogram.map { joinDelay.add($0) }
        }
        for s in snapshot.samples("mlops_llm_time_to_first_token_seconds", matching: m) {
            s.histogram.map { ttft.add($0) }
        }
        for s in snapshot.samples("mlops_llm_time_per_output_token_seconds", matching: m) {
            s.histogram.map { tpot.add($0) }
        }
        for s in snapshot.samples("mlops_llm_requests_total", matching: m) where s.label("outcome") != "cancelled" {
            llmRequests += s.value
        }
        llmGood = snapshot.sum("mlops_llm_requests_within_objective_total", ["model": model, "objective": "all"])
    }
}

/// What happened between two points, or along a run of points (the sum of the changes between each two in
/// turn): counts and buckets, and the seconds from the first point to the last.
struct WindowChange: Sendable {
    private(set) var seconds: Double
    private(set) var ok: Double
    private(set) var errors: Double
    private(set) var latency: WindowPoint.Buckets
    private(set) var joined: Double
    private(set) var joinDelay: WindowPoint.Buckets
    private(set) var ttft: WindowPoint.Buckets
    private(set) var tpot: WindowPoint.Buckets
    private(set) var llmRequests: Double
    private(set) var llmGood: Double

    /// Along `points` (at least two, oldest first): a count that went down between two of them restarted there, and
    /// counts from zero from that point on, as `increase()` reads samples (from the first and last points alone, a
    /// count that restarted and grew past its old value lost the old value, and one that did not lost the increase
    /// before the restart).
    init(along points: [WindowPoint]) {
        precondition(points.count >= 2)
        var total = WindowChange(from: points[0], to: points[1])
        for i in points.indices.dropFirst(2) {
            let next = WindowChange(from: points[i - 1], to: points[i])
            total.seconds += next.seconds
            total.ok += next.ok
            total.errors += next.errors
            total.latency = total.latency.plus(next.latency)
            total.joined += next.joined
            total.joinDelay = total.joinDelay.plus(next.joinDelay)
            total.ttft = total.ttft.plus(next.ttft)
            total.tpot = total.tpot.plus(next.tpot)
            total.llmRequests += next.llmRequests
            total.llmGood += next.llmGood
        }
        self = total
    }

    init(from a: WindowPoint, to b: WindowPoint) {
        func delta(_ x: Double, _ y: Double) -> Double { y >= x ? y - x : y }
        seconds = b.time - a.time
        ok = delta(a.ok, b.ok)
        errors = delta(a.errors, b.errors)
        latency = b.latency.since(a.latency)
        joined = delta(a.joined, b.joined)
        joinDelay = b.joinDelay.since(a.joinDelay)
        ttft = b.ttft.since(a.ttft)
        tpot = b.tpot.since(a.tpot)
        llmRequests = delta(a.llmRequests, b.llmRequests)
        llmGood = delta(a.llmGood, b.llmGood)
    }

    var requests: Double { ok + errors }
    var requestRate: Double? { seconds > 0 ? requests / seconds : nil }
    var errorRatio: Double? { requests > 0 ? errors / requests : nil }
    var joinRate: Double? { seconds > 0 ? joined / seconds : nil }
}
