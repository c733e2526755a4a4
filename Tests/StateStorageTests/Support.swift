import ExporterConfig
import Exposition
import Foundation
import Ingestion
import Logging
import ModelMonitoring

@testable import StateStorage

/// A fraud-like model with every built-in collector and a reference profile, and an eta-like regression model.
enum Models {
    static let profile = ReferenceProfile(
        model: "fraud", rows: 100, inputSHA256: "",
        features: [
            ColumnProfile(
                name: "amount", missing: 0,
                numeric: NumericProfile(
                    count: 100, mean: 5, std: 2.5, min: 0, max: 10, edges: [2, 5, 8], counts: [0, 20, 30, 30, 20, 0],
                    fine: [10, 10, 10, 10, 10, 10, 10, 10, 10, 10])),
            ColumnProfile(
                name: "country", missing: 0,
                categorical: CategoricalProfile(values: ["US", "DE"], counts: [50, 40, 10])),
        ],
        prediction: ColumnProfile(
            name: "prediction", missing: 0,
            categorical: CategoricalProfile(values: ["legit", "fraud"], counts: [70, 30, 0])))

    static func fraud(
        window: WindowConfiguration = WindowConfiguration(), ttl: Duration = .seconds(3600)
    )
        -> ModelConfiguration
    {
        var m = ModelConfiguration(
            name: "fraud", task: .binaryClassification, versions: ["v1", "v2"], classes: ["legit", "fraud"],
            positiveClass: "fraud",
            features: [
                FeatureConfiguration(name: "amount", kind: .numeric),
                FeatureConfiguration(name: "country", kind: .categorical, values: ["US", "DE"]),
            ],
            sensitiveAttributes: [SensitiveAttribute(name: "gender", groups: ["f", "m"], privileged: "m")],
            reference: "ref.json", window: window, latencyBuckets: [0.01, 0.1, 1],
            collectors: [
                CollectorConfiguration(name: "service"),
                CollectorConfiguration(
                    name: "drift",
                    options: ["features": .map(["amount": .map(["method": .string("ks")])])]),
                CollectorConfiguration(name: "quality"), CollectorConfiguration(name: "fairness"),
            ])
        m.joinTTL = ttl
        return m
    }

    static let eta = ModelConfiguration(
        name: "eta", task: .regression, versions: ["2024.06"],
        features: [FeatureConfiguration(name: "distance_km", kind: .numeric)],
        collectors: [
            CollectorConfiguration(
                name: "service", options: ["prediction_buckets": .list([.number(10), .number(60)])]),
            CollectorConfiguration(name: "quality"),
        ])
}

/// A registry with a monitor of some models, and a checkpointer in a directory.
struct Node {
    let registry = Registry()
    let monitor = ModelMonitor()
    let checkpointer: Checkpointer

    init(_ models: [ModelConfiguration], directory: String, interval: Duration = .seconds(3600)) throws {
        try registry.register(monitor)
        monitor.apply(
            try monitor.prepare(
                ExporterConfiguration(models: models, source: "test"),
                references: ["ref.json": LoadedReference(profile: Models.profile, sha256: "abc")]))
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        checkpointer = Checkpointer(
            directory: directory, interval: interval, monitor: monitor, exporterVersion: "test", logger: logger)
        try registry.register(checkpointer.metrics)
    }

    func model(_ name: String) -> MonitoredModel { monitor.model(named: name)! }

    /// The process ends without a clean stop (a crash, SIGKILL): the storage directory's lock goes with it, nothing is
    /// written. (The lock is its descriptor's: a later node of this test process finds the directory free then.)
    func crash() { checkpointer.releaseLock() }

    /// The text exposition's sample lines, without comments; without `mlops_storage_*` unless asked.
    func samples(storage: Bool = false) -> [String] {
        String(decoding: registry.render(format: .text), as: UTF8.self).split(separator: "\n")
            .filter {
                !$0.hasPrefix("#") && (storage || !$0.hasPrefix("mlops_storage_"))
                    && !$0.hasPrefix("mlops_exporter_collector_duration_seconds")
            }.map(String.init)
    }

    func value(_ series: String) -> Double? {
        for line in samples(storage: true) where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }
}

/// Seeded traffic: predictions with ids (half of them labelled at once through the labels API), inline labels,
/// errors, latencies.
struct Traffic {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> Double {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Double(state >> 11) / Double(1 << 53)
    }

    /// Sends `n` fraud predictions (ids `prefix-i`) at times from `t0`, one per 0.01 s.
    mutating func predictions(_ m: MonitoredModel, _ n: Int, prefix: String, t0: Double) {
        for i in 0..<n {
            let fraud = next() < 0.3
            m.record(
                version: next() < 0.5 ? "v1" : "v2", prediction: .label(fraud ? "fraud" : "legit"),
                features: [
                    "amount": .number(next() * 12 - 1),
                    "country": .category(next() < 0.5 ? "US" : next() < 0.5 ? "DE" : "FR"),
                ],
                score: next(), latencySeconds: next() * 0.5, status: next() < 0.05 ? .error : .ok,
                errorKind: next() < 0.5 ? "timeout" : "oom", attributes: ["gender": next() < 0.5 ? "f" : "m"],
                id: "\(prefix)-\(i)", receivedAt: t0 + Double(i) * 0.01)
        }
    }

    /// Sends the labels of ids `prefix-i` for `range`.
    mutating func labels(_ m: MonitoredModel, _ range: Range<Int>, prefix: String, at t: Double) {
        for i in range {
            m.record(
                label: LabelEvent(id: "\(prefix)-\(i)", label: .label(next() < 0.3 ? "fraud" : "legit")), receivedAt: t)
        }
    }

    mutating func regression(_ m: MonitoredModel, _ n: Int, t0: Double) {
        for i in 0..<n {
            let y = next() * 80
            m.record(
                version: "2024.06", prediction: .number(y), features: ["distance_km": .number(next() * 30)],
                latencySeconds: next() * 0.1, label: .number(y + next() * 10 - 5), receivedAt: t0 + Double(i) * 0.01)
        }
    }
}

/// A fresh temporary directory.
func temporaryDirectory() -> String {
    let path = NSTemporaryDirectory() + "state-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// CRC-32 (IEEE) of `bytes`, bit by bit: the checksum a checkpoint ends with, computed apart from the exporter's own.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return crc ^ 0xFFFF_FFFF
}
