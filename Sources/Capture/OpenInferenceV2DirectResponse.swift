import Ingestion

extension CaptureDecoder {
    /// The response: `outputs` read by ``OutputNames`` as ``decodeOpenInferenceV2(_:_:_:binaryRead:)`` reads them,
    /// `model_version` the version, other members skipped; then the predictions of rows given probabilities only.
    func directResponse(_ s: inout Scanner, _ state: inout DirectV2State, _ rows: inout Rows) throws(Fallback) {
        state.readingResponse = true
        try s.consume(0x7B)
        var outputs = false
        var versionRead = false
        var version: String?
        if !s.take(0x7D) {
            repeat {
                let key = try s.plainKey()
                switch key.end &- key.start {
                case 7 where s.token(key, is: "outputs"):
                    guard !outputs else { throw Fallback() }
                    outputs = true
                    try s.consume(0x5B)
                    repeat {
                        var tensor = DirectTensor()
                        try directTensor(&s, &tensor, 0, &state, &rows)
                    } while try s.moreElements()
                case 13 where s.token(key, is: "model_version"):
                    guard !versionRead else { throw Fallback() }
                    versionRead = true
                    version = try directText(&s)
                default:
                    try s.skip(depth: 2)
                }
            } while try s.moreMembers()
        }
        try s.finish()
        guard outputs, state.predictionFound || self.outputs.prediction == nil else {
            throw Fallback()
        }
        if let version {
            for row in 0..<rows.count { rows.info[row].version = version }
        }
        let probabilities = state.probabilitiesRead || state.predictionWidth > 1
        if probabilities {
            for row in 0..<rows.count {
                rows.info[row].hasProbabilities = true
                if state.predictionWidth != 1 { reader.setArgmax(&rows, row) }
            }
        } else if !state.predictionFound && rows.count > 0 {
            throw Fallback()  // no prediction
        }
    }

    /// The role of an output tensor (``OutputNames``: the first of a name has it, the prediction's name has no
    /// other) and the checks of its shape that role makes.
    func directOutputSink(
        _ s: Scanner, _ tensor: DirectTensor, _ state: inout DirectV2State, _ rows: Rows
    ) throws(Fallback) -> LeafSink {
        guard tensor.rows == rows.count, isASCII(s.raw(tensor.name!)) else { throw Fallback() }
        let isScore = directNamed(s, tensor.name!, outputNameBytes.score)
        let isProbabilities = directNamed(s, tensor.name!, outputNameBytes.probabilities)
        var isNamedPrediction = false
        var prediction = false
        if let name = outputNameBytes.prediction {
            isNamedPrediction = s.token(tensor.name!, isBytes: name)
            prediction = isNamedPrediction && !state.predictionFound
        } else {
            prediction = !isScore && !isProbabilities && !state.predictionFound
        }
        var probabilities = false
        if isProbabilities && !state.probabilitiesFound {
            state.probabilitiesFound = true
            probabilities = !isNamedPrediction
        }
        var score = false
        if isScore && !state.scoreFound {
            state.scoreFound = true
            score = !isNamedPrediction
        }
        if prediction {
            state.predictionFound = true
            state.predictionWidth = tensor.width
            // No rows: the tape path reads no value of it, whatever its width.
            if tensor.width == 1 || rows.count == 0 { return .outcome }
            guard reader.isClassification, tensor.width == rows.classCount else { throw Fallback() }
            return .probabilities  // over those of a probabilities output, as the tape path reads them
        }
        if probabilities {
            // A tensor both probabilities and score (names listed in both) is left to the tape path.
            guard !score, reader.isClassification, tensor.width == rows.classCount else { throw Fallback() }
            state.probabilitiesRead = true
            // After a prediction given as probabilities, which the tape path reads last: checked, not kept.
            return state.predictionWidth > 1 ? .probabilityCheck : .probabilities
        }
        if score {
            guard tensor.width == 1 else { throw Fallback() }
            return .score
        }
        return .none
    }

    /// Whether the name `token` is one of `names`.
    private func directNamed(_ s: Scanner, _ token: StringToken, _ names: [[UInt8]]) -> Bool {
        for name in names where s.token(token, isBytes: name) { return true }
        return false
    }

    /// An attribute-like text as ``ValueReader/text(_:_:_:)`` reads it (nil for null); containers fall back.
    private func directText(_ s: inout Scanner) throws(Fallback) -> String? {
        switch s.nextByte() {
        case 0x22:
            return try s.stringText()
        case 0x2D, 0x30...0x39:
            let n = try s.numberToken()
            return s.text(n.start, n.end)
        case 0x74, 0x66, 0x6E:
            guard let flag = try s.literalValue() else { return nil }
            return flag ? "true" : "false"
        default:
            throw Fallback()
        }
    }
}
