#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#elseif canImport(Musl)
    import Musl
#endif

/// Decodes a body of prediction events and hands each valid one to `visit`, with its 0-based index in the batch.
///
/// - JSON (`.json`): the body must be one array; it is validated as a whole first, so a syntax error anywhere
///   (including a trailing comma or trailing data) throws ``BodyError/malformed(offset:message:)`` and nothing is
///   visited. Elements that are not objects are rejected as `not_an_object`.
/// - NDJSON (`.ndjson`): one object per line; blank lines (and a final line without newline) are fine, a CR
///   before LF is ignored; a syntax error rejects only its line (`invalid_json`, with the line number).
///
/// More than `maxEvents` events throws ``BodyError/tooManyEvents(count:limit:)`` before anything is visited.
/// Events with semantic errors are rejected with a ``RejectReason`` and the others accepted. Keys that are no event
/// field are skipped (their values still have to be valid JSON), counted in ``DecodeReport/unknownKeys`` for the
/// accepted events, the body's first named in ``DecodeReport/firstUnknownKey``. A known key given twice in one event
/// (an event field, a feature, an attribute, a class of `probabilities`) rejects the event as `invalid_json` (JSON
/// decoders keep the last, so the first value was lost unsaid). Nesting deeper than 64 levels is a syntax error.
/// `null` counts as absent for every field (given twice, even as `null`, a key still rejects the event).
///
/// The visitor gets the decoder's one event `inout`, so that it is not copied per event (a copy retains and
/// releases each of its strings and arrays); the next event overwrites it: copy what must outlive the call. The
/// visitor may change it (the decoder restores the arrays' schema lengths for the next event).
///
/// `cache`, when given, carries decoding state from earlier bodies (see ``DecoderCache``); it must not be used by
/// another call at the same time. `defaultVersion`, when given, is the version of an event without one (an empty one
/// included), which is otherwise rejected `missing_version`.
public func decodePredictions(
    body: UnsafeRawBufferPointer, format: BodyFormat, schema: Schema, maxEvents: Int, cache: DecoderCache? = nil,
    defaultVersion: String? = nil, visit: (inout PredictionEvent, Int) -> Void
) throws(BodyError) -> DecodeReport {
    var event = PredictionEvent(schema: schema)
    var fields = FieldReader(schema: schema, cache: cache)
    fields.defaultVersion = defaultVersion
    defer { cache?.fieldSuccessors = fields.fieldSuccessors }
    var report = DecodeReport()
    var unknownFeatures = 0
    var unknownKeys = 0
    try forEachEvent(body, format, maxEvents, &report) { (scanner: inout Scanner) throws(SyntaxError) -> Rejection? in
        try fields.parsePrediction(&scanner, into: &event)
    } accept: { index in
        unknownFeatures += event.unknownFeatureCount
        unknownKeys += fields.unknownKeysInEvent
        visit(&event, index)
    }
    report.unknownFeatures = unknownFeatures
    report.unknownKeys = unknownKeys
    report.firstUnknownKey = fields.firstUnknownKey
    report.firstUnknownFeature = fields.firstUnknownFeature
    return report
}

/// ``decodePredictions(body:format:schema:maxEvents:cache:visit:)`` for a byte array.
public func decodePredictions(
    body: [UInt8], format: BodyFormat, schema: Schema, maxEvents: Int, cache: DecoderCache? = nil,
    visit: (inout PredictionEvent, Int) -> Void
) throws(BodyError) -> DecodeReport {
    try withRawBytes(body) { (raw) throws(BodyError) in
        try decodePredictions(
            body: raw, format: format, schema: schema, maxEvents: maxEvents, cache: cache, visit: visit)
    }
}

/// Decodes a body of label events (`{"id": ..., "label": ..., "timestamp": ...}`), with the same framing, limits
/// and error rules as ``decodePredictions(body:format:schema:maxEvents:cache:visit:)``. `id` and `label` are
/// required; `label` is typed by the schema's task.
public func decodeLabels(
    body: UnsafeRawBufferPointer, format: BodyFormat, schema: Schema, maxEvents: Int, cache: DecoderCache? = nil,
    visit: (LabelEvent, Int) -> Void
) throws(BodyError) -> DecodeReport {
    var event = LabelEvent(id: "", label: .number(0))
    var fields = FieldReader(schema: schema, cache: cache)
    var report = DecodeReport()
    var unknownKeys = 0
    try forEachEvent(body, format, maxEvents, &report) { (scanner: inout Scanner) throws(SyntaxError) -> Rejection? in
        try fields.parseLabel(&scanner, into: &event)
    } accept: { index in
        unknownKeys += fields.unknownKeysInEvent
        visit(event, index)
    }
    report.unknownKeys = unknownKeys
    report.firstUnknownKey = fields.firstUnknownKey
    report.firstUnknownFeature = fields.firstUnknownFeature
    return report
}

/// ``decodeLabels(body:format:schema:maxEvents:cache:visit:)`` for a byte array.
public func decodeLabels(
    body: [UInt8], format: BodyFormat, schema: Schema, maxEvents: Int, cache: DecoderCache? = nil,
    visit: (LabelEvent, Int) -> Void
) throws(BodyError) -> DecodeReport {
    try withRawBytes(body) { (raw) throws(BodyError) in
        try decodeLabels(body: raw, format: format, schema: schema, maxEvents: maxEvents, cache: cache, visit: visit)
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
        scanner.allowsNonFinite = true
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
        scanner.allowsNonFinite = true
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
            scanner.allowsNonFinite = true
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
                        message:
                            "malformed JSON at column \(characterColumn(body, lineStart, error.offset)): \(error.message)"
                    )
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

/// The offset of the next LF at or after `from`, or `body.count` (libc's vectorised `memchr`).
@inline(__always)
/// The 1-based column, in characters (bytes that do not continue a UTF-8 character), of byte `offset` of `body` on the
/// line that starts at `lineStart`: as the CLI's input errors count columns (the offset in bytes named another column
/// than the error's own on a line with accented text).
private func characterColumn(_ body: UnsafeBufferPointer<UInt8>, _ lineStart: Int, _ offset: Int) -> Int {
    1 + body[lineStart..<min(offset, body.count)].count { $0 & 0xC0 != 0x80 }
}

private func nextNewline(_ body: UnsafeBufferPointer<UInt8>, from: Int) -> Int {
    guard let base = body.baseAddress, from < body.count else { return body.count }
    guard let found = memchr(base + from, 0x0A, body.count - from) else { return body.count }
    return base.distance(to: found.assumingMemoryBound(to: UInt8.self))
}

/// The offset of each line's end (its LF, or `body.count` for a last line without one), found with `memchr`; nil
/// when there are more than `maxEvents` lines, after ``checkLineCount(_:_:)`` counted the non-blank ones (it throws
/// `tooManyEvents` when they are more than `maxEvents`).
private func lineEnds(_ body: UnsafeBufferPointer<UInt8>, _ maxEvents: Int) throws(BodyError) -> [Int]? {
    let n = body.count
    guard n > 0 else {
        try checkLineCount(body, maxEvents)  // no line, but a negative limit is still exceeded
        return []
    }
    var ends: [Int] = []
    ends.reserveCapacity(max(0, min(maxEvents, n / 32)) + 1)
    var i = 0
    while i < n {
        let lineEnd = nextNewline(body, from: i)
        ends.append(lineEnd)
        if ends.count > maxEvents { break }
        i = lineEnd &+ 1
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
