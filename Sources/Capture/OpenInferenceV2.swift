import Ingestion

/// One input or output tensor of an Open Inference Protocol v2 body, its data flattened row-major.
struct Tensor {
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
            throw CaptureError(.unsupported, "\(place) uses the binary data extension")
        }
        guard let datatype = tape.member(node, "datatype"), tape.nodes[datatype].kind == .string else {
            throw CaptureError(.missingField, "\(place) has no 'datatype'")
        }
        self.datatype = tape.string(datatype)
        guard Tensor.datatypes.contains(self.datatype) else {
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
        Tensor.flatten(tape, data, into: &values)
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
    static func list(_ tape: JSONTape, _ member: String, _ place: String) throws(CaptureError) -> [Tensor] {
        guard let list = tape.member(0, member), tape.nodes[list].kind == .array, tape.nodes[list].count > 0 else {
            throw CaptureError(.missingField, "\(place) has no '\(member)'")
        }
        var tensors: [Tensor] = []
        for (i, node) in tape.elements(list).enumerated() {
            tensors.append(try Tensor(tape, node, "\(place) \(member)[\(i)]"))
        }
        return tensors
    }
}

extension CaptureDecoder {
    /// Open Inference Protocol v2: one event per row (`shape[0]`) of the inputs; an input per feature (by name,
    /// shape `[N]` or `[N, 1]`; other names counted unknown) or one input `[N, F]` in the schema's feature order
    /// (an input not named after a feature, of rank 2 or more, or of rank 1 for a one-feature model); outputs by
    /// ``OutputNames``; `model_version` is the version.
    func decodeOpenInferenceV2(_ request: JSONTape, _ response: JSONTape, _ rows: inout Rows) throws(CaptureError) {
        if request.member(0, "parameters").flatMap({ request.member($0, "binary_data_output") }).map({
            request.nodes[$0].kind == .bool && request.nodes[$0].flag
        }) == true {
            throw CaptureError(.unsupported, "request asks for binary outputs (binary data extension)")
        }
        for output in request.member(0, "outputs").map(request.elements) ?? [] {
            if let parameters = request.member(output, "parameters"),
                let binary = request.member(parameters, "binary_data"),
                request.nodes[binary].kind == .bool, request.nodes[binary].flag
            {
                throw CaptureError(.unsupported, "request asks for binary outputs (binary data extension)")
            }
        }
        let inputs = try Tensor.list(request, "inputs", "request")
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
    }

    private func checkBytes(_ input: Tensor, _ index: Int) throws(CaptureError) {
        if input.isBytes && reader.featureIsNumeric[index] {
            throw CaptureError(
                .unsupported,
                "request input '\(input.name)' is BYTES for numeric feature '\(schema.features[index].name)'")
        }
    }

    private func decodeOutputs(_ response: JSONTape, _ rows: inout Rows) throws(CaptureError) {
        let tensors = try Tensor.list(response, "outputs", "response")
        for tensor in tensors where tensor.rows != rows.count {
            throw CaptureError(
                .rowCountMismatch, "\(rows.count) request rows but output '\(tensor.name)' has \(tensor.rows)")
        }
        if let version = response.member(0, "model_version"),
            let text = try reader.text(response, version, "response 'model_version'")
        {
            for row in 0..<rows.count { rows.versions[row] = text }
        }
        let prediction: Tensor?
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
