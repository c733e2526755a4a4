import ExporterConfig
import ModelMonitoring
import Profiling
import Testing

/// One data set, as pandas writes it to CSV (`3.0` for an integer code in a float column, `True`/`False` for a bool
/// column) and to NDJSON (`3.0`, `true`/`false`): the CSV's categorical cells were kept as written, the NDJSON's
/// numbers and booleans became the text live traffic gives them (`3`, `true`), so the two profiles differed and the
/// CSV one drifted against the same rows sent as JSON (PSI 17.7 on a bool feature in the review).
@Suite struct CSVCategoryTests {
    static let model = ModelConfiguration(
        name: "m", task: .binaryClassification, versions: ["v1"], classes: ["0", "1"],
        features: [
            FeatureConfiguration(name: "code", kind: .categorical),
            FeatureConfiguration(name: "flag", kind: .categorical),
            FeatureConfiguration(name: "tier", kind: .categorical, values: ["True", "2"]),
        ])

    static func profile(_ text: String, _ format: InputFormat) throws -> ReferenceProfile {
        try Profiler.profile(Array(text.utf8), file: "data", format: format, model: model)
    }

    @Test func pandasCSVAndNDJSONGiveOneProfile() throws {
        let csv = """
            code,flag,tier,prediction
            3.0,True,True,1.0
            1.0,False,2.0,0
            ,True,True,1
            0.5,false,x,0.0
            3.0,TRUE,True,1

            """
        let ndjson = """
            {"code": 3.0, "flag": true, "tier": "True", "prediction": 1.0}
            {"code": 1.0, "flag": false, "tier": 2.0, "prediction": 0}
            {"code": NaN, "flag": true, "tier": "True", "prediction": 1}
            {"code": 0.5, "flag": false, "tier": "x", "prediction": 0.0}
            {"code": 3, "flag": true, "tier": "True", "prediction": 1}

            """
        let fromCSV = try Self.profile(csv, .csv)
        let fromNDJSON = try Self.profile(ndjson, .ndjson)
        #expect(fromCSV.features == fromNDJSON.features && fromCSV.prediction == fromNDJSON.prediction)
        #expect(
            fromCSV.features[0].categorical == CategoricalProfile(values: ["3", "0.5", "1"], counts: [2, 1, 1, 0]))
        #expect(fromCSV.features[1].categorical == CategoricalProfile(values: ["true", "false"], counts: [3, 2, 0]))
        // A configured value is taken as written: the configuration says `True` is the text `True`.
        #expect(fromCSV.features[2].categorical == CategoricalProfile(values: ["True", "2"], counts: [3, 1, 1]))
        #expect(fromCSV.prediction?.categorical == CategoricalProfile(values: ["0", "1"], counts: [2, 3, 0]))
    }

    @Test(arguments: [
        ("3.0", "3"), ("3e0", "3"), ("-0", "0"), ("1e-400", "0"), ("0.25", "0.25"), ("1e15", "1000000000000000.0"),
        ("True", "true"),
        ("FALSE", "false"), ("01", "01"), (" 3", " 3"), ("+1", "+1"), (".5", ".5"), ("1e400", "1e400"), ("NaN", "NaN"),
        ("yes", "yes"), ("tRUE", "tRUE"),
    ])
    func cellsReadAsJSONTrafficIsCounted(cell: String, category: String) throws {
        let model = ModelConfiguration(
            name: "m", task: .regression, features: [FeatureConfiguration(name: "c", kind: .categorical)])
        let p = try Profiler.profile(Array("c\n\(cell)\n".utf8), file: "data", format: .csv, model: model)
        #expect(p.features[0].categorical?.values == [category])
    }
}
