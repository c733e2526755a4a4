import Ingestion
import ModelMonitoring
import Profiling

/// Reads NDJSON of flat objects, the other NDJSON shape `mlops-exporter profile` reads
/// (`{"amount": 3.5, "country": "DE", "prediction": "fraud"}`): one prediction per line, keyed by the same names as
/// the CSV columns (features, `prediction`, `score`, `id`, `label`, `timestamp`, `version`, sensitive attributes).
/// `null` (and Python's bare `NaN`) is a missing value. Each line is read as `profile` reads NDJSON (``NDJSONLine``:
/// strict JSON plus `NaN`/`Infinity`, no key twice). A line that is not a JSON object, an unknown key, or a value of
/// the wrong type for its column is an error naming file and line (and the column). Slower than the events' decoder:
/// meant for files written by a script, as for `profile`.
enum FlatNDJSONReader {
    /// Whether the lines of `path` are flat objects, as the first line that tells says: a flat one has a feature or
    /// sensitive attribute of `model` as a top-level key and no `features` object; an event has a `features` object
    /// (a line that is no object, or not JSON, is left to the events' decoder, which names it), or a key only events
    /// have (``eventOnlyKeys``). A line with none of these (only `id`, `prediction`, `score`...: Spark's JSON writer
    /// drops a row's null columns) does not tell, and the next one is read, up to ``undecidedLines`` of them; a file
    /// of such lines is events (without features). Nil for an empty file. (The first line alone decided: a flat file
    /// whose first row had every feature null was read as events, and failed on line 2.)
    static func isFlat(_ path: String, model: MonitoredModel) throws(ProfilingError) -> Bool? {
        var undecided = 0
        var file = try ChunkedFile(path: path, chunkSize: 64 << 10)
        defer { file.close() }
        var buffer: [UInt8] = []
        // The current line starts at `start`; bytes before `searched` hold no line feed (each byte is looked at once,
        // however long the first line, and blank lines already passed are dropped).
        var start = 0
        var searched = 0
        var lineNumber = 1
        var sawLine = false
        /// True: flat; false: events; nil: the line does not tell.
        func judge(_ line: ArraySlice<UInt8>) -> Bool? {
            guard let value = try? NDJSONLine.parse(buffer, line.startIndex..<line.endIndex, file: path, line: 0) else {
                // Not strictly readable (a key twice, a bare NaN): flat when its keys say so, so that the flat
                // reader names the problem (the events' decoder said the first feature "is not a field of an event").
                let keys = buffer.withUnsafeBufferPointer {
                    Scanner.objectKeys($0, from: line.startIndex, to: line.endIndex)
                }
                guard let keys, !keys.contains("features") else { return false }
                return verdict(keys)
            }
            guard case .object(let object) = value else { return false }  // the events' decoder names the problem
            if case .object? = object["features"] { return false }
            return verdict(object.keys)
        }
        func verdict(_ keys: some Sequence<String>) -> Bool? {
            let isColumn = { (key: String) in model.featureIndex(key) != nil || model.attributeIndex(key) != nil }
            if keys.contains(where: isColumn) { return true }
            if keys.contains(where: Self.eventOnlyKeys.contains) { return false }
            undecided += 1
            return undecided < Self.undecidedLines ? nil : false
        }
        while true {
            while let newline = buffer[searched...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[start..<newline]
                start = newline + 1
                searched = start
                lineNumber += 1
                if !isBlank(line) {
                    sawLine = true
                    if let verdict = judge(line) { return verdict }
                }
            }
            searched = buffer.count
            if file.atEnd {
                let last = buffer[start...]
                if isBlank(last) { return sawLine ? false : nil }
                return judge(last) ?? false
            }
            if searched - start > ChunkedFile.maxLineBytes {
                throw ProfilingError(
                    file: path, line: lineNumber,
                    message: "line longer than \(Profiler.bound(ChunkedFile.maxLineBytes))")
            }
            if start > 0 {
                buffer.removeSubrange(0..<start)
                searched -= start
                start = 0
            }
            try file.read(appendingTo: &buffer)
        }
    }

    /// Keys of an ingestion event that no CSV column (so no flat object) has.
    static let eventOnlyKeys: Set<String> = ["latency_seconds", "status", "error_kind", "probabilities", "attributes"]
    /// The most lines read that do not tell the shape before the file is taken for events (a file of events without
    /// `features` was read whole once more to find that out).
    static let undecidedLines = 1_000

    static func isBlank(_ line: ArraySlice<UInt8>) -> Bool {
        !line.contains(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D })
    }

    static func read(
        file: String, model: MonitoredModel, defaultVersion: String?, ignoring: Set<String>, receivedAt: Double
    ) throws(ProfilingError) -> Int {
        var source = try ChunkedFile(path: file)
        defer { source.close() }
        let regression = model.context.configuration.task == .regression
        let template = model.makePrediction(version: defaultVersion ?? "", prediction: .number(0))
        var buffer: [UInt8] = []
        var lineNumber = 0
        var rows = 0
        // The names of --ignore-columns some line has (a subset of them: bounded).
        var ignoredSeen = Set<String>()
        while !source.atEnd {
            try source.read(appendingTo: &buffer)
            let end = source.atEnd ? buffer.count : (buffer.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0)
            if end == 0 {
                if buffer.count > ChunkedFile.maxLineBytes {
                    throw ProfilingError(
                        file: file, line: lineNumber + 1,
                        message: "line longer than \(Profiler.bound(ChunkedFile.maxLineBytes))")
                }
                continue
            }
            // The lines up to the last line feed, without the empty piece after it (not a line of its own).
            let lines = buffer[0..<end].last == UInt8(ascii: "\n") ? buffer[0..<(end - 1)] : buffer[0..<end]
            for line in lines.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
                lineNumber += 1
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                let value = try NDJSONLine.parse(buffer, line.startIndex..<line.endIndex, file: file, line: lineNumber)
                guard case .object(let object) = value else {
                    throw ProfilingError(file: file, line: lineNumber, message: "expected a JSON object")
                }
                let roles = try CSVColumn.roles(
                    header: object.keys.sorted(), file: file, line: lineNumber, model: model, ignoring: ignoring,
                    required: [])
                if !ignoring.isEmpty { ignoredSeen.formUnion(object.keys.lazy.filter { ignoring.contains($0) }) }
                rows += 1
                var event = template
                var hasPrediction = false
                for (name, role) in zip(object.keys.sorted(), roles) {
                    let cell = object[name]!
                    func fail(_ what: String) -> ProfilingError {
                        ProfilingError(
                            file: file, line: lineNumber, field: "column \"\(name)\"",
                            message: "\(cell.shown) is not \(what)")
                    }
                    func outOfRange() -> ProfilingError {
                        ProfilingError(
                            file: file, line: lineNumber, field: "column \"\(name)\"",
                            message: "not a finite number (beyond a double's range)")
                    }
                    func number() throws(ProfilingError) -> Double? {
                        switch cell {
                        case .null: return nil
                        case .number(let x) where x.isNaN: return nil
                        case .number(let x) where x.isFinite: return x
                        case .number: throw outOfRange()
                        default: throw fail("a number")
                        }
                    }
                    func text() throws(ProfilingError) -> String? {
                        switch cell {
                        case .null: return nil
                        case .string(let s): return s.isEmpty ? nil : s
                        // Python's `NaN` (json.dumps of a float NaN): missing, as in a numeric column and in profile
                        // (it was refused as beyond a double's range).
                        case .number(let x) where x.isNaN: return nil
                        // Beyond a double's range (`1e400`): refused, as by profile and the ingestion API (was "inf").
                        case .number(let x) where !x.isFinite: throw outOfRange()
                        case .number(let x): return x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : "\(x)"
                        case .bool(let b): return b ? "true" : "false"
                        default: throw fail("a string, number or boolean")
                        }
                    }
                    func outcome() throws(ProfilingError) -> Outcome? {
                        regression ? try number().map(Outcome.number) : try text().map(Outcome.label)
                    }
                    switch role {
                    case .feature(let i, let numeric):
                        if numeric, case .bool(let b) = cell {
                            // A numeric feature's boolean is 1 or 0, as live, in the events shape and in profile (it
                            // was refused as not a number).
                            event.features[i] = .number(b ? 1 : 0)
                            continue
                        }
                        event.features[i] =
                            numeric
                            ? (try number()).map(FeatureValue.number) ?? .missing
                            : (try text()).map(FeatureValue.category) ?? .missing
                    case .attribute(let i): event.attributes[i] = try text()
                    case .prediction:
                        if let o = try outcome() {
                            event.prediction = o
                            hasPrediction = true
                        }
                    case .label: event.label = try outcome()
                    case .score: event.score = try number()
                    case .timestamp: event.timestamp = try number()
                    case .id: event.id = try text()
                    case .version: event.version = try text() ?? ""
                    case .ignored: break
                    }
                }
                guard hasPrediction else {
                    model.counters.rejected(.missingPrediction)
                    continue
                }
                model.record(event, receivedAt: receivedAt)
            }
            buffer.removeSubrange(0..<end)
        }
        if rows == 0 { throw ProfilingError(file: file, message: "the input is empty (no data rows)") }
        try CSVColumn.checkIgnoredPresent(ignoring.sorted(), file: file, what: "key") { ignoredSeen.contains($0) }
        return rows
    }
}
