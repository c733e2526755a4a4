import Ingestion

/// Turns JSON values of a tape into the event's typed values, by the schema's rules (the ingestion decoder's):
/// features by kind, predictions by task, class labels resolved to the schema's classes.
struct ValueReader: Sendable {
    let schema: Schema
    let isClassification: Bool
    /// Class label → index in the schema's classes (read through ``classIndex(_:)``, which checks the bytes).
    let classIndex: [String: Int]
    /// For classes spelled as numbers ("0", "1", "2.5"): their value → index (the first class of a value wins).
    let numericClasses: [Double: Int]
    /// The same, as (value, index) pairs in class order when there are at most ``numericClassScanLimit`` of them
    /// (empty otherwise): a few compares cost less than hashing a `Double`.
    let numericClassList: [(value: Double, index: Int)]
    static let numericClassScanLimit = 16
    /// Feature name → index in the schema's features.
    let featureIndex: [String: Int]
    let featureIsNumeric: [Bool]
    /// Every feature name is ASCII: a key's bytes then match a name exactly when `String` comparison would.
    let featureNamesAreASCII: Bool

    init(schema: Schema) {
        self.schema = schema
        isClassification = schema.task == .classification
        var classIndex: [String: Int] = [:]
        for (i, name) in schema.classes.enumerated() { classIndex[name] = i }
        self.classIndex = classIndex
        // The schema's reading of classes spelled as numbers (the ingestion decoder's too), held here for a lookup
        // inlined into the decoders.
        let numeric = schema.numericClasses
        numericClasses = Dictionary(numeric.map { ($0.value, $0.index) }, uniquingKeysWith: { first, _ in first })
        numericClassList = numeric.count <= Self.numericClassScanLimit ? numeric : []
        featureIndex = Dictionary(
            schema.features.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
        featureIsNumeric = schema.features.map { $0.kind == .numeric }
        featureNamesAreASCII = schema.features.allSatisfy { $0.name.utf8.allSatisfy { $0 < 0x80 } }
    }

    /// The index of class `label`, byte for byte as the ingestion decoder matches classes: the table's `String` keys
    /// also match a canonically equivalent spelling (`ç` in NFD for the configured `ç` in NFC), another label value.
    @inline(__always)
    func classIndex(_ label: String) -> Int? {
        guard let index = classIndex[label], schema.classes[index].utf8.elementsEqual(label.utf8) else { return nil }
        return index
    }

    /// The class spelled as the number `value` (``numericClasses``), found by a scan when there are few.
    @inline(__always)
    func numericClass(_ value: Double) -> Int? {
        if numericClasses.count <= Self.numericClassScanLimit {
            for entry in numericClassList where entry.value == value { return entry.index }
            return nil
        }
        return numericClasses[value]
    }

    /// The index of the feature named by the string node `node` (a name or a key), as ``featureIndex`` gives it:
    /// by bytes through the schema's name table, by `String` when the bytes might be equivalent without being equal.
    func featureIndex(_ tape: JSONTape, _ node: Int) -> Int? {
        if !tape.nodes[node].flag {
            let bytes = tape.rawBytes(node)
            if let index = schema.featureIndex(utf8: bytes) { return index }
            if featureNamesAreASCII && isASCII(bytes) { return nil }
        }
        return featureIndex[tape.string(node)]
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
        _ tape: JSONTape, _ node: Int, _ rows: inout Rows, _ row: Int, _ place: @autoclosure () -> String
    )
        throws(CaptureError)
    {
        var unknown = 0
        var key = node + 1
        for _ in 0..<tape.nodes[node].count {
            let value = key + 1
            defer { key = tape.nodes[value].next }
            guard let index = featureIndex(tape, key) else {
                unknown += 1
                continue
            }
            rows.features[row * rows.featureCount + index] = try feature(tape, value, index, place())
        }
        rows.info[row].unknownFeatures = unknown
    }

    /// A row given as an array of values in the schema's feature order; a length mismatch is a shape mismatch.
    func arrayRow(
        _ tape: JSONTape, _ values: ValueRun, _ rows: inout Rows, _ row: Int, _ place: @autoclosure () -> String
    )
        throws(CaptureError)
    {
        guard values.count == rows.featureCount else {
            throw CaptureError(
                .shapeMismatch, "\(place()) has \(values.count) values for \(rows.featureCount) features")
        }
        var value = values.first
        for index in 0..<values.count {
            rows.features[row * rows.featureCount + index] = try feature(tape, value, index, place())
            value = tape.after(value, leaves: values.leaves)
        }
    }

    /// A row of either form (a scalar is a one-value row).
    func anyRow(
        _ tape: JSONTape, _ node: Int, _ rows: inout Rows, _ row: Int, _ place: @autoclosure () -> String
    )
        throws(CaptureError)
    {
        switch tape.nodes[node].kind {
        case .object: try objectRow(tape, node, &rows, row, place())
        case .array: try arrayRow(tape, .elements(of: node, tape), &rows, row, place())
        default: try arrayRow(tape, .single(node), &rows, row, place())
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
                return (.label(text), classIndex(text))
            case .number:
                if let index = numericClasses[n.number] { return (.label(schema.classes[index]), index) }
                let text = tape.numberText(node)
                return (.label(text), classIndex(text))
            case .bool:
                let text = n.flag ? "true" : "false"
                return (.label(text), classIndex(text))
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
        _ tape: JSONTape, _ node: Int, _ rows: inout Rows, _ row: Int, _ place: @autoclosure () -> String
    )
        throws(CaptureError)
    {
        switch tape.nodes[node].kind {
        case .array:
            try predictionRow(tape, .elements(of: node, tape), &rows, row, place())
        case .object:
            let named = tape.member(node, "prediction") ?? tape.member(node, "label")
            if let score = tape.member(node, "score") {
                rows.info[row].score = try number(tape, score, "\(place()).score")
            }
            if let probabilities = tape.member(node, "probabilities") {
                try self.probabilities(tape, probabilities, &rows, row, "\(place()).probabilities")
            }
            if let named {
                try setOutcome(tape, named, &rows, row, place())
            } else if rows.info[row].hasProbabilities {
                setArgmax(&rows, row)
            } else if tape.nodes[node].count == 1, tape.nodes[node + 2].kind != .object {
                try prediction(tape, node + 2, &rows, row, place())
            } else {
                throw CaptureError(.missingField, "\(place()) has no 'prediction', 'label' or 'probabilities'")
            }
        default:
            try setOutcome(tape, node, &rows, row, place())
        }
    }

    /// A prediction given as the values of one row (an array entry, a v2 output row).
    func predictionRow(
        _ tape: JSONTape, _ values: ValueRun, _ rows: inout Rows, _ row: Int, _ place: @autoclosure () -> String
    )
        throws(CaptureError)
    {
        if values.count == 1 {
            try setOutcome(tape, values.first, &rows, row, place())
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
        _ tape: JSONTape, _ node: Int, _ rows: inout Rows, _ row: Int, _ place: @autoclosure () -> String
    )
        throws(CaptureError)
    {
        guard let (outcome, index) = try outcome(tape, node, place()) else {
            throw CaptureError(.missingField, "\(place()): the prediction is null")
        }
        rows.info[row].prediction = outcome
        rows.info[row].predictionClass = index
    }

    /// The prediction is the class of highest probability (the first on a tie).
    func setArgmax(_ rows: inout Rows, _ row: Int) {
        let base = row * rows.classCount
        var best = 0
        for i in 1..<rows.classCount where rows.probabilities[base + i] > rows.probabilities[base + best] { best = i }
        rows.info[row].prediction = .label(schema.classes[best])
        rows.info[row].predictionClass = best
    }

    /// Probabilities as an array in class order or an object class → probability, each in [0, 1], every class.
    func probabilities(
        _ tape: JSONTape, _ node: Int, _ rows: inout Rows, _ row: Int, _ place: @autoclosure () -> String
    )
        throws(CaptureError)
    {
        guard isClassification else {
            throw CaptureError(.invalidValue, "\(place()): probabilities given for a regression model")
        }
        switch tape.nodes[node].kind {
        case .array:
            let values = ValueRun.elements(of: node, tape)
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
                guard let index = classIndex(name) else {
                    throw CaptureError(.shapeMismatch, "\(place()) has unknown class '\(name)'")
                }
                guard !given[index] else {
                    throw CaptureError(.shapeMismatch, "\(place()) gives class '\(name)' twice")
                }
                given[index] = true
                rows.setProbability(try probability(tape, value, place()), row: row, index: index)
                seen += 1
            }
            guard seen == rows.classCount else {
                throw CaptureError(.shapeMismatch, "\(place()) has \(seen) classes of \(rows.classCount)")
            }
            rows.info[row].hasProbabilities = true
        case .null:
            return
        default:
            throw CaptureError(.invalidValue, "\(place()) must be an array or an object")
        }
    }

    func setProbabilities(
        _ tape: JSONTape, _ values: ValueRun, _ rows: inout Rows, _ row: Int, _ place: @autoclosure () -> String
    )
        throws(CaptureError)
    {
        var value = values.first
        for i in 0..<values.count {
            rows.setProbability(try probability(tape, value, place()), row: row, index: i)
            value = tape.after(value, leaves: values.leaves)
        }
        rows.info[row].hasProbabilities = true
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
