/// The texts a CSV cell of a numeric column may hold for a missing value, beside an empty cell: what pandas'
/// `read_csv` reads as missing by default (`NA`, `N/A`, `NULL`, `None`, `<NA>`, `#N/A`, `nan`, ...; R's `write.csv`
/// writes `NA`, pandas' `to_csv(na_rep=...)` users often `NULL` or `None`), and `nan` in any case. Surrounding spaces
/// and tabs are ignored. Categorical columns keep such texts as values (a category may be called `NA`).
public enum MissingValueText {
    private static let texts: Set<String> = [
        "NA", "N/A", "n/a", "NULL", "null", "None", "<NA>", "#N/A", "#N/A N/A", "#NA", "-NaN", "-nan", "1.#IND",
        "-1.#IND", "1.#QNAN", "-1.#QNAN",
    ]

    /// Whether `bytes` is one of the texts of a missing value.
    public static func isMissing(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var start = 0
        var end = bytes.count
        while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
        while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
        guard end - start <= 8, end > start else { return false }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        return texts.contains(text) || text.lowercased() == "nan"
    }

    /// Whether `text` is one of the texts of a missing value.
    public static func isMissing(_ text: String) -> Bool {
        var copy = text
        return copy.withUTF8 { isMissing($0) }
    }

    /// Whether `bytes` (spaces around ignored) spell an infinity as pandas' `to_csv` and R write one (`inf`, `-inf`,
    /// `Inf`, `Infinity`, with a sign or not, in any case): refused as one, not as "not a number".
    public static func isInfinityText(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var text = String(decoding: bytes, as: UTF8.self).trimmingSpacesAndTabs.lowercased()
        if text.hasPrefix("+") || text.hasPrefix("-") { text.removeFirst() }
        return text == "inf" || text == "infinity"
    }

    /// Whether `bytes` (spaces around ignored) is a number beyond a `Double`'s range (`1e400`), which reads as an
    /// infinity: "not a finite number" is then the message, not "not a number".
    public static func isOutOfRange(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let text = String(decoding: bytes, as: UTF8.self).trimmingSpacesAndTabs
        guard !text.isEmpty, text.utf8.allSatisfy({ (48...57).contains($0) || "+-.eE".utf8.contains($0) }),
            let x = Double(text)
        else { return false }
        return x.isInfinite
    }
}

extension String {
    fileprivate var trimmingSpacesAndTabs: String {
        var scalars = Substring(self)
        while let first = scalars.first, first == " " || first == "\t" { scalars.removeFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars.removeLast() }
        return String(scalars)
    }
}
