import ExporterConfig
import ModelMonitoring
import Testing

/// The live path bins a value into the fine histogram with the profile's own function. On a reference range
/// narrower than a fine bin's precision (values a few ulps apart near 1e9, subnormals) the collector's
/// `Int((x − min)·scale)` put every value one fine bin below where the profile (numpy's binning, corrected by one
/// against the bin edges) had put it: identical data gave KS D 0.125 and drift (adversarial review of drift).
@Suite struct FineBinAgreementTests {
    /// Reference values on ranges the fine bins cannot resolve.
    static let ranges: [(name: String, values: [Double])] = [
        ("two ulps apart near 1e9", (0..<8).map { 1e9 + Double($0) * 2 * 1e9.ulp }),
        ("subnormals", (0..<7).map { Double($0) * Double.leastNonzeroMagnitude }),
    ]

    /// A regression model whose numeric features `x` (KS) and `y` (Wasserstein) have the profile `ProfileBuilder`
    /// builds from `reference` (1000 fine bins).
    func harness(reference: [Double]) throws -> (Harness, MonitoredModel) {
        let config = ModelConfiguration(
            name: "r", task: .regression, versions: ["v1"],
            features: [
                FeatureConfiguration(name: "x", kind: .numeric), FeatureConfiguration(name: "y", kind: .numeric),
            ],
            reference: "ref.json",
            collectors: [
                CollectorConfiguration(
                    name: "drift",
                    options: [
                        "features": .map([
                            "x": .map(["method": .string("ks")]), "y": .map(["method": .string("wasserstein")]),
                        ]),
                        "min_observations": .number(1),
                    ])
            ])
        let numeric = ProfileBuilder.numeric(reference, bins: 10, fineBins: 1000)
        let profile = ReferenceProfile(
            model: "r", rows: reference.count, inputSHA256: "",
            features: [
                ColumnProfile(name: "x", missing: 0, numeric: numeric),
                ColumnProfile(name: "y", missing: 0, numeric: numeric),
            ])
        let h = try Harness(
            monitor: ModelMonitor(), [config], references: ["ref.json": LoadedReference(profile: profile, sha256: "")])
        return (h, h.model("r"))
    }

    /// `count` values cycling through `values`.
    static func cycle(_ values: [Double], _ count: Int) -> [Double] { (0..<count).map { values[$0 % values.count] } }

    @Test(arguments: ranges)
    func identicalDataHasNoDrift(name: String, values: [Double]) throws {
        let data = Self.cycle(values, 1400)
        let (h, m) = try harness(reference: data)
        for x in data {
            #expect(
                m.record(version: "v1", prediction: .number(1), features: ["x": .number(x), "y": .number(x)]) == nil)
        }
        let ks = #"{feature="x",method="ks",model="r"}"#
        #expect(h.value("mlops_feature_drift_statistic" + ks) == 0, "\(name)")
        #expect(h.value("mlops_feature_drift_p_value" + ks) == 1, "\(name)")
        #expect(h.value("mlops_feature_drift_detected" + ks) == 0, "\(name)")
        #expect(h.value(#"mlops_feature_drift_score{feature="y",method="wasserstein",model="r"}"#) == 0, "\(name)")
        // scipy on the raw samples agrees: D 0, p 1.
        let scipy = try DriftOracle.run([DriftOracle.Operation("samples", a: data, b: data)])[0]
        #expect(scipy.number("ks_d") == 0 && scipy.number("ks_p_asymp") == 1, "\(name): \(scipy)")
    }

    /// A window holding only the lower half of the reference's values: the binned D lies within its documented
    /// bound of scipy's exact D (`D_exact − bound <= D <= D_exact`), as it does on ordinary ranges.
    @Test(arguments: ranges)
    func aShiftedWindowStaysWithinTheBoundOfScipy(name: String, values: [Double]) throws {
        let reference = Self.cycle(values, 1400)
        let current = Self.cycle(Array(values.prefix(values.count / 2)), 700)
        let (h, m) = try harness(reference: reference)
        for x in current { m.record(version: "v1", prediction: .number(1), features: ["x": .number(x)]) }
        let d = try #require(h.value(#"mlops_feature_drift_statistic{feature="x",method="ks",model="r"}"#))
        let scipy = try DriftOracle.run([DriftOracle.Operation("samples", a: reference, b: current)])[0]
        // The bound: the largest share of one fine bin in either sample, binned as the profile bins.
        let profile = ProfileBuilder.numeric(reference, bins: 10, fineBins: 1000)
        var live = [Double](repeating: 0, count: 1000)
        for x in current {
            live[ProfileBuilder.fineBin(of: x, min: profile.min, max: profile.max, bins: 1000)] += 1
        }
        let bound = DriftStatistics.ksStatisticBound(
            referenceFine: profile.fine.map(Double.init), currentFine: live, currentBelow: 0, currentAbove: 0)
        let exact = scipy.number("ks_d")
        #expect(d <= exact + 1e-12 && exact - d <= bound + 1e-12, "\(name): D \(d), scipy \(exact), bound \(bound)")
    }
}
