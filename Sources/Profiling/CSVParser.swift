import ExporterConfig

/// An RFC 4180 CSV record reader over a file's bytes: comma-separated fields, records ended by LF or
/// CRLF, fields optionally in double quotes (with `""` for a quote, and commas, quotes and line breaks
/// inside). A UTF-8 byte order mark is skipped; blank lines are skipped (as pandas does). Quotes inside an
/// unquoted field, text after a closing quote and bytes that are not UTF-8 are errors.
struct CSVParser {
    private let bytes: [UInt8]
    private let file: String
    /// Where the text begins (after the byte order mark, if any).
    private let textStart: Int
    private var position = 0
    private var line = 1
    /// Where the record being read began (for ``maxRecordBytes``), and its line.
    private var recordBegin = 0
    private var recordLine = 0
    /// Where each field of the record being read begins (its first byte, a quoted field's opening quote).
    private var fieldOffsets: [Int] = []

    /// The longest record read (``Profiler/maxRecordBytes``, as `batch` reads: a 200 MiB record took 640 MB, its
    /// fields' text copied).
    private let maxRecordBytes: Int

    init(bytes: [UInt8], file: String, maxRecordBytes: Int = Profiler.maxRecordBytes) {
        self.bytes = bytes
        self.file = file
        self.maxRecordBytes = maxRecordBytes
        textStart = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        position = textStart
    }

    /// The header's names, once it is read (``InputReader``): a record's field is then named by its column.
    var header: [String] = []

    /// Field `index` (1-based) of a record: `column "country"` under the header, `field 2` where there is no name (in
    /// the header itself, or past its end).
    func fieldName(_ index: Int) -> String {
        index >= 1 && index <= header.count ? "column \"\(header[index - 1])\"" : "field \(index)"
    }

    /// `error`, about field `index` (from 0) of the record last read, placed where that field begins: its line (a
    /// record may span lines inside quotes) and 1-based column in characters, as `batch` places a cell's error.
    func located(_ error: ProfilingError, field index: Int) -> ProfilingError {
        guard index < fieldOffsets.count else { return error }
        var error = error
        (error.line, error.column) = InvalidUTF8Location.position(
            of: fieldOffsets[index], in: bytes, from: recordBegin, line: recordLine)
        return error
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
        recordBegin = position
        recordLine = start
        fieldOffsets.removeAll(keepingCapacity: true)
        var fields: [String] = []
        while true {
            fieldOffsets.append(position)
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
                    fieldOffsets.append(position)
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
            if bytes[position] == Self.cr { throw bareCR(field: fields.count) }
            throw ProfilingError(
                file: file, line: line, field: fieldName(fields.count), message: "text after a closing quote")
        }
    }

    /// The error for a record over ``maxRecordBytes``, starting on line `start`.
    private func tooLong(_ start: Int) -> ProfilingError {
        ProfilingError(file: file, line: start, message: "record longer than \(Profiler.bound(maxRecordBytes))")
    }

    /// A carriage return outside quotes that does not end a line (CRLF): classic Mac line endings, most likely.
    private func bareCR(field: Int) -> ProfilingError {
        ProfilingError(file: file, line: line, field: fieldName(field), message: CSVLineEndings.bareCRMessage)
    }

    private func lineBreakLength(at i: Int) -> Int? {
        if bytes[i] == Self.lf { return 1 }
        if bytes[i] == Self.cr, i + 1 < bytes.count, bytes[i + 1] == Self.lf { return 2 }
        return nil
    }

    private mutating func unquoted(start: Int, index: Int) throws(ProfilingError) -> String {
        let begin = position
        // The field's end first (no copy), then its length checked: a record over the bound is refused before its text
        // is made.
        let limit = min(bytes.count, recordBegin + maxRecordBytes + 1)
        while position < limit {
            let b = bytes[position]
            if b == Self.comma || lineBreakLength(at: position) != nil { break }
            if b == Self.cr { throw bareCR(field: index) }
            if b == Self.quote {
                throw ProfilingError(
                    file: file, line: start, field: fieldName(index), message: "a quote inside an unquoted field")
            }
            position += 1
        }
        if position - recordBegin > maxRecordBytes { throw tooLong(start) }
        return try text(bytes[begin..<position], written: begin..<position, line: line, index: index)
    }

    private mutating func quoted(start: Int, index: Int) throws(ProfilingError) -> String {
        let (begin, firstLine) = (position, line)
        position += 1
        var text: [UInt8] = []
        while position < bytes.count {
            let b = bytes[position]
            if b == Self.quote {
                if position + 1 < bytes.count, bytes[position + 1] == Self.quote {
                    text.append(Self.quote)
                    position += 2
                    if position - recordBegin > maxRecordBytes { throw tooLong(start) }
                    continue
                }
                position += 1
                if position - recordBegin > maxRecordBytes { throw tooLong(start) }
                return try self.text(text, written: begin..<position, line: firstLine, index: index)
            }
            if b == Self.lf { line += 1 }
            text.append(b)
            position += 1
            if position - recordBegin > maxRecordBytes { throw tooLong(start) }
        }
        throw ProfilingError(
            file: file, line: start, field: fieldName(index), message: "a quoted field is not closed before the end")
    }

    /// Field `index`'s text from its bytes `field`; throws naming the first byte that is not UTF-8 in
    /// `written`, the field as the file has it (quotes and all), which begins on line `line`.
    private func text(
        _ field: some Collection<UInt8>, written: Range<Int>, line: Int, index: Int
    ) throws(ProfilingError) -> String {
        if let text = String(validating: field, as: UTF8.self) { return text }
        let bad = InvalidUTF8.firstIndex(in: bytes, written) ?? written.lowerBound
        let lineStart = bytes[textStart..<bad].lastIndex(of: Self.lf).map { $0 + 1 } ?? textStart
        throw InvalidUTF8.error(
            file: file, bytes: bytes, at: bad, line: line + bytes[written.lowerBound..<bad].count { $0 == Self.lf },
            lineStart: lineStart, field: fieldName(index))
    }
}
