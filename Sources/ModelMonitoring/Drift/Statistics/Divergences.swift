#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The drift statistics: pure functions of bin counts (or fine histograms), with Evidently 0.7 / scipy 1.17
/// semantics. Every function takes counts (not shares) and allocates nothing unless stated.
///
/// Undefined inputs give NaN rather than trapping: an empty reference or current (total count 0), or vectors of
/// different lengths. Callers give no verdict on NaN (``DriftMethod/isDrift(score:threshold:)`` is false).
public enum DriftStatistics {
    /// Evidently's zero fix (`get_binned_data(..., feel_zeroes=True)`) applied to shares computed from counts:
    /// `share_i = count_i / total`; zero shares become `0.0001`, or `min_nonzero / 10⁶` if the smallest non-zero
    /// share is `<= 0.0001` (decided per vector). Not renormalised. All NaN when the total is 0 (Evidently raises).
    ///
    /// Evidently divides by the series length including missing values; these counts exclude them (callers
    /// wanting Evidently's exact shares with missing values add a bin for them).
    public static func evidentlyShares(_ counts: [Double]) -> [Double] {
        let fill = zeroFill(counts)
        guard fill.total > 0 else { return [Double](repeating: .nan, count: counts.count) }
        return counts.map { $0 == 0 ? fill.replacement : $0 / fill.total }
    }

    /// Total count and the share replacing zeros (Evidently's rule).
    @inline(__always)
    static func zeroFill(_ counts: [Double]) -> (total: Double, replacement: Double) {
        var total = 0.0
        var minimum = Double.infinity
        for c in counts {
            total += c
            if c > 0 && c < minimum { minimum = c }
        }
        guard total > 0 else { return (0, .nan) }
        let minShare = minimum / total
        return (total, minShare <= 0.0001 ? minShare / 1e6 : 0.0001)
    }

    /// Population stability index `Σ (p_i − q_i) · ln(p_i / q_i)` (natural log) over the reference shares `p` and
    /// current shares `q` after Evidently's zero fix (``evidentlyShares(_:)``), not renormalised.
    ///
    /// `reference` and `current` are counts per bin (same length). Bins empty in both are skipped: they carry no
    /// information, and Evidently's categorical binning (the values seen in either sample) never has them; its
    /// numeric Sturges binning keeps them, which changes the result only when the two vectors' zero
    /// replacements differ. Result ≥ 0; NaN if either total is 0 or the lengths differ. Identical operations to
    /// Evidently's `psi` on the same bins: agreement to 1e-12 (summation order only).
    public static func psi(reference: [Double], current: [Double]) -> DriftResult {
        var sum = 0.0
        let valid = forEachZeroFixedPair(reference, current) { p, q in sum += (p - q) * log(p / q) }
        return DriftResult(distance: valid ? sum : .nan)
    }

    /// Kullback-Leibler divergence `KL(p ‖ q) = Σ p_i · ln(p_i / q_i)` (natural log) of the reference from the
    /// current: `scipy.stats.entropy(ref%, cur%)` on Evidently's zero-fixed shares, each vector renormalised to
    /// sum 1 (as scipy does). Bins empty in both are skipped (see ``psi(reference:current:)``). Result ≥ 0; NaN if
    /// either total is 0 or the lengths differ. Agreement with scipy/Evidently on the same bins: 1e-12.
    public static func klDivergence(reference: [Double], current: [Double]) -> DriftResult {
        var pSum = 0.0
        var qSum = 0.0
        let valid = forEachZeroFixedPair(reference, current) { p, q in
            pSum += p
            qSum += q
        }
        guard valid else { return DriftResult(distance: .nan) }
        var sum = 0.0
        _ = forEachZeroFixedPair(reference, current) { p, q in
            let pNormalised = p / pSum
            sum += pNormalised * log(pNormalised / (q / qSum))
        }
        return DriftResult(distance: sum)
    }

    /// Calls `body(p_i, q_i)` with the zero-fixed shares (``evidentlyShares(_:)``) of every bin non-empty in either
    /// vector, without allocating. False (and no call) if the lengths differ or either total is 0.
    private static func forEachZeroFixedPair(
        _ reference: [Double], _ current: [Double], _ body: (_ p: Double, _ q: Double) -> Void
    ) -> Bool {
        guard reference.count == current.count else { return false }
        let r = zeroFill(reference)
        let c = zeroFill(current)
        guard r.total > 0, c.total > 0 else { return false }
        for i in reference.indices where reference[i] > 0 || current[i] > 0 {
            body(
                reference[i] == 0 ? r.replacement : reference[i] / r.total,
                current[i] == 0 ? c.replacement : current[i] / c.total)
        }
        return true
    }

    /// Jensen-Shannon distance `√(½ KL(p ‖ m) + ½ KL(q ‖ m))`, `m = (p + q)/2`, as
    /// `scipy.spatial.distance.jensenshannon(ref%, cur%, base)`: no zero fix (empty bins contribute 0, since
    /// `0·ln 0 = 0`), both vectors renormalised to sum 1. `base` nil = natural log (range [0, √ln 2 ≈ 0.8326],
    /// Evidently's default); `base` 2 gives [0, 1]. A divergence that rounds below 0 (identical inputs) gives 0
    /// where scipy could give NaN. NaN if either total is 0 or the lengths differ. Agreement with scipy: 1e-12.
    public static func jensenShannon(reference: [Double], current: [Double], base: Double? = nil) -> DriftResult {
        guard reference.count == current.count else { return DriftResult(distance: .nan) }
        var pTotal = 0.0
        var qTotal = 0.0
        for i in reference.indices {
            pTotal += reference[i]
            qTotal += current[i]
        }
        guard pTotal > 0, qTotal > 0 else { return DriftResult(distance: .nan) }
        var left = 0.0
        var right = 0.0
        for i in reference.indices {
            let p = reference[i] / pTotal
            let q = current[i] / qTotal
            let m = (p + q) / 2
            if p > 0 { left += p * log(p / m) }
            if q > 0 { right += q * log(q / m) }
        }
        var js = left + right
        if let base { js /= log(base) }
        return DriftResult(distance: (max(js, 0) / 2).squareRoot())
    }
}
