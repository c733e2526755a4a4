import ExporterConfig
import Ingestion
import ModelMonitoring
import Profiling

/// Reads a batch's predictions into a model with the ingestion API's rules, all at one instant (`receivedAt`), so
/// that every event lands in the same window slice.
///
/// - CSV: a header row naming the columns `mlops-exporter profile` reads; every configured feature and
///   `prediction` must be there. One row is one prediction, recorded with ``MonitoredModel/record(_:receivedAt:)``:
///   a row the API would reject (an empty `version` or `prediction`, a prediction of the wrong type) is counted
///   in `mlops_ingest_rejected_total` by reason. A cell that is not a number in a numeric column, a row with the
///   wrong number of fields or broken quoting ends the run with an error naming file, line, column and field. A
///   categorical cell (feature, or a classifier's prediction or label) reads as `profile` reads it
///   (``CSVCategory/text(_:configured:)``: `3.0` is `3`, `True` is `true`), as the same value sent in JSON is counted.
/// - NDJSON: the ingestion API's prediction events, decoded by its decoder
///   (``MonitoredModel/ingest(_:body:format:maxEvents:receivedAt:)``) in pieces of whole lines: events with
///   semantic problems are rejected and counted by reason as the API does; a line that is not JSON, or not an
///   object, ends the run with an error naming file, line and column.
enum PredictionReader {
    /// Rows (events) read.
    struct Counts {
        var rows = 0
    }

    static func csv(
        file: String, model: MonitoredModel, defaultVersion: String?, ignoring: Set<String>, receivedAt: Double
    ) throws(ProfilingError) -> Counts {
        var records = try CSVRecords(file: file)
        defer { records.close() }
        guard try records.next() else {
            throw ProfilingError(file: file, message: "the input is empty (no header, no data rows)")
        }
        let header = records.fields.map { records.text($0) }
        records.header = header
        let headerLine = records.recordLine
        let roles = try CSVColumn.roles(
            header: header, file: file, line: headerLine, model: model, ignoring: ignoring,
            required: model.context.configuration.features.map(\.name) + ["prediction"])
        try CSVColumn.checkIgnoredPresent(ignoring.sorted(), file: file, what: "column") { header.contains($0) }
        let hasVersion = roles.contains(.version)
        guard hasVersion || defaultVersion != nil else {
            throw ProfilingError(
                file: file, line: headerLine,
                message: "no \"version\" column and model \(model.name) declares no versions (use --model-version)")
        }
        let regression = model.context.configuration.task == .regression
        let features = model.context.configuration.features
        let classes = model.context.configuration.classes
        let attributes = model.context.configuration.sensitiveAttributes
        let template = model.makePrediction(version: defaultVersion ?? "", prediction: .number(0))
        var counts = Counts()
        while try records.next() {
            let line = records.recordLine
            guard records.fields.count == header.count else {
                throw ProfilingError(
                    file: file, line: line, message: "\(records.fields.count) fields, the header has \(header.count)")
            }
            counts.rows += 1
            var event = template
            var hasPrediction = false
            for (c, role) in roles.enumerated() {
                let field = records.fields[c]
                if field.start == field.end {  // empty: missing (and an empty version is no version)
                    if role == .version { event.version = "" }
                    continue
                }
                func number() throws(ProfilingError) -> Double {
                    let x = records.withBytes(field) { CSVColumn.number($0) }
                    guard let x else {
                        throw ProfilingError(
                            file: file, line: line, column: records.column(field), field: "column \"\(header[c])\"",
                            message: records.withBytes(field) {
                                CSVColumn.notANumber($0, shown: quoted(records.text(field)))
                            })
                    }
                    return x
                }
                func outcome() throws(ProfilingError) -> Outcome? {
                    if regression {
                        let x = try number()
                        return x.isNaN ? nil : .number(x)
                    }
                    return .label(
                        CSVCategory.text(records.text(field), configured: classes.isEmpty ? nil : classes))
                }
                switch role {
                case .feature(let i, let numeric):
                    if numeric, let b = CSVCategory.booleanNumber(records.text(field)) {
                        // A boolean as pandas writes a bool column: 1 or 0, as live and in NDJSON.
                        event.features[i] = .number(b)
                    } else if numeric {
                        let x = try number()
                        event.features[i] = x.isNaN ? .missing : .number(x)
                    } else {
                        event.features[i] = .category(
                            CSVCategory.text(records.text(field), configured: features[i].values))
                    }
                case .attribute(let i):
                    // A group as live traffic names it, as a categorical feature's cell: pandas' `True`/`False` (a bool
                    // column) is `true`/`false`, its `1.0` (an integer column holding a NaN) is `1`. Before, every row
                    // of such a column was in `__other__`.
                    event.attributes[i] = CSVCategory.text(records.text(field), configured: attributes[i].groups)
                case .prediction:
                    if let o = try outcome() {
                        event.prediction = o
                        hasPrediction = true
                    }
                case .label: event.label = try outcome()
                case .score:
                    let x = try number()
                    event.score = x.isNaN ? nil : x
                case .timestamp:
                    let x = try number()
                    event.timestamp = x.isNaN ? nil : x
                case .id: event.id = records.text(field)
                case .version: event.version = records.text(field)
                case .ignored: break
                }
            }
            guard hasPrediction else {
                model.counters.rejected(.missingPrediction)
                continue
            }
            model.record(event, receivedAt: receivedAt)
        }
        if counts.rows == 0 { throw ProfilingError(file: file, message: "no data rows (only a header)") }
        return counts
    }

    static func ndjson(
        file: String, model: MonitoredModel, kind: EventKind, ignoring: Set<String> = [], defaultVersion: String? = nil,
        receivedAt: Double
    ) throws(ProfilingError) -> Counts {
        var source = try ChunkedFile(path: file)
        defer { source.close() }
        var buffer: [UInt8] = []
        var ignoredSeen = Set<String>()
        var firstLine = 1
        var counts = Counts()
        while !source.atEnd {
            try source.read(appendingTo: &buffer)
            // Whole lines only, but the last piece of the file whatever it ends with.
            let cut: Int
            if source.atEnd {
                cut = buffer.count
            } else if let lf = buffer.lastIndex(of: UInt8(ascii: "\n")) {
                cut = lf + 1
            } else {
                // A line is held whole until it ends: bounded.
                if buffer.count > ChunkedFile.maxLineBytes {
                    throw ProfilingError(
                        file: file, line: firstLine,
                        message: "line longer than \(Profiler.bound(ChunkedFile.maxLineBytes))")
                }
                continue
            }
            if cut == 0 { continue }
            if kind == .predictions {
                try checkEventKeys(
                    buffer, cut: cut, firstLine: firstLine, file: file, ignoring: ignoring, seen: &ignoredSeen)
            } else {
                try checkEventKeys(
                    buffer, cut: cut, firstLine: firstLine, file: file, fields: labelFields, seen: &ignoredSeen,
                    refusal: { "key \"\($0)\" is not a field of a label event (id, label, timestamp)" })
            }
            var unmatched = UnmatchedLabels()
            let result: Result<DecodeReport, BodyError> = buffer.withUnsafeBytes { raw in
                do throws(BodyError) {
                    return .success(
                        try model.ingest(
                            kind, body: UnsafeRawBufferPointer(rebasing: raw[0..<cut]), format: .ndjson,
                            maxEvents: Int.max, receivedAt: receivedAt, defaultVersion: defaultVersion,
                            unmatched: &unmatched))
                } catch {
                    return .failure(error)
                }
            }
            let report: DecodeReport
            switch result {
            case .success(let r): report = r
            case .failure(let error): throw ProfilingError(file: file, line: firstLine, message: "\(error)")
            }
            counts.rows += report.accepted + report.rejected
            if let bad = report.errors.first(where: { $0.reason == .invalidJSON || $0.reason == .notAnObject }) {
                throw position(of: bad, in: buffer, cut: cut, firstLine: firstLine, file: file)
            }
            if (report.rejectedByReason["invalid_json"] ?? 0) + (report.rejectedByReason["not_an_object"] ?? 0) > 0 {
                // More rejections than the report keeps: find the line again, one line at a time.
                throw firstSyntaxError(in: buffer, cut: cut, firstLine: firstLine, file: file, model: model, kind: kind)
            }
            firstLine += buffer[0..<cut].count(where: { $0 == UInt8(ascii: "\n") })
            buffer.removeSubrange(0..<cut)
        }
        if counts.rows == 0 { throw ProfilingError(file: file, message: "the input is empty (no events)") }
        try CSVColumn.checkIgnoredPresent(ignoring.sorted(), file: file, what: "key") { ignoredSeen.contains($0) }
        return counts
    }

    /// The fields of an ingestion event, as an error lists them.
    static let eventFieldList = PredictionEventFields.names.joined(separator: ", ")

    /// Refuses, naming its line, a top-level key of an event in `buffer[0..<cut]` (lines from `firstLine`) that is no
    /// event field and not in `ignoring`, as `profile` does: the ingestion decoder skips unknown keys, so a misspelt
    /// `predicton` lost every prediction without a word. `seen` gathers the names of `ignoring` met. A line that is
    /// not one JSON object is left to the decoder, which reports it.
    static func checkEventKeys(
        _ buffer: [UInt8], cut: Int, firstLine: Int, file: String, ignoring: Set<String>, seen: inout Set<String>
    ) throws(ProfilingError) {
        try checkEventKeys(
            buffer, cut: cut, firstLine: firstLine, file: file, fields: Set(PredictionEventFields.names),
            ignoring: ignoring, seen: &seen,
            refusal: {
                "key \"\($0)\" is not a field of an ingestion event (\(eventFieldList)); "
                    + ProfilingError.ignoreHint([$0])
            })
    }

    /// The keys of a label event, as the labels endpoint reads them (the labels CSV's columns too).
    static let labelFields: Set<String> = ["id", "label", "timestamp"]

    /// Refuses, naming its line, a top-level key of an event in `buffer[0..<cut]` that is not in `fields` nor in
    /// `ignoring`, with `refusal(key)` as the message.
    static func checkEventKeys(
        _ buffer: [UInt8], cut: Int, firstLine: Int, file: String, fields: Set<String>, ignoring: Set<String> = [],
        seen: inout Set<String>, refusal: (String) -> String
    ) throws(ProfilingError) {
        var line = firstLine
        var start = 0
        let problem: ProfilingError? = buffer.withUnsafeBufferPointer { bytes in
            while start < cut {
                let end = bytes[start..<cut].firstIndex(of: UInt8(ascii: "\n")) ?? cut
                defer {
                    start = end + 1
                    line += 1
                }
                guard let keys = Scanner.objectKeys(bytes, from: start, to: end) else { continue }
                for key in keys where !fields.contains(key) {
                    guard ignoring.contains(key) else {
                        return ProfilingError(file: file, line: line, message: refusal(key))
                    }
                    seen.insert(key)
                }
            }
            return nil
        }
        if let problem { throw problem }
    }

    /// The error for a rejection `bad` of the piece `buffer[0..<cut]` that starts on line `firstLine`.
    static func position(
        of bad: EventError, in buffer: [UInt8], cut: Int, firstLine: Int, file: String
    ) -> ProfilingError {
        let offset = min(bad.offset, cut)
        let lineStart = buffer[0..<offset].lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
        let line = firstLine + buffer[0..<lineStart].count(where: { $0 == UInt8(ascii: "\n") })
        let column = buffer.withUnsafeBufferPointer { TextPosition.column($0, lineStart: lineStart, offset: offset) }
        return ProfilingError(file: file, line: line, column: column, message: "\(bad.reason.rawValue): \(bad.message)")
    }

    /// Finds the first line of `buffer[0..<cut]` the decoder rejects as not JSON (or not an object), decoding each
    /// line alone into a scratch model-free decode.
    static func firstSyntaxError(
        in buffer: [UInt8], cut: Int, firstLine: Int, file: String, model: MonitoredModel, kind: EventKind
    ) -> ProfilingError {
        var start = 0
        var line = firstLine
        while start < cut {
            let end = buffer[start..<cut].firstIndex(of: UInt8(ascii: "\n")) ?? cut
            let bytes = Array(buffer[start..<end])
            let report =
                kind == .predictions
                ? try? decodePredictions(body: bytes, format: .ndjson, schema: model.context.schema, maxEvents: 1) {
                    _, _ in
                }
                : try? decodeLabels(body: bytes, format: .ndjson, schema: model.context.schema, maxEvents: 1) { _, _ in
                }
            if let bad = report?.errors.first(where: { $0.reason == .invalidJSON || $0.reason == .notAnObject }) {
                return position(of: bad, in: bytes, cut: bytes.count, firstLine: line, file: file)
            }
            start = end + 1
            line += 1
        }
        return ProfilingError(file: file, message: "a line is not valid JSON")
    }

    /// `text` as a JSON string literal, to quote a cell in a message.
    static func quoted(_ text: String) -> String { jsonStringLiteral(text) }
}
