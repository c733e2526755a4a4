import Capture
import Ingestion
import Testing

@Suite("Open Inference Protocol v2")
struct OpenInferenceV2Tests {
    @Test("MLServer sklearn: one [N, 4] input in feature order, outputs predict and predict_proba, model_version")
    func mlserverSklearn() throws {
        let decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: irisSchema())
        let request = #"""
            {"inputs": [{"name": "predict", "shape": [2, 4], "datatype": "FP32",
              "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}],
             "outputs": [{"name": "predict"}, {"name": "predict_proba"}]}
            """#
        let response = #"""
            {"model_name": "iris", "model_version": "v0.1.0", "id": "d3b1a4c2", "parameters": {},
             "outputs": [
              {"name": "predict", "shape": [2, 1], "datatype": "BYTES", "parameters": {"content_type": "np"},
               "data": ["setosa", "virginica"]},
              {"name": "predict_proba", "shape": [2, 3], "datatype": "FP64", "parameters": {"content_type": "np"},
               "data": [0.97, 0.03, 0.0, 0.0, 0.02, 0.98]}]}
            """#
        let events = try decode(decoder, request, response)
        #expect(events.count == 2)
        #expect(numbers(events[0]) == [5.1, 3.5, 1.4, 0.2])
        #expect(numbers(events[1]) == [6.7, 3.0, 5.2, 2.3])
        #expect(events.map(\.prediction) == [.label("setosa"), .label("virginica")])
        #expect(events.map(\.predictionClass) == [0, 2])
        #expect(events.map(\.probabilities) == [[0.97, 0.03, 0.0], [0.0, 0.02, 0.98]])
        #expect(events.allSatisfy { $0.version == "v0.1.0" && $0.score == nil })
    }

    /// The request's `id` (tritonclient's `request_id`, the protocol's request identifier) is the event id, so that
    /// labels can name it; the response's echo of it, or a server's own, is not read. Before, it was ignored.
    @Test("the request's id names its rows: the id for one, <id>/<row> for several; an empty one or no string is none")
    func requestIDNamesTheRows() throws {
        let decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: regressionSchema())
        func ids(_ id: String?, rows: Int) throws -> [String?] {
            let data = (0..<rows).map { "[\($0), 1]" }.joined(separator: ", ")
            let member = id.map { #""id": \#($0), "# } ?? ""
            let request =
                #"{\#(member)"inputs": [{"name": "x", "shape": [\#(rows), 2], "datatype": "FP64", "data": [\#(data)]}]}"#
            let predictions = (0..<rows).map { _ in "0.5" }.joined(separator: ",")
            let output = #"{"name": "y", "shape": [\#(rows)], "datatype": "FP64", "data": [\#(predictions)]}"#
            let response = #"{"id": "server-own", "outputs": [\#(output)]}"#
            return try decode(decoder, request, response).map(\.id)
        }
        #expect(try ids(#""req-1""#, rows: 1) == ["req-1"])
        #expect(try ids(#""req-2""#, rows: 3) == ["req-2/0", "req-2/1", "req-2/2"])
        #expect(try ids(#""a\"b""#, rows: 1) == ["a\"b"])
        // At most 256 bytes, as a logger event's ce-id: a 60 KB id on 10,000 rows took 600 MB.
        let longest = String(repeating: "é", count: 128)
        #expect(try ids("\"\(longest)\"", rows: 2) == ["\(longest)/0", "\(longest)/1"])
        #expect(try ids("\"\(longest)a\"", rows: 2) == [nil, nil])
        for none in [nil, #""""#, "7", "null", "{}"] {
            #expect(try ids(none, rows: 2) == [nil, nil], "\(none ?? "absent")")
        }
    }

    @Test("decode(rows:) gives each row its index and the row count, and the same events as decode(_:)")
    func rowsAndCount() throws {
        let decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: regressionSchema())
        for rows in [1, 2, 3] {
            let data = (0..<rows).map { "[\($0), \($0 + 10)]" }.joined(separator: ", ")
            let request =
                #"{"inputs": [{"name": "x", "shape": [\#(rows), 2], "datatype": "FP64", "data": [\#(data)]}]}"#
            let predictions = (0..<rows).map { "\(Double($0) + 0.5)" }.joined(separator: ", ")
            let response =
                #"{"outputs": [{"name": "y", "shape": [\#(rows)], "datatype": "FP64", "data": [\#(predictions)]}]}"#
            var seen: [(row: Int, count: Int)] = []
            var events: [PredictionEvent] = []
            let requestBytes = Array(request.utf8)
            let responseBytes = Array(response.utf8)
            let count = try requestBytes.withUnsafeBytes { req in
                try responseBytes.withUnsafeBytes { resp in
                    try decoder.decode(request: req, response: resp, headers: []) { event, row, count in
                        seen.append((row, count))
                        events.append(event)
                    }
                }
            }
            #expect(count == rows)
            #expect(seen.map(\.row) == Array(0..<rows) && seen.allSatisfy { $0.count == rows })
            #expect(events == (try decode(decoder, request, response)))
            let features: [[FeatureValue]] = (0..<rows).map { [.number(Double($0)), .number(Double($0 + 10))] }
            let outputs: [Outcome] = (0..<rows).map { .number(Double($0) + 0.5) }
            #expect(events.map(\.features) == features)
            #expect(events.map(\.prediction) == outputs)
        }
    }

    @Test("MLServer sklearn, binary: INT64 predict [N, 1] is the class \"0\"/\"1\", the score P(\"1\")")
    func mlserverBinary() throws {
        let decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: binarySchema())
        let request = #"""
            {"parameters": {"content_type": "pd"}, "inputs": [
              {"name": "age", "shape": [3], "datatype": "INT64", "data": [30, 41, 52]},
              {"name": "income", "shape": [3, 1], "datatype": "FP64", "data": [[1000.5], [2000], [3000]]},
              {"name": "region", "shape": [3], "datatype": "BYTES", "data": ["eu", "us", "apac"],
               "parameters": {"content_type": "str"}}]}
            """#
        let response = #"""
            {"model_name": "churn", "id": "1", "outputs": [
              {"name": "predict", "shape": [3, 1], "datatype": "INT64", "data": [1, 0, 1]},
              {"name": "predict_proba", "shape": [3, 2], "datatype": "FP64", "data": [0.4, 0.6, 0.9, 0.1, 0.2, 0.8]}]}
            """#
        let events = try decode(decoder, request, response)
        #expect(
            events.map(\.features) == [
                [.number(30), .number(1000.5), .category("eu")], [.number(41), .number(2000), .category("us")],
                [.number(52), .number(3000), .category("apac")],
            ])
        #expect(events.map(\.prediction) == [.label("1"), .label("0"), .label("1")])
        #expect(events.map(\.score) == [0.6, 0.1, 0.8])
        #expect(events.allSatisfy { $0.version == "" && $0.unknownFeatureCount == 0 })
    }

    @Test("Triton: regression, nested data, numeric model_version, unknown inputs counted per row")
    func triton() throws {
        let decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: regressionSchema())
        let request = #"""
            {"inputs": [{"name": "x1", "shape": [2, 1], "datatype": "FP32", "data": [[0.5], [1.5]]},
                        {"name": "x2", "shape": [2], "datatype": "INT32", "data": [7, 8]},
                        {"name": "MASK", "shape": [2], "datatype": "BOOL", "data": [true, false]}],
             "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": false}}]}
            """#
        let response = #"""
            {"model_name": "reg", "model_version": "1",
             "outputs": [{"name": "OUTPUT0", "datatype": "FP32", "shape": [2, 1], "data": [12.5, -3.0]}]}
            """#
        let events = try decode(decoder, request, response)
        #expect(events.map(numbers) == [[0.5, 7], [1.5, 8]])
        #expect(events.map(\.prediction) == [.number(12.5), .number(-3)])
        #expect(events.allSatisfy { $0.version == "1" && $0.unknownFeatureCount == 1 })
    }

    @Test("probabilities only: the prediction is the most likely class; configured output names")
    func probabilitiesOnly() throws {
        let decoder = try CaptureDecoder(
            protocol: .openInferenceV2, schema: irisSchema(),
            outputs: OutputNames(prediction: "label", score: ["confidence"], probabilities: ["probs"]))
        let request = #"{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}"#
        let response = #"""
            {"outputs": [{"name": "probs", "shape": [1, 3], "datatype": "FP32", "data": [0.1, 0.7, 0.2]},
                         {"name": "confidence", "shape": [1], "datatype": "FP32", "data": [0.7]},
                         {"name": "label", "shape": [1], "datatype": "BYTES", "data": ["virginica"]}]}
            """#
        let events = try decode(decoder, request, response)
        #expect(events[0].prediction == .label("virginica"))
        #expect(events[0].score == 0.7)
        #expect(events[0].probabilities == [0.1, 0.7, 0.2])
        let argmax = try CaptureDecoder(protocol: .openInferenceV2, schema: irisSchema())
        let only =
            #"{"outputs": [{"name": "probabilities", "shape": [1, 3], "datatype": "FP32", "data": [0.1, 0.7, 0.2]}]}"#
        #expect(try decode(argmax, request, only).map(\.prediction) == [.label("versicolor")])
    }

    @Test("a single 1-D input feeds a one-feature model; a single [N, F] input a categorical feature as text")
    func positionalKinds() throws {
        let one = try Schema(task: .regression, features: [FeatureSpec("f", .numeric)])
        let d1 = try CaptureDecoder(protocol: .openInferenceV2, schema: one)
        let events = try decode(
            d1, #"{"inputs": [{"name": "input-0", "shape": [2], "datatype": "FP32", "data": [1, 2]}]}"#,
            #"{"outputs": [{"name": "output-0", "shape": [2], "datatype": "FP32", "data": [3, 4]}]}"#)
        #expect(events.map(\.features) == [[.number(1)], [.number(2)]])
        let d2 = try CaptureDecoder(protocol: .openInferenceV2, schema: binarySchema())
        let mixed = try decode(
            d2, #"{"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "INT64", "data": [1, 2, 3]}]}"#,
            #"{"outputs": [{"name": "output-0", "shape": [1], "datatype": "INT64", "data": [0]}]}"#)
        #expect(mixed[0].features == [.number(1), .number(2), .category("3")])
    }

    @Test("Triton classifier: one [N, classes] output is read as probabilities, the prediction their argmax")
    func probabilityOutput() throws {
        let decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: binarySchema())
        let request =
            #"{"inputs": [{"name": "INPUT0", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]}]}"#
        let response = #"""
            {"model_name": "clf", "model_version": "2",
             "outputs": [{"name": "OUTPUT0", "datatype": "FP32", "shape": [2, 2], "data": [[0.25, 0.75], [0.5, 0.5]]}]}
            """#
        let events = try decode(decoder, request, response)
        #expect(events.map(\.prediction) == [.label("1"), .label("0")])
        #expect(events.map(\.probabilities) == [[0.25, 0.75], [0.5, 0.5]])
        #expect(events.map(\.score) == [0.75, 0.5])
        #expect(events.map(\.version) == ["2", "2"])
    }
}

/// A two-class model's score derived from its probabilities is its positive class's probability, wherever that
/// class is listed: scikit-learn orders `predict_proba`'s columns by sorted label, so `classes: [churn, stay]` with
/// `positive_class: churn` has the positive class first (the score was the second column's: P(stay)).
@Suite struct PositiveClassScoreTests {
    func schema(positive: Int?) throws -> Schema {
        try Schema(
            task: .classification, classes: ["churn", "stay"], features: [FeatureSpec("x", .numeric)],
            positiveClass: positive)
    }

    @Test func theScoreIsThePositiveClassesProbability() throws {
        let request = #"{"inputs": [{"name": "x", "shape": [2, 1], "datatype": "FP64", "data": [1, 2]}]}"#
        let response = #"""
            {"outputs": [{"name": "predict_proba", "shape": [2, 2], "datatype": "FP64", "data": [0.8, 0.2, 0.3, 0.7]}]}
            """#
        let first = try CaptureDecoder(protocol: .openInferenceV2, schema: schema(positive: 0))
        let events = try decode(first, request, response)
        #expect(events.map(\.score) == [0.8, 0.3])
        #expect(events.map(\.prediction) == [.label("churn"), .label("stay")])
        let second = try CaptureDecoder(protocol: .openInferenceV2, schema: schema(positive: 1))
        #expect(try decode(second, request, response).map(\.score) == [0.2, 0.7])
        // KServe v1: probabilities as the prediction entries.
        let v1 = try CaptureDecoder(protocol: .kserveV1, schema: schema(positive: 0))
        let v1Events = try decode(v1, #"{"instances": [[1], [2]]}"#, #"{"predictions": [[0.8, 0.2], [0.3, 0.7]]}"#)
        #expect(v1Events.map(\.score) == [0.8, 0.3])
    }
}
