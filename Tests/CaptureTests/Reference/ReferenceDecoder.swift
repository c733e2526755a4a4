// The capture decoders as they were before the allocation-free rewrite (commit 4e7ae0b, Sources/Capture), kept
// verbatim but for the type names as the reference of RandomizedEquivalenceTests: the rewrite must decode every
// exchange to the same events and fail with the same reason and message. Not maintained: a deliberate change of
// the decoders' results changes the tests that pin it, and this copy with it (or the copy goes).
import Capture
import Ingestion

/// The reference decoder (KServe v1, Open Inference Protocol v2, MLflow; custom mappings were not restructured).
struct ReferenceDecoder {
    let `protocol`: CaptureProtocol
    let schema: Schema
    let outputs: OutputNames
    var maxRows = 10_000
    let reader: ReferenceValueReader

    init(protocol: CaptureProtocol, schema: Schema, outputs: OutputNames = .init()) {
        self.protocol = `protocol`
        self.schema = schema
        self.outputs = outputs
        reader = ReferenceValueReader(schema: schema)
    }

    /// As ``CaptureDecoder/decode(request:response:headers:_:)``, returning copies of the events.
    func decode(_ request: [UInt8], _ response: [UInt8]) throws(CaptureError) -> [PredictionEvent] {
        let result = request.withUnsafeBytes { request in
            response.withUnsafeBytes { response -> Result<[PredictionEvent], CaptureError> in
                do throws(CaptureError) {
                    return .success(try decode(request, response))
                } catch {
                    return .failure(error)
                }
            }
        }
        return try result.get()
    }

    private func decode(
        _ request: UnsafeRawBufferPointer, _ response: UnsafeRawBufferPointer
    ) throws(CaptureError) -> [PredictionEvent] {
        var rows = ReferenceRows(schema: schema)
        switch `protocol` {
        case .kserveV1:
            try decodeKServeV1(parse(request, "request"), parse(response, "response"), &rows)
        case .openInferenceV2:
            try decodeOpenInferenceV2(parse(request, "request"), parse(response, "response"), &rows)
        case .mlflow:
            try decodeMLflow(parse(request, "request"), parse(response, "response"), &rows)
        case .custom:
            return []
        }
        rows.fillBinaryScores()
        var event = PredictionEvent(schema: schema)
        var events: [PredictionEvent] = []
        rows.deliver(&event) { events.append($0) }
        return events
    }

    /// `body` parsed, or ``CaptureFailure/invalidJSON`` naming `which` and the byte offset.
    func parse(_ body: UnsafeRawBufferPointer, _ which: String) throws(CaptureError) -> JSONTape {
        do {
            return try JSONTape(parsing: body.assumingMemoryBound(to: UInt8.self))
        } catch {
            throw CaptureError(.invalidJSON, "\(which) at byte offset \(error.offset): \(error.message)")
        }
    }

    /// Throws ``CaptureFailure/tooManyRows`` above ``maxRows``.
    func checkRowCount(_ count: Int) throws(CaptureError) {
        guard count <= maxRows else { throw CaptureError(.tooManyRows, "\(count) rows > \(maxRows)") }
    }

    /// A response's predictions: `{"predictions": [...]}` (or a bare list when `bareList`), one per row.
    func predictionList(_ tape: JSONTape, _ rows: inout ReferenceRows, bareList: Bool) throws(CaptureError) {
        let list: Int
        if let member = tape.member(0, "predictions") {
            list = member
        } else if bareList && tape.nodes[0].kind == .array {
            list = 0
        } else {
            throw CaptureError(.missingField, "response has no 'predictions'")
        }
        guard tape.nodes[list].kind == .array else {
            throw CaptureError(
                .unsupported, "response 'predictions' is \(reader.typeName(tape.nodes[list])), not a list")
        }
        let entries = tape.elements(list)
        guard entries.count == rows.count else {
            throw CaptureError(
                .rowCountMismatch, "\(rows.count) request rows but \(entries.count) predictions")
        }
        for (row, entry) in entries.enumerated() {
            try reader.prediction(tape, entry, &rows, row, "response predictions[\(row)]")
        }
    }
}

/// The decoded rows of one exchange, column by column (flat arrays, no allocation per row), filled completely
/// before any event is delivered.
struct ReferenceRows {
    let featureCount: Int
    let classCount: Int
    let attributeCount: Int
    private(set) var count = 0
    /// `count * featureCount` values, row after row.
    var features: [FeatureValue] = []
    var unknownFeatures: [Int] = []
    var predictions: [Outcome?] = []
    var predictionClasses: [Int?] = []
    var scores: [Double?] = []
    /// `count * classCount` values, meaningful where ``hasProbabilities`` is true.
    var probabilities: [Double] = []
    var hasProbabilities: [Bool] = []
    var ids: [String?] = []
    var versions: [String?] = []
    /// `count * attributeCount` values.
    var attributes: [String?] = []

    init(schema: Schema) {
        featureCount = schema.features.count
        classCount = schema.classes.count
        attributeCount = schema.attributeNames.count
    }

    /// Sets the row count: every row with all features missing and nothing else.
    mutating func reset(count: Int) {
        self.count = count
        features = Array(repeating: .missing, count: count * featureCount)
        unknownFeatures = Array(repeating: 0, count: count)
        predictions = Array(repeating: nil, count: count)
        predictionClasses = Array(repeating: nil, count: count)
        scores = Array(repeating: nil, count: count)
        probabilities = Array(repeating: 0, count: count * classCount)
        hasProbabilities = Array(repeating: false, count: count)
        ids = Array(repeating: nil, count: count)
        versions = Array(repeating: nil, count: count)
        attributes = Array(repeating: nil, count: count * attributeCount)
    }

    /// Every row's prediction is set, or the error names the first row without one.
    func checkPredictions() throws(CaptureError) {
        if let row = predictions.firstIndex(where: { $0 == nil }) {
            throw CaptureError(.missingField, "no prediction for row \(row)")
        }
    }

    /// For a two-class model, a row with probabilities and no score gets the second class's probability as its
    /// score (the positive class's, classes being listed negative first).
    mutating func fillBinaryScores() {
        guard classCount == 2 else { return }
        for row in 0..<count where hasProbabilities[row] && scores[row] == nil {
            scores[row] = probabilities[row * 2 + 1]
        }
    }

    /// Hands each row to `body` in `event` (reset to the row's values; timestamp, latency and status untouched).
    func deliver(_ event: inout PredictionEvent, _ body: (inout PredictionEvent) -> Void) {
        for row in 0..<count {
            if event.features.count != featureCount {
                event.features = Array(repeating: .missing, count: featureCount)
            }
            for i in 0..<featureCount { event.features[i] = features[row * featureCount + i] }
            event.unknownFeatureCount = unknownFeatures[row]
            event.prediction = predictions[row] ?? .number(0)
            event.predictionClass = predictionClasses[row]
            event.score = scores[row]
            if hasProbabilities[row] {
                event.probabilities = Array(probabilities[row * classCount..<(row + 1) * classCount])
            } else if !event.probabilities.isEmpty {
                event.probabilities.removeAll(keepingCapacity: true)
            }
            event.id = ids[row]
            event.version = versions[row] ?? ""
            if event.attributes.count != attributeCount {
                event.attributes = Array(repeating: nil, count: attributeCount)
            }
            for i in 0..<attributeCount { event.attributes[i] = attributes[row * attributeCount + i] }
            event.label = nil
            event.labelClass = nil
            event.errorKind = nil
            body(&event)
        }
    }
}

/// Turns JSON values of a tape into the event's typed values, by the schema's rules (the ingestion decoder's):
/// features by kind, predictions by task, class labels resolved to the schema's classes.
struct ReferenceValueReader: Sendable {
    let schema: Schema
    let isClassification: Bool
    /// Class label → index in the schema's classes.
    let classIndex: [String: Int]
    /// For classes spelled as numbers ("0", "1", "2.5"): their value → index (the first class of a value wins).
    let numericClasses: [Double: Int]
    /// Feature name → index in the schema's features.
    let featureIndex: [String: Int]
    let featureIsNumeric: [Bool]

    init(schema: Schema) {
        self.schema = schema
        isClassification = schema.task == .classification
        var classIndex: [String: Int] = [:]
        var numericClasses: [Double: Int] = [:]
        for (i, name) in schema.classes.enumerated() {
            classIndex[name] = i
            if let value = JSONNumber.parse(name), value.isFinite, numericClasses[value] == nil {
                numericClasses[value] = i
            }
        }
        self.classIndex = classIndex
        self.numericClasses = numericClasses
        featureIndex = Dictionary(
            schema.features.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
        featureIsNumeric = schema.features.map { $0.kind == .numeric }
    }

    // MARK: Features and attributes

    /// Feature `index` from the value at `node`: numbers (booleans as 1/0) for numeric features; strings, number
    /// text and `"true"`/`"false"` for categorical ones; null is missing.
    func feature(
        _ tape: JSONTape, _ node: Int, _ index: Int, _ place: @autoclosure () -> String
    )
        throws(CaptureError) -> FeatureValue
    {
        let n = tape.nodes[node]
        if featureIsNumeric[index] {
            switch n.kind {
            case .number where n.number.isFinite: return .number(n.number)
            case .bool: return .number(n.flag ? 1 : 0)
            case .null: return .missing
            default:
                throw CaptureError(
                    .invalidValue,
                    "\(place()): numeric feature '\(schema.features[index].name)' must be a number, found "
                        + typeName(n))
            }
        }
        switch n.kind {
        case .string: return .category(tape.string(node))
        case .number: return .category(tape.numberText(node))
        case .bool: return .category(n.flag ? "true" : "false")
        case .null: return .missing
        default:
            throw CaptureError(
                .invalidValue,
                "\(place()): categorical feature '\(schema.features[index].name)' must be a string, number or "
                    + "boolean, found \(typeName(n))")
        }
    }

    /// A row given as an object (feature name → value) into row `row` of `rows`; other keys are counted unknown.
    func objectRow(
        _ tape: JSONTape, _ node: Int, _ rows: inout ReferenceRows, _ row: Int, _ place: @autoclosure () -> String
    )
        throws(CaptureError)
    {
        var unknown = 0
        for (key, value) in tape.members(node) {
            guard let index = featureIndex[tape.string(key)] else {
                unknown += 1
                continue
            }
            rows.features[row * rows.featureCount + index] = try feature(tape, value, index, place())
        }
        rows.unknownFeatures[row] = unknown
    }

    /// A row given as an array of values in the schema's feature order; a length mismatch is a shape mismatch.
    func arrayRow(
        _ tape: JSONTape, _ values: [Int], _ rows: inout ReferenceRows, _ row: Int, _ place: @autoclosure () -> String
    )
        throws(CaptureError)
    {
        guard values.count == rows.featureCount else {
            throw CaptureError(
                .shapeMismatch, "\(place()) has \(values.count) values for \(rows.featureCount) features")
        }
        for (index, value) in values.enumerated() {
            rows.features[row * rows.featureCount + index] = try feature(tape, value, index, place())
        }
    }

    /// A row of either form (a scalar is a one-value row).
    func anyRow(
        _ tape: JSONTape, _ node: Int, _ rows: inout ReferenceRows, _ row: Int, _ place: @autoclosure () -> String
    )
        throws(CaptureError)
    {
        switch tape.nodes[node].kind {
        case .object: try objectRow(tape, node, &rows, row, place())
        case .array: try arrayRow(tape, tape.elements(node), &rows, row, place())
        default: try arrayRow(tape, [node], &rows, row, place())
        }
    }

    /// An attribute or an id: a string, a number's text, `"true"`/`"false"`; nil for null; containers are invalid.
    func text(_ tape: JSONTape, _ node: Int, _ place: @autoclosure () -> String) throws(CaptureError) -> String? {
        let n = tape.nodes[node]
        switch n.kind {
        case .string: return tape.string(node)
        case .number: return tape.numberText(node)
        case .bool: return n.flag ? "true" : "false"
        case .null: return nil
        default:
            throw CaptureError(.invalidValue, "\(place()) must be a string, number or boolean, found \(typeName(n))")
        }
    }

    // MARK: Predictions

    /// A scalar prediction: for classification a class label (a number matching a class spelled as a number is
    /// that class, e.g. 1 or 1.0 for "1"; another number is its text), for regression a number.
    func outcome(
        _ tape: JSONTape, _ node: Int, _ place: @autoclosure () -> String
    ) throws(CaptureError)
        -> (Outcome, Int?)?
    {
        let n = tape.nodes[node]
        if isClassification {
            switch n.kind {
            case .string:
                let text = tape.string(node)
                return (.label(text), classIndex[text])
            case .number:
                if let index = numericClasses[n.number] { return (.label(schema.classes[index]), index) }
                let text = tape.numberText(node)
                return (.label(text), classIndex[text])
            case .bool:
                let text = n.flag ? "true" : "false"
                return (.label(text), classIndex[text])
            case .null: return nil
            default: throw CaptureError(.invalidValue, "\(place()) must be a class label, found \(typeName(n))")
            }
        }
        switch n.kind {
        case .number where n.number.isFinite: return (.number(n.number), nil)
        case .null: return nil
        default: throw CaptureError(.invalidValue, "\(place()) must be a number, found \(typeName(n))")
        }
    }

    /// One row's prediction, like a KServe v1 `predictions` entry: a scalar; an array (one value: that value; one
    /// number per class of a classification model: the probabilities, the prediction their most likely class); or an object with `prediction`/`label`, `score` and
    /// `probabilities` keys (or a single key whose value is the prediction).
    func prediction(
        _ tape: JSONTape, _ node: Int, _ rows: inout ReferenceRows, _ row: Int, _ place: @autoclosure () -> String
    )
        throws(CaptureError)
    {
        switch tape.nodes[node].kind {
        case .array:
            try predictionRow(tape, tape.elements(node), &rows, row, place())
        case .object:
            let members = tape.members(node)
            let named = tape.member(node, "prediction") ?? tape.member(node, "label")
            if let score = tape.member(node, "score") {
                rows.scores[row] = try number(tape, score, "\(place()).score")
            }
            if let probabilities = tape.member(node, "probabilities") {
                try self.probabilities(tape, probabilities, &rows, row, "\(place()).probabilities")
            }
            if let named {
                try setOutcome(tape, named, &rows, row, place())
            } else if rows.hasProbabilities[row] {
                setArgmax(&rows, row)
            } else if members.count == 1, tape.nodes[members[0].value].kind != .object {
                try prediction(tape, members[0].value, &rows, row, place())
            } else {
                throw CaptureError(.missingField, "\(place()) has no 'prediction', 'label' or 'probabilities'")
            }
        default:
            try setOutcome(tape, node, &rows, row, place())
        }
    }

    /// A prediction given as the values of one row (an array entry, a v2 output row).
    func predictionRow(
        _ tape: JSONTape, _ values: [Int], _ rows: inout ReferenceRows, _ row: Int, _ place: @autoclosure () -> String
    )
        throws(CaptureError)
    {
        if values.count == 1 {
            try setOutcome(tape, values[0], &rows, row, place())
        } else if isClassification && values.count == rows.classCount {
            try setProbabilities(tape, values, &rows, row, place())
            setArgmax(&rows, row)
        } else {
            throw CaptureError(
                .shapeMismatch,
                "\(place()) has \(values.count) values: expected one prediction"
                    + (isClassification ? " or \(rows.classCount) probabilities" : ""))
        }
    }

    private func setOutcome(
        _ tape: JSONTape, _ node: Int, _ rows: inout ReferenceRows, _ row: Int, _ place: @autoclosure () -> String
    )
        throws(CaptureError)
    {
        guard let (outcome, index) = try outcome(tape, node, place()) else {
            throw CaptureError(.missingField, "\(place()): the prediction is null")
        }
        rows.predictions[row] = outcome
        rows.predictionClasses[row] = index
    }

    /// The prediction is the class of highest probability (the first on a tie).
    func setArgmax(_ rows: inout ReferenceRows, _ row: Int) {
        let base = row * rows.classCount
        var best = 0
        for i in 1..<rows.classCount where rows.probabilities[base + i] > rows.probabilities[base + best] { best = i }
        rows.predictions[row] = .label(schema.classes[best])
        rows.predictionClasses[row] = best
    }

    /// Probabilities as an array in class order or an object class → probability, each in [0, 1], every class.
    func probabilities(
        _ tape: JSONTape, _ node: Int, _ rows: inout ReferenceRows, _ row: Int, _ place: @autoclosure () -> String
    )
        throws(CaptureError)
    {
        guard isClassification else {
            throw CaptureError(.invalidValue, "\(place()): probabilities given for a regression model")
        }
        switch tape.nodes[node].kind {
        case .array:
            let values = tape.elements(node)
            guard values.count == rows.classCount else {
                throw CaptureError(
                    .shapeMismatch, "\(place()) has \(values.count) values for \(rows.classCount) classes")
            }
            try setProbabilities(tape, values, &rows, row, place())
        case .object:
            var seen = 0
            var given = [Bool](repeating: false, count: rows.classCount)
            for (key, value) in tape.members(node) {
                let name = tape.string(key)
                guard let index = classIndex[name] else {
                    throw CaptureError(.shapeMismatch, "\(place()) has unknown class '\(name)'")
                }
                guard !given[index] else {
                    throw CaptureError(.shapeMismatch, "\(place()) gives class '\(name)' twice")
                }
                given[index] = true
                rows.probabilities[row * rows.classCount + index] = try probability(tape, value, place())
                seen += 1
            }
            guard seen == rows.classCount else {
                throw CaptureError(.shapeMismatch, "\(place()) has \(seen) classes of \(rows.classCount)")
            }
            rows.hasProbabilities[row] = true
        case .null:
            return
        default:
            throw CaptureError(.invalidValue, "\(place()) must be an array or an object")
        }
    }

    func setProbabilities(
        _ tape: JSONTape, _ values: [Int], _ rows: inout ReferenceRows, _ row: Int, _ place: @autoclosure () -> String
    )
        throws(CaptureError)
    {
        for (i, value) in values.enumerated() {
            rows.probabilities[row * rows.classCount + i] = try probability(tape, value, place())
        }
        rows.hasProbabilities[row] = true
    }

    private func probability(
        _ tape: JSONTape, _ node: Int, _ place: @autoclosure () -> String
    ) throws(CaptureError) -> Double {
        let n = tape.nodes[node]
        guard n.kind == .number, n.number >= 0, n.number <= 1 else {
            throw CaptureError(
                .invalidValue, "\(place()): a probability must be a number in [0, 1], found \(describe(tape, node))")
        }
        return n.number
    }

    /// A finite number (nil for null).
    func number(_ tape: JSONTape, _ node: Int, _ place: @autoclosure () -> String) throws(CaptureError) -> Double? {
        let n = tape.nodes[node]
        switch n.kind {
        case .number where n.number.isFinite: return n.number
        case .null: return nil
        default: throw CaptureError(.invalidValue, "\(place()) must be a number, found \(typeName(n))")
        }
    }

    func typeName(_ node: JSONTape.Node) -> String {
        switch node.kind {
        case .null: "null"
        case .bool: "a boolean"
        case .number: node.number.isFinite ? "a number" : "a number out of range"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    func describe(_ tape: JSONTape, _ node: Int) -> String {
        tape.nodes[node].kind == .number ? tape.numberText(node) : typeName(tape.nodes[node])
    }
}

/// One input or output tensor of an Open Inference Protocol v2 body, its data flattened row-major.
struct ReferenceTensor {
    var name: String
    var datatype: String
    var shape: [Int]
    /// The data's leaf nodes, row-major.
    var values: [Int]
    /// `shape[0]`.
    var rows: Int { shape[0] }
    /// The values per row: the product of the other dimensions.
    var width: Int { shape.dropFirst().reduce(1, *) }
    var isBytes: Bool { datatype == "BYTES" }

    static let datatypes: Set<String> = [
        "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64",
        "BF16", "BYTES",
    ]

    /// The tensor at `node`; `place` names it in errors (e.g. `request inputs[0]`).
    init(_ tape: JSONTape, _ node: Int, _ place: String) throws(CaptureError) {
        guard tape.nodes[node].kind == .object else { throw CaptureError(.shapeMismatch, "\(place) is not an object") }
        guard let name = tape.member(node, "name"), tape.nodes[name].kind == .string else {
            throw CaptureError(.missingField, "\(place) has no 'name'")
        }
        self.name = tape.string(name)
        let place = "\(place) '\(self.name)'"
        if let parameters = tape.member(node, "parameters"), tape.member(parameters, "binary_data_size") != nil {
            throw CaptureError(.shapeMismatch, "\(place) has binary_data_size but no binary data follows the JSON")
        }
        guard let datatype = tape.member(node, "datatype"), tape.nodes[datatype].kind == .string else {
            throw CaptureError(.missingField, "\(place) has no 'datatype'")
        }
        self.datatype = tape.string(datatype)
        guard ReferenceTensor.datatypes.contains(self.datatype) else {
            throw CaptureError(.unsupported, "\(place) has datatype '\(self.datatype)'")
        }
        guard let shape = tape.member(node, "shape"), tape.nodes[shape].kind == .array else {
            throw CaptureError(.missingField, "\(place) has no 'shape'")
        }
        self.shape = []
        for dimension in tape.elements(shape) {
            let d = tape.nodes[dimension]
            guard d.kind == .number, d.flag, d.number >= 0, d.number < 1e15 else {
                throw CaptureError(.shapeMismatch, "\(place) 'shape' must list non-negative integers")
            }
            self.shape.append(Int(d.number))
        }
        guard !self.shape.isEmpty else { throw CaptureError(.shapeMismatch, "\(place) has an empty 'shape'") }
        guard let data = tape.member(node, "data") else { throw CaptureError(.missingField, "\(place) has no 'data'") }
        values = []
        ReferenceTensor.flatten(tape, data, into: &values)
        let expected = self.shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).partialValue }
        guard values.count == expected else {
            throw CaptureError(
                .shapeMismatch, "\(place) has \(values.count) values for shape \(self.shape) (\(expected))")
        }
    }

    private static func flatten(_ tape: JSONTape, _ node: Int, into values: inout [Int]) {
        guard tape.nodes[node].kind == .array else {
            values.append(node)
            return
        }
        var i = node + 1
        for _ in 0..<tape.nodes[node].count {
            flatten(tape, i, into: &values)
            i = tape.nodes[i].next
        }
    }

    /// The tensors of the list at `member` of the root; missing or empty is ``CaptureFailure/missingField``.
    static func list(_ tape: JSONTape, _ member: String, _ place: String) throws(CaptureError) -> [ReferenceTensor] {
        guard let list = tape.member(0, member), tape.nodes[list].kind == .array, tape.nodes[list].count > 0 else {
            throw CaptureError(.missingField, "\(place) has no '\(member)'")
        }
        var tensors: [ReferenceTensor] = []
        for (i, node) in tape.elements(list).enumerated() {
            tensors.append(try ReferenceTensor(tape, node, "\(place) \(member)[\(i)]"))
        }
        return tensors
    }
}

extension ReferenceDecoder {
    /// Open Inference Protocol v2: one event per row (`shape[0]`) of the inputs; an input per feature (by name,
    /// shape `[N]` or `[N, 1]`; other names counted unknown) or one input `[N, F]` in the schema's feature order
    /// (an input not named after a feature, of rank 2 or more, or of rank 1 for a one-feature model); outputs by
    /// ``OutputNames``; `model_version` is the version; the request's `id` the rows' id.
    func decodeOpenInferenceV2(
        _ request: JSONTape, _ response: JSONTape, _ rows: inout ReferenceRows
    ) throws(CaptureError) {
        // Binary output flags are requests a server may ignore; a tensor declared binary in an all-JSON body is refused.
        let inputs = try ReferenceTensor.list(request, "inputs", "request")
        let count = inputs[0].rows
        for input in inputs where input.rows != count {
            throw CaptureError(
                .shapeMismatch, "request input '\(input.name)' has \(input.rows) rows, '\(inputs[0].name)' \(count)")
        }
        try checkRowCount(count)
        rows.reset(count: count)
        let single = inputs[0]
        if inputs.count == 1 && reader.featureIndex[single.name] == nil
            && (single.shape.count >= 2 || rows.featureCount == 1)
        {
            guard single.width == rows.featureCount else {
                throw CaptureError(
                    .shapeMismatch,
                    "request input '\(single.name)' has \(single.width) values per row for \(rows.featureCount) features"
                )
            }
            for index in 0..<rows.featureCount { try checkBytes(single, index) }
            for row in 0..<count {
                for index in 0..<rows.featureCount {
                    rows.features[row * rows.featureCount + index] = try reader.feature(
                        request, single.values[row * single.width + index], index,
                        "request input '\(single.name)' row \(row)")
                }
            }
        } else {
            for input in inputs {
                guard let index = reader.featureIndex[input.name] else {
                    for row in 0..<count { rows.unknownFeatures[row] += 1 }
                    continue
                }
                guard input.width == 1 else {
                    throw CaptureError(
                        .shapeMismatch, "request input '\(input.name)' has shape \(input.shape): expected [N] or [N, 1]"
                    )
                }
                try checkBytes(input, index)
                for row in 0..<count {
                    rows.features[row * rows.featureCount + index] = try reader.feature(
                        request, input.values[row], index, "request input '\(input.name)' row \(row)")
                }
            }
        }
        try decodeOutputs(response, &rows)
        // The request's `id` (a non-empty string of at most 256 bytes) names the rows: `<id>/<row>` for several.
        if let id = request.member(0, "id"), request.nodes[id].kind == .string, !request.string(id).isEmpty,
            request.string(id).utf8.count <= 256
        {
            let text = request.string(id)
            for row in 0..<rows.count { rows.ids[row] = rows.count == 1 ? text : "\(text)/\(row)" }
        }
    }

    private func checkBytes(_ input: ReferenceTensor, _ index: Int) throws(CaptureError) {
        if input.isBytes && reader.featureIsNumeric[index] {
            throw CaptureError(
                .unsupported,
                "request input '\(input.name)' is BYTES for numeric feature '\(schema.features[index].name)'")
        }
    }

    private func decodeOutputs(_ response: JSONTape, _ rows: inout ReferenceRows) throws(CaptureError) {
        let tensors = try ReferenceTensor.list(response, "outputs", "response")
        for tensor in tensors where tensor.rows != rows.count {
            throw CaptureError(
                .rowCountMismatch, "\(rows.count) request rows but output '\(tensor.name)' has \(tensor.rows)")
        }
        if let version = response.member(0, "model_version"),
            let text = try reader.text(response, version, "response 'model_version'")
        {
            for row in 0..<rows.count { rows.versions[row] = text }
        }
        let prediction: ReferenceTensor?
        if let name = outputs.prediction {
            guard let found = tensors.first(where: { $0.name == name }) else {
                throw CaptureError(.missingField, "response has no output '\(name)'")
            }
            prediction = found
        } else {
            prediction = tensors.first { !outputs.score.contains($0.name) && !outputs.probabilities.contains($0.name) }
        }
        if let probabilities = tensors.first(where: { outputs.probabilities.contains($0.name) }),
            probabilities.name != prediction?.name
        {
            guard reader.isClassification else {
                throw CaptureError(
                    .invalidValue, "response output '\(probabilities.name)': probabilities for a regression model")
            }
            guard probabilities.width == rows.classCount else {
                throw CaptureError(
                    .shapeMismatch,
                    "response output '\(probabilities.name)' has \(probabilities.width) values per row for \(rows.classCount) classes"
                )
            }
            let width = probabilities.width
            for row in 0..<rows.count {
                try reader.setProbabilities(
                    response, Array(probabilities.values[row * width..<(row + 1) * width]), &rows, row,
                    "response output '\(probabilities.name)' row \(row)")
            }
        }
        if let score = tensors.first(where: { outputs.score.contains($0.name) }), score.name != prediction?.name {
            guard score.width == 1 else {
                throw CaptureError(
                    .shapeMismatch, "response output '\(score.name)' has shape \(score.shape): expected [N] or [N, 1]")
            }
            for row in 0..<rows.count {
                rows.scores[row] = try reader.number(
                    response, score.values[row], "response output '\(score.name)' row \(row)")
            }
        }
        if let prediction {
            let width = prediction.width
            for row in 0..<rows.count {
                try reader.predictionRow(
                    response, Array(prediction.values[row * width..<(row + 1) * width]), &rows, row,
                    "response output '\(prediction.name)' row \(row)")
            }
        } else {
            for row in 0..<rows.count where rows.hasProbabilities[row] { reader.setArgmax(&rows, row) }
        }
        try rows.checkPredictions()
    }
}

extension ReferenceDecoder {
    /// KServe v1: `instances` (or `inputs`) rows, as objects or arrays in feature order (or columns: an object of
    /// feature name → list); `predictions`, one per row.
    func decodeKServeV1(_ request: JSONTape, _ response: JSONTape, _ rows: inout ReferenceRows) throws(CaptureError) {
        // KServe's precedence: `inputs` when present; its DataFrame forms (one list of records, one object of
        // columns, inside a list) are rows.
        guard let instances = request.member(0, "inputs") ?? request.member(0, "instances") else {
            throw CaptureError(.missingField, "request has no 'instances' or 'inputs'")
        }
        try rowList(request, CaptureDecoder.dataFrameUnwrapped(request, instances), "request instances", &rows)
        try predictionList(response, &rows, bareList: false)
    }

    /// ReferenceRows given as a list of rows (objects or arrays) or as columns (an object of name → list of values).
    func rowList(_ tape: JSONTape, _ node: Int, _ place: String, _ rows: inout ReferenceRows) throws(CaptureError) {
        switch tape.nodes[node].kind {
        case .array:
            let elements = tape.elements(node)
            try checkRowCount(elements.count)
            rows.reset(count: elements.count)
            for (row, element) in elements.enumerated() {
                try reader.anyRow(tape, element, &rows, row, "\(place)[\(row)]")
            }
        case .object:
            try columns(tape, node, place, &rows)
        default:
            throw CaptureError(
                .shapeMismatch,
                "\(place) must be a list of rows or an object of columns, found "
                    + reader.typeName(tape.nodes[node]))
        }
    }

    /// Columns: an object of feature name → list of values, all lists of one length (the row count).
    func columns(_ tape: JSONTape, _ node: Int, _ place: String, _ rows: inout ReferenceRows) throws(CaptureError) {
        let members = tape.members(node)
        var count: Int?
        for (key, value) in members {
            guard tape.nodes[value].kind == .array else {
                throw CaptureError(.shapeMismatch, "\(place) column '\(tape.string(key))' is not a list")
            }
            let length = tape.nodes[value].count
            if let count, count != length {
                throw CaptureError(
                    .shapeMismatch, "\(place) column '\(tape.string(key))' has \(length) values, not \(count)")
            }
            count = length
        }
        try checkRowCount(count ?? 0)
        rows.reset(count: count ?? 0)
        for (key, value) in members {
            let name = tape.string(key)
            guard let index = reader.featureIndex[name] else {
                for row in 0..<rows.count { rows.unknownFeatures[row] += 1 }
                continue
            }
            for (row, element) in tape.elements(value).enumerated() {
                rows.features[row * rows.featureCount + index] = try reader.feature(
                    tape, element, index, "\(place) column '\(name)' row \(row)")
            }
        }
    }
}

extension ReferenceDecoder {
    /// The MLflow scoring server: `dataframe_split` (`columns` and `data` rows; without `columns` the rows are in
    /// feature order), `dataframe_records` (a list of objects), `instances` and `inputs` (a list of rows or an
    /// object of columns); `{"predictions": [...]}` or a bare list, one per row.
    func decodeMLflow(_ request: JSONTape, _ response: JSONTape, _ rows: inout ReferenceRows) throws(CaptureError) {
        if let split = request.member(0, "dataframe_split") {
            try dataframeSplit(request, split, &rows)
        } else if let records = request.member(0, "dataframe_records") {
            guard request.nodes[records].kind == .array else {
                throw CaptureError(.shapeMismatch, "request 'dataframe_records' must be a list of objects")
            }
            try rowList(request, records, "request dataframe_records", &rows)
        } else if let instances = request.member(0, "instances") {
            try rowList(request, instances, "request instances", &rows)
        } else if let inputs = request.member(0, "inputs") {
            try rowList(request, inputs, "request inputs", &rows)
        } else {
            throw CaptureError(
                .missingField, "request has none of 'dataframe_split', 'dataframe_records', 'instances', 'inputs'")
        }
        try predictionList(response, &rows, bareList: true)
    }

    private func dataframeSplit(_ tape: JSONTape, _ split: Int, _ rows: inout ReferenceRows) throws(CaptureError) {
        guard let data = tape.member(split, "data"), tape.nodes[data].kind == .array else {
            throw CaptureError(.missingField, "request 'dataframe_split' has no 'data' list")
        }
        let dataRows = tape.elements(data)
        try checkRowCount(dataRows.count)
        rows.reset(count: dataRows.count)
        guard let columns = tape.member(split, "columns"), tape.nodes[columns].kind == .array else {
            for (row, node) in dataRows.enumerated() {
                try reader.anyRow(tape, node, &rows, row, "request dataframe_split data[\(row)]")
            }
            return
        }
        var indices: [Int?] = []
        var unknown = 0
        for column in tape.elements(columns) {
            let name = tape.nodes[column].kind == .string ? tape.string(column) : tape.numberText(column)
            let index = reader.featureIndex[name]
            if index == nil { unknown += 1 }
            indices.append(index)
        }
        for (row, node) in dataRows.enumerated() {
            let values = tape.elements(node)
            guard tape.nodes[node].kind == .array, values.count == indices.count else {
                throw CaptureError(
                    .shapeMismatch,
                    "request dataframe_split data[\(row)] has \(values.count) values for \(indices.count) columns")
            }
            rows.unknownFeatures[row] = unknown
            for (value, index) in zip(values, indices) {
                guard let index else { continue }
                rows.features[row * rows.featureCount + index] = try reader.feature(
                    tape, value, index, "request dataframe_split data[\(row)]")
            }
        }
    }
}
