import ExporterConfig
import Ingestion
import ModelMonitoring
import Profiling

/// What one CSV column of a batch input is: the columns `mlops-exporter profile` reads (features, `prediction`,
/// `score`, `id`, `label`, `timestamp`, `version`, sensitive attributes), or one skipped with `--ignore-columns`.
enum CSVColumn: Equatable {
    case feature(Int, numeric: Bool)
    case attribute(Int)
    case prediction, score, id, label, timestamp, version, ignored

    /// The role of every header name for `model`; throws naming the file for an unknown, repeated or missing one.
    static func roles(
        header: [String], file: String, line: Int, model: MonitoredModel, ignoring: Set<String>, required: [String]
    ) throws(ProfilingError) -> [CSVColumn] {
        var seen = Set<String>()
        var roles: [CSVColumn] = []
        var unknown: [String] = []
        for name in header {
            guard seen.insert(name).inserted else {
                throw ProfilingError(file: file, line: line, message: "column \"\(name)\" appears twice in the header")
            }
            if let i = model.featureIndex(name) {
                roles.append(.feature(i, numeric: model.context.schema.features[i].kind == .numeric))
            } else if let i = model.attributeIndex(name) {
                roles.append(.attribute(i))
            } else if ignoring.contains(name) {
                roles.append(.ignored)
            } else {
                switch name {
                case "prediction": roles.append(.prediction)
                case "score": roles.append(.score)
                case "id": roles.append(.id)
                case "label": roles.append(.label)
                case "timestamp": roles.append(.timestamp)
                case "version": roles.append(.version)
                default: unknown.append(name)
                }
            }
        }
        if !unknown.isEmpty {
            let listed = unknown.map { "\"\($0)\"" }.joined(separator: ", ")
            throw ProfilingError(
                file: file, line: line,
                message:
                    "column\(unknown.count == 1 ? " \(listed) is not a feature" : "s \(listed) are not features") of model "
                    + "\(model.name) (nor prediction, score, id, label, timestamp, version or a sensitive attribute); "
                    + ProfilingError.ignoreHint(unknown))
        }
        for name in required where !seen.contains(name) {
            throw ProfilingError(
                file: file, line: line,
                message: "column \"\(name)\" (of model \(model.name)) is missing from the header")
        }
        return roles
    }

    /// Refuses a name of `--ignore-columns` that the batch reads (a feature, a sensitive attribute, `prediction`,
    /// `score`, `id`, `label`, `timestamp`, `version`): listing it ignored nothing, silently (as `profile` refuses it).
    static func checkIgnorable(_ ignoring: [String], file: String, model: MonitoredModel) throws(ProfilingError) {
        for name in ignoring {
            let what: String
            if model.featureIndex(name) != nil {
                what = "a feature of model \(model.name)"
            } else if model.attributeIndex(name) != nil {
                what = "a sensitive attribute of model \(model.name)"
            } else if ModelConfiguration.fileColumns.contains(name) {
                what = "the \(name) column"
            } else {
                continue
            }
            throw ProfilingError(
                file: file, field: "--ignore-columns",
                message: "\"\(name)\" is \(what): it is read, it cannot be ignored (remove it from --ignore-columns)")
        }
    }

    /// Refuses a name of `--ignore-columns` that the input never has (a typo went unnoticed): `present` tells whether
    /// it has a column (`what`: `column`, `key`) of that name.
    static func checkIgnoredPresent(
        _ ignoring: [String], file: String, what: String, present: (String) -> Bool
    ) throws(ProfilingError) {
        guard let name = ignoring.first(where: { !present($0) }) else { return }
        throw ProfilingError(
            file: file, field: "--ignore-columns",
            message: "the input has no \(what) \"\(name)\" (\(what == "column" ? "header" : "no line has it"))")
    }

    /// A number in a CSV cell: a JSON number, or what `profile` accepts (`+1`, `.5`, `1.`); NaN for a missing value
    /// (``MissingValueText``: `NA`, `NULL`, `nan`...); nil for anything else (words, hexadecimal, infinities).
    static func number(_ bytes: UnsafeBufferPointer<UInt8>) -> Double? {
        if let x = JSONNumber.parse(bytes: bytes), x.isFinite { return x }
        var start = 0
        var end = bytes.count
        while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
        while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        if MissingValueText.isMissing(bytes) { return .nan }
        guard !text.isEmpty, text.utf8.allSatisfy({ (48...57).contains($0) || "+-.eE".utf8.contains($0) }),
            let x = Double(text), x.isFinite
        else { return nil }
        return x
    }

    /// Why a CSV cell is not a number (``number(_:)`` gave nil): `shown` is the cell as an error shows it.
    static func notANumber(_ bytes: UnsafeBufferPointer<UInt8>, shown: String) -> String {
        if MissingValueText.isOutOfRange(bytes) { return "not a finite number (beyond a double's range)" }
        // pandas writes a float infinity `inf`: said as what it is (it was "\"inf\" is not a number").
        if MissingValueText.isInfinityText(bytes) {
            return "\(shown) is an infinity: a value must be finite or missing"
        }
        return "\(shown) is not a number"
    }
}
