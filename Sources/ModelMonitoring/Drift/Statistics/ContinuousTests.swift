extension DriftStatistics {
    /// The unit Wasserstein's tail distances are summed in: 2^64. A distance between two finite Doubles is below
    /// 2^1025, so in these units below 2^961, and 2^62 of them sum to less than `Double.greatestFiniteMagnitude`: the
    /// window's tail totals stay finite whatever the values (a sum of the values themselves, or of their distances,
    /// overflows with two values near 1e308).
    public static let tailUnit: Double = 0x1p64

    /// `|x − bound|` in units of ``tailUnit`` (`|x·2⁻⁶⁴ − bound·2⁻⁶⁴|`), finite for any finite `x` and `bound`: what the
    /// drift collector adds to a window's tail total for a value `x` outside the reference range (`bound` its nearer
    /// end). Exact but for one rounding, and for `x` or `bound` below 2^-958 in magnitude, where the scaled operands
    /// lose bits: off by at most 2^-1074 units (2^-1010 ≈ 1e-304).
    @inline(__always)
    public static func tailDistance(_ x: Double, from bound: Double) -> Double {
        abs(x * 0x1p-64 - bound * 0x1p-64)
    }

    /// Wasserstein-1 distance `∫ |F_ref(x) − F_cur(x)| dx` from fine histograms, divided by `divisor` (Evidently's
    /// `wasserstein` score is the distance over `max(std_ref, 0.001)`, population std; 1 for the distance itself).
    ///
    /// `referenceFine` counts the reference in `K` equal-width bins over `[lower, upper]` (bin `i` holds
    /// `lower + i·w <= x < lower + (i+1)·w`, the last closed at `upper`; the reference has no values outside);
    /// `currentFine` counts the current on the same grid, `currentBelow` / `currentAbove` the current values
    /// `< lower` / `> upper` as (count, total distance from the range: `Σ(lower − x)` below, `Σ(x − upper)` above, in
    /// units of ``tailUnit``: see ``tailDistance(_:from:)``).
    ///
    /// Within `[lower, upper]` each CDF is interpolated linearly inside a bin (mass spread uniformly), so both CDFs
    /// are exact at every bin edge and `∫|F_ref − F_cur|` is integrated exactly for the interpolants (piecewise
    /// linear, with the zero crossing handled). Outside, the reference CDF is 0 (below) or 1 (above), so the tails
    /// are exact: their total distance over `m`. The result is finite whenever the quotient is (the distance itself
    /// may exceed Double's range, values near −1e308 against a reference near 1e308, while the score does not).
    ///
    /// Error bound against `scipy.stats.wasserstein_distance` on the raw samples: at most
    /// `w · (P_in + Q_in) / 2 <= w`, where `w = (upper − lower)/K` and `P_in`, `Q_in` are the shares of reference
    /// and current inside `[lower, upper]` (a monotone CDF differs from its in-bin linear interpolant by at most
    /// the bin's mass, and by at most `w·mass/2` in integral), over `divisor`. NaN if either sample is empty, the
    /// grids differ, or the range is wider than Double's (`upper − lower` infinite: its bins cannot be computed).
    public static func wasserstein(
        referenceFine: [Double], lower: Double, upper: Double, currentFine: [Double],
        currentBelow: (count: Double, distance: Double), currentAbove: (count: Double, distance: Double),
        dividedBy divisor: Double = 1
    ) -> Double {
        withCumulative(referenceFine, currentFine) { r, c in
            wasserstein(
                referenceCumulative: r, lower: lower, upper: upper, currentCumulative: c, currentBelow: currentBelow,
                currentAbove: currentAbove, dividedBy: divisor)
        }
    }

    /// ``wasserstein(referenceFine:lower:upper:currentFine:currentBelow:currentAbove:dividedBy:)`` from the
    /// fine histograms' running totals (`referenceCumulative[i]` = the reference's count in bins `0...i`, likewise
    /// `currentCumulative` for the current values inside `[lower, upper]`): what the drift collector evaluates at
    /// every scrape, with the reference's running totals computed once and the current ones as it reads the window.
    /// Four bins per step, each bin's term independent of the others (the totals carry the running sums), summed in
    /// four lanes: the result may differ from a bin-by-bin sum in the last bits only.
    public static func wasserstein(
        referenceCumulative ref: UnsafeBufferPointer<Double>, lower: Double, upper: Double,
        currentCumulative cur: UnsafeBufferPointer<Double>,
        currentBelow: (count: Double, distance: Double), currentAbove: (count: Double, distance: Double),
        dividedBy divisor: Double = 1
    ) -> Double {
        let bins = ref.count
        guard bins > 0, cur.count == bins, upper >= lower else { return .nan }
        let n = ref[bins &- 1]
        let m = cur[bins &- 1] + currentBelow.count + currentAbove.count
        guard n > 0, m > 0 else { return .nan }
        let width = (upper - lower) / Double(bins)
        guard width.isFinite else { return .nan }
        // The tails' mean distance, in tail units (each total is below 2^1023 units: no overflow).
        let tails = currentBelow.distance / m + currentAbove.distance / m
        // F_ref − F_cur at the right edge of bin i; at the left edge of bin 0 it is −below/m.
        let inverseN = 1 / n
        let inverseM = 1 / m
        let below = currentBelow.count
        @inline(__always) func difference(_ i: Int) -> Double { ref[i] * inverseN - (below + cur[i]) * inverseM }
        // Each bin's integral of |F_ref − F_cur| (linear inside the bin), over its width: half the sum of the
        // ends' magnitudes, or, where the sign changes inside the bin, the two triangles' areas. A sign change inside
        // a bin is rare (F_ref − F_cur keeps its sign over runs of bins), so the division waits behind a branch that is
        // predicted well; four bins per step with four sums, so that no addition waits on the one before.
        @inline(__always) func term(_ a: Double, _ b: Double) -> Double {
            let sum = abs(a) + abs(b)
            if a * b < 0 { return (a * a + b * b) / (sum + sum) }
            return sum * 0.5
        }
        var inBins = term(-below * inverseM, difference(0))
        var (s0, s1, s2, s3) = (0.0, 0.0, 0.0, 0.0)
        var previous = difference(0)
        var i = 1
        while i &+ 4 <= bins {
            let d0 = difference(i)
            let d1 = difference(i &+ 1)
            let d2 = difference(i &+ 2)
            let d3 = difference(i &+ 3)
            s0 += term(previous, d0)
            s1 += term(d0, d1)
            s2 += term(d1, d2)
            s3 += term(d2, d3)
            previous = d3
            i &+= 4
        }
        inBins += (s0 + s1) + (s2 + s3)
        while i < bins {
            let d = difference(i)
            inBins += term(previous, d)
            previous = d
            i &+= 1
        }
        // Each part over the divisor before they are added: the sum may exceed Double's range where the quotient does
        // not.
        return tails * (tailUnit / divisor) + inBins * width / divisor
    }

    /// `body` over the running totals of two fine histograms; NaN if they are empty or differ in length.
    private static func withCumulative(
        _ reference: [Double], _ current: [Double],
        _ body: (UnsafeBufferPointer<Double>, UnsafeBufferPointer<Double>) -> Double
    ) -> Double {
        guard !reference.isEmpty, current.count == reference.count else { return .nan }
        let r = cumulative(reference)
        let c = cumulative(current)
        return r.withUnsafeBufferPointer { r in c.withUnsafeBufferPointer { c in body(r, c) } }
    }

    /// Running totals of `values` (`out[i] = values[0] + … + values[i]`).
    static func cumulative(_ values: [Double]) -> [Double] {
        var running = 0.0
        return values.map { v in
            running += v
            return running
        }
    }

    /// The two-sample Kolmogorov-Smirnov test from fine histograms on the same grid as
    /// ``wasserstein(referenceFine:lower:upper:currentFine:currentBelow:currentAbove:dividedBy:)``: the statistic
    /// `D = sup |F_ref − F_cur|` evaluated at the fine-bin edges (below `lower`, every interior edge, and at
    /// `upper` inclusive), with `F` normalised by the counts' totals; `currentBelow` / `currentAbove` count the
    /// current values outside `[lower, upper]`.
    ///
    /// Error bound: `D_binned <= D_exact <= D_binned + max_i max(ref_i/n, cur_i/m)` (the largest mass of one fine
    /// bin in either sample), since both CDFs are exact at the edges and monotone in between.
    ///
    /// p-value: two-sided, for sample sizes `n` (reference) and `m` (current), as
    /// `scipy.stats.ks_2samp(..., method='asymp')`: `kstwo.sf(D, round(n·m/(n+m)))`
    /// (``SpecialFunctions/ksTwoSampleAsymptoticPValue(d:n:m:)``; relative 1e-9 from scipy on the same D).
    /// scipy's default `method='auto'` uses the exact two-sample distribution when `max(n, m) <= 10000`, which
    /// needs the exact D and is not offered here. NaN if either sample is empty.
    public static func ks(
        referenceFine: [Double], currentFine: [Double], currentBelow: Double, currentAbove: Double, n: Int, m: Int
    ) -> DriftResult {
        let d = ksStatistic(
            referenceFine: referenceFine, currentFine: currentFine, currentBelow: currentBelow,
            currentAbove: currentAbove)
        guard !d.isNaN else { return DriftResult(statistic: .nan, pValue: .nan) }
        return DriftResult(statistic: d, pValue: SpecialFunctions.ksTwoSampleAsymptoticPValue(d: d, n: n, m: m))
    }

    /// The KS statistic alone from fine histograms (see ``ks(referenceFine:currentFine:currentBelow:currentAbove:n:m:)``);
    /// any two histograms on one grid of ordered bins will do (the drift collector also passes the quantile bins, with
    /// nothing outside them: D at their edges, a lower bound of the exact one too).
    public static func ksStatistic(
        referenceFine: [Double], currentFine: [Double], currentBelow: Double, currentAbove: Double
    ) -> Double {
        withCumulative(referenceFine, currentFine) { r, c in
            ksStatistic(
                referenceCumulative: r, currentCumulative: c, currentBelow: currentBelow, currentAbove: currentAbove)
        }
    }

    /// The KS statistic from the fine histograms' running totals (see
    /// ``wasserstein(referenceCumulative:lower:upper:currentCumulative:currentBelow:currentAbove:dividedBy:)``), four bins at a
    /// time: exactly the statistic of the bin-by-bin walk (a maximum does not depend on the order).
    public static func ksStatistic(
        referenceCumulative ref: UnsafeBufferPointer<Double>, currentCumulative cur: UnsafeBufferPointer<Double>,
        currentBelow: Double, currentAbove: Double
    ) -> Double {
        let bins = ref.count
        guard bins > 0, cur.count == bins else { return .nan }
        let n = ref[bins &- 1]
        let m = cur[bins &- 1] + currentBelow + currentAbove
        guard n > 0, m > 0 else { return .nan }
        // Scaled by n·m, no division: max |F_ref·n·m − F_cur·n·m| over the edges, below `lower` included.
        var scaled = currentBelow * n
        @inline(__always) func gap(_ i: Int) -> Double { abs(ref[i] * m - (currentBelow + cur[i]) * n) }
        var (m0, m1, m2, m3) = (scaled, scaled, scaled, scaled)
        var i = 0
        while i &+ 4 <= bins {
            m0 = max(m0, gap(i))
            m1 = max(m1, gap(i &+ 1))
            m2 = max(m2, gap(i &+ 2))
            m3 = max(m3, gap(i &+ 3))
            i &+= 4
        }
        scaled = max(max(m0, m1), max(m2, m3))
        while i < bins {
            scaled = max(scaled, gap(i))
            i &+= 1
        }
        return scaled / (n * m)
    }

    /// The error bound of the binned KS statistic: the largest share of one fine bin in either sample
    /// (`max_i max(ref_i/n, cur_i/m)`); `D_exact − D_binned` lies in `[0, bound]`.
    public static func ksStatisticBound(
        referenceFine: [Double], currentFine: [Double], currentBelow: Double, currentAbove: Double
    )
        -> Double
    {
        var n = 0.0
        var inside = 0.0
        var maxRef = 0.0
        var maxCur = 0.0
        for i in referenceFine.indices {
            n += referenceFine[i]
            maxRef = max(maxRef, referenceFine[i])
        }
        for c in currentFine {
            inside += c
            maxCur = max(maxCur, c)
        }
        let m = inside + currentBelow + currentAbove
        guard n > 0, m > 0 else { return .nan }
        return max(maxRef / n, maxCur / m)
    }

    /// Walks the merged distinct values of two samples in increasing order, calling `body(x, F_ref(x), F_cur(x))`
    /// with both empirical CDFs just after `x`. False (and no call) if either sample is empty or holds NaN.
    private static func walkEmpiricalCDFs(
        _ reference: [Double], _ current: [Double], _ body: (_ x: Double, _ fRef: Double, _ fCur: Double) -> Void
    ) -> Bool {
        guard !reference.isEmpty, !current.isEmpty, !reference.contains(where: \.isNaN),
            !current.contains(where: \.isNaN)
        else { return false }
        let a = reference.sorted()
        let b = current.sorted()
        let n = Double(a.count)
        let m = Double(b.count)
        var i = 0
        var j = 0
        while i < a.count || j < b.count {
            let x = j >= b.count || (i < a.count && a[i] <= b[j]) ? a[i] : b[j]
            while i < a.count && a[i] == x { i += 1 }
            while j < b.count && b[j] == x { j += 1 }
            body(x, Double(i) / n, Double(j) / m)
        }
        return true
    }

    /// The exact two-sample KS statistic `D = sup |F_ref − F_cur|` from samples (as `scipy.stats.ks_2samp`), for
    /// tests and small references. Sorts copies (allocates). NaN if either sample is empty or holds NaN.
    public static func ksStatistic(reference: [Double], current: [Double]) -> Double {
        var d = 0.0
        let valid = walkEmpiricalCDFs(reference, current) { _, fRef, fCur in d = max(d, abs(fRef - fCur)) }
        return valid ? d : .nan
    }

    /// The two-sample KS test from samples: exact D (``ksStatistic(reference:current:)``) and the asymptotic
    /// p-value of scipy's `method='asymp'` (which scipy's default `auto` also uses when `max(n, m) > 10000`).
    public static func ks(reference: [Double], current: [Double]) -> DriftResult {
        let d = ksStatistic(reference: reference, current: current)
        guard !d.isNaN else { return DriftResult(statistic: .nan, pValue: .nan) }
        return DriftResult(
            statistic: d,
            pValue: SpecialFunctions.ksTwoSampleAsymptoticPValue(d: d, n: reference.count, m: current.count))
    }

    /// The exact Wasserstein-1 distance `∫ |F_ref − F_cur| dx` between two samples (as
    /// `scipy.stats.wasserstein_distance`, not normalised), for tests and small references. Sorts copies
    /// (allocates). NaN if either sample is empty or holds NaN.
    public static func wasserstein(reference: [Double], current: [Double]) -> Double {
        var total = 0.0
        var previous = (x: 0.0, difference: 0.0)
        let valid = walkEmpiricalCDFs(reference, current) { x, fRef, fCur in
            total += previous.difference * (x - previous.x)
            previous = (x, abs(fRef - fCur))
        }
        return valid ? total : .nan
    }
}
