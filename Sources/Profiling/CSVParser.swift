/// An RFC 4180 CSV record reader over a file's bytes: comma-separated fields, records ended by LF or
/// CRLF, fields optionally in double quotes (with `""` for a quote, and commas, quotes and line breaks
/// inside). A UTF-8 byte order mark is skipped; blank lines are skipped (as pandas does). Quotes inside an
/// unquoted field and text after a closing quote are errors.
struct CSVParser {
    private let bytes: [UInt8]
    private let file: String
    private var position = 0
    private var line = 1

    init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
    }

    private static let quote = UInt8(ascii: "\"")
    private static let comma = UInt8(ascii: ",")
    private static let lf = UInt8(ascii: "\n")
    private static let cr = UInt8(ascii: "\r")

    /// The next record and the line it starts on, or `nil` at the end.
    mutating func next() throws(ProfilingError) -> (fields: [String], line: Int)? {
        while position < bytes.count, let end = lineBreakLength(at: position) {
            position += end
            line += 1
        }
        guard position < bytes.count else { return nil }
        let start = line
        var fields: [String] = []
        while true {
            let field: String
            if bytes[position] == Self.quote {
                field = try quoted(start: start, index: fields.count + 1)
            } else {
                field = try unquoted(start: start, index: fields.count + 1)
            }
            fields.append(field)
            if position >= bytes.count { return (fields, start) }
            if bytes[position] == Self.comma {
                position += 1
                if position >= bytes.count {
                    fields.append("")
                    return (fields, start)
                }
                continue
            }
            if let end = lineBreakLength(at: position) {
                position += end
                line += 1
                return (fields, start)
            }
            throw ProfilingError(
                file: file, line: line, field: "field \(fields.count)", message: "text after a closing quote")
        }
    }

    private func lineBreakLength(at i: Int) -> Int? {
        if bytes[i] == Self.lf { return 1 }
        if bytes[i] == Self.cr, i + 1 < bytes.count, bytes[i + 1] == Self.lf { return 2 }
        return nil
    }

    private mutating func unquoted(start: Int, index: Int) throws(ProfilingError) -> String {
        let begin = position
        while position < bytes.count {
            let b = bytes[position]
            if b == Self.comma || lineBreakLength(at: position) != nil { break }
            if b == Self.quote {
                throw ProfilingError(
                    file: file, line: start, field: "field \(index)", message: "a quote inside an unquoted field")
            }
            position += 1
        }
        return String(decoding: bytes[begin..<position], as: UTF8.self)
    }

    private mutating func quoted(start: Int, index: Int) throws(ProfilingError) -> String {
        position += 1
        var text: [UInt8] = []
        while position < bytes.count {
            let b = bytes[position]
            if b == Self.quote {
                if position + 1 < bytes.count, bytes[position + 1] == Self.quote {
                    text.append(Self.quote)
                    position += 2
                    continue
                }
                position += 1
                return String(decoding: text, as: UTF8.self)
            }
            if b == Self.lf { line += 1 }
            text.append(b)
            position += 1
        }
        throw ProfilingError(
            file: file, line: start, field: "field \(index)", message: "a quoted field is not closed before the end")
    }
}
