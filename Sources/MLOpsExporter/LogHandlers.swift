import Foundation
import Ingestion
import Logging
import Synchronization

/// Output format of the exporter's log lines (`--log.format`).
public enum LogFormat: String, Sendable, CaseIterable {
    /// `ts=… level=info msg="…" key=value`, as Prometheus and its exporters log.
    case logfmt
    /// One JSON object per line.
    case json
}

/// A swift-log handler writing logfmt or JSON lines to standard error, one `write` per line so that lines
/// from different threads never interleave.
public struct StderrLogHandler: LogHandler {
    /// Minimum level written.
    public var logLevel: Logger.Level
    /// Metadata attached to every line.
    public var metadata: Logger.Metadata = [:]
    let format: LogFormat
    let label: String

    /// Creates a handler for `label` in `format` at `level`.
    public init(label: String, format: LogFormat, level: Logger.Level) {
        self.label = label
        self.format = format
        self.logLevel = level
    }

    /// Metadata access by key.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes one line.
    public func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("ts", Self.timestamp()), ("level", Self.levelName(event.level)), ("source", label),
            ("msg", "\(event.message)"),
        ]
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for key in merged.keys.sorted() { fields.append((key, "\(merged[key]!)")) }
        var line = ""
        switch format {
        case .logfmt:
            line = fields.map { "\($0.0)=\(Self.logfmtValue($0.1))" }.joined(separator: " ")
        case .json:
            line =
                "{" + fields.map { "\(jsonStringLiteral($0.0)):\(jsonStringLiteral($0.1))" }.joined(separator: ",")
                + "}"
        }
        line += "\n"
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { _ = write(2, $0.baseAddress, $0.count) }
    }

    /// RFC 3339 in UTC with milliseconds and the zone (`2026-12-05T22:44:22.521Z`), as Go's exporters write it;
    /// before, the zone was left out, and log pipelines' RFC 3339 stages refused the lines.
    static func timestamp() -> String {
        Date().formatted(
            .iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true)
                .timeZone(separator: .omitted))
    }

    /// The level as Prometheus' Go exporters name it (`warn`, not swift-log's `warning`), so that one filter or alert
    /// on `level=warn` covers both; swift-log's other levels keep their names.
    static func levelName(_ level: Logger.Level) -> String {
        level == .warning ? "warn" : level.rawValue
    }

    /// A `--log.level` value: swift-log's level names, and `warn`, the name Go's exporters take (promslog: debug,
    /// info, warn, error).
    public static func level(named name: String) -> Logger.Level? {
        name == "warn" ? .warning : Logger.Level(rawValue: name)
    }

    static func logfmtValue(_ s: String) -> String {
        if !s.isEmpty && !s.contains(where: { $0 == " " || $0 == "=" || $0 == "\"" || $0.isNewline }) { return s }
        return jsonStringLiteral(s)
    }
}
