import ExporterConfig
import Exposition
import Foundation
import Ingestion
import ModelMonitoring
import Testing

/// A binary model `m` (classes no, yes; positive yes) with the `fairness` collector and `attributes`.
func fairnessHarness(
    _ attributes: [SensitiveAttribute], options: [String: ConfigValue] = [:],
    window: WindowConfiguration = WindowConfiguration()
) throws -> (Harness, MonitoredModel, any ModelCollector) {
    let config = ModelConfiguration(
        name: "m", task: .binaryClassification, versions: ["v1"], classes: ["no", "yes"], positiveClass: "yes",
        sensitiveAttributes: attributes, window: window,
        collectors: [CollectorConfiguration(name: "fairness", options: options)])
    let h = try Harness([config])
    let m = h.model("m")
    return (h, m, m.collectors[0])
}

/// Feeds a fairness collector predictions and joined outcomes directly, as the ingestion path and the pending
/// store do.
struct FairnessFeeder {
    let model: MonitoredModel
    let collector: any ModelCollector

    /// A prediction event with `attributes` (by attribute position) predicting `positive` or not.
    func event(_ attributes: [String?], positive: Bool) -> PredictionEvent {
        var e = model.makePrediction(version: "v1", prediction: .label(positive ? "yes" : "no"))
        e.predictionClass = positive ? 1 : 0
        e.attributes = attributes
        return e
    }

    /// Records one prediction and, when `label` is given, its joined outcome (the label arriving at `labelAt`).
    func record(
        _ attributes: [String?], predicted: Bool, label: Bool? = nil, at t: Double = WallClock.now(),
        labelAt: Double? = nil
    ) {
        let e = event(attributes, positive: predicted)
        collector.record(prediction: e, receivedAt: t)
        guard let label else { return }
        let outcome = JoinedOutcome(
            prediction: PredictionSnapshot(e, context: model.context, receivedAt: t),
            label: .label(label ? "yes" : "no"), actualClass: label ? 1 : 0, actualValue: .nan,
            delaySeconds: (labelAt ?? t) - t)
        collector.record(outcome: outcome, receivedAt: labelAt ?? t)
    }

    /// `count` predictions for `attributes`, the first `selected` of them positive (no labels).
    func predictions(_ attributes: [String?], count: Int, selected: Int, at t: Double = WallClock.now()) {
        for i in 0..<count { record(attributes, predicted: i < selected, at: t) }
    }

    /// Joined outcomes for `attributes`: `tp`, `fp`, `fn`, `tn` of each cell.
    func outcomes(_ attributes: [String?], tp: Int = 0, fp: Int = 0, fn: Int = 0, tn: Int = 0) {
        for _ in 0..<tp { record(attributes, predicted: true, label: true) }
        for _ in 0..<fp { record(attributes, predicted: true, label: false) }
        for _ in 0..<fn { record(attributes, predicted: false, label: true) }
        for _ in 0..<tn { record(attributes, predicted: false, label: false) }
    }
}

/// `mlops_fairness_metric` (or another per-metric family) for attribute `a`.
func metricSeries(_ a: String, _ metric: String, family: String = "mlops_fairness_metric") -> String {
    #"\#(family){attribute="\#(a)",metric="\#(metric)",model="m"}"#
}

/// A per-group family's series for attribute `a`, group `g`.
func groupSeries(_ family: String, _ a: String, _ g: String) -> String {
    #"\#(family){attribute="\#(a)",group="\#(g)",model="m"}"#
}

/// The fairness collector against fairlearn 0.15 and the AIF360 formulas (numpy), computed at test time on the
/// same seeded data: a known bias against one group, labels for about 70% of the predictions.
@Suite struct FairnessOracleTests {
    struct Input: Encodable {
        var min: Int
        var attributes: [Attribute]
        /// Per attribute, each row's group index.
        var groups: [[Int]]
        var pred: [Int]
        /// 1, 0, or -1 (never labelled).
        var label: [Int]
    }

    struct Attribute: Encodable {
        var name: String
        var groups: [String]
        var privileged: String?
        var includeOther: Bool
    }

    static let attributes = [
        SensitiveAttribute(name: "gender", groups: ["f", "m"], privileged: "m"),
        SensitiveAttribute(name: "age", groups: ["young", "mid", "old"], privileged: "mid"),
        SensitiveAttribute(name: "region", groups: ["north", "south"]),
    ]

    /// Seeded rows: gender (f 45%, m 50%, an unknown value 5%), age (old only 0.5%, unknown or missing 4.5%),
    /// region; true class positive 30%; the model selects women and the young less, at equal true class.
    static func rows(seed: UInt64, count: Int) -> (values: [[String?]], pred: [Bool], label: [Bool?]) {
        var random = SeededRandom(seed: seed)
        var values: [[String?]] = []
        var pred: [Bool] = []
        var label: [Bool?] = []
        for _ in 0..<count {
            let u = Double.random(in: 0..<1, using: &random)
            let gender: String? = u < 0.45 ? "f" : u < 0.95 ? "m" : "x"
            let v = Double.random(in: 0..<1, using: &random)
            let age: String? = v < 0.35 ? "young" : v < 0.95 ? "mid" : v < 0.955 ? "old" : v < 0.98 ? "ancient" : nil
            let region: String? = Bool.random(using: &random) ? "north" : "south"
            let y = Double.random(in: 0..<1, using: &random) < 0.3
            var p = y ? 0.85 : 0.2
            if gender == "f" { p *= y ? 0.7 : 0.5 }
            if age == "young" { p *= 0.8 }
            let predicted = Double.random(in: 0..<1, using: &random) < p
            let labelled = Double.random(in: 0..<1, using: &random) < 0.7
            values.append([gender, age, region])
            pred.append(predicted)
            label.append(labelled ? y : nil)
        }
        return (values, pred, label)
    }

    static let script = #"""
        import sys, json, warnings
        warnings.filterwarnings("ignore")
        import numpy as np
        from fairlearn.metrics import (MetricFrame, selection_rate, true_positive_rate, false_positive_rate,
            demographic_parity_difference, demographic_parity_ratio, equalized_odds_difference,
            equalized_odds_ratio, equal_opportunity_difference, equal_opportunity_ratio)

        def num(x):
            return repr(float(x))

        d = json.load(sys.stdin)
        minimum = d["min"]
        pred = np.array(d["pred"], dtype=int)
        label = np.array(d["label"], dtype=int)
        joined = label >= 0
        out = {}
        for a, attr in enumerate(d["attributes"]):
            name = attr["name"]
            names = np.array(attr["groups"], dtype=object)
            s = names[np.array(d["groups"][a], dtype=int)]
            # Per-group rates: MetricFrame over every row (selection) and over the joined rows (TPR, FPR).
            sel = MetricFrame(metrics=selection_rate, y_true=pred, y_pred=pred, sensitive_features=s)
            for g, v in sel.by_group.items():
                out["%s|%s|selection_rate" % (name, g)] = num(v)
            rates = MetricFrame(metrics={"tpr": true_positive_rate, "fpr": false_positive_rate},
                                y_true=label[joined], y_pred=pred[joined], sensitive_features=s[joined])
            for g, row in rates.by_group.iterrows():
                out["%s|%s|tpr" % (name, g)] = num(row["tpr"])
                out["%s|%s|fpr" % (name, g)] = num(row["fpr"])
            # Gating, independently of the exporter: a group joins a comparison when the rate's denominator
            # reaches the minimum.
            compared = attr["groups"] if attr["includeOther"] else attr["groups"][:-1]
            n = {g: int((s == g).sum()) for g in compared}
            pos = {g: int(((s == g) & joined & (label == 1)).sum()) for g in compared}
            neg = {g: int(((s == g) & joined & (label == 0)).sum()) for g in compared}
            by_sel = [g for g in compared if n[g] >= minimum]
            by_opp = [g for g in compared if pos[g] >= minimum]
            by_odds = [g for g in by_opp if neg[g] >= minimum]
            everything = np.ones(len(s), dtype=bool)
            for groups, rows, truth, metrics in (
                    (by_sel, everything, pred, (demographic_parity_difference, demographic_parity_ratio)),
                    (by_odds, joined, label, (equalized_odds_difference, equalized_odds_ratio)),
                    (by_opp, joined, label, (equal_opportunity_difference, equal_opportunity_ratio))):
                if len(groups) >= 2:
                    k = rows & np.isin(s, groups)
                    for metric in metrics:
                        out[name + "|" + metric.__name__] = num(metric(truth[k], pred[k], sensitive_features=s[k]))
            # AIF360 (ClassificationMetric with unprivileged_groups = the other qualifying groups), by numpy.
            p = attr.get("privileged")
            if p is None:
                continue
            def tpr(mask):
                m = mask & joined & (label == 1)
                return (pred[m] == 1).sum() / m.sum()
            def fpr(mask):
                m = mask & joined & (label == 0)
                return (pred[m] == 1).sum() / m.sum()
            if p in by_sel and len(by_sel) >= 2:
                priv, unpriv = s == p, np.isin(s, [g for g in by_sel if g != p])
                sr_u, sr_p = pred[unpriv].mean(), pred[priv].mean()
                out[name + "|disparate_impact"] = num(sr_u / sr_p)
                out[name + "|statistical_parity_difference"] = num(sr_u - sr_p)
            if p in by_odds and len(by_odds) >= 2:
                priv, unpriv = s == p, np.isin(s, [g for g in by_odds if g != p])
                out[name + "|average_odds_difference"] = num(
                    0.5 * ((fpr(unpriv) - fpr(priv)) + (tpr(unpriv) - tpr(priv))))
            if p in by_opp and len(by_opp) >= 2:
                priv, unpriv = s == p, np.isin(s, [g for g in by_opp if g != p])
                out[name + "|aif360_equal_opportunity_difference"] = num(tpr(unpriv) - tpr(priv))
        json.dump(out, sys.stdout)
        """#

    @Test(arguments: [(seed: UInt64(7), count: 4000, min: 30, includeOther: true), (8, 2500, 60, false)])
    func matchesFairlearnAndAIF360(seed: UInt64, count: Int, min: Int, includeOther: Bool) throws {
        let (h, m, c) = try fairnessHarness(
            Self.attributes,
            options: ["min_group_observations": .number(Double(min)), "include_other": .bool(includeOther)])
        let feeder = FairnessFeeder(model: m, collector: c)
        let (values, pred, label) = Self.rows(seed: seed, count: count)
        let now = WallClock.now()
        for i in 0..<count { feeder.record(values[i], predicted: pred[i], label: label[i], at: now - 5) }
        let groupIndexes = (0..<Self.attributes.count).map { a in
            values.map { m.context.groupIndex(attribute: a, value: $0[a]) }
        }
        let input = Input(
            min: min,
            attributes: Self.attributes.enumerated().map { a, attribute in
                Attribute(
                    name: attribute.name, groups: m.context.groupLabels[a], privileged: attribute.privileged,
                    includeOther: includeOther)
            },
            groups: groupIndexes, pred: pred.map { $0 ? 1 : 0 }, label: label.map { $0.map { $0 ? 1 : 0 } ?? -1 })
        let expected = try PythonOracle.run(Self.script, input: input, as: [String: String].self)
        var compared = 0
        func check(_ series: String, _ key: String, defined: Bool = true) {
            let ours = h.value(series)
            guard let theirs = expected[key].flatMap(Double.init), defined else {
                #expect(ours == nil, "\(series) = \(ours ?? .nan), but the oracle has none (\(key))")
                return
            }
            compared += 1
            #expect(
                ours.map { close($0, theirs, relative: 1e-9, absolute: 1e-12) } == true,
                "\(series): \(ours ?? .nan) vs \(theirs)")
        }
        for (a, attribute) in Self.attributes.enumerated() {
            let metrics = attribute.privileged == nil ? FairnessMetric.fairlearn : FairnessMetric.allCases
            for metric in metrics {
                check(metricSeries(attribute.name, metric.rawValue), "\(attribute.name)|\(metric.rawValue)")
            }
            for (g, group) in m.context.groupLabels[a].enumerated() {
                let rows = (0..<count).filter { groupIndexes[a][$0] == g }
                let joined = rows.filter { label[$0] != nil }
                let positives = joined.filter { label[$0] == true }.count
                // fairlearn reports 0 for a rate whose denominator is 0; the exporter leaves the series out.
                check(
                    groupSeries("mlops_fairness_selection_rate", attribute.name, group),
                    "\(attribute.name)|\(group)|selection_rate", defined: !rows.isEmpty)
                check(
                    groupSeries("mlops_fairness_true_positive_rate", attribute.name, group),
                    "\(attribute.name)|\(group)|tpr", defined: positives > 0)
                check(
                    groupSeries("mlops_fairness_false_positive_rate", attribute.name, group),
                    "\(attribute.name)|\(group)|fpr", defined: joined.count - positives > 0)
                #expect(
                    h.value(groupSeries("mlops_fairness_predictions_total", attribute.name, group))
                        == Double(rows.count))
                #expect(
                    h.value(groupSeries("mlops_fairness_selected_total", attribute.name, group))
                        == Double(rows.filter { pred[$0] }.count))
                #expect(
                    h.value(groupSeries("mlops_fairness_window_observations", attribute.name, group))
                        == Double(rows.count))
            }
        }
        // The data has the intended shape: most metrics defined, and the bias is caught.
        #expect(compared >= 40)
        #expect(h.value(metricSeries("gender", "disparate_impact")).map { $0 < 0.8 } == true)
        #expect(h.value(metricSeries("gender", "disparate_impact", family: "mlops_fairness_violation")) == 1)
        #expect(h.value(metricSeries("region", "demographic_parity_ratio", family: "mlops_fairness_violation")) == 0)
        // `old` (0.5%) is always below the minimum: it has a rate but never takes part.
        #expect(h.value(groupSeries("mlops_fairness_selection_rate", "age", "old")) != nil)
    }
}

@Suite struct FairnessCollectorTests {
    static let gender = SensitiveAttribute(name: "gender", groups: ["f", "m"], privileged: "m")

    @Test func registeredAsBuiltIn() {
        #expect(CollectorCatalog.builtIn.names.contains("fairness"))
        #expect(ConfigLoader.builtInCollectors.contains("fairness"))
        #expect(FairnessCollector.needsOutcomes)
    }

    @Test func everyFamilyIsInTheMetricsReference() throws {
        let doc = try String(
            contentsOf: PythonOracle.packageRoot.appendingPathComponent("docs/metrics.md"), encoding: .utf8)
        for d in FairnessCollector.schema.descriptors {
            // Counter families are named without `_total`; the documentation lists the sample name.
            let name = d.type == .counter ? d.name + "_total" : d.name
            let row = doc.split(separator: "\n").first { $0.hasPrefix("| `\(name)` |") }
            let labels = d.labelNames.map { "`\($0)`" }.joined(separator: ", ")
            #expect(row == "| `\(name)` | \(d.type.rawValue) | \(labels) | \(d.help) |", "docs/metrics.md: \(name)")
        }
    }

    @Test func theSetUpInTheDocsLoads() throws {
        let doc = try String(
            contentsOf: PythonOracle.packageRoot.appendingPathComponent("docs/fairness.md"), encoding: .utf8)
        let yaml = try #require(
            doc.components(separatedBy: "```yaml\n").dropFirst().first?.components(separatedBy: "```").first)
        let configuration = try ConfigLoader.parse(yaml, file: "docs/fairness.md")
        let h = try Harness(configuration.models)
        #expect(h.model("credit").collectors.last is FairnessCollector)
        #expect(
            h.value(#"mlops_fairness_upper_bound{attribute="age_band",metric="disparate_impact",model="credit"}"#)
                == 1.25)
        #expect(
            h.value(#"mlops_fairness_lower_bound{attribute="gender",metric="demographic_parity_ratio",model="credit"}"#)
                == 0.8)
    }

    @Test func concurrentRecordingLosesNothing() throws {
        let (h, m, c) = try fairnessHarness([Self.gender], options: ["min_group_observations": .number(1)])
        let feed = FairnessFeeder(model: m, collector: c)
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            let group = i % 2 == 0 ? "f" : "m"
            for j in 0..<5000 { feed.record([group], predicted: j % 4 == 0, label: j % 2 == 0) }
        }
        for g in ["f", "m"] {
            #expect(h.value(groupSeries("mlops_fairness_predictions_total", "gender", g)) == 10000)
            #expect(h.value(groupSeries("mlops_fairness_window_observations", "gender", g)) == 10000)
            #expect(h.value(groupSeries("mlops_fairness_selected_total", "gender", g)) == 2500)
            #expect(h.value(groupSeries("mlops_fairness_true_positive_rate", "gender", g)) == 0.5)
            #expect(h.value(groupSeries("mlops_fairness_false_positive_rate", "gender", g)) == 0)
        }
    }

    @Test func countsPerGroupAndConfusionCell() throws {
        let (h, m, c) = try fairnessHarness([Self.gender], options: ["min_group_observations": .number(1)])
        let feed = FairnessFeeder(model: m, collector: c)
        feed.outcomes(["f"], tp: 3, fp: 1, fn: 2, tn: 4)
        feed.outcomes(["m"], tp: 4, fp: 2, fn: 1, tn: 3)
        feed.predictions(["m"], count: 10, selected: 4)
        let f = ("gender", "f")
        #expect(h.value(groupSeries("mlops_fairness_predictions_total", f.0, f.1)) == 10)
        #expect(h.value(groupSeries("mlops_fairness_selected_total", f.0, f.1)) == 4)
        #expect(h.value(groupSeries("mlops_fairness_window_observations", "gender", "m")) == 20)
        #expect(h.value(groupSeries("mlops_fairness_selection_rate", "gender", "m")) == 10.0 / 20)
        for (outcome, n) in [("tp", 3.0), ("fp", 1), ("fn", 2), ("tn", 4)] {
            #expect(
                h.value(#"mlops_fairness_outcomes_total{attribute="gender",group="f",model="m",outcome="\#(outcome)"}"#)
                    == n)
            #expect(
                h.value(
                    #"mlops_fairness_window_outcomes{attribute="gender",group="f",model="m",outcome="\#(outcome)"}"#)
                    == n)
        }
        #expect(h.value(groupSeries("mlops_fairness_true_positive_rate", "gender", "f")) == 3.0 / 5)
        #expect(h.value(groupSeries("mlops_fairness_false_positive_rate", "gender", "f")) == 1.0 / 5)
        // f: SR 0.4, TPR 0.6, FPR 0.2; m: SR 0.5, TPR 0.8, FPR 0.4 (pooled unprivileged = f).
        let expected: [(FairnessMetric, Double)] = [
            (.demographicParityDifference, 0.5 - 0.4), (.demographicParityRatio, 0.4 / 0.5),
            (.equalizedOddsDifference, 0.4 - 0.2), (.equalizedOddsRatio, 0.2 / 0.4),
            (.equalOpportunityDifference, 0.8 - 0.6), (.equalOpportunityRatio, 0.6 / 0.8),
            (.disparateImpact, 0.4 / 0.5), (.statisticalParityDifference, 0.4 - 0.5),
            (.averageOddsDifference, 0.5 * ((0.2 - 0.4) + (0.6 - 0.8))), (.aif360EqualOpportunityDifference, 0.6 - 0.8),
        ]
        for (metric, value) in expected {
            let ours = h.value(metricSeries("gender", metric.rawValue))
            #expect(ours.map { close($0, value, relative: 1e-12, absolute: 1e-15) } == true, "\(metric)")
        }
    }

    /// A metric exactly at its bound is no violation (docs/fairness.md), though its floating-point value lies an ulp
    /// beyond: selection rates 6/30 and 8/50 give a ratio of 0.7999999999999999, 40/50 and 35/50 a difference of
    /// 0.10000000000000009; both were violations.
    @Test(arguments: [(6, 30, 8, 50, "demographic_parity_ratio"), (40, 50, 35, 50, "demographic_parity_difference")])
    func aMetricExactlyAtItsBoundIsNoViolation(
        fSelected: Int, fCount: Int, mSelected: Int, mCount: Int, metric: String
    ) throws {
        let (h, m, c) = try fairnessHarness([Self.gender], options: ["min_group_observations": .number(1)])
        let feed = FairnessFeeder(model: m, collector: c)
        feed.predictions(["f"], count: fCount, selected: fSelected)
        feed.predictions(["m"], count: mCount, selected: mSelected)
        let value = try #require(h.value(metricSeries("gender", metric)))
        #expect(value != 0.8 && value != 0.1, "the case needs a value an ulp off its bound: \(value)")
        #expect(h.value(metricSeries("gender", metric, family: "mlops_fairness_violation")) == 0)
    }

    @Test func groupsBelowTheMinimumAreLeftOut() throws {
        let (h, m, c) = try fairnessHarness(
            [SensitiveAttribute(name: "gender", groups: ["f", "m", "d"])],
            options: ["min_group_observations": .number(30)])
        let feed = FairnessFeeder(model: m, collector: c)
        feed.predictions(["f"], count: 29, selected: 29)
        feed.predictions(["m"], count: 40, selected: 10)
        // One qualifying group: no metric, no violation, but the rates and bounds are there.
        #expect(h.value(metricSeries("gender", "demographic_parity_difference")) == nil)
        #expect(h.value(metricSeries("gender", "demographic_parity_ratio", family: "mlops_fairness_violation")) == nil)
        #expect(h.value(groupSeries("mlops_fairness_selection_rate", "gender", "f")) == 1)
        #expect(
            h.value(metricSeries("gender", "demographic_parity_ratio", family: "mlops_fairness_lower_bound")) == 0.8)
        feed.predictions(["f"], count: 1, selected: 0)
        // f: 29 / 30, m: 10 / 40; d (never seen) and __other__ stay out.
        #expect(h.value(metricSeries("gender", "demographic_parity_difference")) == 29.0 / 30 - 0.25)
        #expect(h.value(metricSeries("gender", "demographic_parity_ratio")) == 0.25 / (29.0 / 30))
        #expect(h.value(metricSeries("gender", "demographic_parity_ratio", family: "mlops_fairness_violation")) == 1)
        // A group never seen: zero counters and observations, no rate.
        #expect(h.value(groupSeries("mlops_fairness_predictions_total", "gender", "d")) == 0)
        #expect(h.value(groupSeries("mlops_fairness_window_observations", "gender", "d")) == 0)
        #expect(h.value(groupSeries("mlops_fairness_selection_rate", "gender", "d")) == nil)
        // Label-based metrics need 30 actual positives (TPR) and 30 actual negatives (FPR) per group.
        feed.outcomes(["f"], tp: 20, fn: 10, tn: 29)
        feed.outcomes(["m"], tp: 15, fp: 3, fn: 15, tn: 27)
        #expect(h.value(metricSeries("gender", "equal_opportunity_difference")) == 20.0 / 30 - 0.5)
        #expect(h.value(metricSeries("gender", "equalized_odds_difference")) == nil)
        feed.outcomes(["f"], tn: 1)
        #expect(h.value(metricSeries("gender", "equalized_odds_difference")) == 20.0 / 30 - 0.5)
    }

    @Test func privilegedGroupBelowTheMinimumMeansNoAIF360Metric() throws {
        let (h, m, c) = try fairnessHarness(
            [SensitiveAttribute(name: "age", groups: ["young", "mid", "old"], privileged: "mid")],
            options: ["min_group_observations": .number(10)])
        let feed = FairnessFeeder(model: m, collector: c)
        feed.predictions(["young"], count: 10, selected: 2)
        feed.predictions(["old"], count: 10, selected: 4)
        feed.predictions(["mid"], count: 9, selected: 9)
        // young and old are compared (fairlearn); without its privileged group AIF360 has nothing to compare with.
        #expect(h.value(metricSeries("age", "demographic_parity_ratio")) == 0.5)
        #expect(h.value(metricSeries("age", "disparate_impact")) == nil)
        #expect(
            h.value(metricSeries("age", "statistical_parity_difference", family: "mlops_fairness_violation")) == nil)
        feed.predictions(["mid"], count: 1, selected: 0)
        // mid: 9 / 10; the unprivileged pool: 6 / 20.
        #expect(h.value(metricSeries("age", "disparate_impact")) == 0.3 / 0.9)
        #expect(h.value(metricSeries("age", "demographic_parity_ratio")) == 0.2 / 0.9)
    }

    @Test func otherGroupCollectsUnknownAndMissingValues() throws {
        let attribute = SensitiveAttribute(name: "gender", groups: ["f", "m"], privileged: "m")
        for includeOther in [true, false] {
            let (h, m, c) = try fairnessHarness(
                [attribute], options: ["min_group_observations": .number(2), "include_other": .bool(includeOther)])
            let feed = FairnessFeeder(model: m, collector: c)
            feed.predictions(["f"], count: 4, selected: 2)
            feed.predictions(["m"], count: 4, selected: 2)
            feed.predictions(["x"], count: 2, selected: 0)
            feed.predictions([nil], count: 2, selected: 0)
            #expect(h.value(groupSeries("mlops_fairness_predictions_total", "gender", "__other__")) == 4)
            #expect(h.value(groupSeries("mlops_fairness_selection_rate", "gender", "__other__")) == 0)
            // With __other__: rates 0.5, 0.5, 0; the unprivileged pool is f + __other__ = 2 / 8.
            #expect(h.value(metricSeries("gender", "demographic_parity_difference")) == (includeOther ? 0.5 : 0))
            #expect(h.value(metricSeries("gender", "disparate_impact")) == (includeOther ? 0.25 / 0.5 : 1))
            #expect(h.value(metricSeries("gender", "statistical_parity_difference")) == (includeOther ? -0.25 : 0))
        }
    }

    @Test func windowExpiresButCountersStay() throws {
        let (h, m, c) = try fairnessHarness(
            [Self.gender], options: ["min_group_observations": .number(1)],
            window: WindowConfiguration(duration: .seconds(60), slices: 6))
        let feed = FairnessFeeder(model: m, collector: c)
        let now = WallClock.now()
        feed.record(["f"], predicted: true, label: true, at: now - 600)
        feed.record(["m"], predicted: false, label: true, at: now - 600)
        #expect(h.value(groupSeries("mlops_fairness_window_observations", "gender", "f")) == 0)
        #expect(h.value(groupSeries("mlops_fairness_selection_rate", "gender", "f")) == nil)
        #expect(h.value(metricSeries("gender", "demographic_parity_difference")) == nil)
        #expect(h.value(groupSeries("mlops_fairness_predictions_total", "gender", "f")) == 1)
        #expect(h.value(#"mlops_fairness_outcomes_total{attribute="gender",group="f",model="m",outcome="tp"}"#) == 1)
        // A prediction made long ago whose label arrives now counts in the window of the label's arrival.
        feed.record(["f"], predicted: false, label: true, at: now - 600, labelAt: now)
        #expect(h.value(#"mlops_fairness_window_outcomes{attribute="gender",group="f",model="m",outcome="fn"}"#) == 1)
        #expect(h.value(groupSeries("mlops_fairness_true_positive_rate", "gender", "f")) == 0)
        #expect(h.value(groupSeries("mlops_fairness_window_observations", "gender", "f")) == 0)
        feed.record(["f"], predicted: true, at: now)
        feed.record(["m"], predicted: false, at: now)
        #expect(h.value(metricSeries("gender", "demographic_parity_difference")) == 1)
        // Events older than the window, once the window has moved on, are counted as late and kept out of it.
        feed.record(["m"], predicted: true, label: true, at: now - 600)
        #expect(h.value(#"mlops_fairness_late_events_total{event="prediction",model="m"}"#) == 1)
        #expect(h.value(#"mlops_fairness_late_events_total{event="outcome",model="m"}"#) == 1)
        #expect(h.value(groupSeries("mlops_fairness_selection_rate", "gender", "m")) == 0)
        #expect(h.value(groupSeries("mlops_fairness_predictions_total", "gender", "m")) == 3)
    }

    @Test func violationsAtTheBounds() throws {
        // Selection rates: f 0.5, m 0.625: ratio 0.8 exactly (not below), difference 0.125 (above 0.1).
        let (h, m, c) = try fairnessHarness([Self.gender], options: ["min_group_observations": .number(8)])
        let feed = FairnessFeeder(model: m, collector: c)
        feed.predictions(["f"], count: 8, selected: 4)
        feed.predictions(["m"], count: 8, selected: 5)
        func flag(_ metric: String) -> Double? {
            h.value(metricSeries("gender", metric, family: "mlops_fairness_violation"))
        }
        #expect(h.value(metricSeries("gender", "demographic_parity_ratio")) == 0.8)
        #expect(flag("demographic_parity_ratio") == 0)
        #expect(h.value(metricSeries("gender", "demographic_parity_difference")) == 0.125)
        #expect(flag("demographic_parity_difference") == 1)
        #expect(h.value(metricSeries("gender", "disparate_impact")) == 0.8)
        #expect(flag("disparate_impact") == 0)
        #expect(h.value(metricSeries("gender", "statistical_parity_difference")) == -0.125)
        #expect(flag("statistical_parity_difference") == 1)
        #expect(h.value(metricSeries("gender", "disparate_impact", family: "mlops_fairness_upper_bound")) == 1.25)
        #expect(
            h.value(metricSeries("gender", "statistical_parity_difference", family: "mlops_fairness_lower_bound"))
                == -0.1)
        // Configured bounds: the same values are now exactly at (and inside) the bounds, or beyond them.
        let (h2, m2, c2) = try fairnessHarness(
            [SensitiveAttribute(name: "gender", groups: ["f", "m"], privileged: "f")],
            options: [
                "min_group_observations": .number(8),
                "bounds": .map([
                    "demographic_parity_difference": .number(0.125), "demographic_parity_ratio": .number(0.81),
                    "statistical_parity_difference": .list([.number(0), .number(0.125)]),
                    "disparate_impact": .number(0.8),
                ]),
            ])
        let feed2 = FairnessFeeder(model: m2, collector: c2)
        feed2.predictions(["f"], count: 8, selected: 4)
        feed2.predictions(["m"], count: 8, selected: 5)
        func flag2(_ metric: String) -> Double? {
            h2.value(metricSeries("gender", metric, family: "mlops_fairness_violation"))
        }
        #expect(flag2("demographic_parity_difference") == 0)
        #expect(flag2("demographic_parity_ratio") == 1)
        // Privileged f: m is unprivileged, DI = 0.625 / 0.5 = 1.25 (the upper bound, 1 / 0.8), SPD = 0.125.
        #expect(h2.value(metricSeries("gender", "disparate_impact")) == 1.25)
        #expect(flag2("disparate_impact") == 0)
        #expect(flag2("statistical_parity_difference") == 0)
        #expect(
            h2.value(metricSeries("gender", "statistical_parity_difference", family: "mlops_fairness_lower_bound")) == 0
        )
    }

    @Test func zeroRates() throws {
        let (h, m, c) = try fairnessHarness([Self.gender], options: ["min_group_observations": .number(2)])
        let feed = FairnessFeeder(model: m, collector: c)
        feed.predictions(["f"], count: 2, selected: 0)
        feed.predictions(["m"], count: 2, selected: 0)
        // Nobody selected: differences 0; ratios 0 / 0 are undefined (fairlearn: NaN), so left out.
        #expect(h.value(metricSeries("gender", "demographic_parity_difference")) == 0)
        #expect(h.value(metricSeries("gender", "demographic_parity_ratio")) == nil)
        #expect(h.value(metricSeries("gender", "demographic_parity_ratio", family: "mlops_fairness_violation")) == nil)
        #expect(h.value(metricSeries("gender", "disparate_impact")) == nil)
        #expect(h.value(metricSeries("gender", "statistical_parity_difference")) == 0)
        // The privileged group never selected, the unprivileged sometimes: DI = +Inf, a violation.
        feed.predictions(["f"], count: 2, selected: 2)
        #expect(h.samples().contains(metricSeries("gender", "disparate_impact") + " +Inf"))
        #expect(h.value(metricSeries("gender", "disparate_impact", family: "mlops_fairness_violation")) == 1)
        // Equalized odds ratio: TPR is 0 everywhere (0 / 0), so it is the FPR ratio (fairlearn: NaN).
        feed.outcomes(["f"], fp: 1, fn: 2, tn: 1)
        feed.outcomes(["m"], fp: 1, fn: 2, tn: 3)
        #expect(h.value(metricSeries("gender", "equalized_odds_ratio")) == 0.25 / 0.5)
        #expect(h.value(metricSeries("gender", "equalized_odds_difference")) == 0.25)
        #expect(h.value(metricSeries("gender", "equal_opportunity_ratio")) == nil)
        #expect(h.value(metricSeries("gender", "equal_opportunity_difference")) == 0)
    }

    @Test func maxSeriesIsHonest() throws {
        let attributes = [
            Self.gender, SensitiveAttribute(name: "age", groups: ["young", "old", "mid"]),
        ]
        let (h, m, c) = try fairnessHarness(attributes, options: ["min_group_observations": .number(1)])
        let feed = FairnessFeeder(model: m, collector: c)
        for g in ["f", "m", "x"] {
            for a in ["young", "old", "mid", "x"] { feed.outcomes([g, a], tp: 2, fp: 1, fn: 1, tn: 2) }
        }
        let emitted = h.samples().filter { $0.hasPrefix("mlops_fairness_") }.count
        // Every possible series is present (two groups and __other__ per attribute, all rates defined).
        #expect(emitted == c.maxSeries)
        #expect(c.maxSeries == 2 + 3 * 14 + 4 * 14 + 6 * 3 + 4 * 4 + 6 * 3)
    }

    @Test func rejectsOtherModelsAndBadOptions() throws {
        func error(_ config: ModelConfiguration) -> String {
            do {
                _ = try Harness([config])
                return ""
            } catch {
                return "\(error)"
            }
        }
        let fairness = [CollectorConfiguration(name: "fairness")]
        for (config, fragment) in [
            (
                ModelConfiguration(
                    name: "r", task: .regression, sensitiveAttributes: [Self.gender], collectors: fairness),
                "collector \"fairness\": needs a binary classification model with a positive_class (this model's task is regression)"
            ),
            (
                ModelConfiguration(
                    name: "k", task: .multiclassClassification, classes: ["a", "b", "c"],
                    sensitiveAttributes: [Self.gender], collectors: fairness),
                "this model's task is multiclass_classification"
            ),
            (
                ModelConfiguration(
                    name: "n", task: .binaryClassification, classes: ["no", "yes"], positiveClass: "yes",
                    collectors: fairness),
                "needs sensitive_attributes: the model has none"
            ),
        ] {
            let message = error(config)
            #expect(message.contains(fragment), "\(message) lacks \(fragment)")
        }
        for (options, fragment) in [
            (["colour": ConfigValue.string("red")], "option colour: unknown option"),
            (["min_group_observations": .number(0)], "option min_group_observations: expected an integer in 1..."),
            (["include_other": .string("yes")], "option include_other: expected true or false"),
            (["bounds": .map(["parity": .number(0.8)])], "option bounds.parity: unknown metric"),
            (
                ["bounds": .map(["demographic_parity_ratio": .number(1.5)])],
                "option bounds.demographic_parity_ratio: a ratio's lower bound must lie in [0, 1]"
            ),
            (
                ["bounds": .map(["equalized_odds_difference": .number(-0.1)])],
                "bounds.equalized_odds_difference: a difference's upper bound"
            ),
            (
                ["bounds": .map(["demographic_parity_ratio": .list([.number(0.8), .number(1)])])],
                "bounds.demographic_parity_ratio: expected one number (a lower bound)"
            ),
            (
                ["bounds": .map(["disparate_impact": .list([.number(1.25), .number(0.8)])])],
                "bounds.disparate_impact: expected [lower, upper] with lower <= upper"
            ),
            (
                ["bounds": .map(["disparate_impact": .list([.number(0), .number(1.25)])])],
                "bounds.disparate_impact: the lower bound of a ratio must be > 0"
            ),
            (["bounds": .map(["disparate_impact": .number(1.25)])], "bounds.disparate_impact: expected b in (0, 1]"),
            (
                ["bounds": .map(["average_odds_difference": .number(-1)])],
                "bounds.average_odds_difference: expected b >= 0"
            ),
        ] {
            let thrown = #expect(throws: ModelSetupErrors.self) {
                try fairnessHarness([Self.gender], options: options)
            }
            #expect(thrown?.description.contains(fragment) == true, "\(thrown?.description ?? "") lacks \(fragment)")
        }
    }
}
