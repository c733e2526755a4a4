import ExporterConfig
import Exposition
import Ingestion
import ModelMonitoring
import Testing

/// A model with a numeric feature `x` (reference bins underflow, [0,2], (2,5], (5,8], (8,10], overflow) and a
/// categorical feature `c` (a, b, __other__), with a hand-made reference profile.
func driftHarness(
    options: [String: ConfigValue] = [:], window: WindowConfiguration = WindowConfiguration(), withScore: Bool = false
)
    throws -> (Harness, MonitoredModel)
{
    let config = ModelConfiguration(
        name: "m", task: .binaryClassification, versions: ["v1"], classes: ["no", "yes"], positiveClass: "yes",
        features: [
            FeatureConfiguration(name: "x", kind: .numeric),
            FeatureConfiguration(name: "c", kind: .categorical, values: ["a", "b"]),
        ],
        reference: "ref.json", window: window,
        collectors: [CollectorConfiguration(name: "drift", options: options)])
    let profile = ReferenceProfile(
        model: "m", rows: 100, inputSHA256: "",
        features: [
            ColumnProfile(
                name: "x", missing: 0,
                numeric: NumericProfile(
                    count: 100, mean: 5, std: 2.5, min: 0, max: 10, edges: [2, 5, 8], counts: [0, 20, 30, 30, 20, 0],
                    fine: [10, 10, 10, 10, 10, 10, 10, 10, 10, 10])),
            ColumnProfile(
                name: "c", missing: 0, categorical: CategoricalProfile(values: ["a", "b"], counts: [50, 40, 10])),
        ],
        prediction: ColumnProfile(
            name: "prediction", missing: 0,
            categorical: CategoricalProfile(values: ["no", "yes"], counts: [70, 30, 0])),
        score: withScore
            ? ColumnProfile(
                name: "score", missing: 0,
                numeric: NumericProfile(
                    count: 100, mean: 0.5, std: 0.25, min: 0, max: 1, edges: [0.25, 0.5, 0.75],
                    counts: [0, 25, 25, 25, 25, 0], fine: [10, 10, 10, 10, 10, 10, 10, 10, 10, 10])) : nil)
    let monitor = ModelMonitor()
    let h = try Harness(
        monitor: monitor, [config], references: ["ref.json": LoadedReference(profile: profile, sha256: "abc")])
    return (h, h.model("m"))
}

@Suite struct DriftCollectorTests {
    /// The z test's `x = 0` is the first category in sorted order, as Evidently's; `__other__`, values not known by
    /// name, sorts last: Evidently sorts the values themselves, and a known one seen comes first unless an unknown one
    /// happens to sort before it. (Before, `__other__` sorted first by its `_`: one unknown value in a window made the
    /// test measure the share of unknown values, and hid a fall of `a`.)
    @Test func theZTestTakesCategoriesInSortedOrder() throws {
        let (h, m) = try driftHarness(options: [
            "features": .map(["c": .map(["method": .string("z")])]), "min_observations": .number(5),
        ])
        let cs = ["a", "a", "a", "b", "b", "zzz", "zzz", "zzz", "zzz", "zzz"]
        for c in cs {
            #expect(m.record(version: "v1", prediction: .label("no"), features: ["c": .category(c)]) == nil)
        }
        // Sorted: a (50 in the reference, 3 now), b (40, 2), __other__ (10, 5).
        let z = DriftStatistics.zTest(reference: [50, 40, 10], current: [3, 2, 5])
        #expect(h.value(#"mlops_feature_drift_score{feature="c",method="z",model="m"}"#) == z.score)
        // What `__other__` first tested instead: another proportion, another p.
        #expect(abs(z.score - DriftStatistics.zTest(reference: [10, 50, 40], current: [5, 3, 2]).score) > 0.1)
        // Evidently on the same samples, with the values the exporter counts as __other__ under names of their own that
        // sort after `a`, as real ones may (`other` in the reference, `zzz` now).
        func labels(_ counts: [(String, Int)]) -> String {
            counts.flatMap { Array(repeating: $0.0, count: $0.1) }.joined(separator: ",")
        }
        let evidently = try DriftOracle.run([
            DriftOracle.Operation(
                "evidently_z_labels",
                args: [
                    "reference": labels([("a", 50), ("b", 40), ("other", 10)]),
                    "current": labels([("a", 3), ("b", 2), ("zzz", 5)]),
                ])
        ])
        let p = try #require(h.value(#"mlops_feature_drift_score{feature="c",method="z",model="m"}"#))
        #expect(abs(p - evidently[0].number("z")) < 1e-9, "\(evidently)")
    }

    @Test func windowCountsBinsAndScoresFollowTheReferenceBins() throws {
        let (h, m) = try driftHarness(options: [
            "features": .map(["x": .map(["method": .string("psi")]), "c": .map(["method": .string("chisquare")])]),
            "min_observations": .number(5),
        ])
        let xs: [Double?] = [-1, 0, 2, 2.5, 5, 9, 10, 11, nil]
        let cs: [String?] = ["a", "b", "zzz", nil, "a", "a", "a", "b", "b"]
        for (x, c) in zip(xs, cs) {
            var features: [String: FeatureValue] = [:]
            if let x { features["x"] = .number(x) }
            if let c { features["c"] = .category(c) }
            #expect(m.record(version: "v1", prediction: .label(x == nil ? "yes" : "no"), features: features) == nil)
        }
        // x: underflow 1 (-1), [0,2] 2 (0, 2), (2,5] 2 (2.5, 5), (5,8] 0, (8,10] 2 (9, 10), overflow 1 (11).
        let expectedX: [Double] = [1, 2, 2, 0, 2, 1]
        for (bin, n) in zip(["underflow", "1", "2", "3", "4", "overflow"], expectedX) {
            #expect(h.value(#"mlops_feature_bin_observations_total{bin="\#(bin)",feature="x",model="m"}"#) == n)
        }
        #expect(h.value(#"mlops_feature_reference_ratio{bin="2",feature="x",model="m"}"#) == 0.3)
        #expect(h.value(#"mlops_feature_window_observations{feature="x",model="m"}"#) == 8)
        #expect(h.value(#"mlops_feature_window_missing{feature="x",model="m"}"#) == 1)
        #expect(h.value(#"mlops_feature_missing_total{feature="x",model="m"}"#) == 1)
        let psi = DriftStatistics.psi(reference: [0, 20, 30, 30, 20, 0], current: expectedX)
        #expect(h.value(#"mlops_feature_drift_score{feature="x",method="psi",model="m"}"#) == psi.score)
        #expect(h.value(#"mlops_feature_drift_threshold{feature="x",method="psi",model="m"}"#) == 0.1)
        #expect(h.value(#"mlops_feature_drift_detected{feature="x",method="psi",model="m"}"#) == 1)
        // c: a 4, b 3, __other__ 1 ("zzz"), missing 1.
        let chi = DriftStatistics.chiSquare(reference: [50, 40, 10], current: [4, 3, 1])
        #expect(h.value(#"mlops_feature_drift_score{feature="c",method="chisquare",model="m"}"#) == chi.pValue)
        #expect(h.value(#"mlops_feature_drift_p_value{feature="c",method="chisquare",model="m"}"#) == chi.pValue)
        #expect(h.value(#"mlops_feature_drift_statistic{feature="c",method="chisquare",model="m"}"#) == chi.statistic)
        #expect(h.value(#"mlops_feature_bin_observations_total{bin="__other__",feature="c",model="m"}"#) == 1)
        // Prediction drift: 8 "no", 1 "yes"; auto with two classes and 100 reference rows is the z test.
        let z = DriftStatistics.zTest(reference: [70, 30, 0], current: [8, 1, 0])
        #expect(h.value(#"mlops_prediction_drift_score{method="z",model="m",output="prediction"}"#) == z.score)
        // Two feature verdicts: x drifted (psi, asserted above), c by its chi-square p-value.
        let cDrifted = DriftMethod.chiSquare.isDrift(score: chi.score, threshold: 0.05)
        #expect(h.value(#"mlops_dataset_drift_share{model="m"}"#) == (cDrifted ? 1 : 0.5))
    }

    @Test func onlyKSAndWassersteinColumnsKeepFineCounts() throws {
        func slots(_ options: [String: ConfigValue]) throws -> Int {
            let (_, m) = try driftHarness(options: options)
            return try #require(m.collectors.compactMap { $0 as? DriftCollector }.first).windowSlotsPerSlice
        }
        // x: 6 bins + 5 (+ 10 fine counts in this profile for ks / wasserstein); c: 2 values + other + missing;
        // prediction: no, yes, other + missing.
        #expect(try slots([:]) == 21 + 4 + 4)  // auto: ks for x (100 reference rows)
        #expect(
            try slots(["method": .string("wasserstein"), "features": .map(["c": .map(["method": .string("psi")])])])
                == 21 + 4 + 4)
        for method in ["psi", "kl_div", "jensenshannon", "chisquare"] {
            #expect(try slots(["method": .string(method)]) == 11 + 4 + 4, "\(method)")
        }
    }

    @Test func noVerdictBelowMinObservationsAndNoScoreWhenEmpty() throws {
        let (h, m) = try driftHarness()
        #expect(h.value(#"mlops_feature_window_observations{feature="x",model="m"}"#) == 0)
        #expect(!h.samples().contains { $0.hasPrefix("mlops_feature_drift_score") })
        m.record(version: "v1", prediction: .label("no"), features: ["x": .number(3)])
        #expect(h.samples().contains { $0.hasPrefix("mlops_feature_drift_score{feature=\"x\"") })
        #expect(!h.samples().contains { $0.hasPrefix("mlops_feature_drift_detected") })
        #expect(!h.samples().contains { $0.hasPrefix("mlops_dataset_drift_share") })
    }

    @Test func autoFollowsEvidentlysRuleFromTheReference() throws {
        // 100 reference rows (<= 1000): numeric with more than 5 distinct values -> ks; categorical with 3 -> chisquare.
        let (h, m) = try driftHarness()
        m.record(version: "v1", prediction: .label("no"), features: ["x": .number(3), "c": .category("a")])
        #expect(
            h.samples().contains {
                $0.hasPrefix(#"mlops_feature_drift_threshold{feature="x",method="ks",model="m"} 0.05"#)
            })
        #expect(
            h.samples().contains {
                $0.hasPrefix(#"mlops_feature_drift_threshold{feature="c",method="chisquare",model="m"} 0.05"#)
            })
    }

    /// A categorical column (a feature, a multiclass prediction) with more than two configured values that the
    /// reference shows two or fewer of (a class it never predicted): `auto` counts the values a window can hold, so
    /// it picks chi-square. Before, it counted the reference's alone and picked the z test, which refuses such a
    /// column: the configuration could not load at all (serve, check-config, batch).
    @Test func autoNeverPicksTheZTestForMoreThanTwoConfiguredValues() throws {
        let config = ModelConfiguration(
            name: "mc", task: .multiclassClassification, versions: ["v1"], classes: ["a", "b", "c"],
            features: [FeatureConfiguration(name: "country", kind: .categorical, values: ["US", "DE", "FR"])],
            reference: "ref.json", collectors: [CollectorConfiguration(name: "drift", options: [:])])
        let profile = ReferenceProfile(
            model: "mc", rows: 200, inputSHA256: "",
            features: [
                ColumnProfile(
                    name: "country", missing: 0,
                    categorical: CategoricalProfile(values: ["US", "DE", "FR"], counts: [120, 80, 0, 0]))
            ],
            prediction: ColumnProfile(
                name: "prediction", missing: 0,
                categorical: CategoricalProfile(values: ["a", "b", "c"], counts: [110, 90, 0, 0])))
        let h = try Harness(
            monitor: ModelMonitor(), [config],
            references: ["ref.json": LoadedReference(profile: profile, sha256: "abc")])
        h.model("mc").record(version: "v1", prediction: .label("c"), features: ["country": .category("FR")])
        #expect(h.value(#"mlops_feature_drift_score{feature="country",method="chisquare",model="mc"}"#) != nil)
        #expect(h.value(#"mlops_prediction_drift_score{method="chisquare",model="mc",output="prediction"}"#) != nil)
    }

    /// The model-wide `method` applies to the features it can score; the others take `auto` (a model-wide ks refused
    /// every model with a categorical feature, z every model with a numeric one).
    @Test func theModelWideMethodAppliesWhereItFits() throws {
        let (h, m) = try driftHarness(options: ["method": .string("ks")])
        m.record(version: "v1", prediction: .label("no"), features: ["x": .number(3), "c": .category("a")])
        #expect(h.samples().contains { $0.hasPrefix(#"mlops_feature_drift_threshold{feature="x",method="ks""#) })
        #expect(
            h.samples().contains { $0.hasPrefix(#"mlops_feature_drift_threshold{feature="c",method="chisquare""#) })
        let (z, _) = try driftHarness(options: ["method": .string("z")])
        #expect(z.samples().contains { $0.hasPrefix(#"mlops_feature_drift_threshold{feature="c",method="z""#) })
        #expect(z.samples().contains { $0.hasPrefix(#"mlops_feature_drift_threshold{feature="x",method="ks""#) })
    }

    /// A binary classifier's event with `probabilities` and no `score` feeds the score output its positive class's
    /// probability, as quality reads it (the output had no observations and no score, nothing said why).
    @Test func probabilitiesFeedTheScoreOutput() throws {
        let (h, m) = try driftHarness(withScore: true)
        for p in [0.1, 0.6, 0.9] {
            m.record(version: "v1", prediction: .label("no"), features: ["x": .number(3)], probabilities: [1 - p, p])
        }
        m.record(version: "v1", prediction: .label("no"), features: ["x": .number(3)], score: 0.3)
        m.record(version: "v1", prediction: .label("no"), features: ["x": .number(3)])
        #expect(h.value(#"mlops_prediction_window_observations{model="m",output="score"}"#) == 4)
    }

    @Test func eventsOlderThanTheWindowAreCountedNotBinned() throws {
        let (h, m) = try driftHarness(window: WindowConfiguration(duration: .seconds(60), slices: 6))
        let now = WallClock.now()
        m.record(version: "v1", prediction: .label("no"), features: ["x": .number(3)], receivedAt: now)
        m.record(version: "v1", prediction: .label("no"), features: ["x": .number(3)], receivedAt: now - 3600)
        #expect(h.value(#"mlops_drift_late_events_total{model="m"}"#) == 1)
        #expect(h.value(#"mlops_feature_window_observations{feature="x",model="m"}"#) == 1)
    }

    @Test func optionsAreValidated() throws {
        for (options, fragment) in [
            (["features": ConfigValue.map(["nope": .map(["method": .string("psi")])])], "features.nope: not a feature"),
            (["features": .map(["c": .map(["method": .string("ks")])])], "column c: ks needs a numeric column"),
            (["features": .map(["x": .map(["method": .string("z")])])], "column x: z needs a categorical column"),
            (["method": .string("hellinger")], "option method: unknown method \"hellinger\""),
            (["thresholds": .map(["psi": .number(-1)])], "option thresholds.psi: must be a finite number >= 0"),
            // A p-value threshold above 1 called every column drifted (accepted before).
            (["thresholds": .map(["ks": .number(3)])], "option thresholds.ks: ks scores a p-value"),
            (
                ["features": .map(["x": .map(["method": .string("ks"), "threshold": .number(1.5)])])],
                "features.x.threshold: ks scores a p-value"
            ),
            (
                ["features": .map(["c": .map(["threshold": .number(2)])])],
                "column c: chisquare scores a p-value, so its threshold must lie in [0, 1]"
            ),
            (["drift_share": .number(0)], "option drift_share: must lie in (0, 1]"),
            (["colour": .string("red")], "option colour: unknown option"),
        ] {
            let error = #expect(throws: ModelSetupErrors.self) { try driftHarness(options: options) }
            #expect(error?.description.contains(fragment) == true, "\(error?.description ?? "") lacks \(fragment)")
        }
    }
}

@Suite struct DriftEdgeCaseTests {
    /// A model whose reference has a constant numeric feature, an all-missing numeric feature and a categorical
    /// feature with a single value.
    func harness() throws -> (Harness, MonitoredModel) {
        let config = ModelConfiguration(
            name: "e", task: .regression, versions: ["v1"],
            features: [
                FeatureConfiguration(name: "constant", kind: .numeric),
                FeatureConfiguration(name: "empty", kind: .numeric),
                FeatureConfiguration(name: "single", kind: .categorical, values: ["only"]),
            ],
            reference: "ref.json",
            collectors: [
                CollectorConfiguration(
                    name: "drift",
                    options: [
                        "min_observations": .number(1),
                        "features": .map([
                            "constant": .map(["method": .string("wasserstein")]),
                            "empty": .map(["method": .string("psi")]),
                        ]),
                    ])
            ])
        let profile = ReferenceProfile(
            model: "e", rows: 50, inputSHA256: "",
            features: [
                ColumnProfile(
                    name: "constant", missing: 0,
                    numeric: NumericProfile(
                        count: 50, mean: 3, std: 0, min: 3, max: 3, edges: [], counts: [0, 50, 0],
                        fine: [50] + Array(repeating: 0, count: 9))),
                ColumnProfile(
                    name: "empty", missing: 50,
                    numeric: NumericProfile(
                        count: 0, mean: 0, std: 0, min: 0, max: 0, edges: [], counts: [0, 0, 0],
                        fine: Array(repeating: 0, count: 10))),
                ColumnProfile(
                    name: "single", missing: 0, categorical: CategoricalProfile(values: ["only"], counts: [50, 0])),
            ])
        let h = try Harness(
            monitor: ModelMonitor(), [config], references: ["ref.json": LoadedReference(profile: profile, sha256: "")])
        return (h, h.model("e"))
    }

    @Test func constantFeatureStdZeroUsesTheFloorAndSeesAShift() throws {
        let (h, m) = try harness()
        for _ in 0..<10 { m.record(version: "v1", prediction: .number(1), features: ["constant": .number(3)]) }
        #expect(h.value(#"mlops_feature_drift_score{feature="constant",method="wasserstein",model="e"}"#) == 0)
        m.record(version: "v1", prediction: .number(1), features: ["constant": .number(4)])
        // Wasserstein = 1/11 (one value moved by 1), normalised by max(std, 0.001) = 0.001.
        let score = try #require(
            h.value(#"mlops_feature_drift_score{feature="constant",method="wasserstein",model="e"}"#))
        #expect(abs(score - (1.0 / 11) / 0.001) < 1e-9)
        #expect(h.value(#"mlops_feature_drift_detected{feature="constant",method="wasserstein",model="e"}"#) == 1)
    }

    @Test func allMissingReferenceGivesNoScoreAndNoCrash() throws {
        let (h, m) = try harness()
        m.record(version: "v1", prediction: .number(1), features: ["empty": .number(1), "single": .category("only")])
        m.record(version: "v1", prediction: .number(1))
        #expect(h.value(#"mlops_feature_window_observations{feature="empty",model="e"}"#) == 1)
        #expect(h.value(#"mlops_feature_window_missing{feature="empty",model="e"}"#) == 1)
        #expect(h.value(#"mlops_feature_drift_score{feature="empty",method="psi",model="e"}"#) == nil)
        #expect(h.value(#"mlops_feature_drift_detected{feature="empty",method="psi",model="e"}"#) == nil)
    }

    @Test func singleCategoryHasNoDriftUntilSomethingElseArrives() throws {
        let (h, m) = try harness()
        for _ in 0..<5 { m.record(version: "v1", prediction: .number(1), features: ["single": .category("only")]) }
        let labels = #"{feature="single",method="z",model="e"}"#  // auto: one category and 50 rows -> z
        #expect(h.value("mlops_feature_drift_detected" + labels) == 0)
        m.record(version: "v1", prediction: .number(1), features: ["single": .category("new")])
        #expect(h.value("mlops_feature_drift_detected" + labels) == 1)
        #expect(h.value(#"mlops_feature_bin_observations_total{bin="__other__",feature="single",model="e"}"#) == 1)
    }
}

/// Reference ranges the fine bins cannot scale: `(x - min) · (fine.count / (max - min))` was NaN or infinite, and
/// converting it to `Int` trapped on the first event.
@Suite struct DriftFineBinRangeTests {
    /// A regression model whose numeric feature `x` has the reference range `min...max` (all 4 reference values in
    /// fine bin 0), compared by `method`.
    func harness(min: Double, max: Double, method: String) throws -> (Harness, MonitoredModel) {
        let config = ModelConfiguration(
            name: "r", task: .regression, versions: ["v1"], features: [FeatureConfiguration(name: "x", kind: .numeric)],
            reference: "ref.json",
            collectors: [
                CollectorConfiguration(
                    name: "drift",
                    options: [
                        "features": .map(["x": .map(["method": .string(method)])]), "min_observations": .number(1),
                    ])
            ])
        let profile = ReferenceProfile(
            model: "r", rows: 4, inputSHA256: "",
            features: [
                ColumnProfile(
                    name: "x", missing: 0,
                    numeric: NumericProfile(
                        count: 4, mean: 0, std: 1, min: min, max: max, edges: [], counts: [0, 4, 0],
                        fine: [4, 0, 0, 0, 0, 0, 0, 0, 0, 0]))
            ])
        let h = try Harness(
            monitor: ModelMonitor(), [config],
            references: ["ref.json": LoadedReference(profile: profile, sha256: "abc")])
        return (h, h.model("r"))
    }

    @Test(
        "a range wider than Double's (max - min overflows) or narrower than its precision bins every value",
        arguments: [
            (-1e308, 1e308, "ks"), (-1e308, 1e308, "wasserstein"), (0, Double.leastNormalMagnitude, "ks"),
            (-Double.greatestFiniteMagnitude, Double.greatestFiniteMagnitude, "ks"),
        ])
    func unscalableRanges(min: Double, max: Double, method: String) throws {
        let (h, m) = try harness(min: min, max: max, method: method)
        for x in [min, max, min / 2 + max / 2, 1e308, -1e308, 0, Double.leastNonzeroMagnitude] {
            #expect(m.record(version: "v1", prediction: .number(1), features: ["x": .number(x)]) == nil)
        }
        #expect(h.value(#"mlops_feature_window_observations{feature="x",model="r"}"#) == 7)
        // KS reads only the fine counts; Wasserstein's distance over such a range is not a number (and not emitted).
        if method == "ks" { #expect(h.value(#"mlops_feature_drift_score{feature="x",method="ks",model="r"}"#) != nil) }
    }
}
