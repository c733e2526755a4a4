import BenchmarkFixtures
import ExporterConfig
import Exposition
import Foundation
import Ingestion
import ModelMonitoring

extension SplitMix64 {
    /// A standard normal draw (Box-Muller).
    public mutating func normal() -> Double {
        let u = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let v = Double.random(in: 0..<1, using: &self)
        return (-2 * Foundation.log(u)).squareRoot() * cos(2 * Double.pi * v)
    }
}

/// The drift benchmarks' models: `features` features, 75% numeric and 25% categorical (feature `i` is
/// categorical when `i % 4 == 3`), a binary classifier with a score, a window of 1 h in 12 slices, and a
/// hand-made reference profile of 100,000 rows with 10 quantile bins and 1000 fine bins per numeric column:
/// numeric features are standard normal on [-4.5, 4.5] (deciles as edges), categorical features take
/// `A`…`E` with shares 30/25/20/15/10%, the prediction is `no` 70% / `yes` 30%, the score uniform on [0, 1].
public enum DriftWorkload {
    /// Values of the categorical features.
    public static let categories = ["A", "B", "C", "D", "E"]
    /// Reference shares of ``categories``.
    public static let categoryShares = [0.30, 0.25, 0.20, 0.15, 0.10]
    /// Rows of the reference profile.
    public static let referenceRows = 100_000
    /// Interior quantile edges of a standard normal's deciles.
    public static let normalDeciles = [
        -1.2815515655446004, -0.8416212335729143, -0.5244005127080407, -0.2533471031357997, 0,
        0.2533471031357997, 0.5244005127080407, 0.8416212335729143, 1.2815515655446004,
    ]
    /// The window: 1 h in 12 slices of 5 min.
    public static let window = WindowConfiguration(duration: .seconds(3600), slices: 12)
    /// Seconds per slice of ``window``.
    public static let sliceSeconds = 300.0

    /// Whether feature `i` is categorical.
    public static func isCategorical(_ i: Int) -> Bool { i % 4 == 3 }

    /// The name of feature `i`: `f<i>` (numeric) or `c<i>` (categorical).
    public static func featureName(_ i: Int) -> String { isCategorical(i) ? "c\(i)" : "f\(i)" }

    /// Methods cycled through for numeric features when methods are mixed (`auto` is Wasserstein here, as
    /// the reference has more than 1000 rows).
    public static let numericMethods = ["auto", "psi", "ks", "wasserstein", "jensenshannon", "kl_div"]
    /// Methods cycled through for categorical features when methods are mixed (`auto` is Jensen-Shannon).
    public static let categoricalMethods = ["auto", "chisquare", "psi", "jensenshannon"]

    /// The drift collector's options: `auto` everywhere, or methods mixed per feature.
    public static func driftOptions(features: Int, mixedMethods: Bool) -> [String: ConfigValue] {
        guard mixedMethods else { return [:] }
        var perFeature: [String: ConfigValue] = [:]
        var numeric = 0
        var categorical = 0
        for i in 0..<features {
            let method: String
            if isCategorical(i) {
                method = categoricalMethods[categorical % categoricalMethods.count]
                categorical += 1
            } else {
                method = numericMethods[numeric % numericMethods.count]
                numeric += 1
            }
            if method != "auto" { perFeature[featureName(i)] = .map(["method": .string(method)]) }
        }
        return ["features": .map(perFeature)]
    }

    /// The collectors a workload model can have, in the order they are configured.
    public static let knownCollectors = ["service", "drift", "quality", "fairness"]
    /// Collectors fed by joined labels: a model with one of them gets ``sensitiveAttributes``, and its
    /// predictions carry ids and are followed by labels (``DriftFixture/fillWindow(slices:perSlice:now:)``).
    public static let outcomeCollectors: Set<String> = ["quality", "fairness"]
    /// The sensitive attributes of a model with outcome collectors: three groups each.
    public static let sensitiveAttributes = [
        SensitiveAttribute(name: "gender", groups: ["f", "m", "x"], privileged: "m"),
        SensitiveAttribute(name: "region", groups: ["north", "south", "east"], privileged: "north"),
    ]

    /// A model named `name` with `features` features, the drift collector, and the service collector first
    /// when `service` is true.
    public static func configuration(
        name: String, features: Int, service: Bool, mixedMethods: Bool = false
    ) -> ModelConfiguration {
        configuration(
            name: name, features: features, collectors: service ? ["service", "drift"] : ["drift"],
            mixedMethods: mixedMethods)
    }

    /// A model named `name` with `features` features and `collectors` (names from ``knownCollectors``, configured
    /// in that list's order with default options, but drift's methods as `mixedMethods` says); with an outcome
    /// collector, also ``sensitiveAttributes``.
    public static func configuration(
        name: String, features: Int, collectors: [String], mixedMethods: Bool = false
    ) -> ModelConfiguration {
        let configured = knownCollectors.filter(collectors.contains).map { collector in
            collector == "drift"
                ? CollectorConfiguration(
                    name: "drift", options: driftOptions(features: features, mixedMethods: mixedMethods))
                : CollectorConfiguration(name: collector)
        }
        let outcomes = collectors.contains(where: outcomeCollectors.contains)
        return ModelConfiguration(
            name: name, task: .binaryClassification, versions: ["v1"], classes: ["no", "yes"], positiveClass: "yes",
            features: (0..<features).map { i in
                isCategorical(i)
                    ? FeatureConfiguration(name: featureName(i), kind: .categorical, values: categories)
                    : FeatureConfiguration(name: featureName(i), kind: .numeric)
            },
            sensitiveAttributes: outcomes ? sensitiveAttributes : [],
            reference: "\(name).json", window: window, collectors: configured, maxSeries: 100_000)
    }

    /// `count` models `m0`, `m1`, … as ``configuration(name:features:service:mixedMethods:)``.
    public static func configurations(
        models count: Int, features: Int, service: Bool, mixedMethods: Bool = false
    ) -> [ModelConfiguration] {
        configurations(
            models: count, features: features, collectors: service ? ["service", "drift"] : ["drift"],
            mixedMethods: mixedMethods)
    }

    /// `count` models `m0`, `m1`, … as ``configuration(name:features:collectors:mixedMethods:)``.
    public static func configurations(
        models count: Int, features: Int, collectors: [String], mixedMethods: Bool = false
    ) -> [ModelConfiguration] {
        (0..<count).map {
            configuration(name: "m\($0)", features: features, collectors: collectors, mixedMethods: mixedMethods)
        }
    }

    /// The loaded references of `models` (``profile(for:fineBins:)``), keyed by their `reference` path.
    public static func references(for models: [ModelConfiguration]) -> [String: LoadedReference] {
        var references: [String: LoadedReference] = [:]
        for c in models { references[c.reference!] = LoadedReference(profile: profile(for: c), sha256: "bench") }
        return references
    }

    /// Counts of `rows` values with `cdf` over `bins` equal-width bins of [lower, upper].
    static func fineCounts(rows: Int, bins: Int, lower: Double, upper: Double, cdf: (Double) -> Double) -> [Int] {
        let width = (upper - lower) / Double(bins)
        let mass = cdf(upper) - cdf(lower)
        return (0..<bins).map { b in
            let a = lower + Double(b) * width
            return Int((Double(rows) * (cdf(a + width) - cdf(a)) / mass).rounded())
        }
    }

    /// A numeric profile of `rows` standard-normal values on [-4.5, 4.5] with `fineBins` fine bins.
    public static func normalProfile(rows: Int = referenceRows, fineBins: Int = 1000) -> NumericProfile {
        let bins = normalDeciles.count + 1
        let perBin = rows / bins
        return NumericProfile(
            count: rows, mean: 0, std: 1, min: -4.5, max: 4.5, edges: normalDeciles,
            counts: [0] + Array(repeating: perBin, count: bins) + [0],
            fine: fineCounts(rows: rows, bins: fineBins, lower: -4.5, upper: 4.5) { 0.5 * erfc(-$0 / 2.0.squareRoot()) }
        )
    }

    /// A numeric profile of `rows` values uniform on [0, 1] (the score).
    public static func uniformProfile(rows: Int = referenceRows, fineBins: Int = 1000) -> NumericProfile {
        NumericProfile(
            count: rows, mean: 0.5, std: (1.0 / 12).squareRoot(), min: 0, max: 1,
            edges: (1...9).map { Double($0) / 10 }, counts: [0] + Array(repeating: rows / 10, count: 10) + [0],
            fine: Array(repeating: rows / fineBins, count: fineBins))
    }

    /// The reference profile of `model` (see the type's description).
    public static func profile(for model: ModelConfiguration, fineBins: Int = 1000) -> ReferenceProfile {
        let rows = referenceRows
        let numeric = normalProfile(rows: rows, fineBins: fineBins)
        let categorical = CategoricalProfile(
            values: categories, counts: categoryShares.map { Int((Double(rows) * $0).rounded()) } + [0])
        return ReferenceProfile(
            model: model.name, rows: rows, inputSHA256: "",
            features: model.features.map { f in
                f.kind == .numeric
                    ? ColumnProfile(name: f.name, missing: 0, numeric: numeric)
                    : ColumnProfile(name: f.name, missing: 0, categorical: categorical)
            },
            prediction: ColumnProfile(
                name: "prediction", missing: 0,
                categorical: CategoricalProfile(values: ["no", "yes"], counts: [rows * 7 / 10, rows * 3 / 10, 0])),
            score: ColumnProfile(name: "score", missing: 0, numeric: uniformProfile(rows: rows, fineBins: fineBins)))
    }

    /// `count` events shaped for `model`: numeric features normal with mean `shift` (1% missing), categorical
    /// features by the reference shares (1% missing, 0.5% an unknown value), a prediction, a score and a latency.
    public static func events(
        for model: MonitoredModel, count: Int, seed: UInt64 = 6, shift: Double = 0
    ) -> [PredictionEvent] {
        var g = SplitMix64(seed: seed)
        let features = model.context.configuration.features
        return (0..<count).map { _ in
            let yes = Double.random(in: 0..<1, using: &g) < 0.3
            var event = model.makePrediction(version: "v1", prediction: .label(yes ? "yes" : "no"))
            for (i, f) in features.enumerated() {
                let u = Double.random(in: 0..<1, using: &g)
                if u < 0.01 { continue }
                if f.kind == .numeric {
                    event.features[i] = .number(shift + g.normal())
                } else if u < 0.015 {
                    event.features[i] = .category("Z")
                } else {
                    var r = Double.random(in: 0..<1, using: &g)
                    var k = 0
                    while k < categoryShares.count - 1 && r >= categoryShares[k] {
                        r -= categoryShares[k]
                        k += 1
                    }
                    event.features[i] = .category(categories[k])
                }
            }
            event.score = Double.random(in: 0...1, using: &g)
            event.latencySeconds = Double.random(in: 0.005..<0.2, using: &g)
            return event
        }
    }

    /// `events` with their sensitive attributes set (when the model has them: group shares 50/35/15% per
    /// attribute) and the ground truth of each: the predicted class 85% of the time (75% in the third group
    /// of the first attribute), else the other one. From a generator of their own, so that the features of
    /// ``events(for:count:seed:shift:)`` are the same with or without outcome collectors.
    public static func outcomes(
        for events: [PredictionEvent], attributes: Int, seed: UInt64 = 7
    ) -> (events: [PredictionEvent], labels: [Outcome]) {
        var g = SplitMix64(seed: seed)
        var labelled: [PredictionEvent] = []
        var labels: [Outcome] = []
        for var event in events {
            var third = false
            for a in 0..<attributes {
                let u = Double.random(in: 0..<1, using: &g)
                let k = u < 0.5 ? 0 : u < 0.85 ? 1 : 2
                event.attributes[a] = sensitiveAttributes[a].groups[k]
                if a == 0 { third = k == 2 }
            }
            let right = Double.random(in: 0..<1, using: &g) < (third ? 0.75 : 0.85)
            let yes = event.prediction == .label("yes")
            labels.append(.label(yes == right ? "yes" : "no"))
            labelled.append(event)
        }
        return (labelled, labels)
    }
}

/// A registry with a ``ModelMonitor`` of `models` identical models (`m0`, `m1`, …), their hand-made reference
/// profiles, and a pool of pre-shaped events (valid for every model: they share one schema) whose numeric
/// features have mean `shift` (0: no drift).
public final class DriftFixture: Sendable {
    /// The registry the monitor is registered with (what `/metrics` renders).
    public let registry: Registry
    /// The monitor.
    public let monitor: ModelMonitor
    /// The models, in order.
    public let models: [MonitoredModel]
    /// Pre-shaped events.
    public let events: [PredictionEvent]
    /// With outcome collectors, the ground truth of each of ``events`` (else empty): ``fillWindow(slices:perSlice:now:)``
    /// then gives every prediction an id and follows most of them by their label.
    public let labels: [Outcome]

    /// Builds the models; `eventPool` events are generated with `seed`. `collectors` (names from
    /// ``DriftWorkload/knownCollectors``), when given, replaces `service` + drift.
    public init(
        models count: Int, features: Int, service: Bool, mixedMethods: Bool = false, eventPool: Int = 1024,
        seed: UInt64 = 6, shift: Double = 0, collectors: [String]? = nil
    ) throws {
        let configurations = DriftWorkload.configurations(
            models: count, features: features, collectors: collectors ?? (service ? ["service", "drift"] : ["drift"]),
            mixedMethods: mixedMethods)
        let references = DriftWorkload.references(for: configurations)
        let registry = Registry()
        let monitor = ModelMonitor()
        try registry.register(monitor)
        monitor.apply(
            try monitor.prepare(ExporterConfiguration(models: configurations, source: "bench"), references: references))
        let models = configurations.map { monitor.model(named: $0.name)! }
        self.registry = registry
        self.monitor = monitor
        self.models = models
        let events = DriftWorkload.events(for: models[0], count: eventPool, seed: seed, shift: shift)
        if configurations[0].collectors.contains(where: { DriftWorkload.outcomeCollectors.contains($0.name) }) {
            (self.events, labels) = DriftWorkload.outcomes(
                for: events, attributes: configurations[0].sensitiveAttributes.count, seed: seed &+ 1)
        } else {
            self.events = events
            labels = []
        }
    }

    /// Records `perSlice` events into each of the window's last `slices` slices ending at `now`, for every
    /// model; returns the number rejected (0 expected). With ``labels``, each prediction has an id
    /// (`<slice>-<index>`, unique per model) and 19 of every 20 are followed by their label at the same time
    /// (the rest stay pending).
    @discardableResult
    public func fillWindow(slices: Int, perSlice: Int, now: Double) -> Int {
        var rejected = 0
        for model in models {
            for s in 0..<slices {
                let t = now - Double(s) * DriftWorkload.sliceSeconds
                for i in 0..<perSlice {
                    let k = (s * perSlice + i) % events.count
                    guard !labels.isEmpty else {
                        if model.record(events[k], receivedAt: t) != nil { rejected += 1 }
                        continue
                    }
                    var event = events[k]
                    let id = "\(s)-\(i)"
                    event.id = id
                    if model.record(event, receivedAt: t) != nil { rejected += 1 }
                    if i % 20 != 19, model.record(label: LabelEvent(id: id, label: labels[k]), receivedAt: t) != nil {
                        rejected += 1
                    }
                }
            }
        }
        return rejected
    }

    /// One text scrape of the registry into `buffer` (cleared first); returns the number of bytes.
    public func scrape(into buffer: inout [UInt8]) -> Int {
        buffer.removeAll(keepingCapacity: true)
        _ = registry.render(format: .text, into: &buffer)
        return buffer.count
    }
}
