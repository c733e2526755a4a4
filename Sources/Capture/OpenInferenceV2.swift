import Ingestion

/// One input or output tensor of an Open Inference Protocol v2 body, read in place: node indices into the tape and
/// the shape's figures, no copies (the name and shape are made into values only for messages).
struct Tensor {
    /// The tensor's `name` (a string node) and `shape` (an array node of integers).
    var nameNode: Int
    var shapeNode: Int
    /// `shape[0]`.
    var rows: Int
    /// The values per row: the product of the other dimensions.
    var width: Int
    var isBytes: Bool
    /// The data's first leaf: its values follow row-major (``ValueRun/leaves``).
    var firstLeaf: Int

    /// The datatypes of the protocol.
    static let datatypes: [StaticString] = [
        "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64",
        "BF16", "BYTES",
    ]
    /// ``datatypes`` packed (``Scanner/packed(_:)-swift.method``), in the same order: what the direct reader's switch
    /// (``isBytes(packed:)``) is checked against.
    static let datatypeKeys: [UInt64] = datatypes.map { Scanner.packed($0) }

    /// Whether the datatype packed as `key` (``datatypeKeys``) is BYTES; nil when it is none of ``datatypes``. A switch
    /// over the packed names as constants (PackedNameTests checks them against ``datatypeKeys``): reading
    /// ``datatypeKeys``, a global made on first use, cost a check of its initialization and a retain per tensor, then a
    /// scan of up to 14 keys.
    @inline(__always)
    static func isBytes(packed key: UInt64) -> Bool? {
        switch key {
        case 0x4C4F_4F42,  // BOOL
            0x38_544E_4955,  // UINT8
            0x3631_544E_4955,  // UINT16
            0x3233_544E_4955,  // UINT32
            0x3436_544E_4955,  // UINT64
            0x3854_4E49,  // INT8
            0x36_3154_4E49,  // INT16
            0x32_3354_4E49,  // INT32
            0x34_3654_4E49,  // INT64
            0x3631_5046,  // FP16
            0x3233_5046,  // FP32
            0x3436_5046,  // FP64
            0x3631_4642:  // BF16
            false
        case 0x53_4554_5942: true  // BYTES
        default: nil
        }
    }

    func name(_ tape: JSONTape) -> String { tape.string(nameNode) }

    /// The shape, for messages.
    func shape(_ tape: JSONTape) -> [Int] {
        var shape: [Int] = []
        var d = shapeNode + 1
        for _ in 0..<tape.nodes[shapeNode].count {
            shape.append(Int(tape.nodes[d].number))
            d = tape.nodes[d].next
        }
        return shape
    }

    /// `width` leaves from `leaf`.
    func run(_ leaf: Int) -> ValueRun { ValueRun(first: leaf, count: width, leaves: true) }

    /// The tensor at `node`, entry `index` of the list `member`; `place` names the body in errors (e.g. `request`).
    /// `binaryRead`: the body's binary tensors were given their data (``BinaryTensorBody``); otherwise a tensor with
    /// `binary_data_size` is refused (its data is not in the body).
    init(
        _ tape: JSONTape, _ node: Int, _ place: String, _ member: String, _ index: Int, binaryRead: Bool
    ) throws(CaptureError) {
        let list = { "\(place) \(member)[\(index)]" }
        guard tape.nodes[node].kind == .object else {
            throw CaptureError(.shapeMismatch, "\(list()) is not an object")
        }
        guard let name = tape.member(node, "name"), tape.nodes[name].kind == .string else {
            throw CaptureError(.missingField, "\(list()) has no 'name'")
        }
        nameNode = name
        let place = { "\(list()) '\(tape.string(name))'" }
        if !binaryRead, let parameters = tape.member(node, "parameters"),
            tape.member(parameters, "binary_data_size") != nil
        {
            throw CaptureError(.shapeMismatch, "\(place()) has binary_data_size but no binary data follows the JSON")
        }
        guard let datatype = tape.member(node, "datatype"), tape.nodes[datatype].kind == .string else {
            throw CaptureError(.missingField, "\(place()) has no 'datatype'")
        }
        guard let type = Tensor.datatype(tape, datatype) else {
            throw CaptureError(.unsupported, "\(place()) has datatype '\(tape.string(datatype))'")
        }
        isBytes = type == Tensor.datatypes.count - 1
        guard let shape = tape.member(node, "shape"), tape.nodes[shape].kind == .array else {
            throw CaptureError(.missingField, "\(place()) has no 'shape'")
        }
        shapeNode = shape
        var expected = 1
        rows = 0
        width = 1
        var d = shape + 1
        for dimension in 0..<tape.nodes[shape].count {
            let n = tape.nodes[d]
            guard n.kind == .number, n.flag, n.number >= 0, n.number < 1e15 else {
                throw CaptureError(.shapeMismatch, "\(place()) 'shape' must list non-negative integers")
            }
            let value = Int(n.number)
            expected = expected.multipliedReportingOverflow(by: value).partialValue
            if dimension == 0 {
                rows = value
            } else {
                width = width.multipliedReportingOverflow(by: value).partialValue
            }
            d = n.next
        }
        guard tape.nodes[shape].count > 0 else { throw CaptureError(.shapeMismatch, "\(place()) has an empty 'shape'") }
        guard let data = tape.member(node, "data") else {
            throw CaptureError(.missingField, "\(place()) has no 'data'")
        }
        // The leaves as `Tensor.flatten` listed them: every node of the data that is not an array, in order.
        let end = tape.nodes[data].next
        var leaf = data
        while leaf < end && tape.nodes[leaf].kind == .array { leaf += 1 }
        firstLeaf = leaf
        var count = 0
        while leaf < end {
            count += 1
            leaf = tape.after(leaf, leaves: true)
        }
        guard count == expected else {
            throw CaptureError(
                .shapeMismatch, "\(place()) has \(count) values for shape \(self.shape(tape)) (\(expected))")
        }
    }

    /// The index in ``datatypes`` of the string node `node`, nil when it is none of them.
    static func datatype(_ tape: JSONTape, _ node: Int) -> Int? {
        guard !tape.nodes[node].flag else {
            let text = tape.string(node)
            return datatypes.firstIndex { $0.description == text }
        }
        let bytes = tape.rawBytes(node)
        for (i, type) in datatypes.enumerated() where type.utf8CodeUnitCount == bytes.count {
            if bytes.elementsEqual(UnsafeBufferPointer(start: type.utf8Start, count: type.utf8CodeUnitCount)) {
                return i
            }
        }
        return nil
    }

    /// The tensors of the list at `member` of the root; missing or empty is ``CaptureFailure/missingField``.
    static func list(
        _ tape: JSONTape, _ member: String, _ place: String, binaryRead: Bool
    ) throws(CaptureError) -> TensorList {
        guard let list = tape.member(0, member), tape.nodes[list].kind == .array, tape.nodes[list].count > 0 else {
            throw CaptureError(.missingField, "\(place) has no '\(member)'")
        }
        var tensors = TensorList()
        var node = list + 1
        for i in 0..<tape.nodes[list].count {
            tensors.append(try Tensor(tape, node, place, member, i, binaryRead: binaryRead))
            node = tape.nodes[node].next
        }
        return tensors
    }
}

/// A list of tensors, the first four stored inline (bodies rarely have more: no allocation).
struct TensorList: RandomAccessCollection {
    private var inline: (Tensor?, Tensor?, Tensor?, Tensor?) = (nil, nil, nil, nil)
    private var more: [Tensor] = []
    private(set) var count = 0

    var startIndex: Int { 0 }
    var endIndex: Int { count }

    subscript(index: Int) -> Tensor {
        switch index {
        case 0: inline.0!
        case 1: inline.1!
        case 2: inline.2!
        case 3: inline.3!
        default: more[index - 4]
        }
    }

    mutating func append(_ tensor: Tensor) {
        switch count {
        case 0: inline.0 = tensor
        case 1: inline.1 = tensor
        case 2: inline.2 = tensor
        case 3: inline.3 = tensor
        default: more.append(tensor)
        }
        count += 1
    }
}

extension CaptureDecoder {
    /// Open Inference Protocol v2: one event per row (`shape[0]`) of the inputs; an input per feature (by name,
    /// shape `[N]` or `[N, 1]`; other names counted unknown) or one input `[N, F]` in the schema's feature order
    /// (an input not named after a feature, of rank 2 or more, or of rank 1 for a one-feature model); outputs by
    /// ``OutputNames``; `model_version` is the version; the request's `id` (a non-empty string of at most 256 bytes:
    /// tritonclient's `request_id`) is the rows' id, `<id>/<row>` for a batch of several rows.
    ///
    /// A request that asks for binary outputs (`binary_data_output`, an output's `binary_data`: tritonclient's
    /// defaults) is read like any other: the flags are requests a server may ignore (MLServer does); tensors sent in
    /// the binary tensor extension (`binary_data_size`) were made JSON tensors before (``BinaryTensorBody``).
    /// `binaryRead` says of each body whether its binary tensors were given their data (``BinaryTensorBody``).
    func decodeOpenInferenceV2(
        _ request: JSONTape, _ response: JSONTape, _ rows: inout Rows, binaryRead: (Bool, Bool) = (false, false)
    ) throws(CaptureError) {
        try decodeInputs(request, Tensor.list(request, "inputs", "request", binaryRead: binaryRead.0), &rows)
        try decodeOutputs(response, Tensor.list(response, "outputs", "response", binaryRead: binaryRead.1), &rows)
        if let id = request.member(0, "id"), request.nodes[id].kind == .string { rows.setRequestID(request.string(id)) }
    }

    private func decodeInputs(
        _ request: JSONTape, _ inputs: TensorList, _ rows: inout Rows
    ) throws(CaptureError) {
        let count = inputs[0].rows
        for input in inputs where input.rows != count {
            throw CaptureError(
                .shapeMismatch,
                "request input '\(input.name(request))' has \(input.rows) rows, '\(inputs[0].name(request))' \(count)")
        }
        try checkRowCount(count)
        rows.reset(count: count)
        let single = inputs[0]
        if inputs.count == 1 && reader.featureIndex(request, single.nameNode) == nil
            && (request.nodes[single.shapeNode].count >= 2 || rows.featureCount == 1)
        {
            guard single.width == rows.featureCount else {
                throw CaptureError(
                    .shapeMismatch,
                    "request input '\(single.name(request))' has \(single.width) values per row for \(rows.featureCount) features"
                )
            }
            for index in 0..<rows.featureCount { try checkBytes(request, single, index) }
            var leaf = single.firstLeaf
            for row in 0..<count {
                for index in 0..<rows.featureCount {
                    rows.features[row * rows.featureCount + index] = try reader.feature(
                        request, leaf, index, "request input '\(single.name(request))' row \(row)")
                    leaf = request.after(leaf, leaves: true)
                }
            }
        } else {
            for input in inputs {
                guard let index = reader.featureIndex(request, input.nameNode) else {
                    for row in 0..<count { rows.info[row].unknownFeatures += 1 }
                    continue
                }
                guard input.width == 1 else {
                    throw CaptureError(
                        .shapeMismatch,
                        "request input '\(input.name(request))' has shape \(input.shape(request)): expected [N] or [N, 1]"
                    )
                }
                try checkBytes(request, input, index)
                var leaf = input.firstLeaf
                for row in 0..<count {
                    rows.features[row * rows.featureCount + index] = try reader.feature(
                        request, leaf, index, "request input '\(input.name(request))' row \(row)")
                    leaf = request.after(leaf, leaves: true)
                }
            }
        }
    }

    private func checkBytes(_ tape: JSONTape, _ input: Tensor, _ index: Int) throws(CaptureError) {
        if input.isBytes && reader.featureIsNumeric[index] {
            throw CaptureError(
                .unsupported,
                "request input '\(input.name(tape))' is BYTES for numeric feature '\(schema.features[index].name)'")
        }
    }

    /// The first tensor whose name is one of `names`.
    private func first(
        _ tape: JSONTape, _ tensors: TensorList, in names: [String]
    ) -> Tensor? {
        tensors.first { tensor in names.contains { tape.string(tensor.nameNode, is: $0) } }
    }

    private func decodeOutputs(
        _ response: JSONTape, _ tensors: TensorList, _ rows: inout Rows
    ) throws(CaptureError) {
        for tensor in tensors where tensor.rows != rows.count {
            throw CaptureError(
                .rowCountMismatch,
                "\(rows.count) request rows but output '\(tensor.name(response))' has \(tensor.rows)")
        }
        if let version = response.member(0, "model_version"),
            let text = try reader.text(response, version, "response 'model_version'")
        {
            for row in 0..<rows.count { rows.info[row].version = text }
        }
        let prediction: Tensor?
        if let name = outputs.prediction {
            guard let found = tensors.first(where: { response.string($0.nameNode, is: name) }) else {
                throw CaptureError(.missingField, "response has no output '\(name)'")
            }
            prediction = found
        } else {
            prediction = tensors.first { tensor in
                !outputs.score.contains { response.string(tensor.nameNode, is: $0) }
                    && !outputs.probabilities.contains { response.string(tensor.nameNode, is: $0) }
            }
        }
        /// Whether `tensor` has the prediction's name.
        func isPrediction(_ tensor: Tensor) -> Bool {
            guard let prediction else { return false }
            return response.string(tensor.nameNode, equals: prediction.nameNode)
        }
        if let probabilities = first(response, tensors, in: outputs.probabilities), !isPrediction(probabilities) {
            guard reader.isClassification else {
                throw CaptureError(
                    .invalidValue,
                    "response output '\(probabilities.name(response))': probabilities for a regression model")
            }
            guard probabilities.width == rows.classCount else {
                throw CaptureError(
                    .shapeMismatch,
                    "response output '\(probabilities.name(response))' has \(probabilities.width) values per row for \(rows.classCount) classes"
                )
            }
            var leaf = probabilities.firstLeaf
            for row in 0..<rows.count {
                try reader.setProbabilities(
                    response, probabilities.run(leaf), &rows, row,
                    "response output '\(probabilities.name(response))' row \(row)")
                for _ in 0..<probabilities.width { leaf = response.after(leaf, leaves: true) }
            }
        }
        if let score = first(response, tensors, in: outputs.score), !isPrediction(score) {
            guard score.width == 1 else {
                throw CaptureError(
                    .shapeMismatch,
                    "response output '\(score.name(response))' has shape \(score.shape(response)): expected [N] or [N, 1]"
                )
            }
            var leaf = score.firstLeaf
            for row in 0..<rows.count {
                rows.info[row].score = try reader.number(
                    response, leaf, "response output '\(score.name(response))' row \(row)")
                leaf = response.after(leaf, leaves: true)
            }
        }
        if let prediction {
            var leaf = prediction.firstLeaf
            for row in 0..<rows.count {
                try reader.predictionRow(
                    response, prediction.run(leaf), &rows, row,
                    "response output '\(prediction.name(response))' row \(row)")
                for _ in 0..<prediction.width { leaf = response.after(leaf, leaves: true) }
            }
        } else {
            for row in 0..<rows.count where rows.info[row].hasProbabilities { reader.setArgmax(&rows, row) }
        }
        try rows.checkPredictions()
    }
}
