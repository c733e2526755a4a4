import ExporterConfig
import Foundation
import ModelMonitoring
import Testing

@Suite struct ProfileBuilderTests {
    /// Small datasets sent to numpy along with the seeded ones it draws (see ``NumpyOracle``).
    static let fixed: [[Double]] = [[3, 1, 4, 1, 5, 9, 2], [1, 2], [7], [-1e-300, 0, 1e-300]]

    @Test(arguments: [(10, 1000), (4, 7), (1, 1), (20, 50)])
    func numericProfilesMatchNumpy(bins: Int, fineBins: Int) throws {
        let expected = try NumpyOracle.profiles(Self.fixed, bins: bins, fineBins: fineBins)
        #expect(expected.count == Self.fixed.count + 5 && expected.last?.edges.count == bins - 1)
        for want in expected {
            let values = want.values
            let got = ProfileBuilder.numeric(values, bins: bins, fineBins: fineBins)
            #expect(got.count == values.count)
            #expect(got.min == want.min && got.max == want.max)
            #expect(close(got.mean, want.mean), "mean of \(values.count) values: \(got.mean) vs \(want.mean)")
            #expect(close(got.std, want.std), "std of \(values.count) values: \(got.std) vs \(want.std)")
            #expect(got.edges == want.edges, "edges for \(values.count) values")
            #expect(got.counts == want.counts, "counts for \(values.count) values")
            #expect(got.edges.allSatisfy { $0 > got.min && $0 < got.max })
            #expect(zip(got.edges, got.edges.dropFirst()).allSatisfy { $0 < $1 })
            if got.max > got.min {
                #expect(got.fine == want.fine, "fine histogram for \(values.count) values")
            }
            #expect(got.distinct == want.distinct, "distinct values among \(values.count)")
            let listed = want.distinct <= NumericProfile.maxListedValues
            #expect(got.values == (listed ? want.unique : nil), "values among \(values.count)")
            #expect(got.valueCounts == (listed ? want.uniqueCounts : nil), "value counts among \(values.count)")
        }
    }

    @Test func constantColumnHasOneBinAndAPointMass() {
        let p = ProfileBuilder.numeric([5, 5, 5], bins: 10, fineBins: 4)
        #expect(
            p
                == NumericProfile(
                    count: 3, mean: 5, std: 0, min: 5, max: 5, edges: [], counts: [0, 3, 0], fine: [3, 0, 0, 0],
                    distinct: 1, values: [5], valueCounts: [3]))
    }

    /// Found by Fuzz/ (profiling): the sums overflowed, `std` was NaN and `mlops-exporter profile` failed to
    /// write the profile ("Unable to encode Double.-nan directly in JSON").
    @Test(arguments: [
        ([1e308, -1e308, 1e308], 1e308 / 3, 2 * 2.0.squareRoot() / 3 * 1e308),
        ([-1e300, 1.5, 2, 3], -2.5e299, 4.330127018922194e299),
    ])
    func hugeValuesHaveAFiniteMeanAndStd(values: [Double], mean: Double, std: Double) {
        let p = ProfileBuilder.numeric(values, bins: 2, fineBins: 4)
        #expect(close(p.mean, mean), "mean \(p.mean)")
        #expect(close(p.std, std), "std \(p.std)")
    }

    @Test func allMissingColumnIsEmpty() {
        var b = ProfileBuilder(
            model: ModelConfiguration(
                name: "m", task: .regression, features: [FeatureConfiguration(name: "x", kind: .numeric)]),
            options: .init(fineBins: 3))
        for value in [ProfileBuilder.Value.missing, .number(.nan), .absent] { b.add([value, .absent, .absent]) }
        let p = b.build(model: "m", inputSHA256: "00")
        #expect(p.rows == 3)
        #expect(p.features[0].missing == 3)
        #expect(
            p.features[0].numeric
                == NumericProfile(
                    count: 0, mean: 0, std: 0, min: 0, max: 0, edges: [], counts: [0, 0, 0], fine: [0, 0, 0],
                    distinct: 0, values: [], valueCounts: []))
        #expect(p.prediction == nil && p.score == nil)
    }

    @Test func binsAreClosedOnTheRight() {
        let edges = [2.0, 4.0]
        let bins = [0.5, 1, 2, 2.5, 4, 5, 6].map { ProfileBuilder.bin(of: $0, edges: edges, min: 1, max: 5) }
        #expect(bins == [0, 1, 1, 2, 2, 3, 4])
    }

    @Test func categoriesAreLearnedByFrequencyThenValue() {
        let counts = CategoryCounts([("b", 3), ("a", 3), ("c", 5), ("d", 1), ("Z", 1)])
        let p = counts.profile(values: nil, maxCategories: 3)
        #expect(p == CategoricalProfile(values: ["c", "a", "b"], counts: [5, 3, 3, 2]))
        let all = counts.profile(values: nil, maxCategories: 50)
        #expect(all.values == ["c", "a", "b", "Z", "d"] && all.counts.last == 0)
        let configured = counts.profile(values: ["d", "q"], maxCategories: 1)
        #expect(configured == CategoricalProfile(values: ["d", "q"], counts: [1, 0, 12]))
    }

    /// A learned category becomes a label value: one longer than 1 KiB counts in `__other__` (a 70 MiB cell of free
    /// text was learned, and pushed as a label value). Configured values are matched whatever their length.
    @Test func aValueLongerThanTheBoundIsNeverLearned() {
        let long = String(repeating: "x", count: CategoryCounts.maxLearnedBytes + 1)
        let edge = String(repeating: "y", count: CategoryCounts.maxLearnedBytes)
        let counts = CategoryCounts([(long, 9), (edge, 2), ("a", 1)])
        #expect(
            counts.profile(values: nil, maxCategories: 50)
                == CategoricalProfile(values: [edge, "a"], counts: [2, 1, 9]))
        #expect(
            counts.profile(values: [long], maxCategories: 50) == CategoricalProfile(values: [long], counts: [9, 3]))
    }

    @Test func rowsFeedFeaturesPredictionAndScore() {
        let model = ModelConfiguration(
            name: "fraud", task: .binaryClassification, classes: ["legit", "fraud"],
            features: [
                FeatureConfiguration(name: "amount", kind: .numeric),
                FeatureConfiguration(name: "country", kind: .categorical),
                FeatureConfiguration(name: "channel", kind: .categorical, values: ["web", "app"]),
            ])
        var b = ProfileBuilder(model: model, options: .init(bins: 2, fineBins: 2, maxCategories: 1))
        #expect(b.columns.map(\.name) == ["amount", "country", "channel", "prediction", "score"])
        b.add([.number(1), .category("DE"), .category("web"), .category("fraud"), .absent])
        b.add([.number(3), .category("DE"), .category("pos"), .category("legit"), .absent])
        b.add([.missing, .category("FR"), .number(7), .category("other"), .absent])
        let p = b.build(model: "fraud", inputSHA256: "ab")
        #expect(p.rows == 3 && p.inputSHA256 == "ab" && p.format == ReferenceProfile.formatVersion)
        #expect(
            p.features[0].missing == 1 && p.features[0].numeric?.edges == [2]
                && p.features[0].numeric?.counts == [0, 1, 1, 0])
        #expect(p.features[1].categorical == CategoricalProfile(values: ["DE"], counts: [2, 1]))
        #expect(p.features[2].categorical == CategoricalProfile(values: ["web", "app"], counts: [1, 0, 2]))
        #expect(p.prediction?.categorical == CategoricalProfile(values: ["legit", "fraud"], counts: [1, 1, 1]))
        #expect(p.score == nil)
    }

    @Test func regressionPredictionAndScoreAreNumeric() {
        var b = ProfileBuilder(model: ModelConfiguration(name: "eta", task: .regression), options: .init(fineBins: 2))
        b.add([.number(2), .missing])
        b.add([.number(4), .number(0.5)])
        let p = b.build(model: "eta", inputSHA256: "")
        #expect(p.prediction?.numeric?.mean == 3 && p.prediction?.missing == 0)
        #expect(p.score?.numeric?.count == 1 && p.score?.missing == 1)
    }

    private func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-12 * max(1, abs(b)) }
}

/// numpy, run at test time in the repository's `.venv` (made by `scripts/install-deps --python`).
enum NumpyOracle {
    struct Expected: Decodable {
        var values: [Double]
        var mean, std, min, max: Double
        var edges: [Double]
        var counts: [Int]
        var fine: [Int]
        /// `np.unique`: the number of distinct values, and the values with their counts.
        var distinct: Int
        var unique: [Double]
        var uniqueCounts: [Int]
    }

    struct Missing: Error, CustomStringConvertible {
        var description: String
    }

    /// For each of `datasets` and of five datasets numpy draws with a fixed seed (ties, few distinct values,
    /// skew, a large offset for the stability of the std, a normal sample): the values and numpy's mean,
    /// std, quantile edges (merged by the profile's rule), bin counts and fine histogram.
    static func profiles(_ datasets: [[Double]], bins: Int, fineBins: Int) throws -> [Expected] {
        let script = """
            import json, sys
            import numpy as np
            request = json.load(sys.stdin)
            bins, fine_bins = request["bins"], request["fine_bins"]
            rng = np.random.default_rng(42)
            drawn = [rng.integers(0, 21, 537).astype(float), rng.integers(0, 3, 100).astype(float),
                     rng.exponential(2, 5000), 1e9 + rng.random(2000), rng.normal(10, 3, 1000)]
            out = []
            for values in request["datasets"] + [d.tolist() for d in drawn]:
                x = np.array(values, dtype=np.float64)
                lo, hi = float(x.min()), float(x.max())
                edges = []
                for e in np.quantile(x, [i / bins for i in range(1, bins)]):
                    if lo < e < hi and (not edges or e > edges[-1]):
                        edges.append(float(e))
                # Bins closed on the right: (a, b] on x is [-b, -a) on -x; numpy closes its last bin, [min, e0].
                inner = np.histogram(-x, bins=-np.array([hi] + edges[::-1] + [lo]))[0][::-1] if hi > lo else [len(x)]
                fine = np.histogram(x, bins=fine_bins, range=(lo, hi))[0] if hi > lo else [0] * fine_bins
                unique, unique_counts = np.unique(x, return_counts=True)
                out.append(dict(values=values, mean=float(np.mean(x)), std=float(np.std(x)), min=lo, max=hi, edges=edges,
                                counts=[0] + [int(c) for c in inner] + [0], fine=[int(c) for c in fine],
                                distinct=len(unique), unique=[float(u) for u in unique],
                                uniqueCounts=[int(c) for c in unique_counts]))
            json.dump(out, sys.stdout)
            """
        struct Request: Encodable {
            var datasets: [[Double]]
            var bins: Int
            var fine_bins: Int
        }
        let input = try JSONEncoder().encode(Request(datasets: datasets, bins: bins, fine_bins: fineBins))
        return try JSONDecoder().decode([Expected].self, from: python(script, input: input))
    }

    static func python(_ script: String, input: Data) throws -> Data {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let python = root.appendingPathComponent(".venv/bin/python")
        guard FileManager.default.isExecutableFile(atPath: python.path) else {
            throw Missing(
                description: "\(python.path) is missing: run scripts/install-deps --python (numpy is the oracle)")
        }
        let process = Process()
        process.executableURL = python
        process.arguments = ["-c", script]
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Missing(description: "numpy oracle failed: \(String(decoding: errors, as: UTF8.self))")
        }
        return output
    }
}
