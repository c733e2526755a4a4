import ExporterConfig

/// Reporting the first byte of an input that is not UTF-8 text (inputs are never decoded with replacement characters:
/// a profile of mangled categories would pass unnoticed); the finding is ``ExporterConfig/InvalidUTF8Location``'s.
enum InvalidUTF8 {
    /// Index of the first byte in `range` of `bytes` that is not part of a valid UTF-8 sequence, or `nil`
    /// when the whole range is valid.
    static func firstIndex(in bytes: [UInt8], _ range: Range<Int>) -> Int? {
        InvalidUTF8Location.firstIndex(in: bytes, range)
    }

    /// The error for the invalid byte at `index` of `file`'s `bytes`, on line `line`, which starts at
    /// `lineStart` (the bytes between are valid UTF-8: the column counts their characters).
    static func error(
        file: String, bytes: [UInt8], at index: Int, line: Int, lineStart: Int, field: String = ""
    ) -> ProfilingError {
        ProfilingError(
            file: file, line: line, column: InvalidUTF8Location.column(of: index, lineStart: lineStart, in: bytes),
            field: field, message: InvalidUTF8Location.describe(bytes[index]) + "; the input must be UTF-8 text")
    }
}
