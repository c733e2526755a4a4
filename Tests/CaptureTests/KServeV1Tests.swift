import Capture
import Ingestion
import Testing

@Suite("KServe v1")
struct KServeV1Tests {
    let decoder = try! CaptureDecoder(protocol: .kserveV1, schema: binarySchema())

    @Test("sklearnserver: array rows in feature order, integer predictions mapped to the classes \"0\"/\"1\"")
    func sklearnServer() throws {
        let events = try decode(
            decoder, #"{"instances": [[39, 52000.5, "eu"], [61, 18000, "us"]]}"#, #"{"predictions": [1, 0]}"#)
        #expect(events.count == 2)
        #expect(events[0].features == [.number(39), .number(52000.5), .category("eu")])
        #expect(events[1].features == [.number(61), .number(18000), .category("us")])
        #expect(events.map(\.prediction) == [.label("1"), .label("0")])
        #expect(events.map(\.predictionClass) == [1, 0])
        #expect(events.allSatisfy { $0.score == nil && $0.probabilities.isEmpty && $0.version == "" })
    }

    @Test("object rows: unknown names counted, absent features missing; a float 1.0 is the class \"1\"")
    func objectRows() throws {
        let events = try decode(
            decoder, #"{"instances": [{"age": 30, "region": 7, "color": "red", "size": 2}, {"income": null}]}"#,
            #"{"predictions": [1.0, "0"]}"#)
        #expect(events[0].features == [.number(30), .missing, .category("7")])
        #expect(events[0].unknownFeatureCount == 2)
        #expect(events[1].features == [.missing, .missing, .missing])
        #expect(events[1].unknownFeatureCount == 0)
        #expect(events.map(\.prediction) == [.label("1"), .label("0")])
    }

    @Test("probabilities per row: the prediction is the most likely class, the score the positive class's")
    func probabilityRows() throws {
        let events = try decode(
            decoder, #"{"instances": [[1, 2, "a"], [3, 4, "b"]]}"#, #"{"predictions": [[0.2, 0.8], [0.9, 0.1]]}"#)
        #expect(events.map(\.prediction) == [.label("1"), .label("0")])
        #expect(events.map(\.probabilities) == [[0.2, 0.8], [0.9, 0.1]])
        #expect(events.map(\.score) == [0.8, 0.1])
    }

    @Test("object predictions: prediction, score and probabilities keys")
    func objectPredictions() throws {
        let events = try decode(
            decoder, #"{"instances": [[1, 2, "a"]]}"#,
            #"{"predictions": [{"prediction": 1, "score": 0.7, "probabilities": {"0": 0.3, "1": 0.7}}]}"#)
        #expect(events[0].prediction == .label("1"))
        #expect(events[0].score == 0.7)
        #expect(events[0].probabilities == [0.3, 0.7])
    }

    @Test("a number that is no class keeps its text; string classes are matched as strings")
    func otherClasses() throws {
        let iris = try CaptureDecoder(protocol: .kserveV1, schema: irisSchema())
        let events = try decode(
            iris, #"{"instances": [[5.1, 3.5, 1.4, 0.2], [6.8, 2.8, 4.8, 1.4]]}"#, #"{"predictions": [2, "virginica"]}"#
        )
        #expect(events[0].prediction == .label("2"))
        #expect(events[0].predictionClass == nil)
        #expect(events[1].prediction == .label("virginica"))
        #expect(events[1].predictionClass == 2)
    }

    @Test("regression: numbers, and one-element arrays")
    func regression() throws {
        let d = try CaptureDecoder(protocol: .kserveV1, schema: regressionSchema())
        let events = try decode(d, #"{"inputs": [[1, 2], [3, 4]]}"#, #"{"predictions": [3.25, [-1e3]]}"#)
        #expect(events.map(\.prediction) == [.number(3.25), .number(-1000)])
    }
}

/// What KServe's own servers do with a v1 request: `inputs` wins over `instances` when both are there
/// (`payload["inputs"] if "inputs" in payload else payload["instances"]`), and the DataFrame forms its sklearn server
/// takes (a list holding one list of records, a list holding one object of columns) are rows (they were
/// shape_mismatch and invalid_value: a model with categorical features behind KServe v1 was never captured).
@Suite struct KServeV1ServerFormsTests {
    @Test func inputsWinOverInstancesAndDataFrameFormsAreRows() throws {
        let decoder = try CaptureDecoder(protocol: .kserveV1, schema: binarySchema())
        let both = try decode(
            decoder, #"{"instances": [[5, 5, "x"]], "inputs": [[1, 2, "a"]]}"#, #"{"predictions": [1]}"#)
        #expect(both.map(\.features) == [[.number(1), .number(2), .category("a")]])
        let expected: [[FeatureValue]] = [
            [.number(1), .number(2), .category("a")], [.number(3), .number(4), .category("b")],
        ]
        let records = try decode(
            decoder,
            #"{"instances": [[{"age": 1, "income": 2, "region": "a"}, {"age": 3, "income": 4, "region": "b"}]]}"#,
            #"{"predictions": [1, 0]}"#)
        #expect(records.map(\.features) == expected)
        let columns = try decode(
            decoder, #"{"instances": [{"age": [1, 3], "income": [2, 4], "region": ["a", "b"]}]}"#,
            #"{"predictions": [1, 0]}"#)
        #expect(columns.map(\.features) == expected)
        // One row object stays one row.
        let one = try decode(
            decoder, #"{"instances": [{"age": 1, "income": 2, "region": "a"}]}"#, #"{"predictions": [1]}"#)
        #expect(one.map(\.features) == [expected[0]])
    }
}
