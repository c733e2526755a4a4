/// One line of NDJSON read as `mlops-exporter profile` reads its inputs, for every reader of NDJSON files (the
/// profile's and `batch`'s): valid UTF-8 first (strings are decoded from the bytes as they are), then strict JSON plus
/// Python's `NaN`, `Infinity` and `-Infinity` (``StrictJSONParser``: no trailing commas, comments or other JSON5, no
/// key given twice). A fault is a ``ProfilingError`` naming the file, the line, the column (in characters) and the key.
package enum NDJSONLine {
    /// The value of `bytes[range]`, line `line` of `file` (without its line feed).
    package static func parse(
        _ bytes: [UInt8], _ range: Range<Int>, file: String, line: Int
    ) throws(ProfilingError) -> JSONValue {
        if let bad = InvalidUTF8.firstIndex(in: bytes, range) {
            throw InvalidUTF8.error(file: file, bytes: bytes, at: bad, line: line, lineStart: range.lowerBound)
        }
        let text = bytes[range]
        do {
            return try StrictJSONParser.parse(text)
        } catch {
            // The column in characters (the line is valid UTF-8): bytes that do not continue a character.
            let column = 1 + text.prefix(error.offset).count { $0 & 0xC0 != 0x80 }
            throw ProfilingError(file: file, line: line, column: column, field: error.field, message: error.message)
        }
    }
}
