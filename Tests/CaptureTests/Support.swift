import Capture
import Ingestion

/// A binary classifier with classes "0" and "1": numeric `age` and `income`, categorical `region`; attribute
/// `tenant`.
func binarySchema() -> Schema {
    try! Schema(
        task: .classification, classes: ["0", "1"],
        features: [FeatureSpec("age", .numeric), FeatureSpec("income", .numeric), FeatureSpec("region", .categorical)],
        attributeNames: ["tenant"])
}

/// The iris classifier of the scikit-learn examples: four numeric features, three named classes.
func irisSchema() -> Schema {
    try! Schema(
        task: .classification, classes: ["setosa", "versicolor", "virginica"],
        features: [
            FeatureSpec("sepal_length", .numeric), FeatureSpec("sepal_width", .numeric),
            FeatureSpec("petal_length", .numeric), FeatureSpec("petal_width", .numeric),
        ])
}

/// A regression model with two numeric features.
func regressionSchema() -> Schema {
    try! Schema(task: .regression, features: [FeatureSpec("x1", .numeric), FeatureSpec("x2", .numeric)])
}

/// Decodes one exchange and returns copies of the delivered events.
func decode(
    _ decoder: CaptureDecoder, _ request: String, _ response: String, headers: [(name: String, value: String)] = []
) throws(CaptureError) -> [PredictionEvent] {
    try decode(decoder, bytes: Array(request.utf8), Array(response.utf8), headers: headers)
}

/// ``decode(_:_:_:headers:)`` of bodies given as bytes (which need not be UTF-8: the v2 binary tensor extension).
func decode(
    _ decoder: CaptureDecoder, bytes requestBytes: [UInt8], _ responseBytes: [UInt8],
    headers: [(name: String, value: String)] = []
) throws(CaptureError) -> [PredictionEvent] {
    var events: [PredictionEvent] = []
    let result = requestBytes.withUnsafeBytes { req in
        responseBytes.withUnsafeBytes { resp -> Result<Int, CaptureError> in
            do throws(CaptureError) {
                return .success(
                    try decoder.decode(request: req, response: resp, headers: headers) { events.append($0) })
            } catch {
                return .failure(error)
            }
        }
    }
    let count = try result.get()
    precondition(count == events.count, "decode returned \(count) for \(events.count) events")
    return events
}

/// The reason decoding fails with, or nil when it succeeds.
func failure(
    _ decoder: CaptureDecoder, _ request: String, _ response: String, headers: [(name: String, value: String)] = []
) -> CaptureFailure? {
    do {
        let events = try decode(decoder, request, response, headers: headers)
        _ = events
        return nil
    } catch {
        return error.reason
    }
}

/// The numbers of a row's numeric features (nil for missing or categorical ones).
func numbers(_ event: PredictionEvent) -> [Double?] {
    event.features.map {
        if case .number(let value) = $0 { return value }
        return nil
    }
}

/// A deterministic random generator (SplitMix64), as IngestionTests has: every run sees the same cases.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
