import Ingestion

/// What the direct reader of one v2 exchange has learnt so far: the request's inputs, then the response's roles.
struct DirectV2State {
    /// The first input is not named after a feature and may be the single `[N, F]` input
    /// (``CaptureDecoder/decodeOpenInferenceV2(_:_:_:binaryRead:)``'s rule: rank 2 or more, or a one-feature model).
    var firstMayBeSingle = false
    /// The first input's leaves were read as the features (its width is the feature count); undone if a second
    /// input follows. Refused: one of its values is no feature value (a failure if it is the single input).
    var firstReadAsSingle = false
    var firstRefused = false
    var firstIsBytes = false
    /// Inputs not named after a feature (counted unknown unless the first is the single input).
    var unknownInputs = 0
    /// Response: an output named as the prediction, the probabilities, the score was met (the first of each name
    /// has the role), and the prediction's width when it is one.
    var predictionFound = false
    var probabilitiesFound = false
    var scoreFound = false
    var predictionWidth = 0
    var probabilitiesRead = false
    /// The request is read: tensors are outputs now.
    var readingResponse = false
}

extension CaptureDecoder {
    /// Whether the direct reader may be tried at all: the v2 protocol, output names in ASCII (a tensor's name is then
    /// equal to one exactly when its bytes are), a classifier with classes, a schema with features.
    static func canReadV2Directly(_ protocol: CaptureProtocol, _ schema: Schema, _ outputs: OutputNames) -> Bool {
        let names = (outputs.prediction.map { [$0] } ?? []) + outputs.score + outputs.probabilities
        return `protocol` == .openInferenceV2 && names.allSatisfy { $0.utf8.allSatisfy { $0 < 0x80 } }
            && !schema.features.isEmpty && (schema.task == .regression || !schema.classes.isEmpty)
    }

    /// Open Inference Protocol v2 read from the bodies' bytes in one pass each, without a tape, for the common
    /// forms; the same rows as ``decodeOpenInferenceV2(_:_:_:binaryRead:)`` in `rows`, or false (`rows` then meaningless) for
    /// anything else: invalid JSON, any error of the tape path, repeated keys it reads, escapes in what it compares,
    /// names it cannot compare by bytes. A body of more bytes than ``maxValues`` is left to the tape path too (its
    /// bound is on values, never more than bytes).
    ///
    /// A request with the bytes of the one `shape` keeps but for its short numbers is read by replaying that one
    /// (``RequestShape/replay(_:_:_:)``); one read in full is kept there in its place when it can be replayed.
    func decodeOpenInferenceV2Directly(
        _ request: UnsafeRawBufferPointer, _ response: UnsafeRawBufferPointer, _ rows: inout Rows,
        _ shape: inout RequestShape
    ) -> Bool {
        guard readsV2Directly, request.count <= maxValues, response.count <= maxValues else { return false }
        let requestBytes = request.assumingMemoryBound(to: UInt8.self)
        var state = DirectV2State()
        do {
            if !shape.replay(requestBytes, &rows, &state) {
                rows.begin()
                if request.count > RequestShape.maxBytes { rows.leafLog.refuse() }  // too long to keep: not logged
                state = DirectV2State()
                var s = Scanner(requestBytes)
                try directRequest(&s, &state, &rows)
                shape.keep(requestBytes, &rows, state)
                s = Scanner(response.assumingMemoryBound(to: UInt8.self))
                try directResponse(&s, &state, &rows)
                return true
            }
            var s = Scanner(response.assumingMemoryBound(to: UInt8.self))
            try directResponse(&s, &state, &rows)
            return true
        } catch {
            return false
        }
    }

    /// The request: `inputs` read, `parameters` and `outputs` checked for the binary data extension, other members
    /// skipped.
    private func directRequest(
        _ s: inout Scanner, _ state: inout DirectV2State, _ rows: inout Rows
    )
        throws(Fallback)
    {
        try s.consume(0x7B)
        var inputs = 0
        var parameters = false
        var outputs = false
        var idRead = false
        var id: String?
        if !s.take(0x7D) {
            repeat {
                let key = try s.plainKey()
                switch key.end &- key.start {
                case 2 where s.token(key, is: "id"):
                    guard !idRead else { throw Fallback() }
                    idRead = true
                    // A string is the request's id; another value is none (as on the tape path).
                    if s.nextByte() == 0x22 { id = try s.stringText() } else { try s.skip(depth: 2) }
                case 6 where s.token(key, is: "inputs"):
                    guard inputs == 0 else { throw Fallback() }
                    inputs = try directInputs(&s, &state, &rows)
                case 10 where s.token(key, is: "parameters"):
                    guard !parameters else { throw Fallback() }
                    parameters = true
                    try s.skip(depth: 2)  // binary output flags are requests a server may ignore
                case 7 where s.token(key, is: "outputs"):
                    guard !outputs else { throw Fallback() }
                    outputs = true
                    try s.skip(depth: 2)
                default:
                    try s.skip(depth: 2)
                }
            } while try s.moreMembers()
        }
        try s.finish()
        guard inputs > 0 else { throw Fallback() }
        if inputs == 1 && state.firstMayBeSingle {
            guard state.firstReadAsSingle, !state.firstRefused,
                !(state.firstIsBytes && reader.featureIsNumeric.contains(true))
            else {
                throw Fallback()
            }
        } else if state.unknownInputs > 0 {
            for row in 0..<rows.count { rows.info[row].unknownFeatures = state.unknownInputs }
        }
        if let id { rows.setRequestID(id) }
    }

    /// The request's `inputs` (a non-empty list); returns their count.
    private func directInputs(
        _ s: inout Scanner, _ state: inout DirectV2State, _ rows: inout Rows
    )
        throws(Fallback) -> Int
    {
        try s.consume(0x5B)
        var index = 0
        repeat {
            if index == 1 && state.firstReadAsSingle {
                // Not the single input after all: its values were no features.
                for i in rows.features.indices { rows.features[i] = .missing }
                rows.leafLog.refuse()
                state.firstReadAsSingle = false
            }
            var tensor = DirectTensor()
            try directTensor(&s, &tensor, index, &state, &rows)
            if index == 0 {
                state.firstIsBytes = tensor.isBytes
                state.firstRefused = !tensor.valuesTaken
            }
            // A BYTES input for a numeric feature (its datatype may follow its data).
            if tensor.isBytes, let feature = schema.featureIndex(utf8: s.raw(tensor.name!)),
                reader.featureIsNumeric[feature]
            {
                throw Fallback()
            }
            index += 1
        } while try s.moreElements()
        return index
    }

    /// Where the leaves of `tensor` go, as ``decodeOpenInferenceV2(_:_:_:binaryRead:)`` maps them, and the checks of its
    /// header that the mapping makes; for the first input, the rows are set up here (its `shape[0]`).
    func directSink(
        _ s: Scanner, _ tensor: DirectTensor, _ index: Int, _ state: inout DirectV2State, _ rows: inout Rows
    ) throws(Fallback) -> LeafSink {
        if state.readingResponse { return try directOutputSink(s, tensor, &state, rows) }
        if index == 0 {
            guard tensor.rows <= maxRows else { throw Fallback() }
            rows.reset(count: tensor.rows)
        } else {
            guard tensor.rows == rows.count else { throw Fallback() }
        }
        let name = s.raw(tensor.name!)
        if let feature = schema.featureIndex(utf8: name) {
            guard tensor.width == 1 else { throw Fallback() }
            return .column(feature)
        }
        guard reader.featureNamesAreASCII && isASCII(name) else { throw Fallback() }
        state.unknownInputs += 1
        if index == 0 && (tensor.rank >= 2 || rows.featureCount == 1) {
            state.firstMayBeSingle = true
            if tensor.width == rows.featureCount {
                state.firstReadAsSingle = true
                return .matrix
            }
        }
        return .none
    }
}
