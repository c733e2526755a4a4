import BenchmarkFixtures
import ExporterConfig
import Exposition
import Ingestion
import ModelMonitoring

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The ingestion benchmark's model and events, from the committed fixtures that
/// `Benchmarks/peers/python/ingest_events.py fixture` writes (the same model and batch shape that
/// `scripts/bench-ingest` posts over HTTP): the `scoring` binary classifier with 20 features (15 numeric,
/// 5 categorical), two versions, two sensitive attributes, ten latency buckets, the `service` collector.
public final class IngestFixture: @unchecked Sendable {
    /// The registry the monitor is registered in (as in the exporter).
    public let registry = Registry()
    /// The monitor holding the one model.
    public let monitor: ModelMonitor
    /// The `scoring` model.
    public let model: MonitoredModel
    /// `Fixtures/ingest-batch.ndjson`: 100 events, one per line.
    public let body: [UInt8]
    /// A 20-feature event filled through `makePrediction` and `featureIndex`, as embedding code would.
    public let event: PredictionEvent

    /// The folder holding the fixture files.
    public static var fixtures: String {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/Fixtures"
    }

    /// Loads the configuration and the batch, builds the monitor, and fills ``event``.
    public init() throws {
        let configuration = try ConfigLoader.load(file: Self.fixtures + "/ingest-models.yaml")
        monitor = ModelMonitor(catalog: .builtIn)
        try registry.register(monitor)
        monitor.apply(try monitor.prepare(configuration))
        model = monitor.model(named: "scoring")!
        body = try Self.read(Self.fixtures + "/ingest-batch.ndjson")
        precondition(body.filter { $0 == 0x0A }.count == 100, "the fixture batch must have 100 lines")

        // The first event of the fixture batch, filled by name -> index like embedding code.
        var e = model.makePrediction(version: "v1", prediction: .label("legit"))
        let numeric: [(String, Double)] = [
            ("amount", 2.93), ("account_age_days", 3093), ("txn_count_24h", 15), ("txn_count_7d", 22),
            ("avg_amount_30d", 32.07), ("distance_from_home_km", 224.7), ("hour_of_day", 15),
            ("merchant_risk", 0.7887), ("device_age_days", 93), ("failed_logins_24h", 0), ("ip_risk_score", 0.433),
            ("velocity_1h", 9.15), ("balance", -1947.35), ("credit_limit", 5000), ("days_since_last_txn", 21.646),
        ]
        for (name, value) in numeric { e.features[model.featureIndex(name)!] = .number(value) }
        let categorical: [(String, String)] = [
            ("country", "DE"), ("channel", "pos"), ("card_type", "discover"), ("merchant_category", "grocery"),
            ("device_os", "ios"),
        ]
        for (name, value) in categorical { e.features[model.featureIndex(name)!] = .category(value) }
        e.id = "evt-1-00000"
        e.timestamp = 1_764_410_000.009
        e.score = 0.1587
        e.probabilities = [0.8413, 0.1587]
        e.latencySeconds = 0.002127
        e.status = .ok
        e.attributes[model.attributeIndex("gender")!] = "female"
        e.attributes[model.attributeIndex("age_band")!] = "18-25"
        event = e
        precondition(e.features.allSatisfy { $0 != .missing }, "every feature set")
    }

    /// Decodes and records the fixture batch once (what the HTTP endpoint does per request, minus HTTP);
    /// returns the events accepted.
    @inline(__always)
    public func ingestBatch(receivedAt: Double) -> Int {
        let report = body.withUnsafeBytes { raw in
            try! model.ingest(.predictions, body: raw, format: .ndjson, maxEvents: 10_000, receivedAt: receivedAt)
        }
        return report.accepted
    }

    /// The accepted predictions so far.
    public var accepted: UInt64 { model.counters.acceptedCount(.predictions) }

    static func read(_ path: String) throws -> [UInt8] {
        guard let f = fopen(path, "rb") else { throw FixtureError(path: path) }
        defer { fclose(f) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n <= 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }
}

/// A fixture file that cannot be read.
public struct FixtureError: Error, CustomStringConvertible {
    /// The file.
    public let path: String
    /// `cannot read PATH`.
    public var description: String { "cannot read \(path)" }
}
