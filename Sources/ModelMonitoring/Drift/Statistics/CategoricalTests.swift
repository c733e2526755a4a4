extension DriftStatistics {
    /// Pearson's chi-square test of the current counts against the reference proportions, as Evidently's
    /// `chisquare` (`_chi_stat_test`): categories are the bins non-empty in the reference or the current; expected
    /// `E_k = ref_k · n_cur / n_ref`; statistic `Σ (O_k − E_k)² / E_k` (`scipy.stats.chisquare`); p-value
    /// `Q(dof/2, statistic/2)` with `dof = k − 1` (regularized upper incomplete gamma, scipy `chi2.sf`).
    ///
    /// A category with reference count 0 but current count > 0 has `E_k = 0`: the statistic is +∞ and the p-value
    /// 0, as scipy. A single category (`dof = 0`) gives statistic 0 and p-value 1 (scipy: NaN p-value; the verdict,
    /// no drift, is the same). Either total 0, or different lengths: NaN statistic and p-value. Statistic agrees
    /// with scipy to 1e-12 relative; p-value to 1e-10 relative (see ``SpecialFunctions/regularizedGammaQ(_:_:)``).
    public static func chiSquare(reference: [Double], current: [Double]) -> DriftResult {
        guard reference.count == current.count else { return DriftResult(statistic: .nan, pValue: .nan) }
        var nRef = 0.0
        var nCur = 0.0
        var categories = 0
        for i in reference.indices {
            nRef += reference[i]
            nCur += current[i]
            if reference[i] > 0 || current[i] > 0 { categories += 1 }
        }
        guard nRef > 0, nCur > 0 else { return DriftResult(statistic: .nan, pValue: .nan) }
        let scale = nCur / nRef
        var statistic = 0.0
        for i in reference.indices where reference[i] > 0 || current[i] > 0 {
            let expected = reference[i] * scale
            let difference = current[i] - expected
            statistic += difference * difference / expected
        }
        if categories <= 1 { return DriftResult(statistic: 0, pValue: 1) }
        let p = SpecialFunctions.chiSquareSurvival(statistic, dof: Double(categories - 1))
        return DriftResult(statistic: statistic, pValue: p)
    }

    /// Evidently's two-proportion z-test (`z_stattest.py`) from category counts given in Evidently's sorted order:
    /// the first category non-empty in either sample is Evidently's first sorted value (`x = 0`: the caller passes the
    /// bins in sorted order of their names, as the drift collector does), every other
    /// category counts as `x = 1`. With `p1`, `p2` the shares of `x = 1` in reference and current,
    /// `P = (p1·n1 + p2·n2)/(n1 + n2)`, `z = (p1 − p2) / √(P(1−P)(1/n1 + 1/n2))`, two-sided
    /// `p = erfc(|z|/√2)` (= Evidently's `2(1 − Φ(|z|))`, without its cancellation for tiny p: agreement with
    /// Evidently to 1e-12 absolute).
    ///
    /// Both samples holding the same single category: z 0, p 1 (Evidently's rule). Either total 0: NaN.
    public static func zTest(reference: [Double], current: [Double]) -> DriftResult {
        guard reference.count == current.count else { return DriftResult(statistic: .nan, pValue: .nan) }
        var n1 = 0.0
        var n2 = 0.0
        var first = -1
        var nonEmpty = 0
        for i in reference.indices {
            n1 += reference[i]
            n2 += current[i]
            if reference[i] > 0 || current[i] > 0 {
                if first < 0 { first = i }
                nonEmpty += 1
            }
        }
        guard n1 > 0, n2 > 0 else { return DriftResult(statistic: .nan, pValue: .nan) }
        if nonEmpty == 1 { return DriftResult(statistic: 0, pValue: 1) }
        let p1 = (n1 - reference[first]) / n1
        let p2 = (n2 - current[first]) / n2
        let pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
        let z = (p1 - p2) / (pooled * (1 - pooled) * (1 / n1 + 1 / n2)).squareRoot()
        return DriftResult(statistic: z, pValue: SpecialFunctions.normalTwoSidedTail(z))
    }
}
