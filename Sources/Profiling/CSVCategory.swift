import ModelMonitoring

/// How a CSV cell of a categorical column (a categorical feature; a classifier's prediction or label) reads: as the
/// same value sent in JSON traffic is counted, so that the CSV and the NDJSON of one data set give one profile, and
/// the profile names the categories live traffic sends. pandas writes a float column's `3` as `3.0` and a bool column
/// as `True`/`False` in CSV; JSON carries `3` (or `3.0`) and `true`/`false`, which live traffic counts as `"3"` and
/// `"true"`/`"false"`.
public enum CSVCategory {
    /// A CSV cell that is a boolean as pandas or JSON writes it (`True`, `true`, `TRUE`, and `False`...): 1 or 0, nil
    /// for any other text. A numeric feature's value then, as live traffic and NDJSON count a JSON boolean; a
    /// categorical column's `true` or `false` (``text(_:configured:)``).
    public static func booleanNumber(_ raw: String) -> Double? {
        switch raw {
        case "true", "True", "TRUE": 1
        case "false", "False", "FALSE": 0
        default: nil
        }
    }

    /// The category of non-empty CSV text `raw` in a column whose configured values (or classes) are `configured`:
    /// - a configured value, as written, is that value (a configuration listing `True` means the text `True`);
    /// - text that is a JSON number is that number's category, ``ProfileBuilder/text(of:)`` (`3.0`, `3e0` → `3`; `0.5`
    ///   stays), as a number in an NDJSON line or in live traffic; one beyond Double's range stays as written, as live;
    /// - `true`, `True`, `TRUE` and `false`, `False`, `FALSE` are `true` and `false`, JSON's booleans as live traffic
    ///   names them;
    /// - any other text (`01`, ` 3`, `yes`) is the category as written.
    public static func text(_ raw: String, configured: [String]?) -> String {
        if let configured, configured.contains(where: { $0.utf8.elementsEqual(raw.utf8) }) { return raw }
        if let b = booleanNumber(raw) { return b == 1 ? "true" : "false" }
        guard StrictJSONParser.isNumber(ArraySlice(raw.utf8)), let x = Double(raw), x.isFinite else { return raw }
        return ProfileBuilder.text(of: x)
    }
}
