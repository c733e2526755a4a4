import ExporterConfig
import Exposition
import Foundation
import ModelMonitoring

/// A registry with a monitor holding `models`, and a way to read its samples.
struct Harness {
    let registry = Registry()
    let monitor: ModelMonitor

    init(_ models: [ModelConfiguration], catalog: CollectorCatalog = .builtIn) throws {
        try self.init(monitor: ModelMonitor(catalog: catalog), models)
    }

    init(monitor: ModelMonitor, _ models: [ModelConfiguration], references: [String: LoadedReference] = [:]) throws {
        self.monitor = monitor
        try registry.register(monitor)
        monitor.apply(
            try monitor.prepare(ExporterConfiguration(models: models, source: "test"), references: references))
    }

    func model(_ name: String) -> MonitoredModel { monitor.model(named: name)! }

    /// The text exposition's sample lines, `name{labels} value`, without comments.
    func samples() -> [String] {
        String(decoding: registry.render(format: .text), as: UTF8.self).split(separator: "\n")
            .filter { !$0.hasPrefix("#") }.map(String.init)
    }

    /// The value of the sample whose line starts with `series` + " ".
    func value(_ series: String) -> Double? {
        for line in samples() where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }
}

let fraud = ModelConfiguration(
    name: "fraud", task: .binaryClassification, versions: ["v1", "v2"], classes: ["legit", "fraud"],
    positiveClass: "fraud",
    features: [
        FeatureConfiguration(name: "amount", kind: .numeric),
        FeatureConfiguration(name: "country", kind: .categorical, values: ["US", "DE"]),
    ],
    sensitiveAttributes: [SensitiveAttribute(name: "gender", groups: ["f", "m"])],
    latencyBuckets: [0.01, 0.1, 1])

let eta = ModelConfiguration(
    name: "eta", task: .regression, versions: ["2024.06"],
    features: [FeatureConfiguration(name: "distance_km", kind: .numeric)],
    collectors: [
        CollectorConfiguration(name: "service", options: ["prediction_buckets": .list([.number(10), .number(60)])])
    ])
