extension ModelConfiguration {
    /// Bytes a pending prediction takes in the label join's store (``maxPending`` of them, allocated when the model
    /// is built): the ring's key, time and payload with a quarter more slots, the id index and the dropped-id
    /// table. Measured: `max_pending: 100000000` asked for 562,500,032 bytes of payloads per shard group.
    public static let pendingEntryBytes = 128
    /// Bytes a drift column takes per window slice at most: 8 per counter, a numeric column's reference bins, its
    /// 1,000 fine bins (KS, Wasserstein), listed values, tails and missing count. A categorical feature with more
    /// listed values takes 8 bytes per value and 8 more slots (``driftColumnSlots(_:)``).
    public static let driftColumnSliceBytes = 1_040 * 8
    /// Bytes of one series' pre-built label set (its rendered labels and their storage): the drift collector builds
    /// two per bin of each column up front with `bin_series` (its default). Measured: 40 categorical features of
    /// 5,000 values took 240 MB at start whatever the window, 600 bytes a series.
    public static let seriesLabelBytes = 600
    /// The bins a numeric column is assumed to have for its bin series (a reference profile's default 10, and two
    /// tails): the profile, which has the real count, is not read here.
    static let numericSeriesBins = 12
    /// The bins a categorical feature whose values a profile learns is assumed to have: `profile`'s default
    /// `--max-categories` (50), `__other__` and missing. A profile made with more is not counted here.
    static let learnedCategorySeriesBins = 52

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
        var drift = 0
        if let collector = collectors.first(where: { $0.name == "drift" }) {
            // The features, the prediction and the score; a categorical feature of many listed values takes more
            // than the fixed size (40 features of 5,000 values over 168 slices took 2 GB that the estimate put at
            // 300 MB), and its bin series' label sets are built at start.
            let slots = features.reduce(0) { $0 + Self.driftColumnSlots($1) } + 2 * Self.driftColumnSliceBytes / 8
            drift = slots * (window.slices + 2) * 8
            if collector.options["bin_series"] != .bool(false) {
                // A categorical feature's listed (or learned) values, `__other__` and missing; a numeric one's
                // reference bins; the prediction's classes (a regressor's bins) and the score's bins.
                var bins = features.reduce(0) { total, feature in
                    guard feature.kind == .categorical else { return total + Self.numericSeriesBins }
                    return total + (feature.values.map { $0.count + 2 } ?? Self.learnedCategorySeriesBins)
                }
                bins += (classes.isEmpty ? Self.numericSeriesBins : classes.count + 2) + Self.numericSeriesBins
                drift += 2 * bins * Self.seriesLabelBytes
            }
        }
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

    /// The 8-byte slots a drift column of `feature` takes per slice: the fixed size, or a categorical feature's listed
    /// values with `__other__`, missing and the running sums when they are more.
    static func driftColumnSlots(_ feature: FeatureConfiguration) -> Int {
        max(Self.driftColumnSliceBytes / 8, feature.kind == .categorical ? (feature.values?.count ?? 0) + 8 : 0)
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
