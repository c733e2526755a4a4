import ExporterConfig

/// The counts of a categorical column's values while a profile is built, and the ``CategoricalProfile`` they give.
///
/// Values are told apart by their UTF-8 bytes, as live traffic's are (the drift collector looks a value up in a
/// byte-level `NameIndex`): `"café"` with a precomposed `é` (U+00E9, NFC) and with `e` + U+0301 (NFD) are two
/// categories, although Swift's `String` calls them equal. Counting by `String` merged them, so identical data drifted
/// live, and which spelling the profile named depended on the order of the rows.
public struct CategoryCounts: Sendable, Equatable {
    /// Count per value, keyed by the value's UTF-8 bytes.
    private var counts: [[UInt8]: Int] = [:]

    /// The longest value learned as a category of its own, in UTF-8 bytes: a learned category becomes a label value
    /// (`bin="…"`) in every scrape and push. A longer one counts in `__other__` (a 70 MiB cell of free text was
    /// learned, and a batch pushed it as a label value: 147 MB on the Pushgateway's page).
    public static let maxLearnedBytes = ConfigLimits.maxCategoryBytes

    /// No values yet.
    public init() {}

    /// The counts of `pairs` (a value listed twice, byte for byte, adds up).
    public init(_ pairs: [(String, Int)]) {
        for (value, count) in pairs { add(value, count: count) }
    }

    /// Counts `value` `count` more times.
    public mutating func add(_ value: String, count: Int = 1) {
        counts[Array(value.utf8), default: 0] += count
    }

    /// The profile over `values` (configured; matched byte for byte) or, when `nil`, over the `maxCategories` most
    /// frequent values (ties broken by UTF-8 byte order, i.e. code point order), most frequent first; every other value
    /// counts in `__other__` (the last count).
    ///
    /// A value longer than ``maxLearnedBytes`` is never learned either: it counts in `__other__`.
    ///
    /// A value spelled `__other__` in the data is never learned as a value of its own: it counts in `__other__`, as the
    /// drift collector counts a live value `__other__` (a value outside the profile's list). A profile listing it would
    /// name the bin `__other__` twice, which the profile loader refuses. (The configuration refuses `__other__` among
    /// configured values.)
    public func profile(values: [String]?, maxCategories: Int) -> CategoricalProfile {
        let other = Array(ModelContext.other.utf8)
        let learned = counts.filter { $0.key != other && $0.key.count <= Self.maxLearnedBytes }.sorted { a, b in
            a.value != b.value ? a.value > b.value : a.key.lexicographicallyPrecedes(b.key)
        }
        let known = values ?? learned.prefix(maxCategories).map { String(decoding: $0.key, as: UTF8.self) }
        let index = Dictionary(
            known.enumerated().map { (Array($1.utf8), $0) }, uniquingKeysWith: { first, _ in first })
        var result = Array(repeating: 0, count: known.count + 1)
        for (value, count) in counts { result[index[value] ?? known.count] += count }
        return CategoricalProfile(values: known, counts: result)
    }
}
