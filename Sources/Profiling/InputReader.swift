import ExporterConfig
import Foundation
import Ingestion
import ModelMonitoring

/// The format of a reference input file.
public enum InputFormat: String, Sendable, CaseIterable {
    /// Comma-separated values with a header row (RFC 4180).
    case csv
    /// One JSON object per line: flat (`{"amount": 3.5, "country": "DE", "prediction": "fraud"}`) or an
    /// ingestion event (`{"features": {...}, "prediction": ..., "score": ...}`, whose other keys must be event fields,
    /// ``PredictionEventFields``). Blank lines are skipped;
    /// `null` and the bare `NaN` that Python's `json` writes are missing values. Lines are strict JSON plus
    /// Python's `NaN`, `Infinity` and `-Infinity` (``StrictJSONParser``): no trailing commas, comments or other JSON5.
    case ndjson

    /// The format named by `path`'s extension: `.csv`, or `.ndjson` / `.jsonl`; `nil` otherwise.
    public init?(path: String) {
        switch (path as NSString).pathExtension.lowercased() {
        case "csv": self = .csv
        case "ndjson", "jsonl": self = .ndjson
        default: return nil
        }
    }
}

/// Maps an input's column names to a ``ProfileBuilder``'s columns and turns its cells into values.
struct ColumnMapping {
    let file: String
    let model: ModelConfiguration
    let builder: ProfileBuilder
    /// Names an input may carry besides the builder's columns.
    let tolerated: Set<String>
    /// Builder column index by name.
    let index: [String: Int]

    /// Columns that are not features but may appear in an input and are not profiled.
    static let passThrough = ["id", "label", "timestamp", "version"]

    /// The names of `--ignore-columns`, in the order given.
    let ignored: [String]

    init(file: String, model: ModelConfiguration, builder: ProfileBuilder, ignoring: [String]) {
        self.file = file
        self.model = model
        self.builder = builder
        ignored = ignoring
        tolerated = Set(Self.passThrough + model.sensitiveAttributes.map(\.name) + ignoring)
        index = Dictionary(builder.columns.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// An error for a name of `--ignore-columns` that is profiled (a feature, `prediction`, `score`: listing it
    /// skipped nothing, silently), if any.
    func ignoredButProfiled() -> ProfilingError? {
        guard let name = ignored.first(where: { index[$0] != nil }) else { return nil }
        let feature = model.features.contains { $0.name == name }
        let what = feature ? "a feature of model \(model.name)" : "the \(name) column"
        return ProfilingError(
            file: file, field: "--ignore-columns",
            message: "\"\(name)\" is \(what): it is profiled, it cannot be ignored (remove it from --ignore-columns)")
    }

    /// An error for a name of `--ignore-columns` that the input never has (a typo would go unnoticed), if any:
    /// `present` tells whether the input has a column (`what`: `column`, `key`) of that name.
    func ignoredButAbsent(what: String, present: (String) -> Bool) -> ProfilingError? {
        guard let name = ignored.first(where: { !present($0) }) else { return nil }
        return ProfilingError(
            file: file, field: "--ignore-columns",
            message: "the input has no \(what) \"\(name)\" (\(what == "column" ? "header" : "no line has it"))")
    }

    /// An error listing the `names` that are neither columns nor tolerated, if any.
    /// `what` is the singular noun (`column`, `key`).
    func unknown(_ names: [String], line: Int = 0, what: String = "column") -> ProfilingError? {
        let unknown = names.filter { index[$0] == nil && !tolerated.contains($0) }
        guard !unknown.isEmpty else { return nil }
        let listed = unknown.map { "\"\($0)\"" }.joined(separator: ", ")
        return ProfilingError(
            file: file, line: line,
            message:
                "\(what)\(unknown.count == 1 ? " \(listed) is not a feature" : "s \(listed) are not features") of model "
                + "\(model.name) (nor prediction, score, id, label, timestamp, version or a sensitive attribute); "
                + ProfilingError.ignoreHint(unknown))
    }

    /// The value of CSV text `raw` for column `c` (a categorical one's as ``CSVCategory/text(_:configured:)`` reads it).
    func value(csv raw: String, column c: Int, line: Int) throws(ProfilingError) -> ProfileBuilder.Value {
        if raw.isEmpty { return .missing }
        guard builder.columns[c].kind == .numeric else {
            return .category(CSVCategory.text(raw, configured: builder.columns[c].values))
        }
        let trimmed = raw.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return .missing }
        // A feature's boolean, as pandas writes a bool column (`True`): 1 or 0, as live and in NDJSON (it was refused,
        // `"True" is not a number`). The prediction and score columns (the last two) take numbers only.
        if c < builder.columns.count - 2, let b = CSVCategory.booleanNumber(trimmed) { return .number(b) }
        guard let x = Self.number(trimmed) else {
            var text = trimmed
            if text.withUTF8({ MissingValueText.isOutOfRange($0) }) {
                throw ProfilingError(
                    file: file, line: line, field: "column \"\(builder.columns[c].name)\"",
                    message: "not a finite number (beyond a double's range)")
            }
            if text.withUTF8({ MissingValueText.isInfinityText($0) }) {
                throw ProfilingError(
                    file: file, line: line, field: "column \"\(builder.columns[c].name)\"",
                    message: "\(ColumnMapping.quoted(raw)) is an infinity: a value must be finite or missing")
            }
            throw notANumber(ColumnMapping.quoted(raw), column: c, line: line)
        }
        return .number(x)
    }

    /// The value of JSON `json` for column `c`.
    func value(json: JSONValue?, column c: Int, line: Int) throws(ProfilingError) -> ProfileBuilder.Value {
        guard let json else { return .absent }
        let numeric = builder.columns[c].kind == .numeric
        switch json {
        case .null: return .missing
        case .number(let x) where x.isInfinite:
            // `1e400` was shown as "inf is not a number", of a categorical column too.
            throw ProfilingError(
                file: file, line: line, field: "column \"\(builder.columns[c].name)\"",
                message: "not a finite number (beyond a double's range)")
        case .number(let x): return .number(x)
        case .string(let s) where !numeric: return s.isEmpty ? .missing : .category(s)
        case .bool(let b) where !numeric: return .category(b ? "true" : "false")
        // As the ingestion API and `batch` read a boolean of a numeric feature (1 or 0): a column sent live as
        // booleans can be profiled (it was refused, "false is not a number").
        case .bool(let b): return .number(b ? 1 : 0)
        default:
            if numeric { throw notANumber(json.shown, column: c, line: line) }
            throw ProfilingError(
                file: file, line: line, field: "column \"\(builder.columns[c].name)\"",
                message: "\(json.shown) is not a category (a string, number or boolean)")
        }
    }

    private func notANumber(_ shown: String, column c: Int, line: Int) -> ProfilingError {
        ProfilingError(
            file: file, line: line, field: "column \"\(builder.columns[c].name)\"", message: "\(shown) is not a number")
    }

    /// `text` in double quotes, with quotes, backslashes and control characters escaped as in JSON, so
    /// that an error message stays on one line.
    static func quoted(_ text: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        return (try? encoder.encode(text)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\(text)\""
    }

    /// A finite decimal number, or NaN (`nan`, any case) for a missing value; `nil` for anything else
    /// (words, hexadecimal, infinities).
    static func number(_ text: String) -> Double? {
        if MissingValueText.isMissing(text) { return .nan }
        guard text.utf8.allSatisfy({ (48...57).contains($0) || "+-.eE".utf8.contains($0) }),
            let x = Double(text), x.isFinite
        else { return nil }
        return x
    }

    /// The error for a configured feature the input never carries.
    func missingFeature(_ name: String, what: String) -> ProfilingError {
        ProfilingError(
            file: file,
            message: "\(what) \"\(name)\" (feature of model \(model.name)) is missing from the "
                + (what == "column" ? "header" : "input (no line has it)"))
    }
}

/// Reads CSV and NDJSON inputs into a ``ProfileBuilder``.
enum InputReader {
    static func csv(
        _ bytes: [UInt8], mapping: ColumnMapping, into builder: inout ProfileBuilder
    )
        throws(ProfilingError)
    {
        let file = mapping.file
        var parser = CSVParser(bytes: bytes, file: file)
        guard let (header, headerLine) = try parser.next() else {
            throw ProfilingError(file: file, message: "the input is empty (no header, no data rows)")
        }
        parser.header = header
        var seen = Set<String>()
        for name in header where !seen.insert(name).inserted {
            throw ProfilingError(
                file: file, line: headerLine, message: "column \"\(name)\" appears twice in the header")
        }
        // The header's problems name its line, as `batch` names it (a config probe: `unkcol.csv: column "idd"`).
        func atHeader(_ error: ProfilingError) -> ProfilingError {
            var error = error
            if error.line == 0 { error.line = headerLine }
            return error
        }
        for feature in mapping.model.features where !seen.contains(feature.name) {
            throw atHeader(mapping.missingFeature(feature.name, what: "column"))
        }
        if let error = mapping.ignoredButProfiled() { throw error }
        if let error = mapping.ignoredButAbsent(what: "column", present: seen.contains) { throw atHeader(error) }
        if let error = mapping.unknown(header) { throw atHeader(error) }
        // For each builder column, its position in the header (nil: absent).
        let positions = builder.columns.map { column in header.firstIndex(of: column.name) }
        var row = [ProfileBuilder.Value](repeating: .absent, count: positions.count)
        while let (fields, line) = try parser.next() {
            guard fields.count == header.count else {
                throw ProfilingError(
                    file: file, line: line, message: "\(fields.count) fields, the header has \(header.count)")
            }
            for (c, position) in positions.enumerated() {
                guard let p = position else {
                    row[c] = .absent
                    continue
                }
                do {
                    row[c] = try mapping.value(csv: fields[p], column: c, line: line)
                } catch {
                    throw parser.located(error, field: p)
                }
            }
            builder.add(row)
        }
        if builder.rows == 0 { throw ProfilingError(file: file, message: "no data rows (only a header)") }
    }

    static func ndjson(
        _ bytes: [UInt8], mapping: ColumnMapping, into builder: inout ProfileBuilder
    )
        throws(ProfilingError)
    {
        let file = mapping.file
        if let error = mapping.ignoredButProfiled() { throw error }
        var seen = Set<String>()
        var ignoredSeen = Set<String>()
        let eventFields = Set(PredictionEventFields.names)
        var row = [ProfileBuilder.Value](repeating: .absent, count: builder.columns.count)
        let predictionColumn = builder.columns.count - 2
        let scoreColumn = builder.columns.count - 1
        var lineNumber = 0
        for slice in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            // As `batch` reads: a 200 MiB line was parsed whole into values several times its size.
            guard slice.count <= Profiler.maxRecordBytes else {
                throw ProfilingError(
                    file: file, line: lineNumber, message: "line longer than \(Profiler.bound(Profiler.maxRecordBytes))"
                )
            }
            var text = slice.last == UInt8(ascii: "\r") ? slice.dropLast() : slice
            // A UTF-8 byte order mark before the first line is skipped, as in CSV (it was refused, the message
            // printing the invisible character: `expected a value, got "﻿"`).
            if lineNumber == 1 && text.starts(with: [0xEF, 0xBB, 0xBF]) { text = text.dropFirst(3) }
            if text.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            let value = try NDJSONLine.parse(bytes, text.startIndex..<text.endIndex, file: file, line: lineNumber)
            guard case .object(let object) = value else {
                throw ProfilingError(
                    file: file, line: lineNumber, message: "expected a JSON object, got \(value.shown)")
            }
            let features: [String: JSONValue]
            var outputs = object
            if case .object(let inner)? = object["features"] {
                // An ingestion event: its keys are event fields (a misspelt `predicton` would lose every prediction),
                // or skipped with --ignore-columns.
                for key in object.keys.sorted() where !eventFields.contains(key) {
                    guard mapping.ignored.contains(key) else {
                        throw ProfilingError(
                            file: file, line: lineNumber,
                            message: "key \"\(key)\" is not a field of an ingestion event (\(Self.eventFieldList)); "
                                + ProfilingError.ignoreHint([key]))
                    }
                    ignoredSeen.insert(key)
                }
                features = inner
                outputs = object.filter { $0.key == "prediction" || $0.key == "score" }
            } else {
                features = object
            }
            if let error = mapping.unknown(
                features.keys.sorted().filter { $0 != "prediction" && $0 != "score" }, line: lineNumber,
                what: "key")
            {
                throw error
            }
            for name in mapping.ignored where features[name] != nil { ignoredSeen.insert(name) }
            for c in 0..<predictionColumn {
                let cell = features[builder.columns[c].name]
                if cell != nil { seen.insert(builder.columns[c].name) }
                row[c] = try mapping.value(json: cell, column: c, line: lineNumber)
            }
            row[predictionColumn] = try mapping.value(
                json: outputs[ProfileBuilder.predictionColumn], column: predictionColumn, line: lineNumber)
            row[scoreColumn] = try mapping.value(
                json: outputs[ProfileBuilder.scoreColumn], column: scoreColumn, line: lineNumber)
            builder.add(row)
        }
        if builder.rows == 0 { throw ProfilingError(file: file, message: "the input is empty (no data rows)") }
        for feature in mapping.model.features where !seen.contains(feature.name) {
            throw mapping.missingFeature(feature.name, what: "key")
        }
        if let error = mapping.ignoredButAbsent(what: "key", present: ignoredSeen.contains) { throw error }
    }

    /// The fields of an ingestion event, as an error lists them.
    static let eventFieldList = PredictionEventFields.names.joined(separator: ", ")
}
