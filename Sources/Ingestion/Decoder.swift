/// Decodes a body of prediction events and hands each valid one to `visit`, with its 0-based index in the batch.
///
/// - JSON (`.json`): the body must be one array; it is validated as a whole first, so a syntax error anywhere
///   (including a trailing comma or trailing data) throws ``BodyError/malformed(offset:message:)`` and nothing is
///   visited. Elements that are not objects are rejected as `not_an_object`.
/// - NDJSON (`.ndjson`): one object per line; blank lines (and a final line without newline) are fine, a CR
///   before LF is ignored; a syntax error rejects only its line (`invalid_json`, with the line number).
///
/// More than `maxEvents` events throws ``BodyError/tooManyEvents(count:limit:)`` before anything is visited.
/// Events with semantic errors are rejected with a ``RejectReason`` and the others accepted. Unknown keys are
/// ignored (their values still have to be valid JSON); for duplicate keys, the last one wins. Nesting deeper than
/// 64 levels is a syntax error. `null` counts as absent for every field.
///
/// The visitor receives a buffer reused for the next event: copy what must outlive the call.
public func decodePredictions(
    body: UnsafeRawBufferPointer, format: BodyFormat, schema: Schema, maxEvents: Int,
    visit: (PredictionEvent, Int) -> Void
) throws(BodyError) -> DecodeReport {
    var event = PredictionEvent(schema: schema)
    var fields = FieldReader(schema: schema)
    var report = DecodeReport()
    var unknownFeatures = 0
    try forEachEvent(body, format, maxEvents, &report) { (scanner: inout Scanner) throws(SyntaxError) -> Rejection? in
        try fields.parsePrediction(&scanner, into: &event)
    } accept: { index in
        unknownFeatures += event.unknownFeatureCount
        visit(event, index)
    }
    report.unknownFeatures = unknownFeatures
    return report
}

/// ``decodePredictions(body:format:schema:maxEvents:visit:)`` for a byte array.
public func decodePredictions(
    body: [UInt8], format: BodyFormat, schema: Schema, maxEvents: Int, visit: (PredictionEvent, Int) -> Void
) throws(BodyError) -> DecodeReport {
    try withRawBytes(body) { (raw) throws(BodyError) in
        try decodePredictions(body: raw, format: format, schema: schema, maxEvents: maxEvents, visit: visit)
    }
}

/// Decodes a body of label events (`{"id": ..., "label": ..., "timestamp": ...}`), with the same framing, limits
/// and error rules as ``decodePredictions(body:format:schema:maxEvents:visit:)``. `id` and `label` are required;
/// `label` is typed by the schema's task.
public func decodeLabels(
    body: UnsafeRawBufferPointer, format: BodyFormat, schema: Schema, maxEvents: Int,
    visit: (LabelEvent, Int) -> Void
) throws(BodyError) -> DecodeReport {
    var event = LabelEvent(id: "", label: .number(0))
    var fields = FieldReader(schema: schema)
    var report = DecodeReport()
    try forEachEvent(body, format, maxEvents, &report) { (scanner: inout Scanner) throws(SyntaxError) -> Rejection? in
        try fields.parseLabel(&scanner, into: &event)
    } accept: { index in
        visit(event, index)
    }
    return report
}

/// ``decodeLabels(body:format:schema:maxEvents:visit:)`` for a byte array.
public func decodeLabels(
    body: [UInt8], format: BodyFormat, schema: Schema, maxEvents: Int, visit: (LabelEvent, Int) -> Void
) throws(BodyError) -> DecodeReport {
    try withRawBytes(body) { (raw) throws(BodyError) in
        try decodeLabels(body: raw, format: format, schema: schema, maxEvents: maxEvents, visit: visit)
    }
}

private func withRawBytes<R>(
    _ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(BodyError) -> R
) throws(BodyError) -> R {
    let result: Result<R, BodyError> = bytes.withUnsafeBytes { raw in
        do throws(BodyError) { return .success(try body(raw)) } catch { return .failure(error) }
    }
    return try result.get()
}

/// A semantic rejection of one event.
struct Rejection: Equatable {
    var reason: RejectReason
    var message: String
}

// MARK: - Framing

/// Splits `body` into event objects per `format`, calls `parse` with the scanner at each object's '{', and
/// `accept` for events it returned no rejection for.
private func forEachEvent(
    _ raw: UnsafeRawBufferPointer, _ format: BodyFormat, _ maxEvents: Int, _ report: inout DecodeReport,
    parse: (inout Scanner) throws(SyntaxError) -> Rejection?, accept: (Int) -> Void
) throws(BodyError) {
    let body = raw.bindMemory(to: UInt8.self)
    switch format {
    case .json:
        // Pass 1: validate the whole array and count its elements.
        var scanner = Scanner(body)
        do {
            try scanner.expect(0x5B, "'[' (a JSON array of events)")
            var count = 0
            scanner.skipWhitespace()
            if scanner.pos < scanner.end && scanner.base[scanner.pos] == 0x5D {
                scanner.pos += 1
            } else {
                repeat {
                    count += 1
                    if count > maxEvents { throw BodyError.tooManyEvents(count: count, limit: maxEvents) }
                    try scanner.skipValue(depth: 1)
                } while try scanner.arrayContinues()
            }
            scanner.skipWhitespace()
            if !scanner.atEnd { throw scanner.error("unexpected data after the array") }
        } catch let error as SyntaxError {
            throw BodyError.malformed(offset: error.offset, message: error.message)
        } catch {
            throw error as! BodyError
        }
        // Pass 2: decode; syntax errors cannot happen any more.
        scanner = Scanner(body)
        scanner.skipWhitespace()
        scanner.pos += 1
        if scanner.peek() == 0x5D { return }
        var index = 0
        do throws(SyntaxError) {
            repeat {
                scanner.skipWhitespace()
                let start = scanner.pos
                let rejection: Rejection?
                if scanner.peek() == 0x7B {
                    rejection = try parse(&scanner)
                } else {
                    try scanner.skipValue(depth: 1)
                    rejection = Rejection(reason: .notAnObject, message: "expected an event object")
                }
                if let rejection {
                    report.record(
                        EventError(
                            index: index, line: nil, offset: start, reason: rejection.reason,
                            message: rejection.message))
                } else {
                    report.accepted += 1
                    accept(index)
                }
                index += 1
            } while try scanner.arrayContinues()
        } catch {
            throw BodyError.malformed(offset: error.offset, message: error.message)
        }
    case .ndjson:
        // The line ends, found in one pass before anything is visited (nil when there are more lines than
        // `maxEvents`: then the non-blank ones were counted, there are not too many, and each end is searched).
        let ends = try lineEnds(body, maxEvents)
        var lineStart = 0
        var line = 1
        var index = 0
        while lineStart < body.count {
            var lineEnd = ends?[line - 1] ?? nextNewline(body, from: lineStart)
            let next = lineEnd + 1
            if lineEnd > lineStart && body[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            var scanner = Scanner(body, from: lineStart, to: lineEnd)
            scanner.skipWhitespace()
            if !scanner.atEnd {
                let start = scanner.pos
                var failure: EventError?
                do throws(SyntaxError) {
                    if scanner.base[scanner.pos] == 0x7B {
                        if let rejection = try parse(&scanner) {
                            failure = EventError(
                                index: index, line: line, offset: start, reason: rejection.reason,
                                message: rejection.message)
                        }
                    } else {
                        try scanner.skipValue(depth: 1)
                        failure = EventError(
                            index: index, line: line, offset: start, reason: .notAnObject,
                            message: "expected an event object")
                    }
                    scanner.skipWhitespace()
                    if !scanner.atEnd { throw scanner.error("unexpected data after the event object") }
                } catch {
                    failure = EventError(
                        index: index, line: line, offset: error.offset, reason: .invalidJSON,
                        message: "malformed JSON at column \(error.offset - lineStart + 1): \(error.message)")
                }
                if let failure {
                    report.record(failure)
                } else {
                    report.accepted += 1
                    accept(index)
                }
                index += 1
            }
            lineStart = next
            line += 1
        }
    }
}

/// The offset of the next LF at or after `from`, or `body.count`.
@inline(__always)
private func nextNewline(_ body: UnsafeBufferPointer<UInt8>, from: Int) -> Int {
    guard let base = body.baseAddress else { return body.count }
    var i = from
    let n = body.count
    // Eight bytes at a time: a zero byte in (word ^ 0x0A..0A) marks an LF.
    while i + 8 <= n {
        let word = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self) ^ 0x0A0A_0A0A_0A0A_0A0A
        let found = (word &- 0x0101_0101_0101_0101) & ~word & 0x8080_8080_8080_8080
        if found != 0 { return i + (found.littleEndian.trailingZeroBitCount >> 3) }
        i += 8
    }
    while i < n {
        if base[i] == 0x0A { return i }
        i += 1
    }
    return n
}

/// The offset of each line's end (its LF, or `body.count` for a last line without one), found eight bytes at a
/// time; nil when there are more than `maxEvents` lines, after ``checkLineCount(_:_:)`` counted the non-blank ones
/// (it throws `tooManyEvents` when they are more than `maxEvents`).
private func lineEnds(_ body: UnsafeBufferPointer<UInt8>, _ maxEvents: Int) throws(BodyError) -> [Int]? {
    let n = body.count
    guard let base = body.baseAddress, n > 0 else {
        try checkLineCount(body, maxEvents)  // no line, but a negative limit is still exceeded
        return []
    }
    var ends: [Int] = []
    ends.reserveCapacity(max(0, min(maxEvents, n / 32)) + 1)
    let raw = UnsafeRawPointer(base)
    let ones: UInt64 = 0x0101_0101_0101_0101
    let low7: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
    // For a word x = bytes ^ 0x0A..0A, ((x & 0x7F..7F) + 0x7F..7F) | x has the high bit of a byte clear exactly
    // where the byte is an LF (no carry between bytes); `word(at:)` returns that, its high bits only.
    @inline(__always) func word(at offset: Int) -> UInt64 {
        let x = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) ^ (ones &* 0x0A)
        return ((x & low7) &+ low7) | x | low7
    }
    var i = 0
    while i &+ 8 <= n {
        // 32 bytes per round while no LF is among them (most of the body).
        if i &+ 32 <= n, word(at: i) & word(at: i &+ 8) & word(at: i &+ 16) & word(at: i &+ 24) == ~0 {
            i &+= 32
            continue
        }
        var found = ~word(at: i)
        while found != 0 {
            ends.append(i &+ found.trailingZeroBitCount >> 3)
            found &= found &- 1
        }
        if ends.count > maxEvents { break }
        i &+= 8
    }
    if ends.count <= maxEvents {
        while i < n {
            if base[i] == 0x0A { ends.append(i) }
            i &+= 1
        }
        if (ends.last ?? -1) &+ 1 < n { ends.append(n) }
    }
    if ends.count <= maxEvents { return ends }
    try checkLineCount(body, maxEvents)
    return nil
}

/// Throws `tooManyEvents` when the body has more than `maxEvents` non-blank lines.
private func checkLineCount(_ body: UnsafeBufferPointer<UInt8>, _ maxEvents: Int) throws(BodyError) {
    var start = 0
    var nonBlank = 0
    var lines = 0
    // Cheap bound first: fewer lines than the limit needs no blank-line check.
    while start < body.count {
        lines += 1
        start = nextNewline(body, from: start) + 1
    }
    if lines <= maxEvents { return }
    start = 0
    while start < body.count {
        let end = nextNewline(body, from: start)
        var i = start
        while i < end {
            let b = body[i]
            if b != 0x20 && b != 0x09 && b != 0x0D { break }
            i += 1
        }
        if i < end { nonBlank += 1 }
        start = end + 1
    }
    if nonBlank > maxEvents { throw BodyError.tooManyEvents(count: nonBlank, limit: maxEvents) }
}
