import ExporterConfig
import Exposition
import Foundation
import Ingestion
import ModelMonitoring

/// The model of the label-join benchmarks: a binary classifier with the `service`, `quality` and `fairness`
/// collectors and two sensitive attributes (`gender` f/m, `age` young/old), `max_pending` as given and a
/// one-day `join_ttl` (nothing expires during a run: every pending prediction leaves by a label or by
/// eviction at capacity).
public enum QualityBench {
    /// The classes, negative first.
    public static let classes = ["deny", "approve"]
    /// The two sensitive attributes and their groups.
    public static let genders = ["f", "m"]
    /// The second sensitive attribute's groups.
    public static let ages = ["young", "old"]

    /// The benchmark model's configuration.
    public static func configuration(maxPending: Int) -> ModelConfiguration {
        var config = ModelConfiguration(
            name: "credit", task: .binaryClassification, versions: ["v1"], classes: classes,
            positiveClass: "approve",
            sensitiveAttributes: [
                SensitiveAttribute(name: "gender", groups: genders, privileged: "m"),
                SensitiveAttribute(name: "age", groups: ages, privileged: "old"),
            ],
            collectors: [
                CollectorConfiguration(name: "service"), CollectorConfiguration(name: "quality"),
                CollectorConfiguration(name: "fairness", options: ["min_group_observations": .number(30)]),
            ])
        config.maxPending = maxPending
        config.joinTTL = .seconds(86_400)
        return config
    }

    /// A registry with a monitor holding only the benchmark model, and that model.
    public static func makeModel(maxPending: Int) throws -> (registry: Registry, model: MonitoredModel) {
        let registry = Registry()
        let monitor = ModelMonitor()
        try registry.register(monitor)
        let prepared = try monitor.prepare(
            ExporterConfiguration(models: [configuration(maxPending: maxPending)], source: "bench"))
        monitor.apply(prepared)
        guard let model = monitor.model(named: "credit") else { fatalError("the benchmark model is missing") }
        return (registry, model)
    }

    /// Ids `"p0"`, `"p1"`, …: at most 15 UTF-8 bytes, so Swift stores them inline (no allocation).
    public static func ids(_ range: Range<Int>) -> [String] { range.map { "p\($0)" } }

    /// A prediction of the benchmark model (with an id, or none): `score` ≥ 0.5 predicts `approve`; attributes by
    /// index.
    @inline(__always)
    public static func prediction(
        _ template: PredictionEvent, id: String?, score: Double, gender: Int, age: Int
    ) -> PredictionEvent {
        var event = template
        event.id = id
        event.score = score
        event.prediction = .label(score >= 0.5 ? classes[1] : classes[0])
        event.attributes[0] = genders[gender]
        event.attributes[1] = ages[age]
        return event
    }

    /// The empty prediction event of `model` (version v1), to fill with ``prediction(_:id:score:gender:age:)``.
    public static func template(_ model: MonitoredModel) -> PredictionEvent {
        model.makePrediction(version: "v1", prediction: .label(classes[0]))
    }

    /// The payload the exporter stores for prediction `i` of the benchmark model: a groups array of two
    /// (one allocation), no probabilities.
    @Sendable public static func snapshotPayload(_ i: Int) -> PredictionSnapshot {
        PredictionSnapshot(
            time: Double(i), version: 0, predictedClass: i & 1, value: .nan, score: 0.5, probabilities: [],
            groups: [(i >> 1) & 1, (i >> 2) & 1])
    }

    /// The same prediction as a ``FlatSnapshot``.
    @Sendable public static func flatPayload(_ i: Int) -> FlatSnapshot {
        FlatSnapshot(
            scoreOrValue: 0.5, predictedClass: Int16(i & 1), version: 0,
            groups: (UInt8((i >> 1) & 1), UInt8((i >> 2) & 1), 0, 0))
    }

    /// The current resident set size in bytes (`VmRSS` of /proc/self/status), or 0 when unavailable.
    public static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kb = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first
            return (kb.flatMap { Int($0) } ?? 0) * 1024
        }
        return 0
    }
}

/// A flat alternative to ``PredictionSnapshot`` for the pending store (a proposal measured here, not used by
/// the exporter): no arrays, so building, storing and dropping one allocates nothing. The arrival time is
/// already in the store's `times`; the score of a binary classifier (or a regression's value) is one Double;
/// up to four sensitive attributes' group indices fit in four bytes. Multi-class probabilities would go to
/// a preallocated side table indexed by ring slot (not modelled here).
public struct FlatSnapshot: Sendable, Equatable {
    /// The score (classification) or the predicted value (regression).
    public var scoreOrValue: Double
    /// The predicted class index, -1 for regression.
    public var predictedClass: Int16
    /// The version index.
    public var version: UInt16
    /// Group indices of up to four sensitive attributes.
    public var groups: (UInt8, UInt8, UInt8, UInt8)

    /// Creates a flat snapshot.
    public init(scoreOrValue: Double, predictedClass: Int16, version: UInt16, groups: (UInt8, UInt8, UInt8, UInt8)) {
        self.scoreOrValue = scoreOrValue
        self.predictedClass = predictedClass
        self.version = version
        self.groups = groups
    }

    /// Field by field (a tuple is not `Equatable`).
    public static func == (a: FlatSnapshot, b: FlatSnapshot) -> Bool {
        a.scoreOrValue == b.scoreOrValue && a.predictedClass == b.predictedClass && a.version == b.version
            && a.groups == b.groups
    }
}
