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

    /// `invalid UTF-8 (byte 0xE9)`.
    public static func describe(_ byte: UInt8) -> String {
        let hex = String(byte, radix: 16, uppercase: true)
        return "invalid UTF-8 (byte 0x\(hex.count == 1 ? "0" : "")\(hex))"
    }
}
