import ExporterConfig

/// Builds a ``ReferenceProfile`` from a model's reference data, fed row by row. Pure: no I/O (the
/// `Profiling` module reads CSV and NDJSON files into it).
///
/// Columns are the model's features in configuration order, then `prediction`, then `score` (see
/// ``columns``); each row gives one ``Value`` per column. The prediction is numeric for regression and
/// categorical over the model's `classes` otherwise; the score is numeric. `prediction` and `score` appear
/// in the profile only if some row gave them a value other than ``Value/absent``.
///
/// Memory: exact quantiles need every value, so each numeric column keeps its non-missing values in a
/// `[Double]` until ``build(model:inputSHA256:)``: O(rows × numeric columns) doubles while profiling
/// (8 MB per million values). Categorical columns keep one count per distinct value.
///
/// Statistics of a numeric column (all over its non-missing values):
/// - `mean` (compensated summation) and population `std` (ddof 0) by two passes over the stored values,
///   `sqrt(Σ(x − mean)² / n)`: numerically stable, as `numpy.std`. Where those sums overflow (values near
///   ±`Double.greatestFiniteMagnitude`, where numpy answers `inf` or `nan`), they are taken over the values
///   scaled down by a power of two, so that both stay finite.
/// - `edges`: `numpy.quantile(x, i/bins)` for `i = 1 … bins − 1` with numpy's default `linear` method
///   (same virtual index and interpolation, bit for bit), then edges `<= min`, `>= max` or not above the
///   previous edge are dropped, so edges are strictly increasing and strictly inside `(min, max)`.
/// - `counts`: underflow (0), `[min, e0]`, `(e0, e1]`, …, `(e_last, max]`, overflow (0).
/// - `fine`: `numpy.histogram(x, bins: fineBins, range: (min, max))`, computed the way numpy does
///   (same edges `min + i·(max − min)/fineBins`, last bin closed). A constant column (`min == max`) puts
///   every value in `fine[0]` (a point mass at `min`; numpy would widen the range to `min ± 0.5`).
/// - `distinct`: the number of distinct values; with at most ``NumericProfile/maxListedValues`` of them, `values`
///   (ascending) and `valueCounts`, as pandas' `value_counts` (what Evidently's chi-square counts).
/// - A column with no non-missing value has `count` 0, `mean`, `std`, `min`, `max` 0, no edges,
///   counts `[0, 0, 0]`, `fineBins` zero counts, `distinct` 0 and no values.
///
/// A categorical column counts each configured value, the rest in `__other__`. When the configuration
/// lists no values, the ``Options/maxCategories`` most frequent values are kept (ties broken by value, in
/// UTF-8 byte order, i.e. code point order), most frequent first, and the rest go to `__other__`. A value spelled
/// `__other__` in the data is never a value of its own: it counts in `__other__`, as the drift collector counts a
/// live value `__other__`. Values are told apart by their UTF-8 bytes, as the drift collector tells live values apart
/// (``CategoryCounts``): two spellings of `café` (NFC and NFD) are two categories.
public struct ProfileBuilder: Sendable {
    /// Binning and vocabulary options.
    public struct Options: Sendable, Equatable {
        /// Quantile bins asked for (at least 1; repeated values may merge some).
        public var bins: Int
        /// Equal-width bins of the fine histogram (at least 1).
        public var fineBins: Int
        /// Most values learned for a categorical column without configured values (at least 1).
        public var maxCategories: Int

        /// Creates options; the defaults are 10 quantile bins, 1000 fine bins and 50 categories.
        public init(bins: Int = 10, fineBins: Int = 1000, maxCategories: Int = 50) {
            self.bins = bins
            self.fineBins = fineBins
            self.maxCategories = maxCategories
        }
    }

    /// One cell of a row.
    public enum Value: Sendable, Equatable {
        /// A number (for numeric columns; NaN counts as missing).
        case number(Double)
        /// A category (for categorical columns).
        case category(String)
        /// Present but empty: empty CSV field, JSON `null`.
        case missing
        /// Not in the input at all (counted as missing; a prediction or score column only ever absent is
        /// left out of the profile).
        case absent
    }

    /// One column the builder profiles.
    public struct Column: Sendable, Equatable {
        /// Column name: a feature's, `prediction` or `score`.
        public var name: String
        /// Numeric or categorical.
        public var kind: FeatureKind
        /// Configured categorical values; `nil` to learn them.
        public var values: [String]?
    }

    /// Name of the prediction column.
    public static let predictionColumn = "prediction"
    /// Name of the score column.
    public static let scoreColumn = "score"
    /// The catch-all category.
    public static let other = ModelContext.other

    /// The columns, in row order: features (configuration order), `prediction`, `score`.
    public let columns: [Column]
    /// The options in use.
    public let options: Options
    /// Rows added so far.
    public private(set) var rows = 0

    private var numbers: [[Double]]
    private var categories: [CategoryCounts]
    private var missing: [Int]
    private var present: [Bool]

    /// A builder for `model`'s features, prediction and score.
    public init(model: ModelConfiguration, options: Options = Options()) {
        precondition(options.bins >= 1 && options.fineBins >= 1 && options.maxCategories >= 1)
        var columns = model.features.map { Column(name: $0.name, kind: $0.kind, values: $0.values) }
        if model.task == .regression {
            columns.append(Column(name: Self.predictionColumn, kind: .numeric, values: nil))
        } else {
            columns.append(
                Column(
                    name: Self.predictionColumn, kind: .categorical, values: model.classes.isEmpty ? nil : model.classes
                ))
        }
        columns.append(Column(name: Self.scoreColumn, kind: .numeric, values: nil))
        self.columns = columns
        self.options = options
        numbers = Array(repeating: [], count: columns.count)
        categories = Array(repeating: CategoryCounts(), count: columns.count)
        missing = Array(repeating: 0, count: columns.count)
        present = Array(repeating: false, count: columns.count)
    }

    /// Adds one row: `values[i]` is the value of `columns[i]`. A number in a categorical column counts as
    /// its text; a category in a numeric column is a programming error (readers parse numbers first).
    public mutating func add(_ values: [Value]) {
        precondition(values.count == columns.count, "a row has one value per column")
        rows += 1
        for (i, value) in values.enumerated() {
            switch value {
            case .absent:
                missing[i] += 1
            case .missing:
                missing[i] += 1
                present[i] = true
            case .number(let x):
                present[i] = true
                if x.isNaN {
                    missing[i] += 1
                } else if columns[i].kind == .numeric {
                    numbers[i].append(x)
                } else {
                    categories[i].add(Self.text(of: x))
                }
            case .category(let s):
                present[i] = true
                precondition(columns[i].kind == .categorical, "column \(columns[i].name) is numeric")
                categories[i].add(s)
            }
        }
    }

    /// The profile of the rows added so far, for `model` (its name) with the input's SHA-256.
    public func build(model: String, inputSHA256: String) -> ReferenceProfile {
        let p = columns.count - 2
        let s = columns.count - 1
        return ReferenceProfile(
            model: model, rows: rows, inputSHA256: inputSHA256, features: (0..<p).map(profile(of:)),
            prediction: present[p] ? profile(of: p) : nil, score: present[s] ? profile(of: s) : nil)
    }

    private func profile(of i: Int) -> ColumnProfile {
        let column = columns[i]
        switch column.kind {
        case .numeric:
            return ColumnProfile(
                name: column.name, missing: missing[i],
                numeric: Self.numeric(numbers[i], bins: options.bins, fineBins: options.fineBins))
        case .categorical:
            return ColumnProfile(
                name: column.name, missing: missing[i],
                categorical: categories[i].profile(values: column.values, maxCategories: options.maxCategories))
        }
    }

    /// The numeric profile of `values` (no NaN).
    public static func numeric(_ values: [Double], bins: Int, fineBins: Int) -> NumericProfile {
        guard !values.isEmpty else {
            return NumericProfile(
                count: 0, mean: 0, std: 0, min: 0, max: 0, edges: [], counts: [0, 0, 0],
                fine: Array(repeating: 0, count: fineBins), distinct: 0, values: [], valueCounts: [])
        }
        let sorted = values.sorted()
        let n = sorted.count
        let lo = sorted[0]
        let hi = sorted[n - 1]
        var (mean, std) = meanAndStd(values)
        if !mean.isFinite || !std.isFinite {
            // Values near ±Double.greatestFiniteMagnitude overflow the sums (and JSON has no inf or nan): the same
            // over the values divided by a power of two (exact but for values below 2^-1000 of the largest), scaled
            // back.
            let scale = Double(sign: .plus, exponent: Swift.max(abs(lo), abs(hi)).exponent, significand: 1)
            let scaled = meanAndStd(values.map { $0 / scale })
            (mean, std) = (scaled.mean * scale, scaled.std * scale)
        }

        var edges: [Double] = []
        for k in 1..<bins {
            let e = quantile(sorted: sorted, Double(k) / Double(bins))
            if e > lo && e < hi && e > (edges.last ?? lo) { edges.append(e) }
        }
        var counts = Array(repeating: 0, count: edges.count + 3)
        for x in sorted { counts[bin(of: x, edges: edges, min: lo, max: hi)] += 1 }

        var fine = Array(repeating: 0, count: fineBins)
        let grid = FineGrid(min: lo, max: hi, bins: fineBins)
        for x in sorted { fine[grid.bin(of: x)] += 1 }
        let (distinct, values, valueCounts) = distinctValues(sorted: sorted)
        return NumericProfile(
            count: n, mean: mean, std: std, min: lo, max: hi, edges: edges, counts: counts, fine: fine,
            distinct: distinct, values: values, valueCounts: valueCounts)
    }

    /// The number of distinct values of `sorted` and, when at most ``NumericProfile/maxListedValues``, the values with
    /// their counts.
    static func distinctValues(sorted: [Double]) -> (distinct: Int, values: [Double]?, counts: [Int]?) {
        var values: [Double] = []
        var counts: [Int] = []
        var distinct = 0
        for (i, x) in sorted.enumerated() {
            if i == 0 || x != sorted[i - 1] {
                distinct += 1
                if distinct <= NumericProfile.maxListedValues {
                    values.append(x)
                    counts.append(0)
                }
            }
            if distinct <= NumericProfile.maxListedValues { counts[distinct - 1] += 1 }
        }
        guard distinct <= NumericProfile.maxListedValues else { return (distinct, nil, nil) }
        return (distinct, values, counts)
    }

    /// `numpy.quantile(sorted, q)` with the default `linear` method: virtual index `(n − 1)·q`, and numpy's
    /// interpolation `a + (b − a)·t`, or `b − (b − a)·(1 − t)` when `t >= 0.5`.
    public static func quantile(sorted: [Double], _ q: Double) -> Double {
        let index = Double(sorted.count - 1) * q
        let below = index.rounded(.down)
        let i = Int(below)
        let t = index - below
        guard i + 1 < sorted.count else { return sorted[sorted.count - 1] }
        let a = sorted[i]
        let b = sorted[i + 1]
        let difference = b - a
        return t >= 0.5 ? b - difference * (1 - t) : a + difference * t
    }

    /// The bin of `x`: 0 below `min`, `1 + j` for the first edge `edges[j] >= x`, `edges.count + 1` up to
    /// `max`, `edges.count + 2` above `max`.
    public static func bin(of x: Double, edges: [Double], min: Double, max: Double) -> Int {
        if x < min { return 0 }
        if x > max { return edges.count + 2 }
        var low = 0
        var high = edges.count
        while low < high {
            let mid = (low + high) / 2
            if edges[mid] < x { low = mid + 1 } else { high = mid }
        }
        return 1 + low
    }

    /// The fine bin of `x` in `[min, max]`, as `numpy.histogram` computes it (index from the scaled
    /// offset, then corrected by one against the bin edges); 0 when `min == max`. The drift collector bins live values
    /// with the same function (``FineGrid/bin(of:)``).
    public static func fineBin(of x: Double, min: Double, max: Double, bins: Int) -> Int {
        FineGrid(min: min, max: max, bins: bins).bin(of: x)
    }

    /// The text of a number given for a categorical column: an integral value below 10^15 without a decimal point
    /// (`3.0` → `3`), any other as Swift prints the double; the category live traffic's JSON number becomes.
    public static func text(of x: Double) -> String {
        if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
        return "\(x)"
    }

    /// The mean (compensated summation) and the population standard deviation (two passes) of `values`.
    static func meanAndStd(_ values: [Double]) -> (mean: Double, std: Double) {
        let n = Double(values.count)
        let mean = compensatedSum(values) / n
        let squares = compensatedSum(values.map { ($0 - mean) * ($0 - mean) })
        return (mean, (squares / n).squareRoot())
    }

    /// Neumaier's compensated sum.
    static func compensatedSum(_ values: [Double]) -> Double {
        var sum = 0.0
        var compensation = 0.0
        for x in values {
            let t = sum + x
            if abs(sum) >= abs(x) {
                compensation += (sum - t) + x
            } else {
                compensation += (x - t) + sum
            }
            sum = t
        }
        return sum + compensation
    }
}
