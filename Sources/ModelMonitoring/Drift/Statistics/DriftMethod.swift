/// Drift methods (raw values are the `method` label and config values), with Evidently 0.7's names.
public enum DriftMethod: String, Sendable, CaseIterable {
    /// Population stability index (a distance).
    case psi
    /// Kullback-Leibler divergence of reference from current (a distance).
    case klDiv = "kl_div"
    /// Jensen-Shannon distance (a distance).
    case jensenShannon = "jensenshannon"
    /// Wasserstein-1 distance normalised by the reference std (a distance).
    case wasserstein
    /// Two-sample Kolmogorov-Smirnov test (a p-value).
    case ks
    /// Pearson's chi-square test (a p-value).
    case chiSquare = "chisquare"
    /// Two-proportion z-test for binary features (a p-value).
    case z
}

extension DriftMethod {
    /// Evidently's default threshold for the method (psi 0.1, kl_div 0.1, jensenshannon 0.1, wasserstein 0.1,
    /// ks 0.05, chisquare 0.05, z 0.05).
    public var defaultThreshold: Double {
        switch self {
        case .psi, .klDiv, .jensenShannon, .wasserstein: 0.1
        case .ks, .chiSquare, .z: 0.05
        }
    }

    /// Whether the method's score is a p-value (drift when p < threshold; ks: p <= threshold, per Evidently) or a
    /// distance (drift when score >= threshold).
    public var isPValue: Bool {
        switch self {
        case .ks, .chiSquare, .z: true
        case .psi, .klDiv, .jensenShannon, .wasserstein: false
        }
    }

    /// Evidently's verdict rule for this method: true = drift. Distances: `score >= threshold`; ks:
    /// `score <= threshold`; chisquare and z: `score < threshold`. A NaN score is never drift (as in Evidently,
    /// where every comparison with NaN is false).
    public func isDrift(score: Double, threshold: Double) -> Bool {
        switch self {
        case .psi, .klDiv, .jensenShannon, .wasserstein: score >= threshold
        case .ks: score <= threshold
        case .chiSquare, .z: score < threshold
        }
    }

    /// Whether the method compares distributions on the fine equal-width histogram (KS, Wasserstein); the others
    /// use the reference bins only, so their columns keep no fine counts.
    public var usesFineBins: Bool { self == .ks || self == .wasserstein }

    /// Evidently's auto selection (`registry.py::_get_default_stattest`), where `uniqueValues` is the number of
    /// distinct non-missing values in reference and current together and `referenceRows` the reference's rows:
    /// numeric with `uniqueValues > 5` → `ks` if `referenceRows <= 1000` else `wasserstein`; numeric with at
    /// most 5 unique values, or categorical → `chisquare` if `uniqueValues > 2` else `z` when
    /// `referenceRows <= 1000`, else `jensenshannon`.
    ///
    /// One departure: where Evidently would run `z` on a numeric column (two values or fewer: a 0/1 flag, a constant),
    /// `ks` runs (this z test takes categorical columns only; `auto` never picks a method the column refuses).
    public static func auto(numeric: Bool, uniqueValues: Int, referenceRows: Int) -> DriftMethod {
        if numeric && uniqueValues > 5 { return referenceRows <= 1000 ? .ks : .wasserstein }
        if referenceRows <= 1000 { return uniqueValues > 2 ? .chiSquare : numeric ? .ks : .z }
        return .jensenShannon
    }
}

/// Result of one drift test: the statistic, the p-value for tests (ks, chisquare, z), and the score compared
/// with the threshold (the statistic for distances, the p-value for tests).
public struct DriftResult: Sendable, Equatable {
    /// The test statistic (PSI, KL, JS distance; KS D; chi-square statistic; z).
    public var statistic: Double
    /// The p-value, for ks, chisquare and z; nil for distances.
    public var pValue: Double?
    /// The value compared with the threshold: `statistic` for distances, `pValue` for tests.
    public var score: Double

    /// A distance: `score == statistic`, no p-value.
    public init(distance: Double) {
        self.statistic = distance
        self.pValue = nil
        self.score = distance
    }

    /// A test: `score == pValue`.
    public init(statistic: Double, pValue: Double) {
        self.statistic = statistic
        self.pValue = pValue
        self.score = pValue
    }

    /// Both equal (including NaN with NaN, so undefined results compare equal).
    public static func == (lhs: DriftResult, rhs: DriftResult) -> Bool {
        func same(_ a: Double, _ b: Double) -> Bool { a == b || (a.isNaN && b.isNaN) }
        let pValues: Bool
        switch (lhs.pValue, rhs.pValue) {
        case (nil, nil): pValues = true
        case (let a?, let b?): pValues = same(a, b)
        default: pValues = false
        }
        return same(lhs.statistic, rhs.statistic) && same(lhs.score, rhs.score) && pValues
    }
}
