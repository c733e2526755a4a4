import Capture
import Ingestion
import Testing

private let v1 = try! CaptureDecoder(protocol: .kserveV1, schema: binarySchema())
private let v2 = try! CaptureDecoder(protocol: .openInferenceV2, schema: binarySchema())
private let mlflow = try! CaptureDecoder(protocol: .mlflow, schema: binarySchema())
private let row = #"{"instances": [[1, 2, "a"]]}"#
private let age = #"{"name": "age", "shape": [1], "datatype": "INT64", "data": [1]}"#
private let out = #"{"outputs": [{"name": "predict", "shape": [1], "datatype": "INT64", "data": [1]}]}"#

@Suite("Failures")
struct FailureTests {
    @Test(
        "each failure reason",
        arguments: [
            // invalid_json
            (v1, "{", #"{"predictions": [1]}"#, CaptureFailure.invalidJSON),
            (v1, row, #"{"predictions": [1]} x"#, .invalidJSON),
            (v2, #"{"inputs": [\#(age)]}"#, "\u{1}", .invalidJSON),
            // shape_mismatch
            (v1, #"{"instances": [[1, 2]]}"#, #"{"predictions": [1]}"#, .shapeMismatch),
            (v1, row, #"{"predictions": [[0.1, 0.2, 0.7]]}"#, .shapeMismatch),
            (v1, row, #"{"predictions": [{"prediction": 1, "probabilities": {"0": 1}}]}"#, .shapeMismatch),
            // A class given twice is not the other class given.
            (v1, row, #"{"predictions": [{"prediction": 1, "probabilities": {"0": 0.2, "0": 0.8}}]}"#, .shapeMismatch),
            (
                v2, #"{"inputs": [{"name": "age", "shape": [2], "datatype": "INT64", "data": [1, 2, 3]}]}"#, out,
                .shapeMismatch
            ),
            (
                v2, #"{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "INT64", "data": [1, 2]}]}"#, out,
                .shapeMismatch
            ),
            (
                v2, #"{"inputs": [{"name": "age", "shape": [1, 2], "datatype": "INT64", "data": [1, 2]}]}"#, out,
                .shapeMismatch
            ),
            (
                v2, #"{"inputs": [\#(age), {"name": "income", "shape": [2], "datatype": "FP32", "data": [1, 2]}]}"#,
                out,
                .shapeMismatch
            ),
            (mlflow, #"{"dataframe_split": {"columns": ["age"], "data": [[1, 2]]}}"#, "[1]", .shapeMismatch),
            // A binary tensor (the v2 binary tensor extension) whose bytes are not there (BinaryTensorTests has the rest).
            (
                v2,
                #"{"inputs": [{"name": "age", "shape": [1], "datatype": "INT64", "parameters": {"binary_data_size": 8}}]}"#,
                out, .shapeMismatch
            ),
            // row_count_mismatch
            (v1, row, #"{"predictions": [1, 0]}"#, .rowCountMismatch),
            (mlflow, row, "[]", .rowCountMismatch),
            (
                v2, #"{"inputs": [\#(age)]}"#,
                #"{"outputs": [{"name": "predict", "shape": [2], "datatype": "INT64", "data": [1, 0]}]}"#,
                .rowCountMismatch
            ),
            // missing_field
            (v1, #"{"rows": []}"#, #"{"predictions": []}"#, .missingField),
            (v1, row, #"{"error": "model not ready"}"#, .missingField),
            (v1, row, #"{"predictions": [null]}"#, .missingField),
            (v1, row, #"{"predictions": [{"confidence": 1, "x": 2}]}"#, .missingField),
            (v2, #"{"inputs": []}"#, out, .missingField),
            (v2, #"{"inputs": [{"name": "age", "shape": [1], "datatype": "INT64"}]}"#, out, .missingField),
            (v2, #"{"inputs": [\#(age)]}"#, #"{"error": "boom"}"#, .missingField),
            (mlflow, #"{"data": [[1, 2, "a"]]}"#, "[1]", .missingField),
            // invalid_value
            (v1, #"{"instances": [["old", 2, "a"]]}"#, #"{"predictions": [1]}"#, .invalidValue),
            (v1, #"{"instances": [[1, 2, ["a"]]]}"#, #"{"predictions": [1]}"#, .invalidValue),
            (v1, row, #"{"predictions": [[1.5, -0.5]]}"#, .invalidValue),
            (v1, row, #"{"predictions": [{"prediction": {"a": 1}}]}"#, .invalidValue),
            (v1, #"{"instances": [[1e999, 2, "a"]]}"#, #"{"predictions": [1]}"#, .invalidValue),
            // unsupported
            (
                v2, #"{"inputs": [{"name": "age", "shape": [1], "datatype": "BYTES", "data": ["1"]}]}"#, out,
                .unsupported
            ),
            // JSON followed by bytes without a binary tensor is still not JSON.
            (v2, #"{"inputs": [\#(age)]}"#, out + "\u{1}\u{0}", .invalidJSON),
            (v2, #"{"inputs": [{"name": "age", "shape": [1], "datatype": "FP8", "data": [1]}]}"#, out, .unsupported),
            (mlflow, row, #"{"predictions": {"a": [1]}}"#, .unsupported),
            // An answer that is no list and no object (it was missing_field; review).
            (mlflow, row, #""x""#, .unsupported),
            (mlflow, row, "1", .unsupported),
        ])
    func reasons(decoder: CaptureDecoder, request: String, response: String, reason: CaptureFailure) {
        #expect(failure(decoder, request, response) == reason)
    }

    /// tritonclient's defaults ask for binary outputs (`binary_data_output`, an output's `binary_data`); MLServer
    /// ignores the flags and answers JSON tensors, which are read (they were refused from the request's flags alone,
    /// so tritonclient's everyday call was never captured).
    @Test("binary output flags a server ignored: the JSON answer is read")
    func binaryOutputFlagsAreRequestsOnly() throws {
        for request in [
            #"{"inputs": [\#(age)], "parameters": {"binary_data_output": true}}"#,
            #"{"inputs": [\#(age)], "outputs": [{"name": "predict", "parameters": {"binary_data": true}}]}"#,
            #"{"parameters": {"binary_data_output": true}, "inputs": [\#(age)], "outputs": [{"name": "predict"}]}"#,
        ] {
            let events = try decode(v2, request, out)
            #expect(events.map(\.prediction) == [.label("1")], "\(request)")
        }
    }

    @Test("more rows than maxRows: too_many_rows, whatever the protocol")
    func tooManyRows() {
        var d1 = v1
        d1.maxRows = 2
        #expect(failure(d1, #"{"instances": [[1,2,"a"],[1,2,"a"]]}"#, #"{"predictions": [1, 1]}"#) == nil)
        #expect(failure(d1, #"{"instances": [[1,2,"a"],[1,2,"a"],[1,2,"a"]]}"#, "{}") == .tooManyRows)
        var d2 = v2
        d2.maxRows = 2
        #expect(
            failure(d2, #"{"inputs": [{"name": "age", "shape": [3], "datatype": "INT64", "data": [1, 2, 3]}]}"#, "{}")
                == .tooManyRows)
    }

    @Test("a body with more JSON values than maxRows rows of the schema can hold: too_many_rows, before its tape")
    func tooManyValues() {
        var d = v1
        d.maxRows = 2
        let values = d.maxValues
        let dense = "[" + Array(repeating: "0", count: values + 1).joined(separator: ",") + "]"
        #expect(failure(d, #"{"instances": \#(dense)}"#, "{}") == .tooManyRows)
        #expect(failure(d, #"{"instances": [[1,2,"a"]]}"#, #"{"predictions": \#(dense)}"#) == .tooManyRows)
    }

    @Test("a failure delivers nothing, even when it is found in the last row")
    func nothingDelivered() throws {
        var delivered = 0
        let request = Array(#"{"instances": [[1, 2, "a"], [1, 2, "a"], [1, 2, "a"]]}"#.utf8)
        let response = Array(#"{"predictions": [1, 0, {"x": 1, "y": 2}]}"#.utf8)
        #expect(throws: CaptureError.self) {
            try request.withUnsafeBytes { req in
                try response.withUnsafeBytes { resp in
                    _ = try v1.decode(request: req, response: resp, headers: []) { _ in delivered += 1 }
                }
            }
        }
        #expect(delivered == 0)
    }

    @Test("messages name the body and the place")
    func messages() {
        #expect(throws: CaptureError(.invalidJSON, "response at byte offset 0: expected a value, found end of input")) {
            try decode(v1, row, "")
        }
        #expect(throws: CaptureError(.rowCountMismatch, "1 request rows but 2 predictions")) {
            try decode(v1, row, #"{"predictions": [1, 0]}"#)
        }
    }
}
