import ExporterConfig
import Exposition
import Foundation
import Ingestion
import Testing

@testable import ModelMonitoring

/// A model running only the `quality` collector.
func qualityModel(
    _ name: String, task: ModelTask, versions: [String] = ["v1", "v2"], classes: [String] = [],
    positive: String? = nil, window: WindowConfiguration = WindowConfiguration(),
    options: [String: ConfigValue] = [:]
) -> ModelConfiguration {
    ModelConfiguration(
        name: name, task: task, versions: versions, classes: classes, positiveClass: positive, window: window,
        collectors: [CollectorConfiguration(name: "quality", options: options)])
}

/// The series text `name{labels}` with labels sorted, as the text exposition renders them.
func series(_ name: String, _ labels: [String: String]) -> String {
    name + "{" + labels.keys.sorted().map { "\($0)=\"\(labels[$0]!)\"" }.joined(separator: ",") + "}"
}

/// One classification outcome as the tests generate it.
struct ClassOutcome {
    var actual: Int
    var predicted: Int
    var score = Double.nan
    var probabilities: [Double] = []

    func joined(version: Int = 0, time: Double) -> JoinedOutcome {
        JoinedOutcome(
            prediction: PredictionSnapshot(
                time: time - 5, version: version, predictedClass: predicted, value: .nan, score: score,
                probabilities: probabilities, groups: []),
            label: .label("x"), actualClass: actual, actualValue: .nan, delaySeconds: 5)
    }
}

func regressionOutcome(predicted: Double, actual: Double, version: Int = 0, time: Double) -> JoinedOutcome {
    JoinedOutcome(
        prediction: PredictionSnapshot(
            time: time - 5, version: version, predictedClass: -1, value: predicted, score: .nan, probabilities: [],
            groups: []),
        label: .number(actual), actualClass: -1, actualValue: actual, delaySeconds: 5)
}

func qualityCollector(_ h: Harness, _ model: String) -> QualityCollector {
    h.model(model).collectors.compactMap { $0 as? QualityCollector }.first!
}

/// The probability row (configured class order) an outcome gives, or nil when it gives none usable: the
/// oracle's view of the collector's rule.
func probabilityRow(_ o: ClassOutcome, configured: Int, positive: Int?) -> [Double]? {
    guard o.actual < configured else { return nil }
    if o.probabilities.count == configured { return o.probabilities }
    guard let positive, !o.score.isNaN, o.score >= 0, o.score <= 1 else { return nil }
    var row = [Double](repeating: 1 - o.score, count: 2)
    row[positive] = o.score
    return row
}

let exact = 1e-9

@Suite struct QualityCollectorTests {
    @Test func binaryClassificationMatchesScikitLearn() throws {
        let h = try Harness([
            qualityModel("fraud", task: .binaryClassification, classes: ["legit", "fraud"], positive: "fraud")
        ])
        let q = qualityCollector(h, "fraud")
        var rng = SeededRandom(seed: 11)
        let now = WallClock.now()
        var outcomes: [ClassOutcome] = []
        for i in 0..<3000 {
            let u = Double.random(in: 0..<1, using: &rng)
            let actual = u < 0.03 ? 2 : (u < 0.33 ? 1 : 0)
            let signal = actual == 1 ? 1.2 : (actual == 0 ? -1.2 : 0)
            var s = 1 / (1 + exp(-(signal + rng.normal())))
            if i % 7 == 0 { s = (s * 100).rounded() / 100 }  // exact ties
            if i % 97 == 0 { s = actual == 1 ? 0 : 1 }  // confidently wrong: clipped log loss
            let predicted = i % 50 == 0 ? 2 : (s >= 0.5 ? 1 : 0)
            var o = ClassOutcome(actual: actual, predicted: predicted)
            switch i % 4 {
            case 0, 1: o.score = i % 101 == 0 ? 1.5 : s
            case 2: o.probabilities = [(1 - s) * 0.999, s]
            default: break
            }
            outcomes.append(o)
            q.record(outcome: o.joined(time: now), receivedAt: now)
        }
        // A few on v2, to check versions are kept apart.
        for o in outcomes.prefix(10) { q.record(outcome: o.joined(version: 1, time: now), receivedAt: now) }

        var rows: [[Double]] = []
        var skipped = 0.0
        for o in outcomes {
            if let row = probabilityRow(o, configured: 2, positive: 1) {
                rows.append(row)
            } else if !o.probabilities.isEmpty || !o.score.isNaN {
                skipped += 1
            }
        }
        let usable = outcomes.filter { probabilityRow($0, configured: 2, positive: 1) != nil }
        let y = usable.map { Double($0.actual) }
        let p = rows.map { $0[1] }
        let results = try QualityOracle.run([
            .init(
                "classification",
                ["actual": outcomes.map { Double($0.actual) }, "predicted": outcomes.map { Double($0.predicted) }],
                args: ["classes": "2"]),
            .init("log_loss", ["y": y, "proba": rows.flatMap { $0 }], args: ["classes": "2"]),
            .init("binary", ["y": y, "p": p], args: ["calibration_bins": "10"]),
            .init(
                "classification",
                [
                    "actual": outcomes.prefix(10).map { Double($0.actual) },
                    "predicted": outcomes.prefix(10).map { Double($0.predicted) },
                ], args: ["classes": "2"]),
        ])
        let v1 = ["model": "fraud", "version": "v1"]
        func value(_ name: String, _ extra: [String: String] = [:]) -> Double {
            h.value(series(name, v1.merging(extra) { $1 })) ?? .nan
        }
        let c = results[0]
        #expect(value("mlops_model_window_outcomes") == 3000)
        #expect(close(value("mlops_model_accuracy"), c.number("accuracy"), relative: exact))
        for (i, cls) in ["legit", "fraud"].enumerated() {
            #expect(close(value("mlops_model_precision", ["class": cls]), c.number("precision\(i)"), relative: exact))
            #expect(close(value("mlops_model_recall", ["class": cls]), c.number("recall\(i)"), relative: exact))
            #expect(close(value("mlops_model_f1", ["class": cls]), c.number("f1\(i)"), relative: exact))
        }
        #expect(close(value("mlops_model_macro_precision"), c.number("macro_precision"), relative: exact))
        #expect(close(value("mlops_model_macro_recall"), c.number("macro_recall"), relative: exact))
        #expect(close(value("mlops_model_macro_f1"), c.number("macro_f1"), relative: exact))
        #expect(close(value("mlops_model_log_loss"), results[1].number("log_loss"), relative: exact))
        let b = results[2]
        #expect(close(value("mlops_model_brier_score"), b.number("brier"), relative: exact))
        #expect(close(value("mlops_model_expected_calibration_error"), b.number("ece"), relative: exact))
        #expect(close(b.number("ece_calibration_curve"), b.number("ece"), relative: exact))
        let auc = value("mlops_model_roc_auc")
        let bound = value("mlops_model_roc_auc_error_bound")
        #expect(bound > 0 && bound < 0.01)
        #expect(abs(auc - b.number("roc_auc")) <= bound + 1e-12)
        // v2 is its own series.
        #expect(
            close(
                h.value(series("mlops_model_accuracy", ["model": "fraud", "version": "v2"])) ?? .nan,
                results[3].number("accuracy"), relative: exact))

        // Raw counters: the same values from cumulative sums (what PromQL aggregates).
        #expect(value("mlops_model_classification_outcomes_total") == 3000)
        let correct = Double(outcomes.count { $0.actual == $0.predicted && $0.actual < 2 })
        #expect(value("mlops_model_correct_predictions_total") == correct)
        let labels = ["legit", "fraud", "__other__"]
        for a in 0..<3 {
            for pr in 0..<3 {
                let n = Double(outcomes.count { $0.actual == a && $0.predicted == pr })
                #expect(value("mlops_model_confusion_total", ["actual": labels[a], "predicted": labels[pr]]) == n)
            }
        }
        #expect(value("mlops_model_probability_outcomes_total") == Double(rows.count))
        #expect(value("mlops_model_probability_skipped_total") == skipped)
        #expect(
            close(
                value("mlops_model_log_loss_sum_total") / Double(rows.count), results[1].number("log_loss"),
                relative: exact))
        #expect(
            close(
                value("mlops_model_brier_score_sum_total") / Double(rows.count), b.number("brier"), relative: exact))
        var n = 0.0
        for bin in 1...10 {
            n += value("mlops_model_calibration_bin_total", ["bin": String(bin)])
        }
        #expect(n == Double(rows.count))
        // The same bins as sklearn's calibration_curve (the rounded scores put many values on the edges).
        let counts = (1...10).map { value("mlops_model_calibration_bin_total", ["bin": String($0)]) }
        #expect(counts.map { String(Int($0)) }.joined(separator: ",") == b["bins"])
        #expect(value("mlops_model_calibration_bin_positives_total", ["bin": "10"]) > 0)
        // score_bin_series is off by default; the late counter is there.
        #expect(
            h.value(series("mlops_model_score_bin_total", v1.merging(["actual": "fraud", "bin": "1"]) { $1 })) == nil)
        #expect(h.value(series("mlops_quality_late_outcomes_total", ["model": "fraud"])) == 0)
    }

    @Test func multiclassWithUnseenClassAndOtherMatchesScikitLearn() throws {
        let classes = ["a", "b", "c", "d"]  // "d" is never actual nor predicted
        let h = try Harness([qualityModel("mc", task: .multiclassClassification, classes: classes)])
        let q = qualityCollector(h, "mc")
        var rng = SeededRandom(seed: 5)
        let now = WallClock.now()
        var outcomes: [ClassOutcome] = []
        for i in 0..<2000 {
            let u = Double.random(in: 0..<1, using: &rng)
            let actual = u < 0.05 ? 4 : Int(Double.random(in: 0..<3, using: &rng))
            var logits = (0..<3).map { k in rng.normal() + (k == actual ? 1.5 : 0) }
            logits.append(-30)
            let e = logits.map { exp($0) }
            var probabilities = e.map { $0 / e.reduce(0, +) }
            if i % 89 == 0 { probabilities = [0, 0, 0, 1] }  // the actual class gets 0: clipped
            var predicted = probabilities.indices.max { probabilities[$0] < probabilities[$1] }!
            if i % 20 == 0 { predicted = 4 }
            var o = ClassOutcome(actual: actual, predicted: predicted)
            switch i % 5 {
            case 4: o.score = 0.7  // a multiclass score is not a probability: ignored
            default: o.probabilities = probabilities
            }
            outcomes.append(o)
            q.record(outcome: o.joined(time: now), receivedAt: now)
        }
        let usable = outcomes.filter { $0.actual < 4 && $0.probabilities.count == 4 }
        let results = try QualityOracle.run([
            .init(
                "classification",
                ["actual": outcomes.map { Double($0.actual) }, "predicted": outcomes.map { Double($0.predicted) }],
                args: ["classes": "4"]),
            .init(
                "log_loss",
                ["y": usable.map { Double($0.actual) }, "proba": usable.flatMap(\.probabilities)],
                args: ["classes": "4"]),
        ])
        let v1 = ["model": "mc", "version": "v1"]
        func value(_ name: String, _ extra: [String: String] = [:]) -> Double {
            h.value(series(name, v1.merging(extra) { $1 })) ?? .nan
        }
        let c = results[0]
        #expect(close(value("mlops_model_accuracy"), c.number("accuracy"), relative: exact))
        for (i, cls) in classes.enumerated() {
            #expect(close(value("mlops_model_precision", ["class": cls]), c.number("precision\(i)"), relative: exact))
            #expect(close(value("mlops_model_recall", ["class": cls]), c.number("recall\(i)"), relative: exact))
            #expect(close(value("mlops_model_f1", ["class": cls]), c.number("f1\(i)"), relative: exact))
        }
        #expect(value("mlops_model_precision", ["class": "d"]) == 0)
        #expect(close(value("mlops_model_macro_precision"), c.number("macro_precision"), relative: exact))
        #expect(close(value("mlops_model_macro_recall"), c.number("macro_recall"), relative: exact))
        #expect(close(value("mlops_model_macro_f1"), c.number("macro_f1"), relative: exact))
        #expect(close(value("mlops_model_log_loss"), results[1].number("log_loss"), relative: exact))
        #expect(value("mlops_model_probability_outcomes_total") == Double(usable.count))
        let skipped = outcomes.count { $0.actual == 4 && !$0.probabilities.isEmpty }
        #expect(value("mlops_model_probability_skipped_total") == Double(skipped))
        #expect(
            value("mlops_model_confusion_total", ["actual": "__other__", "predicted": "__other__"])
                == Double(outcomes.count { $0.actual == 4 && $0.predicted == 4 }))
        // Binary-only families are absent.
        #expect(h.value(series("mlops_model_brier_score", v1)) == nil)
        #expect(h.value(series("mlops_model_roc_auc", v1)) == nil)
    }

    @Test func regressionMatchesScikitLearn() throws {
        let h = try Harness([qualityModel("eta", task: .regression, versions: ["r1"])])
        let q = qualityCollector(h, "eta")
        var rng = SeededRandom(seed: 3)
        let now = WallClock.now()
        var actuals: [Double] = []
        var predictions: [Double] = []
        for i in 0..<2500 {
            let y = i % 20 == 0 ? 0 : 50 + 10 * rng.normal()
            let prediction = y + 2 + 5 * rng.normal()
            actuals.append(y)
            predictions.append(prediction)
            q.record(outcome: regressionOutcome(predicted: prediction, actual: y, time: now), receivedAt: now)
        }
        let r = try QualityOracle.run([.init("regression", ["y": actuals, "pred": predictions])])[0]
        let labels = ["model": "eta", "version": "r1"]
        func value(_ name: String) -> Double { h.value(series(name, labels)) ?? .nan }
        #expect(value("mlops_model_window_outcomes") == 2500)
        #expect(close(value("mlops_model_mae"), r.number("mae"), relative: exact))
        #expect(close(value("mlops_model_rmse"), r.number("rmse"), relative: exact))
        #expect(close(value("mlops_model_mape"), r.number("mape"), relative: exact))
        #expect(close(value("mlops_model_r2"), r.number("r2"), relative: exact))
        #expect(close(value("mlops_model_mean_error"), r.number("mean_error"), relative: exact))
        // Counters.
        let n = 2500.0
        #expect(value("mlops_model_regression_outcomes_total") == n)
        #expect(value("mlops_model_mape_skipped_total") == 125)
        #expect(close(value("mlops_model_absolute_error_sum_total") / n, r.number("mae"), relative: exact))
        #expect(
            close((value("mlops_model_squared_error_sum_total") / n).squareRoot(), r.number("rmse"), relative: exact))
        #expect(
            close(
                value("mlops_model_absolute_percentage_error_sum_total") / (n - 125), r.number("mape"), relative: exact)
        )
        let signed = value("mlops_model_positive_error_sum_total") - value("mlops_model_negative_error_sum_total")
        #expect(close(signed / n, r.number("mean_error"), relative: exact))
        #expect(close(value("mlops_model_cumulative_error") / n, r.number("mean_error"), relative: exact))
        let sumY = value("mlops_model_positive_actual_sum_total") - value("mlops_model_negative_actual_sum_total")
        #expect(close(sumY, actuals.reduce(0, +), relative: exact))
        #expect(close(value("mlops_model_cumulative_actual"), sumY, relative: exact))
        // R² from the raw counters, as the docs' PromQL computes it.
        let ssTot = value("mlops_model_actual_squared_sum_total") - sumY * sumY / n
        #expect(close(1 - value("mlops_model_squared_error_sum_total") / ssTot, r.number("r2"), relative: exact))
    }

    @Test func regressionWithConstantActualsFollowsScikitLearn() throws {
        let h = try Harness([qualityModel("flat", task: .regression, versions: ["p", "i", "r"])])
        let q = qualityCollector(h, "flat")
        let now = WallClock.now()
        // Version p: perfect predictions of a constant (R² 1); version i: imperfect (R² 0, force_finite).
        for x in [2.5, 2.5, 2.5] {
            q.record(outcome: regressionOutcome(predicted: x, actual: 2.5, time: now), receivedAt: now)
        }
        for x in [2.0, 3.0, 2.5] {
            q.record(outcome: regressionOutcome(predicted: x, actual: 2.5, version: 1, time: now), receivedAt: now)
        }
        // Version r: the constant 0.1, whose float64 mean is not 0.1: scikit-learn's SS_tot is then a rounding
        // residue (R² about -9e32); constancy detected exactly (min = max) gives the defined 0.
        for x in [-0.3, 0.1, 0.7] {
            q.record(outcome: regressionOutcome(predicted: x, actual: 0.1, version: 2, time: now), receivedAt: now)
        }
        let results = try QualityOracle.run([
            .init("regression", ["y": [2.5, 2.5, 2.5], "pred": [2.5, 2.5, 2.5]]),
            .init("regression", ["y": [2.5, 2.5, 2.5], "pred": [2.0, 3.0, 2.5]]),
            .init("regression", ["y": [0.1, 0.1, 0.1], "pred": [-0.3, 0.1, 0.7]]),
        ])
        #expect(h.value(series("mlops_model_r2", ["model": "flat", "version": "p"])) == results[0].number("r2"))
        #expect(h.value(series("mlops_model_r2", ["model": "flat", "version": "i"])) == results[1].number("r2"))
        #expect(results[0].number("r2") == 1 && results[1].number("r2") == 0)
        #expect(h.value(series("mlops_model_r2", ["model": "flat", "version": "r"])) == 0)
        #expect(results[2].number("r2") < -1e30)
    }

    @Test func outcomesLeaveTheWindowButStayInTheCounters() throws {
        let window = WindowConfiguration(duration: .seconds(600), slices: 10)
        let h = try Harness([
            qualityModel(
                "w", task: .binaryClassification, versions: ["v1"], classes: ["n", "p"], positive: "p",
                window: window),
            qualityModel("wr", task: .regression, versions: ["v1"], window: window),
        ])
        let q = qualityCollector(h, "w")
        let qr = qualityCollector(h, "wr")
        let now = WallClock.now()
        // Credited at the label's arrival: twenty minutes ago (first, so the ring accepts it), then now.
        let old = now - 1200
        for _ in 0..<4 {
            q.record(outcome: ClassOutcome(actual: 1, predicted: 0, score: 0.2).joined(time: old), receivedAt: old)
            qr.record(outcome: regressionOutcome(predicted: 100, actual: 1, time: old), receivedAt: old)
        }
        q.record(outcome: ClassOutcome(actual: 1, predicted: 1, score: 0.9).joined(time: now), receivedAt: now)
        q.record(outcome: ClassOutcome(actual: 0, predicted: 0, score: 0.1).joined(time: now), receivedAt: now)
        qr.record(outcome: regressionOutcome(predicted: 3, actual: 1, time: now), receivedAt: now)
        // Older than the window now: late, counted only cumulatively.
        q.record(outcome: ClassOutcome(actual: 1, predicted: 0).joined(time: now - 3600), receivedAt: now - 3600)
        qr.record(outcome: regressionOutcome(predicted: 5, actual: 1, time: now - 3600), receivedAt: now - 3600)

        let l = ["model": "w", "version": "v1"]
        #expect(h.value(series("mlops_model_window_outcomes", l)) == 2)
        #expect(h.value(series("mlops_model_accuracy", l)) == 1)
        #expect(h.value(series("mlops_model_roc_auc", l)) == 1)
        #expect(h.value(series("mlops_model_classification_outcomes_total", l)) == 7)
        #expect(h.value(series("mlops_model_correct_predictions_total", l)) == 2)
        #expect(h.value(series("mlops_model_probability_outcomes_total", l)) == 6)
        #expect(h.value(series("mlops_quality_late_outcomes_total", ["model": "w"])) == 1)
        let lr = ["model": "wr", "version": "v1"]
        #expect(h.value(series("mlops_model_window_outcomes", lr)) == 1)
        #expect(h.value(series("mlops_model_mae", lr)) == 2)
        #expect(h.value(series("mlops_model_r2", lr)) == nil)  // one outcome: undefined
        #expect(h.value(series("mlops_model_regression_outcomes_total", lr)) == 6)
        #expect(h.value(series("mlops_model_absolute_error_sum_total", lr)) == 402.0)  // 4 · 99 + 2 + 4
        #expect(h.value(series("mlops_quality_late_outcomes_total", ["model": "wr"])) == 1)
    }

    @Test func binnedAUCBoundHoldsAndIsAttained() throws {
        // Coarse bins: the bound is wide, the binned AUC stays within it of scikit-learn's exact AUC.
        let h = try Harness([
            qualityModel(
                "coarse", task: .binaryClassification, versions: ["v1"], classes: ["n", "p"], positive: "p",
                options: ["score_bins": .number(4), "calibration_bins": .number(3)])
        ])
        let q = qualityCollector(h, "coarse")
        var rng = SeededRandom(seed: 99)
        let now = WallClock.now()
        var y: [Double] = []
        var p: [Double] = []
        for _ in 0..<500 {
            let actual = Double.random(in: 0..<1, using: &rng) < 0.4 ? 1 : 0
            let s = 1 / (1 + exp(-(Double(actual) * 2 - 1 + rng.normal())))
            y.append(Double(actual))
            p.append(s)
            q.record(
                outcome: ClassOutcome(actual: actual, predicted: s >= 0.5 ? 1 : 0, score: s).joined(time: now),
                receivedAt: now)
        }
        let b = try QualityOracle.run([.init("binary", ["y": y, "p": p], args: ["calibration_bins": "3"])])[0]
        let l = ["model": "coarse", "version": "v1"]
        let auc = h.value(series("mlops_model_roc_auc", l))!
        let bound = h.value(series("mlops_model_roc_auc_error_bound", l))!
        #expect(bound > 0.05)
        #expect(abs(auc - b.number("roc_auc")) <= bound)
        #expect(close(h.value(series("mlops_model_expected_calibration_error", l))!, b.number("ece"), relative: exact))

        // All scores in one bin, perfectly separated: binned 1/2, exact 1, bound 1/2 (attained).
        let (binned, worst) = try #require(ProbabilityBins.rocAUC(positives: [0, 3, 0], negatives: [0, 5, 0]))
        #expect(binned == 0.5 && worst == 0.5)
        // One shared bin (1 positive, 1 negative): only that pair is uncertain, bound 1 / (2 · 3 · 4).
        let (mixed, bound1) = try #require(ProbabilityBins.rocAUC(positives: [0, 1, 2], negatives: [3, 1, 0]))
        let expected: Double = (3.5 + 2 * 4) / 12
        #expect(mixed == expected)
        #expect(bound1 == 1.0 / 24)
        #expect(ProbabilityBins.rocAUC(positives: [1, 2], negatives: [0, 0]) == nil)
        #expect(ProbabilityBins.index(1, bins: 10) == 9 && ProbabilityBins.index(0, bins: 10) == 0)
        // Edges belong to the bin below, as in sklearn's calibration_curve.
        #expect(ProbabilityBins.index(0.1, bins: 10) == 0 && ProbabilityBins.index(0.1.nextUp, bins: 10) == 1)
        #expect(ProbabilityBins.index(0.3, bins: 10) == 2 && ProbabilityBins.index(0.7, bins: 10) == 6)
    }

    /// The bins' label sets are made only for the series exported: every version's were made for every calibration
    /// and score bin whatever `bin_series` and `score_bin_series` said (a 5 KiB version with `score_bins: 100000`
    /// took 1.7 GB to check).
    @Test func binLabelSetsOnlyForTheSeriesExported() throws {
        let off = qualityModel(
            "b", task: .binaryClassification, classes: ["n", "p"], positive: "p",
            options: ["score_bins": .number(1000), "bin_series": .bool(false)])
        let on = qualityModel(
            "c", task: .binaryClassification, classes: ["n", "p"], positive: "p",
            options: ["score_bins": .number(1000), "score_bin_series": .bool(true)])
        let h = try Harness([off, on])
        let quiet = qualityCollector(h, "b")
        #expect(
            quiet.labels.allSatisfy { $0.scorePositive.isEmpty && $0.scoreNegative.isEmpty && $0.calibration.isEmpty })
        let exported = qualityCollector(h, "c")
        #expect(exported.labels.allSatisfy { $0.scorePositive.count == 1000 && $0.scoreNegative.count == 1000 })
        #expect(exported.labels.allSatisfy { !$0.calibration.isEmpty })
    }

    @Test func maxSeriesIsTheSeriesEmittedWhenEverythingIsPresent() throws {
        let names = Set(QualityCollector.schema.descriptors.map(\.name))
        func qualitySamples(_ h: Harness) -> Int {
            h.samples().count { line in
                let name = String(line.prefix { $0 != "{" && $0 != " " })
                return names.contains(name) || (name.hasSuffix("_total") && names.contains(String(name.dropLast(6))))
            }
        }
        let binary = qualityModel(
            "b", task: .binaryClassification, classes: ["n", "p"], positive: "p",
            options: ["score_bins": .number(20), "score_bin_series": .bool(true)])
        let regression = qualityModel("r", task: .regression)
        let multiclass = qualityModel("m", task: .multiclassClassification, classes: ["a", "b", "c"])
        for config in [binary, regression, multiclass] {
            let h = try Harness([config])
            let q = qualityCollector(h, config.name)
            let now = WallClock.now()
            for v in 0..<3 {  // v1, v2, __other__
                for a in 0..<2 {
                    let outcome =
                        config.task == .regression
                        ? regressionOutcome(predicted: Double(a) + 0.5, actual: Double(a) + 1, version: v, time: now)
                        : ClassOutcome(
                            actual: a, predicted: 1 - a, probabilities: config.classes.map { _ in 0.3 }
                        ).joined(version: v, time: now)
                    q.record(outcome: outcome, receivedAt: now)
                }
            }
            #expect(qualitySamples(h) == q.maxSeries, "\(config.name)")
        }
    }

    @Test func concurrentRecordingLosesNothing() throws {
        let h = try Harness([
            qualityModel("c", task: .binaryClassification, versions: ["v1"], classes: ["n", "p"], positive: "p")
        ])
        let q = qualityCollector(h, "c")
        let now = WallClock.now()
        let outcome = ClassOutcome(actual: 1, predicted: 1, score: 0.75).joined(time: now)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<5000 { q.record(outcome: outcome, receivedAt: now) }
        }
        let l = ["model": "c", "version": "v1"]
        #expect(
            h.value(series("mlops_model_confusion_total", l.merging(["actual": "p", "predicted": "p"]) { $1 })) == 40000
        )
        #expect(h.value(series("mlops_model_window_outcomes", l)) == 40000)
        #expect(h.value(series("mlops_model_brier_score_sum_total", l)) == 40000 * 0.0625)  // exact in binary
        #expect(h.value(series("mlops_model_brier_score", l)) == 0.0625)
        #expect(h.value(series("mlops_model_calibration_bin_positives_total", l.merging(["bin": "8"]) { $1 })) == 40000)
    }

    /// Options that only choose the series exported (`bin_series`, `score_bin_series`) carry the window and totals on
    /// across a reload or a restart; changed bins start them empty (before, any option change emptied the collector:
    /// storage review).
    @Test func exportTogglesCarryTheStateOnAndBinsDoNot() throws {
        func collector(_ options: [String: ConfigValue]) throws -> QualityCollector {
            let config = qualityModel(
                "b", task: .binaryClassification, classes: ["n", "p"], positive: "p", options: options)
            return try QualityCollector(
                model: try ModelContext(configuration: config),
                options: CollectorOptions(config.collectors[0].options, model: config.name, collector: "quality"))
        }
        let old = try collector([:])
        old.record(
            outcome: ClassOutcome(actual: 1, predicted: 1, score: 0.9).joined(time: WallClock.now()),
            receivedAt: WallClock.now())
        let toggled = try collector(["bin_series": .bool(false), "score_bin_series": .bool(true)])
        let carried = try #require(toggled.carryingState(of: old) as? QualityCollector)
        func state(_ c: QualityCollector) -> [UInt8] {
            var w = StateWriter()
            c.saveState(into: &w)
            return w.bytes
        }
        #expect(state(carried) == state(old))
        #expect(state(toggled) != state(old))
        #expect(try collector(["calibration_bins": .number(5)]).carryingState(of: old) == nil)
        #expect(try collector(["score_bins": .number(100)]).carryingState(of: old) == nil)
    }

    @Test func optionsAreValidatedByName() throws {
        func failure(_ config: ModelConfiguration) throws -> ModelCollectorError? {
            let context = try ModelContext(configuration: config)
            do {
                _ = try QualityCollector(
                    model: context,
                    options: CollectorOptions(config.collectors[0].options, model: config.name, collector: "quality"))
                return nil
            } catch {
                return error
            }
        }
        let binary = { (options: [String: ConfigValue]) in
            qualityModel("b", task: .binaryClassification, classes: ["n", "p"], positive: "p", options: options)
        }
        #expect(try failure(binary(["calibration_bin": .number(5)]))?.option == "calibration_bin")
        #expect(try failure(binary(["calibration_bins": .number(0)]))?.option == "calibration_bins")
        #expect(try failure(binary(["score_bins": .number(1.5)]))?.option == "score_bins")
        #expect(try failure(binary(["score_bin_series": .string("yes")]))?.option == "score_bin_series")
        #expect(try failure(binary(["calibration_bins": .number(20), "bin_series": .bool(false)])) == nil)
        let regression = qualityModel("r", task: .regression, options: ["score_bins": .number(10)])
        let error = try #require(try failure(regression))
        #expect(error.option == "score_bins")
        #expect(error.description.contains("only binary classification"))
        // Through the monitor, as a configuration load: the option is named, and a series budget the bins
        // would exceed is refused with the count.
        let monitor = ModelMonitor(catalog: .builtIn)
        let typo = qualityModel("t", task: .regression, options: ["bogus": .bool(true)])
        let setup = #expect(throws: ModelSetupErrors.self) {
            _ = try monitor.prepare(ExporterConfiguration(models: [typo], source: "test"))
        }
        #expect(setup?.description.contains(#"collector "quality": option bogus: unknown option"#) == true)
        let big = binary(["score_bins": .number(10000), "score_bin_series": .bool(true)])
        let budget = #expect(throws: ModelSetupErrors.self) {
            _ = try monitor.prepare(ExporterConfiguration(models: [big], source: "test"))
        }
        #expect(budget?.description.contains("may create up to 60184 series, more than the 10000 left") == true)
        // 10,000 classes would make a K² window of 19 GB: refused by the series budget before it is allocated.
        let classes = (0..<10_000).map { "c\($0)" }
        let huge = qualityModel("m", task: .multiclassClassification, classes: classes, options: [:])
        let refused = #expect(throws: ModelSetupErrors.self) {
            _ = try monitor.prepare(ExporterConfiguration(models: [huge], source: "test"))
        }
        #expect(refused?.description.contains("series, more than the 10000 left of the model's max_series") == true)
        #expect(QualityCollector.needsOutcomes)
        #expect(CollectorCatalog.builtIn.names.contains("quality"))
        #expect(ConfigLoader.builtInCollectors.contains("quality"))
    }
}
