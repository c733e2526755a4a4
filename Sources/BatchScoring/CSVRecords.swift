import ExporterConfig
import Profiling

/// An RFC 4180 CSV record scanner over bytes that arrive in pieces: comma-separated fields, records ended by LF or
/// CRLF, fields optionally in double quotes (`""` for a quote; commas and line breaks inside). Blank lines are
/// skipped, a UTF-8 byte order mark at the start too (as `mlops-exporter profile` reads CSV). A quote inside an
/// unquoted field and text after a closing quote are errors naming the file, line and column.
///
/// Fields are handed out as byte ranges into the scanner's buffer (quoted ones unescaped into ``scratch``), valid
/// until the next call: no `String` per field.
struct CSVRecords {
    /// One field of the current record: bytes of ``CSVRecords/buffer`` or, when quoted, of ``CSVRecords/scratch``.
    struct Field {
        var start: Int
        var end: Int
        var quoted: Bool
        /// Where the field starts: the offset in ``CSVRecords/buffer`` of its line's start, and of its own start.
        var lineStart: Int
        var offset: Int
    }

    let file: String
    /// The longest record held (``ChunkedFile/maxLineBytes`` unless a test says otherwise).
    let maxRecordBytes: Int
    private var source: ChunkedFile
    private(set) var buffer: [UInt8] = []
    private(set) var scratch: [UInt8] = []
    private var position = 0
    /// The line (from 1) at ``position``, and the buffer offset where that line starts.
    private(set) var line = 1
    private var lineStart = 0
    /// The fields of the current record, and the line it starts on.
    private(set) var fields: [Field] = []
    private(set) var recordLine = 0
    /// Where the current record starts in ``buffer``.
    private var recordStart = 0
    /// The header's column names, once the caller read them: a record's bad bytes are named by their column.
    var header: [String] = []

    init(file: String, chunkSize: Int = 4 << 20, maxRecordBytes: Int = ChunkedFile.maxLineBytes) throws(ProfilingError)
    {
        self.file = file
        self.maxRecordBytes = maxRecordBytes
        source = try ChunkedFile(path: file, chunkSize: chunkSize)
    }

    private static let quote = UInt8(ascii: "\"")
    private static let comma = UInt8(ascii: ",")
    private static let lf = UInt8(ascii: "\n")
    private static let cr = UInt8(ascii: "\r")

    /// The 1-based column, in characters (as every input error counts them), of byte `offset` of ``buffer`` on the
    /// line that starts at `lineStart`.
    private func characterColumn(_ offset: Int, lineStart: Int) -> Int {
        InvalidUTF8Location.column(of: offset, lineStart: lineStart, in: buffer)
    }

    /// The 1-based column, in characters, where `field` (of the current record) starts on its line.
    func column(_ field: Field) -> Int { characterColumn(field.offset, lineStart: field.lineStart) }

    /// Reads the next record into ``fields``; false at the end of the file.
    mutating func next() throws(ProfilingError) -> Bool {
        var recordStart = position
        while true {
            if let complete = try scan() {
                // Also when the record ended in the piece just read (one of 65 MiB was taken: the bound was checked
                // only before reading more).
                if complete && position - recordStart > maxRecordBytes + 2 { throw tooLong() }
                if complete { try checkUTF8() }
                return complete
            }
            // The buffer ends inside a record: keep its bytes, read more (a record is held whole: bounded).
            if source.atEnd { return try finishLast() }
            if buffer.count - position > maxRecordBytes { throw tooLong() }
            buffer.removeSubrange(0..<position)
            lineStart -= position
            position = 0
            recordStart = 0
            try source.read(appendingTo: &buffer)  // a byte-order mark is left out there
        }
    }

    /// The error for a record over ``maxRecordBytes``.
    private func tooLong() -> ProfilingError {
        // The line the record starts on (`line` is past it once it was read whole: the next one was named).
        ProfilingError(file: file, line: recordLine, message: "record longer than \(Profiler.bound(maxRecordBytes))")
    }

    /// The text of field `f` (for messages and categories).
    func text(_ f: Field) -> String {
        let bytes = f.quoted ? scratch[f.start..<f.end] : buffer[f.start..<f.end]
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Calls `body` with field `f`'s bytes.
    func withBytes<R>(_ f: Field, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        (f.quoted ? scratch : buffer).withUnsafeBufferPointer {
            body(UnsafeBufferPointer(rebasing: $0[f.start..<f.end]))
        }
    }

    /// At the end of the file with an unfinished record in the buffer: scans it as if a line break followed.
    private mutating func finishLast() throws(ProfilingError) -> Bool {
        guard position < buffer.count else { return false }
        if buffer[position...].allSatisfy({ $0 == Self.cr }) { return false }
        buffer.append(Self.lf)
        let complete = try scan() ?? false
        if complete { try checkUTF8() }
        return complete
    }

    /// A record's text is read as UTF-8 (categories, labels, ids): bytes that are not UTF-8 are bad input, not replaced
    /// silently by U+FFFD.
    private func checkUTF8() throws(ProfilingError) {
        guard String(validating: buffer[recordStart..<position], as: UTF8.self) == nil,
            let bad = InvalidUTF8Location.firstIndex(in: buffer, recordStart..<position)
        else { return }
        // At the line and column of the first bad byte, as the configuration's (it named the record's line alone).
        let at = InvalidUTF8Location.position(of: bad, in: buffer, from: recordStart, line: recordLine)
        // The field it is in: the commas before it outside quotes (a doubled quote toggles twice).
        var field = 0
        var quoted = false
        for byte in buffer[recordStart..<bad] {
            if byte == Self.quote {
                quoted.toggle()
            } else if byte == Self.comma && !quoted {
                field += 1
            }
        }
        let name = field < header.count ? "column \"\(header[field])\"" : "field \(field + 1)"
        throw ProfilingError(
            file: file, line: at.line, column: at.column,
            message: "\(name): \(InvalidUTF8Location.describe(buffer[bad])); the input must be UTF-8 text")
    }

    /// Scans one record from ``position``: true when one was read, false when the file has no more (only at the
    /// end), nil when the buffer ends before the record does (nothing consumed).
    private mutating func scan() throws(ProfilingError) -> Bool? {
        // Skip blank lines.
        while position < buffer.count {
            if buffer[position] == Self.lf {
                position += 1
                line += 1
                lineStart = position
            } else if buffer[position] == Self.cr, position + 1 < buffer.count, buffer[position + 1] == Self.lf {
                position += 2
                line += 1
                lineStart = position
            } else {
                break
            }
        }
        if position >= buffer.count { return source.atEnd ? false : nil }
        let (savedPosition, savedLine, savedLineStart) = (position, line, lineStart)
        recordStart = position
        fields.removeAll(keepingCapacity: true)
        scratch.removeAll(keepingCapacity: true)
        recordLine = line
        var p = position
        let n = buffer.count
        while true {
            let (fieldLineStart, fieldOffset) = (lineStart, p)
            if p < n, buffer[p] == Self.quote {
                // Quoted field.
                let start = scratch.count
                p += 1
                var closed = false
                while p < n {
                    let b = buffer[p]
                    if b == Self.quote {
                        if p + 1 >= n { break }  // cannot tell "" from the end: read more
                        if buffer[p + 1] == Self.quote {
                            scratch.append(Self.quote)
                            p += 2
                            continue
                        }
                        p += 1
                        closed = true
                        break
                    }
                    if b == Self.lf {
                        line += 1
                        lineStart = p + 1
                    }
                    scratch.append(b)
                    p += 1
                }
                guard closed else {
                    (position, line, lineStart) = (savedPosition, savedLine, savedLineStart)
                    if source.atEnd {
                        throw ProfilingError(
                            file: file, line: recordLine,
                            column: characterColumn(fieldOffset, lineStart: fieldLineStart),
                            field: "field \(fields.count + 1)",
                            message: "a quoted field is not closed before the end")
                    }
                    return nil
                }
                fields.append(
                    Field(
                        start: start, end: scratch.count, quoted: true, lineStart: fieldLineStart, offset: fieldOffset))
            } else {
                let start = p
                while p < n {
                    let b = buffer[p]
                    if b == Self.comma || b == Self.lf { break }
                    if b == Self.cr, p + 1 < n, buffer[p + 1] != Self.lf {
                        throw ProfilingError(
                            file: file, line: line, column: characterColumn(p, lineStart: lineStart),
                            field: "field \(fields.count + 1)",
                            message: CSVLineEndings.bareCRMessage)
                    }
                    if b == Self.quote {
                        throw ProfilingError(
                            file: file, line: line, column: characterColumn(p, lineStart: lineStart),
                            field: "field \(fields.count + 1)",
                            message: "a quote inside an unquoted field")
                    }
                    p += 1
                }
                var end = p
                if p < n, buffer[p] == Self.lf, end > start, buffer[end - 1] == Self.cr { end -= 1 }
                fields.append(
                    Field(start: start, end: end, quoted: false, lineStart: fieldLineStart, offset: fieldOffset))
            }
            guard p < n else {
                (position, line, lineStart) = (savedPosition, savedLine, savedLineStart)
                return nil
            }
            if buffer[p] == Self.comma {
                p += 1
                continue
            }
            if buffer[p] == Self.lf {
                p += 1
                line += 1
                lineStart = p
                position = p
                return true
            }
            if buffer[p] == Self.cr, p + 1 < n, buffer[p + 1] == Self.lf {
                p += 2
                line += 1
                lineStart = p
                position = p
                return true
            }
            if buffer[p] == Self.cr, p + 1 >= n {
                (position, line, lineStart) = (savedPosition, savedLine, savedLineStart)
                return nil
            }
            throw ProfilingError(
                file: file, line: line, column: characterColumn(p, lineStart: lineStart),
                field: "field \(fields.count)",
                message: buffer[p] == Self.cr ? CSVLineEndings.bareCRMessage : "text after a closing quote")
        }
    }

    /// Closes the file.
    func close() { source.close() }
}
