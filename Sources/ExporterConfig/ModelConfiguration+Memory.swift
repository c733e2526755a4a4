extension ModelConfiguration {
    /// Bytes a pending prediction takes in the label join's store (``maxPending`` of them, allocated when the model
    /// is built): the ring's key, time and payload with a quarter more slots, the id index and the dropped-id
    /// table. Measured: `max_pending: 100000000` asked for 562,500,032 bytes of payloads per shard group.
    public static let pendingEntryBytes = 128
    /// Bytes a drift column takes per window slice at most: 8 per counter, a numeric column's reference bins, its
    /// 1,000 fine bins (KS, Wasserstein), listed values, tails and missing count.
    public static let driftColumnSliceBytes = 1_040 * 8

    /// The memory this model's state takes once built, estimated from above for the built-in stores that grow with
    /// the configuration: the label join's pending predictions (`max_pending`, with `quality` or `fairness`) and
    /// the drift collector's window (its features, the prediction and the score, times the window's slices and
    /// the running totals). What traffic adds is bounded elsewhere (`max_series`, the pending store's own bound).
    public var estimatedStateBytes: (pending: Int, drift: Int) {
        let names = Set(collectors.map(\.name))
        let pending = names.contains("quality") || names.contains("fairness") ? maxPending * Self.pendingEntryBytes : 0
        let drift =
            names.contains("drift")
            ? (features.count + 2) * (window.slices + 2) * Self.driftColumnSliceBytes : 0
        return (pending, drift)
    }
}
