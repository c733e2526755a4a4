import ExporterConfig
import Exposition
import Ingestion
import ModelMonitoring
import Testing

/// A reload whose only change is collector options keeps what each collector whose state keeps its shape accumulated,
/// and the pending predictions. Before, any option change (a drift threshold, a fairness bound) rebuilt the model:
/// its windows started empty (drift verdicts gone until `min_observations` came again) and its pending predictions
/// were evicted.
@Suite struct ReloadOptionsTests {
    /// `configuration` installed in `h`'s monitor, the reference of ``driftHarness(options:window:withScore:)``.
    func reload(_ h: Harness, _ configuration: ModelConfiguration) throws {
        let reference = try #require(h.model(configuration.name).context.reference)
        h.monitor.apply(
            try h.monitor.prepare(
                ExporterConfiguration(models: [configuration], source: "t"),
                references: ["ref.json": LoadedReference(profile: reference, sha256: "abc")]))
    }

    /// A binary classifier with `service` and `fairness` (groups of one are compared), gender's privileged group `m`.
    let fairnessModel = ModelConfiguration(
        name: "m", task: .binaryClassification, versions: ["v1"], classes: ["no", "yes"], positiveClass: "yes",
        sensitiveAttributes: [SensitiveAttribute(name: "gender", groups: ["f", "m"], privileged: "m")],
        collectors: [
            CollectorConfiguration(name: "service"),
            CollectorConfiguration(name: "fairness", options: ["min_group_observations": .number(1)]),
        ])

    @Test func aDriftThresholdChangeKeepsTheWindow() throws {
        let (h, m) = try driftHarness(options: ["thresholds": .map(["ks": .number(0.05)])])
        for x in [1.0, 3, 6, 9, 9] {
            m.record(version: "v1", prediction: .label("no"), features: ["x": .number(x), "c": .category("a")])
        }
        let observations = #"mlops_feature_window_observations{feature="x",model="m"}"#
        #expect(h.value(observations) == 5)
        var changed = m.context.configuration
        changed.collectors = [
            CollectorConfiguration(name: "drift", options: ["thresholds": .map(["ks": .number(0.01)])])
        ]
        try reload(h, changed)
        #expect(h.model("m") !== m)
        #expect(h.value(observations) == 5)
        #expect(
            h.samples().contains {
                $0.hasPrefix(#"mlops_feature_drift_threshold{feature="x",method="ks",model="m"} 0.01"#)
            })
        // Recording goes on into the same window.
        h.model("m").record(version: "v1", prediction: .label("no"), features: ["x": .number(2)])
        #expect(h.value(observations) == 6)
        // A change that bins otherwise (psi keeps no fine counts) starts the window empty.
        changed.collectors = [
            CollectorConfiguration(name: "drift", options: ["features": .map(["x": .map(["method": .string("psi")])])])
        ]
        try reload(h, changed)
        #expect(h.value(observations) == 0)
        #expect(h.value(#"mlops_ingest_events_total{kind="predictions",model="m"}"#) == 6)
    }

    @Test func aFairnessBoundChangeKeepsTheWindowThePendingPredictionsAndTheOtherCollectors() throws {
        let config = fairnessModel
        let h = try Harness([config])
        let m = h.model("m")
        for i in 0..<6 {
            var e = m.makePrediction(version: "v1", prediction: .label(i % 2 == 0 ? "yes" : "no"))
            e.id = "p\(i)"
            e.attributes = [i < 3 ? "f" : "m"]
            _ = m.record(e)
        }
        let observations = #"mlops_fairness_window_observations{attribute="gender",group="f",model="m"}"#
        #expect(h.value(observations) == 3)
        var changed = config
        changed.collectors[1].options["bounds"] = .map(["demographic_parity_ratio": .number(0.5)])
        h.monitor.apply(try h.monitor.prepare(ExporterConfiguration(models: [changed], source: "t")))
        let after = h.model("m")
        #expect(after !== m && after.joiner === m.joiner && after.collectors[0] === m.collectors[0])
        #expect(h.value(observations) == 3)
        #expect(
            h.value(#"mlops_fairness_lower_bound{attribute="gender",metric="demographic_parity_ratio",model="m"}"#)
                == 0.5)
        #expect(h.value(#"mlops_model_requests_total{model="m",status="ok",version="v1"}"#) == 6)
        #expect(h.value(#"mlops_labels_pending{model="m"}"#) == 6)
        #expect(after.record(label: LabelEvent(id: "p0", label: .label("yes"))) == nil)
        #expect(h.value(#"mlops_labels_joined_total{model="m",source="endpoint"}"#) == 1)
        #expect(h.value(#"mlops_predictions_evicted_total{model="m",reason="reload"}"#) == 0)
    }
    /// The privileged group changed (or set where there was none): the fairness collector is built anew and carries its
    /// window and counts, the AIF360 metrics follow the new group, and the other collectors and the pending
    /// predictions stay. Before, the model was rebuilt and every counter of it restarted from zero (a probe counted
    /// 141 series in 19 families).
    @Test func aPrivilegedGroupChangeKeepsTheStateAndComparesWithTheNewGroup() throws {
        let config = fairnessModel
        let h = try Harness([config])
        let m = h.model("m")
        // Group f: 1 of 4 selected; group m: 2 of 4.
        for i in 0..<8 {
            var e = m.makePrediction(version: "v1", prediction: .label([0, 4, 5].contains(i) ? "yes" : "no"))
            e.id = "p\(i)"
            e.attributes = [i < 4 ? "f" : "m"]
            _ = m.record(e)
        }
        let impact = #"mlops_fairness_metric{attribute="gender",metric="disparate_impact",model="m"}"#
        let selected = #"mlops_fairness_selected_total{attribute="gender",group="f",model="m"}"#
        #expect(h.value(impact) == 0.5)
        #expect(h.value(selected) == 1)
        var changed = config
        changed.sensitiveAttributes[0].privileged = "f"
        h.monitor.apply(try h.monitor.prepare(ExporterConfiguration(models: [changed], source: "t")))
        let after = h.model("m")
        #expect(after !== m && after.joiner === m.joiner && after.collectors[0] === m.collectors[0])
        #expect(after.collectors[1] !== m.collectors[1])
        // The same counts, compared with the new privileged group.
        #expect(h.value(selected) == 1)
        #expect(h.value(impact) == 2)
        #expect(h.value(#"mlops_model_requests_total{model="m",status="ok",version="v1"}"#) == 8)
        #expect(h.value(#"mlops_labels_pending{model="m"}"#) == 8)
        // Without a privileged group: fairlearn's metrics only, the counts still kept.
        changed.sensitiveAttributes[0].privileged = nil
        h.monitor.apply(try h.monitor.prepare(ExporterConfiguration(models: [changed], source: "t")))
        #expect(h.value(impact) == nil)
        #expect(h.value(selected) == 1)
    }
}
