/// A regression model's quality: the slot layout of one version, how one joined outcome is recorded, and
/// the metrics computed from a window's sums.
///
/// The error is `e = predicted − actual` (positive: over-prediction). Sums that can go negative (Σe, Σy)
/// are kept whole (cumulative gauges, window sums) and also split by sign into two non-negative,
/// monotonic sums (Σ max(e, 0) and Σ max(−e, 0); likewise for y), which can be Prometheus counters.
struct RegressionQuality: Sendable {
    // Positions within a version's block.
    /// Outcomes.
    static let count = 0
    /// Σ|e|, Σe², Σe, Σy, Σy² (Doubles).
    static let absoluteError = 1
    static let squaredError = 2
    static let error = 3
    static let actual = 4
    static let actualSquared = 5
    /// Σ |e| / max(|y|, ε) over nonzero actuals (Double).
    static let absolutePercentageError = 6
    /// Outcomes with a zero actual, left out of MAPE.
    static let mapeSkipped = 7
    /// Σ max(e, 0), Σ max(−e, 0), Σ max(y, 0), Σ max(−y, 0) (Doubles).
    static let positiveError = 8
    static let negativeError = 9
    static let positiveActual = 10
    static let negativeActual = 11
    /// Window only: the largest ordered key of y, and of −y (so the smallest y).
    static let actualMaxKey = 12
    static let actualMinKey = 13
    /// Slots per version.
    static let width = 14

    /// float64 machine epsilon: scikit-learn's `mean_absolute_percentage_error` divides by max(|y|, ε).
    static let epsilon = Double.ulpOfOne

    /// Records a prediction `predicted` against its actual `actual` (both finite) for version block `base`.
    @inline(__always)
    static func record(predicted: Double, actual y: Double, base: Int, block: Int?, slots: QualitySlots) {
        let e = predicted - y
        slots.add(block, base &+ count)
        slots.addDouble(block, base &+ absoluteError, abs(e))
        slots.addDouble(block, base &+ squaredError, e * e)
        slots.addDouble(block, base &+ error, e)
        slots.addDouble(block, base &+ actual, y)
        slots.addDouble(block, base &+ actualSquared, y * y)
        if y != 0 {
            slots.addDouble(block, base &+ absolutePercentageError, abs(e) / Swift.max(abs(y), epsilon))
        } else {
            slots.add(block, base &+ mapeSkipped)
        }
        // The split sums are exported as running totals only (for PromQL over replicas): the window never reads them.
        if e >= 0 {
            slots.totals.addDouble(base &+ positiveError, e)
        } else {
            slots.totals.addDouble(base &+ negativeError, -e)
        }
        if y >= 0 {
            slots.totals.addDouble(base &+ positiveActual, y)
        } else {
            slots.totals.addDouble(base &+ negativeActual, -y)
        }
        slots.storeMaxKey(block, base &+ actualMaxKey, QualitySlots.orderedKey(y))
        slots.storeMaxKey(block, base &+ actualMinKey, QualitySlots.orderedKey(-y))
    }

    /// Window metrics from sums. Each is NaN when undefined (no outcomes; MAPE without a nonzero actual; R²
    /// with fewer than two outcomes, or not known to three digits from the sums).
    struct Scores: Equatable {
        var count = 0.0
        var mae = Double.nan
        var rmse = Double.nan
        var mape = Double.nan
        var r2 = Double.nan
        var meanError = Double.nan
    }

    /// The metrics of `n` outcomes with sums `Σ|e|`, `Σe²`, `Σe`, `Σy`, `Σy²`, `Σ ape` over `n − skipped`
    /// nonzero actuals, and whether every actual was the same value (`constant`).
    ///
    /// R² is scikit-learn's `r2_score`: `1 − SS_res / SS_tot` with `SS_res = Σe²` and
    /// `SS_tot = Σy² − (Σy)²/n`; when the actuals are constant (SS_tot = 0), 1 if the predictions are
    /// perfect (SS_res = 0) and 0 otherwise (`force_finite=True`). `SS_tot` from plain sums loses up to about
    /// `3 · n · ε · (1 + mean(y)² / var(y))` relative precision (cancellation), negligible unless the actuals' mean is
    /// huge against their spread: when that bound passes 10⁻³, R² is NaN (absent) rather than wrong.
    static func scores(
        count n: Double, absoluteError: Double, squaredError: Double, error: Double, actual: Double,
        actualSquared: Double, absolutePercentageError: Double, skipped: Double, constant: Bool
    ) -> Scores {
        var s = Scores()
        s.count = n
        guard n > 0 else { return s }
        s.mae = absoluteError / n
        s.rmse = (squaredError / n).squareRoot()
        s.meanError = error / n
        if n > skipped { s.mape = absolutePercentageError / (n - skipped) }
        if n >= 2 {
            if constant {
                s.r2 = squaredError == 0 ? 1 : 0
            } else {
                let total = actualSquared - actual * actual / n
                // Σy² − (Σy)²/n cancels when the actuals' mean is large against their spread (1e7 ± 1). The sums'
                // own rounding is at most about n·ε·Σy² for Σy² and 2·n·ε·Σy² for (Σy)²/n (Cauchy-Schwarz): errors
                // that add up, not a random walk (√n·ε), for actuals in order or with a level shift (a probe read
                // −0.0198 for an R² of 0 under a √n bound). R² is given only when 3·n·ε·Σy² is under a thousandth of
                // SS_tot (three digits known), absent otherwise, never a wrong value (it read 0.998 for 0.763).
                if total > 0, total * 1e-3 > 3 * n * Double.ulpOfOne * actualSquared {
                    s.r2 = 1 - squaredError / total
                }
            }
        }
        return s
    }
}
