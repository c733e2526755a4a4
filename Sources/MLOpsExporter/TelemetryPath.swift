extension Exporter {
    /// ``Configuration/telemetryPath`` is not a path the metrics can be served at (``telemetryPathProblem(_:)``).
    public struct InvalidTelemetryPath: Error, Sendable, CustomStringConvertible {
        /// The path given.
        public let path: String
        /// What is wrong with it.
        public var description: String {
            "telemetry path \"\(path)\": " + (Exporter.telemetryPathProblem(path) ?? "invalid")
                + " (--web.telemetry-path, Exporter.Configuration.telemetryPath)"
        }
    }

    /// What is wrong with `path` as the metrics endpoint's path, nil when it is usable: it starts with `/`, is written
    /// with the characters a request path carries as they are (letters, digits, `-._~!$&'()*+,;=:@/`: a request's
    /// `?` starts its query, `%` and other bytes arrive percent-encoded, so such a path was never reached), and is
    /// none of the exporter's own paths, which it would hide or be hidden by (`/`, `/-/…`, `/api/…`, `/models/…`:
    /// `/-/ready` served metrics to the readiness probe, `/api/v1/cloudevents` turned the KServe logger away).
    public static func telemetryPathProblem(_ path: String) -> String? {
        guard path.hasPrefix("/") else { return "must start with /" }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/".utf8)
        if let bad = path.utf8.first(where: { !allowed.contains($0) }) {
            let shown = bad < 0x80 ? "\"\(Character(Unicode.Scalar(bad)))\"" : "a non-ASCII character"
            return "\(shown) cannot be matched as written (a request carries it percent-encoded, or starts its query)"
        }
        if path == "/" || ["/-/", "/api/", "/models/"].contains(where: { path.hasPrefix($0) }) || path == "/-"
            || path == "/api" || path == "/models"
        {
            return
                "is one of the exporter's own paths (/, /-/…, /api/…, /models/…), which it would hide or be hidden by"
        }
        return nil
    }

    /// Throws ``InvalidTelemetryPath`` unless `path` is usable (``telemetryPathProblem(_:)``).
    static func checkTelemetryPath(_ path: String) throws(InvalidTelemetryPath) {
        guard telemetryPathProblem(path) == nil else { throw InvalidTelemetryPath(path: path) }
    }
}
