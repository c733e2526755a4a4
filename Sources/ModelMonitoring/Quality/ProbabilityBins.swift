/// Equal-width bins over [0, 1] and the statistics computed from binned probabilities: the expected
/// calibration error and the binned ROC AUC with its error bound. Pure functions, shared by the collector
/// and its tests.
public enum ProbabilityBins {
    /// The bin of probability `p` in [0, 1] among `bins` equal-width bins, as scikit-learn's
    /// `calibration_curve(strategy="uniform")` assigns it: the number of interior edges
    /// `i · (1 / bins)` (numpy's `linspace(0, 1, bins + 1)`) lying strictly below `p`. Bin `b` (0-based)
    /// covers `(b/bins, (b+1)/bins]`, and bin 0 also holds 0. Non-decreasing in `p`; O(1).
    @inline(__always)
    public static func index(_ p: Double, bins: Int) -> Int {
        let step = 1 / Double(bins)
        var b = Swift.min(Swift.max(Int(p * Double(bins)), 0), bins &- 1)
        // Correct the estimate against the edges themselves (at most a step either way).
        while b > 0 && Double(b) * step >= p { b &-= 1 }
        while b < bins &- 1 && Double(b &+ 1) * step < p { b &+= 1 }
        return b
    }

    /// Expected calibration error from per-bin counts `n`, probability sums `probabilities` and positive
    /// counts `positives`: `Σ_b (n_b / N) · |mean(y)_b − mean(p)_b|`, empty bins skipped. NaN when N = 0.
    public static func expectedCalibrationError(
        counts n: [Double], probabilities: [Double], positives: [Double]
    )
        -> Double
    {
        let total = n.reduce(0, +)
        guard total > 0 else { return .nan }
        var ece = 0.0
        for b in 0..<n.count where n[b] > 0 {
            ece += n[b] / total * abs(positives[b] / n[b] - probabilities[b] / n[b])
        }
        return ece
    }

    /// ROC AUC from per-bin counts of positives and negatives (bins in increasing score order), a pair
    /// within one bin counting 1/2; and the bound on its distance from the exact AUC of the raw scores,
    /// `Σ_b pos_b · neg_b / (2 · P · N)`.
    ///
    /// Derivation: the exact AUC is `(1 / P·N) Σ_{pairs} [s⁺ > s⁻] + ½ [s⁺ = s⁻]`. Binning is
    /// non-decreasing in the score, so a pair in different bins is ordered by its bins exactly as by its
    /// scores and contributes the same to both; a pair in the same bin contributes ½ to the binned AUC
    /// and something in [0, 1] to the exact one, an error of at most ½. Summing over the `pos_b · neg_b`
    /// same-bin pairs gives the bound. It is attained when every same-bin pair is ordered the same way.
    /// Nil when either class is absent (AUC is undefined, as in scikit-learn).
    public static func rocAUC(positives: [Double], negatives: [Double]) -> (auc: Double, bound: Double)? {
        let p = positives.reduce(0, +)
        let n = negatives.reduce(0, +)
        guard p > 0, n > 0 else { return nil }
        var below = 0.0
        var area = 0.0
        var ties = 0.0
        for b in 0..<positives.count {
            area += positives[b] * (below + negatives[b] / 2)
            ties += positives[b] * negatives[b]
            below += negatives[b]
        }
        return (area / (p * n), ties / (2 * p * n))
    }
}
