/// Where bytes stop being UTF-8 text, for errors that name the line and column of the first bad byte: the
/// configuration loader's and the input readers' of `profile` and `batch` (which never decode with replacement
/// characters).
public enum InvalidUTF8Location {
    /// Index of the first byte in `range` of `bytes` that is not part of a valid UTF-8 sequence, or `nil` when the
    /// whole range is valid.
    public static func firstIndex(in bytes: [UInt8], _ range: Range<Int>) -> Int? {
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

    /// The 1-based column of the byte at `index` on a line starting at `lineStart` (the bytes between are valid
    /// UTF-8: the column counts their characters).
    public static func column(of index: Int, lineStart: Int, in bytes: [UInt8]) -> Int {
        1 + bytes[lineStart..<index].count { $0 & 0xC0 != 0x80 }
    }

    /// The line and column of the byte at `index` in `bytes` whose offset `start` begins line `line` (the bytes
    /// between are valid UTF-8).
    public static func position(
        of index: Int, in bytes: [UInt8], from start: Int, line: Int
    ) -> (line: Int, column: Int) {
        let newline = UInt8(ascii: "\n")
        let lineStart = bytes[start..<index].lastIndex(of: newline).map { $0 + 1 } ?? start
        return (line + bytes[start..<index].count { $0 == newline }, column(of: index, lineStart: lineStart, in: bytes))
    }

    /// `invalid UTF-8 (byte 0xE9)`.
    public static func describe(_ byte: UInt8) -> String {
        let hex = String(byte, radix: 16, uppercase: true)
        return "invalid UTF-8 (byte 0x\(hex.count == 1 ? "0" : "")\(hex))"
    }
}
