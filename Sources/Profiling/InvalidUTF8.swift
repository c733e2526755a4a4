/// Finding and reporting the first byte of an input that is not UTF-8 text (inputs are never decoded with
/// replacement characters: a profile of mangled categories would pass unnoticed).
enum InvalidUTF8 {
    /// Index of the first byte in `range` of `bytes` that is not part of a valid UTF-8 sequence, or `nil`
    /// when the whole range is valid.
    static func firstIndex(in bytes: [UInt8], _ range: Range<Int>) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes[range].makeIterator()
        var index = range.lowerBound
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): index += scalar.count
            case .emptyInput: return nil
            case .error: return index
            }
        }
    }

    /// The error for the invalid byte at `index` of `file`'s `bytes`, on line `line`, which starts at
    /// `lineStart` (the bytes between are valid UTF-8: the column counts their characters).
    static func error(
        file: String, bytes: [UInt8], at index: Int, line: Int, lineStart: Int, field: String = ""
    ) -> ProfilingError {
        let column = 1 + bytes[lineStart..<index].count { $0 & 0xC0 != 0x80 }
        let hex = String(bytes[index], radix: 16, uppercase: true)
        return ProfilingError(
            file: file, line: line, column: column, field: field,
            message: "invalid UTF-8 (byte 0x\(hex.count == 1 ? "0" : "")\(hex)); the input must be UTF-8 text")
    }
}
