import Exposition

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// File-system and process helpers for the fixture CLI.
enum Output {
    /// Creates `path` and its missing parents.
    static func makeDirectories(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw FixtureError("cannot create directory \(current): errno \(errno)")
            }
        }
    }

    /// Writes `bytes` to `path`, replacing it.
    static func write(_ bytes: [UInt8], to path: String) throws {
        guard let file = fopen(path, "wb") else { throw FixtureError("cannot open \(path): errno \(errno)") }
        defer { fclose(file) }
        let written = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, file) }
        guard written == bytes.count else { throw FixtureError("short write to \(path)") }
    }

    /// Wall-clock Unix time in seconds (for the window `_created` values must fall in).
    static func unixNow() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func printError(_ message: String) {
        writeToStandardError(Array("exposition-fixture: \(message)\n".utf8))
    }
}

private func writeToStandardError(_ bytes: [UInt8]) {
    _ = bytes.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count) }
}

/// A fixture failure with a message for stderr.
struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The files every mode writes: renders of one registry without `_created` (text, OpenMetrics, each
/// rendered twice for the determinism check) and of a twin registry with `emitCreated`.
struct RenderSet {
    let plain: Registry
    let withCreated: Registry?

    func write(to dir: String) throws {
        try Output.write(plain.render(format: .text), to: dir + "/text.prom")
        try Output.write(plain.render(format: .openMetrics), to: dir + "/openmetrics.txt")
        try Output.write(plain.render(format: .text), to: dir + "/text.2.prom")
        try Output.write(plain.render(format: .openMetrics), to: dir + "/openmetrics.2.txt")
        if let withCreated {
            try Output.write(withCreated.render(format: .openMetrics), to: dir + "/openmetrics_created.txt")
            try Output.write(withCreated.render(format: .text), to: dir + "/text_created.prom")
        }
    }
}

/// A registry without self metrics (their durations would make renders differ).
func quietRegistry(emitCreated: Bool) -> Registry {
    Registry(options: Registry.Options(emitCreated: emitCreated, selfMetricsPrefix: nil))
}

/// Applies `plan` to a plain and an `emitCreated` registry, writes their renders (see ``RenderSet``)
/// and `expected.json`: the families computed from the plan, the families registered without series
/// (`absent`), and the wall-clock window the `_created` timestamps must fall in.
func writeBundle(_ plan: RegistryPlan, to dir: String, extra: [(String, JSON)] = []) throws {
    try Output.makeDirectories(dir)
    let start = Output.unixNow()
    let plain = quietRegistry(emitCreated: false)
    try plan.apply(to: plain)
    let created = quietRegistry(emitCreated: true)
    try plan.apply(to: created)
    let end = Output.unixNow()
    try RenderSet(plain: plain, withCreated: created).write(to: dir)
    let (families, absent) = Truth.expected(plan)
    let document = JSON.object(
        [
            ("families", .array(families)), ("absent", .array(absent)),
            ("created_window", .array([.double(start), .double(end)])),
        ] + extra)
    try Output.write(document.serialized(), to: dir + "/expected.json")
}
