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
            ("ts", Self.timestamp()), ("level", "\(event.level)"), ("source", label), ("msg", "\(event.message)"),
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

    static func timestamp() -> String {
        Date().formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true))
    }

    static func logfmtValue(_ s: String) -> String {
        if !s.isEmpty && !s.contains(where: { $0 == " " || $0 == "=" || $0 == "\"" || $0.isNewline }) { return s }
        return jsonStringLiteral(s)
    }
}
