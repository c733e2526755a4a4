import FuzzSupport
import Ingestion

private let regression = try! Schema(
    task: .regression,
    features: [FeatureSpec("age", .numeric), FeatureSpec("income", .numeric), FeatureSpec("city", .categorical)],
    attributeNames: ["gender"])
private let classification = try! Schema(
    task: .classification, classes: ["a", "b", "c"],
    features: [FeatureSpec("x", .numeric), FeatureSpec("color", .categorical)], attributeNames: ["group", "region"])

/// A decoding's result: the events visited with their indices, or the error that rejected the body.
private struct Decoded: Equatable {
    var predictions: [PredictionEvent] = []
    var labels: [LabelEvent] = []
    var indices: [Int] = []
    var report = DecodeReport()
    var error: BodyError?
}

/// The ingestion decoder on a request body (the payload), as `IngestEndpoint` runs it.
///
/// Control bits: 0, JSON array (else NDJSON); 1, label events (else predictions); 2, the classification
/// schema (else regression); 3-7, the event limit minus one (1...32).
///
/// Checks what the decoder promises about what it hands out (values typed and in range as documented, one
/// per schema entry, class indices that name the class) and about its report (counts that add up, indices
/// in order and under the limit, offsets inside the body), and that a `DecoderCache` changes nothing: the
/// body decoded with a new cache, and again with that cache warm, gives the same result as without one.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIngestion(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = FuzzInput(data, size)
    let format: BodyFormat = input.flag(0) ? .json : .ndjson
    let labels = input.flag(1)
    let schema = input.flag(2) ? classification : regression
    let maxEvents = 1 + Int(input.control >> 3)
    let body = UnsafeRawBufferPointer(input.payload)

    func decode(_ cache: DecoderCache?) -> Decoded {
        var decoded = Decoded()
        do {
            if labels {
                decoded.report = try decodeLabels(
                    body: body, format: format, schema: schema, maxEvents: maxEvents, cache: cache
                ) { event, index in
                    decoded.labels.append(event)
                    decoded.indices.append(index)
                }
            } else {
                decoded.report = try decodePredictions(
                    body: body, format: format, schema: schema, maxEvents: maxEvents, cache: cache
                ) { event, index in
                    decoded.predictions.append(event)
                    decoded.indices.append(index)
                }
            }
        } catch {
            decoded.error = error
        }
        return decoded
    }

    let plain = decode(nil)
    check(plain, schema: schema, maxEvents: maxEvents, bodySize: body.count)
    let cache = DecoderCache()
    for pass in ["new", "warm"] {
        let cached = decode(cache)
        invariant(cached == plain, "decoding with a \(pass) cache differs: \(cached) vs \(plain)")
    }
    return 0
}

private func check(_ decoded: Decoded, schema: Schema, maxEvents: Int, bodySize: Int) {
    let report = decoded.report
    if let error = decoded.error {
        invariant(report == DecodeReport() && decoded.indices.isEmpty, "events visited before \(error)")
        if case .malformed(let offset, _) = error {
            invariant(offset >= 0 && offset <= bodySize, "offset \(offset) of \(bodySize) bytes")
        }
        return
    }
    invariant(report.accepted == decoded.indices.count, "accepted \(report.accepted), visited \(decoded.indices.count)")
    invariant(report.accepted + report.rejected <= maxEvents, "\(report.accepted + report.rejected) > \(maxEvents)")
    invariant(report.rejectedByReason.values.reduce(0, +) == report.rejected, "reasons do not add up: \(report)")
    invariant(report.errors.count == min(report.rejected, DecodeReport.maxRecordedErrors), "errors: \(report)")
    invariant(zip(decoded.indices, decoded.indices.dropFirst()).allSatisfy(<), "indices \(decoded.indices)")
    invariant(decoded.indices.allSatisfy { $0 < report.accepted + report.rejected }, "index past the events")
    for error in report.errors {
        invariant(error.offset >= 0 && error.offset <= bodySize, "offset \(error.offset) of \(bodySize) bytes")
        invariant(!decoded.indices.contains(error.index), "event \(error.index) both accepted and rejected")
        invariant(error.line.map { $0 >= 1 } ?? true, "line \(String(describing: error.line))")
    }
    for event in decoded.predictions { check(event, schema: schema) }
    for event in decoded.labels {
        check(event.label, labelClass: event.labelClass, schema: schema)
        invariant(event.timestamp?.isFinite ?? true, "timestamp \(String(describing: event.timestamp))")
    }
}

private func check(_ event: PredictionEvent, schema: Schema) {
    invariant(event.features.count == schema.features.count, "\(event.features.count) features")
    for (value, spec) in zip(event.features, schema.features) {
        switch value {
        case .missing: break
        case .number(let x): invariant(spec.kind == .numeric && x.isFinite, "\(spec.name) = \(x)")
        case .category: invariant(spec.kind == .categorical, "\(spec.name) = \(value)")
        }
    }
    check(event.prediction, labelClass: event.predictionClass, schema: schema)
    if let label = event.label {
        check(label, labelClass: event.labelClass, schema: schema)
    } else {
        invariant(event.labelClass == nil, "a label class without a label")
    }
    invariant(
        event.probabilities.isEmpty
            || (event.probabilities.count == schema.classes.count
                && event.probabilities.allSatisfy { $0 >= 0 && $0 <= 1 }),
        "probabilities \(event.probabilities)")
    invariant(event.latencySeconds.map { $0.isFinite && $0 >= 0 } ?? true, "latency \(event.latencySeconds!)")
    invariant(event.attributes.count == schema.attributeNames.count, "\(event.attributes.count) attributes")
    invariant(event.unknownFeatureCount >= 0, "unknown features \(event.unknownFeatureCount)")
}

private func check(_ outcome: Outcome, labelClass: Int?, schema: Schema) {
    switch outcome {
    case .number(let x):
        invariant(schema.task == .regression && x.isFinite && labelClass == nil, "\(outcome) for \(schema.task)")
    case .label(let label):
        invariant(schema.task == .classification, "\(outcome) for a regression schema")
        invariant(
            labelClass == schema.classes.firstIndex(of: label), "class \(String(describing: labelClass)) of \(label)")
    }
}
