import Capture
import Ingestion
import Testing

/// `NaN`, `Infinity` and `-Infinity` are not JSON, but Python's `json.dumps`, tritonclient's JSON tensors (rapidjson)
/// and Triton write them for non-finite floats, and KServe's v2 endpoint and Triton answer such requests 200: the
/// capture reads them (NaN as null, a missing value; ±Infinity as a number out of range), in every protocol.
@Suite("Non-finite literals in captured bodies")
struct NonFiniteTests {
    @Test("NaN is a missing feature, as null is: v2 (its direct reader and the general one), KServe v1, MLflow")
    func nanIsMissing() throws {
        let v2 = try CaptureDecoder(protocol: .openInferenceV2, schema: regressionSchema())
        let response = #"{"outputs": [{"name": "y", "shape": [2], "datatype": "FP64", "data": [1.5, 2.5]}]}"#
        for data in ["[1, NaN, -0.5, 2]", "[[1, NaN], [-0.5, 2]]", "[1,NaN,-0.5,2]"] {
            let request = #"{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": \#(data)}]}"#
            let events = try decode(v2, request, response)
            let expected = try decode(v2, request.replacingOccurrences(of: "NaN", with: "null"), response)
            #expect(events.map(\.features) == expected.map(\.features), "\(data)")
            #expect(events.first?.features == [.number(1), .missing], "\(data)")
        }
        let v1 = try CaptureDecoder(protocol: .kserveV1, schema: regressionSchema())
        let rows = try decode(v1, #"{"instances": [[NaN, 2], {"x1": 3, "x2": NaN}]}"#, #"{"predictions": [1, 2]}"#)
        #expect(rows.map(\.features) == [[.missing, .number(2)], [.number(3), .missing]])
        let mlflow = try CaptureDecoder(protocol: .mlflow, schema: regressionSchema())
        let split = try decode(
            mlflow, #"{"dataframe_split": {"columns": ["x1", "x2"], "data": [[NaN, 4]]}}"#, #"{"predictions": [1]}"#)
        #expect(split.map(\.features) == [[.missing, .number(4)]])
    }

    @Test("±Infinity is a number out of range, as 1e999 is: invalid_value, not invalid_json")
    func infinityIsOutOfRange() throws {
        let v2 = try CaptureDecoder(protocol: .openInferenceV2, schema: regressionSchema())
        let response = #"{"outputs": [{"name": "y", "shape": [1], "datatype": "FP64", "data": [1.5]}]}"#
        for value in ["Infinity", "-Infinity"] {
            let request = #"{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, \#(value)]}]}"#
            #expect(failure(v2, request, response) == .invalidValue, "\(value)")
        }
    }

    @Test("what is no literal stays invalid JSON")
    func otherWordsAreStillInvalid() throws {
        let v1 = try CaptureDecoder(protocol: .kserveV1, schema: regressionSchema())
        for bad in ["Nan", "NaNa", "Inf", "-Inf", "+Infinity", "-NaN", "infinity"] {
            #expect(failure(v1, #"{"instances": [[\#(bad), 2]]}"#, #"{"predictions": [1]}"#) == .invalidJSON, "\(bad)")
        }
    }
}
