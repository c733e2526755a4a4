import Ingestion

/// A regression schema with two numeric and one categorical feature and one attribute.
func regressionSchema() -> Schema {
    try! Schema(
        task: .regression,
        features: [FeatureSpec("age", .numeric), FeatureSpec("income", .numeric), FeatureSpec("city", .categorical)],
        attributeNames: ["gender"])
}

/// A classification schema over classes a, b, c with one numeric feature.
func classificationSchema() -> Schema {
    try! Schema(task: .classification, classes: ["a", "b", "c"], features: [FeatureSpec("x", .numeric)])
}

/// The result of decoding a test body.
struct Decoded {
    var events: [PredictionEvent] = []
    var indices: [Int] = []
    var report = DecodeReport()
}

func decode(
    _ body: String, _ format: BodyFormat = .json, schema: Schema = regressionSchema(), maxEvents: Int = 1000
)
    throws(BodyError) -> Decoded
{
    var decoded = Decoded()
    decoded.report = try decodePredictions(body: Array(body.utf8), format: format, schema: schema, maxEvents: maxEvents)
    { event, index in
        decoded.events.append(event)
        decoded.indices.append(index)
    }
    return decoded
}

/// The single event of a JSON body `[object]`, or nil when rejected.
func single(_ object: String, schema: Schema = regressionSchema()) throws -> PredictionEvent? {
    let decoded = try decode("[\(object)]", schema: schema)
    return decoded.events.first
}

/// The rejection of the single event `[object]`.
func rejection(_ object: String, schema: Schema = regressionSchema()) throws -> EventError? {
    try decode("[\(object)]", schema: schema).report.errors.first
}

/// The malformed-body error of a JSON body, as (offset, message), or nil if it decodes.
func malformed(_ body: String, schema: Schema = regressionSchema()) -> (offset: Int, message: String)? {
    do {
        _ = try decode(body, schema: schema)
        return nil
    } catch {
        if case .malformed(let offset, let message) = error { return (offset, message) }
        return nil
    }
}

/// A deterministic random generator (SplitMix64).
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
