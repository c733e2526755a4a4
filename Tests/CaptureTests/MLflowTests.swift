import Capture
import Ingestion
import Testing

@Suite("MLflow scoring server")
struct MLflowTests {
    let decoder = try! CaptureDecoder(protocol: .mlflow, schema: binarySchema())

    @Test("pyfunc dataframe_split: columns by name (an unknown one counted), {\"predictions\": [...]}")
    func dataframeSplit() throws {
        let request = #"""
            {"dataframe_split": {"columns": ["region", "age", "extra"], "data": [["eu", 30, 1], ["us", 41, 2]]}}
            """#
        let events = try decode(decoder, request, #"{"predictions": [0, 1]}"#)
        #expect(
            events.map(\.features) == [
                [.number(30), .missing, .category("eu")], [.number(41), .missing, .category("us")],
            ])
        #expect(events.allSatisfy { $0.unknownFeatureCount == 1 })
        #expect(events.map(\.prediction) == [.label("0"), .label("1")])
    }

    @Test("dataframe_split without columns is in feature order; a bare list answer")
    func splitWithoutColumns() throws {
        let events = try decode(decoder, #"{"dataframe_split": {"data": [[1, 2, "x"]]}}"#, "[1]")
        #expect(events[0].features == [.number(1), .number(2), .category("x")])
        #expect(events[0].prediction == .label("1"))
    }

    @Test("dataframe_records, instances, inputs as rows and as columns give the same events")
    func otherForms() throws {
        let response = #"{"predictions": [1, 0]}"#
        let expected: [[FeatureValue]] = [
            [.number(1), .number(10), .category("a")], [.number(2), .number(20), .category("b")],
        ]
        let requests = [
            #"{"dataframe_records": [{"age": 1, "income": 10, "region": "a"}, {"age": 2, "income": 20, "region": "b"}]}"#,
            #"{"instances": [[1, 10, "a"], [2, 20, "b"]]}"#,
            #"{"inputs": [{"age": 1, "income": 10, "region": "a"}, {"age": 2, "income": 20, "region": "b"}]}"#,
            #"{"inputs": {"age": [1, 2], "income": [10, 20], "region": ["a", "b"]}}"#,
        ]
        for request in requests {
            let events = try decode(decoder, request, response)
            #expect(events.map(\.features) == expected, "\(request)")
            #expect(events.map(\.prediction) == [.label("1"), .label("0")])
        }
    }

    @Test("DataFrame output records: a single column is the prediction")
    func recordsOutput() throws {
        let events = try decode(
            decoder, #"{"instances": [[1, 2, "a"]]}"#, #"{"predictions": [{"0": 1}]}"#)
        #expect(events[0].prediction == .label("1"))
    }
}
