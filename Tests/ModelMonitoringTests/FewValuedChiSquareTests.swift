import ExporterConfig
import ModelMonitoring
import Testing

/// `method: auto` picks `chisquare` for a numeric column of 3 to 5 distinct values (Evidently's rule), and Evidently
/// counts such a column per value. The collector ran the test on the reference's quantile bins, which merge values:
/// a shift between two values of one bin went unseen (p 0.11 where Evidently gives p ≈ 0; adversarial review of
/// drift).
@Suite struct FewValuedChiSquareTests {
    /// Reference: 1 × 225, 2 × 50, 3 × 225. Its quantile edges are [2]: one bin `[1, 2]` holds both 1 and 2.
    static let reference =
        [Double](repeating: 1, count: 225) + [Double](repeating: 2, count: 50)
        + [Double](repeating: 3, count: 225)
    /// Current: the share of 2 quadruples at the expense of 1; the bin `[1, 2]` barely moves (55% → 60%).
    static let current =
        [Double](repeating: 1, count: 50) + [Double](repeating: 2, count: 100)
        + [Double](repeating: 3, count: 100)

    /// A regression model whose numeric feature `x` has the profile `ProfileBuilder` builds from `reference` (passed
    /// through `edit`).
    func harness(
        reference: [Double], options: [String: ConfigValue], edit: (inout NumericProfile) -> Void = { _ in }
    ) throws -> (Harness, MonitoredModel) {
        let config = ModelConfiguration(
            name: "r", task: .regression, versions: ["v1"], features: [FeatureConfiguration(name: "x", kind: .numeric)],
            reference: "ref.json", collectors: [CollectorConfiguration(name: "drift", options: options)])
        var numeric = ProfileBuilder.numeric(reference, bins: 10, fineBins: 1000)
        edit(&numeric)
        let profile = ReferenceProfile(
            model: "r", rows: reference.count, inputSHA256: "",
            features: [ColumnProfile(name: "x", missing: 0, numeric: numeric)])
        let h = try Harness(
            monitor: ModelMonitor(), [config], references: ["ref.json": LoadedReference(profile: profile, sha256: "")])
        return (h, h.model("r"))
    }

    @Test(arguments: ["auto", "chisquare"])
    func aNumericColumnOfFewValuesIsCountedPerValue(method: String) throws {
        #expect(ProfileBuilder.numeric(Self.reference, bins: 10, fineBins: 1000).edges == [2])
        let (h, m) = try harness(
            reference: Self.reference, options: ["method": .string(method), "min_observations": .number(1)])
        for x in Self.current { m.record(version: "v1", prediction: .number(1), features: ["x": .number(x)]) }
        let labels = #"{feature="x",method="chisquare",model="r"}"#
        let p = try #require(h.value("mlops_feature_drift_p_value" + labels), "\(h.samples())")
        let statistic = try #require(h.value("mlops_feature_drift_statistic" + labels))
        // Evidently's chisquare on the raw numeric samples (and its choice of test), and scipy on the counts per value.
        let oracle = try DriftOracle.run([
            DriftOracle.Operation("chisquare_values", a: Self.reference, b: Self.current)
        ])[0]
        #expect(oracle["auto"] == "chisquare", "\(oracle)")
        #expect(close(p, oracle.number("p"), relative: 1e-9, absolute: 1e-300), "p \(p) vs \(oracle)")
        #expect(close(statistic, oracle.number("scipy_stat"), relative: 1e-12), "χ² \(statistic) vs \(oracle)")
        #expect(oracle["drift"] == "True")
        #expect(h.value("mlops_feature_drift_detected" + labels) == 1)
    }

    /// A value the reference never had (4) is a category of its own for Evidently, expected 0 times: χ² is infinite,
    /// p 0.
    @Test func aValueOutsideTheReferenceIsANewCategory() throws {
        let (h, m) = try harness(
            reference: Self.reference, options: ["method": .string("auto"), "min_observations": .number(1)])
        let current = Self.reference.prefix(99) + [4]
        for x in current { m.record(version: "v1", prediction: .number(1), features: ["x": .number(x)]) }
        let oracle = try DriftOracle.run([
            DriftOracle.Operation("chisquare_values", a: Self.reference, b: Array(current))
        ])[0]
        let labels = #"{feature="x",method="chisquare",model="r"}"#
        #expect(h.value("mlops_feature_drift_p_value" + labels) == oracle.number("p"), "\(oracle)")
        #expect(h.value("mlops_feature_drift_statistic" + labels) == .infinity)
    }

    /// A profile written before profiles listed values cannot count them: chi-square over a column that may have few
    /// values (few non-empty fine bins) is refused at start, naming the column and the fix; other methods, and
    /// chi-square over a column of many values (its quantile bins, as before), still run on such a profile.
    @Test func anOldProfileIsRefusedOnlyWhereChiSquareWouldMergeValues() throws {
        func old(_ p: inout NumericProfile) {
            p.distinct = nil
            p.values = nil
            p.valueCounts = nil
        }
        for method in ["auto", "chisquare"] {
            let error = #expect(throws: ModelSetupErrors.self) {
                try harness(reference: Self.reference, options: ["method": .string(method)], edit: old)
            }
            #expect(
                error?.description.contains(
                    "column x: chisquare compares a numeric column of at most 5 distinct values value by value (as "
                        + "Evidently), and the reference profile does not list this column's values (it predates "
                        + "them): rebuild it with mlops-exporter profile") == true,
                "\(error?.description ?? "")")
        }
        #expect(throws: Never.self) {
            try harness(reference: Self.reference, options: ["method": .string("psi")], edit: old)
        }
        let many = (0..<500).map { Double($0 % 50) }
        let (h, m) = try harness(
            reference: many, options: ["method": .string("chisquare"), "min_observations": .number(1)], edit: old)
        for x in many.prefix(100) { m.record(version: "v1", prediction: .number(1), features: ["x": .number(x)]) }
        #expect(h.value(#"mlops_feature_drift_p_value{feature="x",method="chisquare",model="r"}"#) != nil)
    }
}
