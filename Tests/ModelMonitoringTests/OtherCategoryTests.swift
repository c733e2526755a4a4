import ExporterConfig
import Ingestion
import ModelMonitoring
import Testing

/// Reference data holding the category `__other__` itself (data bucketed upstream): the profile listed it as a value
/// of its own (`values: ["a", "__other__", "b"]`), and the drift collector then named two bins `__other__`:
/// `serve`, `check-config` and `POST /-/reload` trapped on a `try!`.
@Suite struct OtherCategoryTests {
    static let model = ModelConfiguration(
        name: "m", task: .regression, versions: ["v1"],
        features: [FeatureConfiguration(name: "c", kind: .categorical)], reference: "ref.json",
        collectors: [
            CollectorConfiguration(
                name: "drift", options: ["method": .string("psi"), "min_observations": .number(1)])
        ])

    static let rows =
        Array(repeating: "a", count: 40) + Array(repeating: "__other__", count: 30) + Array(repeating: "b", count: 30)

    static func harness(_ profile: ReferenceProfile) throws -> Harness {
        try Harness(
            monitor: ModelMonitor(), [model],
            references: ["ref.json": LoadedReference(profile: profile, sha256: "00")])
    }

    static func profile(_ rows: [String]) -> ReferenceProfile {
        var b = ProfileBuilder(model: model)
        for r in rows { b.add([.category(r), .absent, .absent]) }
        return b.build(model: "m", inputSHA256: "00")
    }

    /// Such rows count in `__other__`, as live traffic sending `__other__` does: the value is never learned.
    @Test func rowsSpelledOtherCountInOther() {
        #expect(
            Self.profile(Self.rows).features[0].categorical
                == CategoricalProfile(values: ["a", "b"], counts: [40, 30, 30]))
        // Even when it is the most frequent value, and with room for every value.
        #expect(
            CategoryCounts([("__other__", 9), ("a", 1)]).profile(values: nil, maxCategories: 50)
                == CategoricalProfile(values: ["a"], counts: [1, 9]))
    }

    /// The profile's own rows, sent back live, land in the same bins: no drift.
    @Test func theProfilesRowsSentBackDoNotDrift() throws {
        let h = try Self.harness(Self.profile(Self.rows))
        let m = h.model("m")
        for r in Self.rows {
            #expect(m.record(version: "v1", prediction: .number(0), features: ["c": .category(r)]) == nil)
        }
        #expect(h.value(#"mlops_feature_bin_observations_total{bin="__other__",feature="c",model="m"}"#) == 30)
        #expect(h.value(#"mlops_feature_drift_score{feature="c",method="psi",model="m"}"#) == 0)
        #expect(h.value(#"mlops_feature_drift_detected{feature="c",method="psi",model="m"}"#) == 0)
    }

    /// A profile that lists `__other__` anyway (written before, or edited by hand) and reaches the collector without
    /// the loader's check is refused, naming the column: never a trap at start or reload.
    @Test func aProfileListingOtherIsRefusedNotTrapped() {
        let listed = ReferenceProfile(
            model: "m", rows: 100, inputSHA256: "00",
            features: [
                ColumnProfile(
                    name: "c", missing: 0,
                    categorical: CategoricalProfile(values: ["a", "__other__", "b"], counts: [40, 30, 30, 0]))
            ])
        let error = #expect(throws: ModelSetupErrors.self) { try Self.harness(listed) }
        let text = error?.description ?? ""
        #expect(text.contains("reference column c") && text.contains("__other__"), "\(text)")
    }
}
