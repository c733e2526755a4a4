import Capture
import FuzzSupport
import Ingestion

private let binary = try! Schema(
    task: .classification, classes: ["0", "1"],
    features: [FeatureSpec("age", .numeric), FeatureSpec("income", .numeric), FeatureSpec("region", .categorical)],
    attributeNames: ["tenant"])
private let regression = try! Schema(
    task: .regression, features: [FeatureSpec("x1", .numeric), FeatureSpec("x2", .numeric)])

/// The capture decoders on one exchange: the payload is the request body, a NUL byte, then the response body
/// (without a NUL the response is `{}`).
///
/// Control bits: 0-1, the protocol (KServe v1, Open Inference v2, MLflow, custom with `*` pointers); 2, the
/// regression schema (else a binary classifier); 3, `OutputNames(prediction: "predict")` (else the defaults);
/// 4-7, `maxRows` minus one (1...16).
///
/// Checks the decoders' promises: the returned count is the number of rows delivered; every event has one value
/// per feature and attribute, no probabilities or one per class (each in [0, 1]), a prediction of the task's kind
/// with a class index that names the class; and decoding is deterministic (a second run gives the same result).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCapture(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = FuzzInput(data, size)
    let payload = Array(input.payload)
    let split = payload.firstIndex(of: 0)
    let request = Array(payload[..<(split ?? payload.count)])
    let response = split.map { Array(payload[($0 + 1)...]) } ?? Array("{}".utf8)
    let schema = input.flag(2) ? regression : binary
    let outputs = input.flag(3) ? OutputNames(prediction: "predict") : OutputNames()
    let captureProtocol: CaptureProtocol = [.kserveV1, .openInferenceV2, .mlflow, .custom][Int(input.control & 3)]
    var custom: CustomMapping?
    if captureProtocol == .custom {
        var mapping = CustomMapping()
        mapping.features = ["x1": .init(.request, "/rows/*/a"), "age": .init(.request, "/rows/*/a")]
            .filter { name, _ in schema.features.contains { $0.name == name } }
        mapping.prediction = .init(.response, "/out/*")
        mapping.version = .init(.header, "x-version")
        custom = mapping
    }
    guard var decoder = try? CaptureDecoder(protocol: captureProtocol, schema: schema, custom: custom, outputs: outputs)
    else {
        invariant(false, "the harness's decoder configuration is valid")
        return 0
    }
    decoder.maxRows = 1 + Int(input.control >> 4)

    func decode() -> Result<[PredictionEvent], CaptureError> {
        request.withUnsafeBytes { request in
            response.withUnsafeBytes { response in
                var events: [PredictionEvent] = []
                do throws(CaptureError) {
                    let count = try decoder.decode(
                        request: request, response: response, headers: [(name: "x-version", value: "v7")]
                    ) { events.append($0) }
                    invariant(count == events.count, "decode returns the number of rows delivered")
                    return .success(events)
                } catch {
                    invariant(events.isEmpty, "a failed exchange delivers nothing")
                    return .failure(error)
                }
            }
        }
    }

    let first = decode()
    invariant(first == decode(), "decoding is deterministic")
    if case .success(let events) = first {
        invariant(events.count <= decoder.maxRows, "at most maxRows rows")
        for event in events {
            invariant(event.features.count == schema.features.count, "one value per feature")
            invariant(event.attributes.count == schema.attributeNames.count, "one value per attribute")
            invariant(
                event.probabilities.isEmpty || event.probabilities.count == schema.classes.count,
                "no probabilities or one per class")
            invariant(event.probabilities.allSatisfy { $0 >= 0 && $0 <= 1 }, "probabilities in [0, 1]")
            switch (schema.task, event.prediction) {
            case (.regression, .number(let x)): invariant(x.isFinite, "a finite regression prediction")
            case (.classification, .label(let label)):
                if let index = event.predictionClass {
                    invariant(schema.classes[index] == label, "the class index names the predicted class")
                }
            default: invariant(false, "a prediction of the task's kind")
            }
        }
    }
    return 0
}
