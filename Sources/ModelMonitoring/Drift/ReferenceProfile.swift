/// A model's reference distributions, built from training or validation data by `mlops-exporter profile`
/// and stored as JSON: what live traffic is compared against to measure drift.
///
/// The file format (`format` = ``formatVersion``) is stable JSON with snake_case keys. Numeric columns keep
/// quantile bins fixed from the reference (plus an underflow and an overflow bin), a fine equal-width
/// histogram for KS and Wasserstein, their number of distinct values and, with at most
/// ``NumericProfile/maxListedValues`` of them, the values and their counts (for chi-square per value); categorical
/// columns keep counts per known value plus `__other__`. Profiles written before `distinct` existed lack it and the
/// values: they load, and only a chi-square over a numeric column that may have few values refuses them.
/// Every count is of non-missing values; missing values are counted apart.
public struct ReferenceProfile: Codable, Sendable, Equatable {
    /// The format identifier this build writes and reads.
    public static let formatVersion = "mlops-exporter.profile/v1"

    /// ``formatVersion``.
    public var format: String
    /// The model the profile was built for.
    public var model: String
    /// Rows read from the input (including rows with missing values).
    public var rows: Int
    /// SHA-256 (hex) of the input file's bytes.
    public var inputSHA256: String
    /// One profile per configured feature, in configuration order.
    public var features: [ColumnProfile]
    /// The prediction column (numeric for regression, categorical over the classes otherwise), if present.
    public var prediction: ColumnProfile?
    /// The score column (binary classifiers' positive-class score), if present.
    public var score: ColumnProfile?

    enum CodingKeys: String, CodingKey {
        case format, model, rows, features, prediction, score
        case inputSHA256 = "input_sha256"
    }

    /// Creates a profile.
    public init(
        model: String, rows: Int, inputSHA256: String, features: [ColumnProfile], prediction: ColumnProfile? = nil,
        score: ColumnProfile? = nil
    ) {
        self.format = Self.formatVersion
        self.model = model
        self.rows = rows
        self.inputSHA256 = inputSHA256
        self.features = features
        self.prediction = prediction
        self.score = score
    }

    /// The profile of feature `name`, if any.
    public func feature(named name: String) -> ColumnProfile? { features.first { $0.name == name } }
}

/// The reference distribution of one column.
public struct ColumnProfile: Codable, Sendable, Equatable {
    /// Column name (the feature's name; `prediction` or `score`).
    public var name: String
    /// Rows where the column was missing (absent, empty, `null`, NaN).
    public var missing: Int
    /// For numeric columns.
    public var numeric: NumericProfile?
    /// For categorical columns.
    public var categorical: CategoricalProfile?

    /// Creates a numeric column profile.
    public init(name: String, missing: Int, numeric: NumericProfile) {
        self.name = name
        self.missing = missing
        self.numeric = numeric
        self.categorical = nil
    }

    /// Creates a categorical column profile.
    public init(name: String, missing: Int, categorical: CategoricalProfile) {
        self.name = name
        self.missing = missing
        self.numeric = nil
        self.categorical = categorical
    }

    /// Non-missing values.
    public var count: Int { numeric?.count ?? categorical?.counts.reduce(0, +) ?? 0 }
}

/// A numeric column: moments, quantile bins and a fine histogram.
///
/// Bins (``binCount`` = `edges.count + 3`): index 0 is underflow (`x < min`), then the quantile bins
/// `[min, edges[0]]`, `(edges[0], edges[1]]`, …, `(edges[last], max]`, then overflow (`x > max`). A
/// reference has nothing in underflow or overflow by construction. `edges` are the interior quantile
/// edges, strictly increasing and strictly between `min` and `max` (duplicates from repeated values are
/// merged, so a column may have fewer bins than asked for; a constant column has one bin).
public struct NumericProfile: Codable, Sendable, Equatable {
    /// Non-missing values.
    public var count: Int
    /// Mean.
    public var mean: Double
    /// Population standard deviation (ddof 0), as Evidently normalises Wasserstein with.
    public var std: Double
    /// Smallest value.
    public var min: Double
    /// Largest value.
    public var max: Double
    /// Interior quantile edges.
    public var edges: [Double]
    /// Reference counts per bin (underflow, quantile bins, overflow).
    public var counts: [Int]
    /// Counts of ``fineBins`` equal-width bins over `[min, max]` (bin `i` holds `x` with
    /// `min + i·w <= x < min + (i+1)·w`, the last bin closed at `max`), for KS and Wasserstein.
    public var fine: [Int]
    /// Number of distinct values (`-0.0` and `0.0` are one), exact; `nil` in a profile written before this field
    /// existed.
    public var distinct: Int?
    /// The distinct values, ascending, when there are at most ``maxListedValues`` of them (else `nil`): Evidently
    /// treats such a column as categorical, and chi-square compares it value by value.
    public var values: [Double]?
    /// The count of each of ``values``.
    public var valueCounts: [Int]?

    /// Most distinct values a profile lists (``values``): 5, Evidently's bound for treating a numeric column as
    /// categorical (`method: auto` picks chi-square for 3 to 5 values).
    public static let maxListedValues = 5

    enum CodingKeys: String, CodingKey {
        case count, mean, std, min, max, edges, counts, fine, distinct, values
        case valueCounts = "value_counts"
    }

    /// Creates a numeric profile; `distinct`, `values` and `valueCounts` as a profile written before them had them
    /// (`nil`) unless given.
    public init(
        count: Int, mean: Double, std: Double, min: Double, max: Double, edges: [Double], counts: [Int],
        fine: [Int], distinct: Int? = nil, values: [Double]? = nil, valueCounts: [Int]? = nil
    ) {
        self.count = count
        self.mean = mean
        self.std = std
        self.min = min
        self.max = max
        self.edges = edges
        self.counts = counts
        self.fine = fine
        self.distinct = distinct
        self.values = values
        self.valueCounts = valueCounts
    }

    /// Number of bins including underflow and overflow.
    public var binCount: Int { edges.count + 3 }
    /// Number of fine bins.
    public var fineBins: Int { fine.count }
}

/// A categorical column: counts per known value, plus `__other__` (the last count).
public struct CategoricalProfile: Codable, Sendable, Equatable {
    /// Known values: the configured ones, or those learned from the reference.
    public var values: [String]
    /// Counts per value, then `__other__`: `values.count + 1` entries.
    public var counts: [Int]

    /// Creates a categorical profile.
    public init(values: [String], counts: [Int]) {
        self.values = values
        self.counts = counts
    }
}
