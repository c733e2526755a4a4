import Ingestion

/// One monitored column (a feature, the prediction or the score) of the drift collector: how a live value
/// is binned, where its counters sit in a ``SliceRing`` block and in the cumulative totals, and its
/// reference counts.
///
/// Block layout (offsets from ``base``): numeric columns hold `binCount` bin counts, `fineCount` fine counts,
/// `valueCount` counts per listed value, then below-range count, below-range total distance from `min` (Double, in
/// ``DriftStatistics/tailUnit``s), above-range count, above-range total distance from `max` (likewise), then missing;
/// categorical columns hold one count per value plus `__other__`, then missing. `fineCount` is the profile's fine
/// histogram (1000 bins) for a column whose method uses it (KS, Wasserstein), else 0: the fine counts are 98% of a
/// numeric column's window memory. `valueCount` is the profile's listed values plus one for any other value, for a
/// column chi-square compares value by value (at most ``NumericProfile/maxListedValues`` distinct values, as
/// Evidently treats it), else 0.
struct DriftColumn: Sendable {
    enum Kind: Sendable {
        case numeric(NumericProfile)
        case categorical(CategoricalProfile, NameIndex)
    }

    /// Column name (the `feature` label).
    let name: String
    let kind: Kind
    /// Offset of this column's slots in a ring block.
    let base: Int
    /// Offset of this column's cumulative bin counts (then missing) in the totals.
    let totalsBase: Int
    /// Number of reference bins (numeric: quantile bins + underflow + overflow; categorical: values + other).
    let binCount: Int
    let fineCount: Int
    /// The fine bins over the reference range, binning live values exactly as the profile's were binned (meaningful
    /// only when `fineCount > 0`).
    let fineGrid: FineGrid
    /// The bin labels (`bin` label values).
    let binLabels: [String]
    /// The bins in the order of their labels' code points, `__other__` last: Evidently's sorted categories, the order
    /// the z test reads them in. `__other__` stands for values not known by name, so it is never taken as Evidently's
    /// first category while a known one was seen (before, it sorted first by its `_`, and one unknown value in the
    /// window made the z test measure only the share of unknown values, hiding a fall of 50 % to 20 %).
    let sortedBins: [Int]
    /// The bins as people read them (`< 3.2`, `3.2 – 7.9`, `> 12`; a categorical column's values), for status
    /// pages: made once, not per page.
    let binRanges: [String]
    /// Reference counts per bin, as Doubles.
    let referenceBins: [Double]
    /// Each bin's share of the reference (0 for an empty reference), exported at every scrape.
    let referenceRatios: [Double]
    /// The reference's fine histogram as running totals (`[i]` = its count in fine bins `0...i`; the last is its
    /// total), computed once: each evaluation of KS or Wasserstein walks them. Empty without fine bins.
    let referenceFineCumulative: [Double]
    /// A numeric column's reference range (the fine bins' span); 0 for a categorical one.
    let lower: Double
    let upper: Double
    /// Slots counting live values per listed value (the profile's values, then one for any other value), for
    /// chi-square per value; 0 otherwise.
    let valueCount: Int
    /// The listed values, ascending (empty unless `valueCount > 0`).
    let values: [Double]
    /// The reference's count of each listed value, then 0 for the other values (empty unless `valueCount > 0`).
    let referenceValueCounts: [Double]

    static func sortedBins(_ labels: [String]) -> [Int] {
        labels.indices.sorted {
            let (a, b) = (labels[$0], labels[$1])
            if (a == ModelContext.other) != (b == ModelContext.other) { return b == ModelContext.other }
            return a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) { $0.value < $1.value }
        }
    }

    /// A numeric column; `keepsFine` for KS and Wasserstein, `countsValues` for chi-square, PSI, KL and
    /// Jensen-Shannon per value (the profile must list its values).
    init(name: String, numeric p: NumericProfile, keepsFine: Bool, countsValues: Bool, base: Int, totalsBase: Int) {
        precondition(!countsValues || p.values != nil, "counting per value needs the profile's values")
        self.name = name
        kind = .numeric(p)
        self.base = base
        self.totalsBase = totalsBase
        binCount = p.binCount
        fineCount = keepsFine ? p.fine.count : 0
        fineGrid = FineGrid(min: p.min, max: p.max, bins: Swift.max(1, fineCount))
        binLabels = (0..<p.binCount).map { i in
            i == 0 ? "underflow" : i == p.binCount - 1 ? "overflow" : String(i)
        }
        sortedBins = Self.sortedBins(binLabels)
        let bounds = [p.min] + p.edges + [p.max]
        binRanges = (0..<p.binCount).map { i in
            if i == 0 { return "< \(Self.short(p.min))" }
            if i == p.binCount - 1 { return "> \(Self.short(p.max))" }
            return "\(Self.short(bounds[i - 1])) – \(Self.short(bounds[i]))"
        }
        referenceBins = p.counts.map(Double.init)
        referenceRatios = Self.ratios(referenceBins)
        referenceFineCumulative = keepsFine ? DriftStatistics.cumulative(p.fine.map(Double.init)) : []
        lower = p.min
        upper = p.max
        values = countsValues ? p.values ?? [] : []
        valueCount = countsValues ? values.count + 1 : 0
        referenceValueCounts = countsValues ? (p.valueCounts ?? []).map(Double.init) + [0] : []
    }

    init(name: String, categorical p: CategoricalProfile, base: Int, totalsBase: Int) throws(SchemaError) {
        self.name = name
        kind = .categorical(p, try NameIndex(p.values))
        self.base = base
        self.totalsBase = totalsBase
        binCount = p.values.count + 1
        fineCount = 0
        fineGrid = FineGrid(min: 0, max: 0, bins: 1)
        binLabels = p.values + [ModelContext.other]
        sortedBins = Self.sortedBins(binLabels)
        binRanges = binLabels
        referenceBins = p.counts.map(Double.init)
        referenceRatios = Self.ratios(referenceBins)
        referenceFineCumulative = []
        lower = 0
        upper = 0
        valueCount = 0
        values = []
        referenceValueCounts = []
    }

    /// A bin bound with at most 4 significant digits.
    static func short(_ x: Double) -> String {
        if x == x.rounded() && abs(x) < 1e9 { return String(Int(x)) }
        let magnitude = abs(x)
        let decimals = magnitude >= 100 ? 1 : magnitude >= 1 ? 2 : 3
        var s = String(x.formatted(decimals: decimals))
        while s.utf8.contains(UInt8(ascii: ".")) && (s.hasSuffix("0") || s.hasSuffix(".")) { s.removeLast() }
        return s
    }

    /// `counts` as shares of their total (all 0 when the total is 0).
    static func ratios(_ counts: [Double]) -> [Double] {
        let total = counts.reduce(0, +)
        return counts.map { total > 0 ? $0 / total : 0 }
    }

    var isNumeric: Bool {
        if case .numeric = kind { return true }
        return false
    }

    /// Slots in a ring block.
    var width: Int { isNumeric ? binCount + fineCount + valueCount + 5 : binCount + 1 }
    /// Slots in the totals (bins, then missing).
    var totalsWidth: Int { binCount + 1 }

    // Offsets within the column's block.
    var fineOffset: Int { binCount }
    var valuesOffset: Int { binCount + fineCount }
    var belowCountOffset: Int { binCount + fineCount + valueCount }
    var belowDistanceOffset: Int { belowCountOffset + 1 }
    var aboveCountOffset: Int { belowCountOffset + 2 }
    var aboveDistanceOffset: Int { belowCountOffset + 3 }
    var missingOffset: Int { isNumeric ? belowCountOffset + 4 : binCount }
}
