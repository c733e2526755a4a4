extension ModelConfiguration {
    /// Bytes a pending prediction takes in the label join's store (``maxPending`` of them, allocated when the model
    /// is built): the ring's key, time and payload with a quarter more slots, the id index and the dropped-id
    /// table. Measured: `max_pending: 100000000` asked for 562,500,032 bytes of payloads per shard group.
    public static let pendingEntryBytes = 128
    /// Bytes a drift column takes per window slice at most: 8 per counter, a numeric column's reference bins, its
    /// 1,000 fine bins (KS, Wasserstein), listed values, tails and missing count.
    public static let driftColumnSliceBytes = 1_040 * 8

    /// The memory this model's state takes once built, estimated from above for the built-in stores that grow with
    /// the configuration: the label join's pending predictions (`max_pending`, with `quality` or `fairness`), the
    /// drift collector's window (its features, the prediction and the score, times the window's slices and the
    /// running totals), and the quality and fairness collectors' windows (`windows`: per version a classifier's
    /// confusion matrix, K² for K classes and `__other__`, and a binary one's calibration and score bins; per
    /// sensitive group six counts; times the slices and the totals: 40 models of 60 classes over 1,000 slices took
    /// 2.4 GB uncounted). What traffic adds is bounded elsewhere (`max_series`, the pending store's own bound).
    public var estimatedStateBytes: (pending: Int, drift: Int, windows: Int) {
        let names = Set(collectors.map(\.name))
        let pending = names.contains("quality") || names.contains("fairness") ? maxPending * Self.pendingEntryBytes : 0
        let drift =
            names.contains("drift")
            ? (features.count + 2) * (window.slices + 2) * Self.driftColumnSliceBytes : 0
        var slots = 0
        if let quality = collectors.first(where: { $0.name == "quality" }) {
            slots += (versions.count + 1) * qualitySlotsPerVersion(quality)
        }
        if names.contains("fairness") {
            slots += sensitiveAttributes.reduce(0) { $0 + ($1.groups.count + 1) * 6 }
        }
        // Each slice, the totals since start and the window's cached totals.
        return (pending, drift, slots * (window.slices + 2) * 8)
    }

    /// The quality collector's slots per version and slice (its layout: `ClassificationQuality`, 14 for regression).
    private func qualitySlotsPerVersion(_ quality: CollectorConfiguration) -> Int {
        switch task {
        case .regression: return 14
        case .textGeneration: return 0
        case .binaryClassification, .multiclassClassification:
            let k = classes.count + 1
            guard task == .binaryClassification, positiveClass != nil else { return k * k + 4 }
            func option(_ name: String, _ fallback: Int) -> Int {
                if case .number(let n)? = quality.options[name], n.isFinite, n >= 0, n <= 1e6 { return Int(n) }
                return fallback
            }
            return k * k + 4 + 3 * option("calibration_bins", 10) + 2 * option("score_bins", 1000)
        }
    }
}
