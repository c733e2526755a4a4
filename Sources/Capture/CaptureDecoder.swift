import Ingestion

/// Decodes one model-server exchange (the request's JSON body, the response's, the request's headers) of a given
/// ``CaptureProtocol`` into prediction events shaped for a model's ``Schema``. No I/O; one decoder may be used from
/// several threads at once. Its only state is the workspace its exchanges are decoded in (``DecodeScratch``: arrays
/// and an event reused, lent to one exchange at a time without a lock), which changes no result.
///
/// docs/proxy.md "Protocols" gives each protocol's mapping with examples.
public struct CaptureDecoder: Sendable {
    /// The protocol read.
    public let `protocol`: CaptureProtocol
    /// The schema events are shaped for.
    public let schema: Schema
    /// The output tensor names used by ``CaptureProtocol/openInferenceV2``.
    public let outputs: OutputNames
    /// The most rows one exchange may have; more is ``CaptureFailure/tooManyRows`` (default 10,000).
    public var maxRows = 10_000
    /// The most JSON text a body of the v2 binary tensor extension is rewritten to (``BinaryTensorBody``; default
    /// 64 MiB, the most a captured body may inflate to): beyond it the exchange is ``CaptureFailure/tooManyRows``, so
    /// that decoding a binary body never costs more than the largest JSON body taken (a BYTES element of control
    /// bytes is 6 times its size as text).
    public var maxBinaryTextBytes = 64 << 20

    let reader: ValueReader
    /// The workspace exchanges are decoded in (shared by the decoder's copies).
    let scratch: DecodeScratch
    let mapping: CompiledMapping?
    /// The UTF-8 bytes of ``outputs``' names, which the direct v2 reader compares tensor names with.
    let outputNameBytes: (prediction: [UInt8]?, score: [[UInt8]], probabilities: [[UInt8]])
    /// Whether v2 exchanges are first read from their bytes (``decodeOpenInferenceV2Directly(_:_:_:)``), the tape
    /// path reading only those it leaves; set where the configuration allows it. Tests turn it off to compare.
    var readsV2Directly: Bool

    /// Checks the configuration: `custom` is required for (and only for) ``CaptureProtocol/custom``, with a
    /// prediction pointer; its feature and attribute names must be the schema's and its pointers valid. The error
    /// names the field (`custom.features.age`, `custom.prediction`…).
    public init(
        protocol: CaptureProtocol, schema: Schema, custom: CustomMapping? = nil, outputs: OutputNames = .init()
    ) throws(CaptureConfigError) {
        self.protocol = `protocol`
        self.schema = schema
        self.outputs = outputs
        reader = ValueReader(schema: schema)
        scratch = DecodeScratch(schema: schema)
        outputNameBytes = (
            outputs.prediction.map { Array($0.utf8) }, outputs.score.map { Array($0.utf8) },
            outputs.probabilities.map { Array($0.utf8) }
        )
        readsV2Directly = Self.canReadV2Directly(`protocol`, schema, outputs)
        switch (`protocol`, custom) {
        case (.custom, nil):
            throw CaptureConfigError(field: "custom", message: "protocol 'custom' needs a mapping")
        case (.custom, let custom?):
            mapping = try CompiledMapping(custom, schema: schema)
        case (_, nil):
            mapping = nil
        case (_, .some):
            throw CaptureConfigError(
                field: "custom", message: "a mapping is only read for protocol 'custom', not '\(`protocol`.rawValue)'")
        }
    }

    /// Decodes one exchange: `request`/`response` are the JSON bodies, `headers` the request's (names lower-case).
    ///
    /// Calls `body` once per row, in row order, with one reused event shaped for the schema: features in the
    /// schema's order (names the schema does not declare counted in ``PredictionEvent/unknownFeatureCount``),
    /// the prediction (``Outcome/label(_:)`` for classification, ``Outcome/number(_:)`` for regression), score,
    /// probabilities and version when the protocol carries them (empty version otherwise), the id when mapped.
    /// `timestamp`, `latencySeconds` and `status` are left for the caller to set. Returns the number of rows.
    ///
    /// Throws for the whole exchange, before any row is delivered: the exchange is decoded fully first.
    public func decode(
        request: UnsafeRawBufferPointer, response: UnsafeRawBufferPointer, headers: [(name: String, value: String)],
        _ body: (inout PredictionEvent) -> Void
    ) throws(CaptureError) -> Int {
        try decode(request: request, response: response, headers: headers) { event, _, _ in body(&event) }
    }

    /// ``decode(request:response:headers:_:)`` whose `body` is also given the row's index and the exchange's row
    /// count (known before the first row is delivered): a caller that names rows after their count records each row as
    /// it comes, holding no copy of the first.
    public func decode(
        request: UnsafeRawBufferPointer, response: UnsafeRawBufferPointer, headers: [(name: String, value: String)],
        rows body: (_ event: inout PredictionEvent, _ row: Int, _ count: Int) -> Void
    ) throws(CaptureError) -> Int {
        if let box = scratch.take() {
            defer { scratch.give(box) }
            return try decode(
                request, response, headers, in: &box._withUnsafeGuaranteedRef { $0.workspace }.pointee, body)
        }
        var workspace = Workspace(schema: schema)
        return try decode(request, response, headers, in: &workspace, body)
    }

    /// ``decode(request:response:headers:rows:)`` in `workspace` (an earlier exchange's, or a new one).
    private func decode(
        _ request: UnsafeRawBufferPointer, _ response: UnsafeRawBufferPointer,
        _ headers: [(name: String, value: String)], in workspace: inout Workspace,
        _ body: (_ event: inout PredictionEvent, _ row: Int, _ count: Int) -> Void
    ) throws(CaptureError) -> Int {
        // A big exchange's arrays are not kept for the next one (what a decoder holds between exchanges is bounded
        // by Workspace.keptValues, whatever the exchanges).
        defer { workspace.rows.releaseIfOver(Workspace.keptValues) }
        workspace.rows.begin()
        try decodeRows(request, response, headers, &workspace.rows, &workspace.shape)
        workspace.rows.fillBinaryScores(positive: schema.positiveClassIndex)
        workspace.event.timestamp = nil
        workspace.event.latencySeconds = nil
        workspace.event.status = .ok
        workspace.rows.deliver(&workspace.event, body)
        // Arrays shared with the rows (one row's): left to them, to be written in place by the next exchange.
        if workspace.rows.count == 1 {
            workspace.event.features = []
            workspace.event.probabilities = []
        }
        return workspace.rows.count
    }

    /// The exchange's rows, in `rows` (at ``Rows/begin()``).
    private func decodeRows(
        _ request: UnsafeRawBufferPointer, _ response: UnsafeRawBufferPointer,
        _ headers: [(name: String, value: String)], _ rows: inout Rows, _ shape: inout RequestShape
    ) throws(CaptureError) {
        switch `protocol` {
        case .kserveV1:
            try decodeKServeV1(parse(request, "request"), parse(response, "response"), &rows)
        case .openInferenceV2:
            if !decodeOpenInferenceV2Directly(request, response, &rows, &shape) {
                rows.begin()
                try withTensorBody(request, "request") { (request, requestBinary) throws(CaptureError) in
                    try withTensorBody(response, "response") { (response, responseBinary) throws(CaptureError) in
                        try decodeOpenInferenceV2(
                            request, response, &rows, binaryRead: (requestBinary, responseBinary))
                    }
                }
            }
        case .mlflow:
            try decodeMLflow(parse(request, "request"), parse(response, "response"), &rows)
        case .custom:
            guard let mapping else { return }  // never: init requires it
            try decodeCustom(mapping, request, response, headers, &rows)
        }
    }

    /// The most JSON values (and keys) a body may hold: what ``maxRows`` rows of the schema take as objects (a key
    /// and a value per feature, attribute and class probability) with 64 more per row for outputs the decoder does
    /// not read, and room for the envelope. A bigger body could only be refused as ``CaptureFailure/tooManyRows``
    /// after its tape was built (~48 bytes per value: a 15 MiB dense array took 800 MB); it is refused while it is
    /// read.
    public var maxValues: Int {
        maxRows * (2 * (schema.features.count + schema.attributeNames.count + schema.classes.count) + 64) + 65_536
    }

    /// `body` parsed, or ``CaptureFailure/invalidJSON`` naming `which` and the byte offset
    /// (``CaptureFailure/tooManyRows`` past ``maxValues``).
    func parse(_ body: UnsafeRawBufferPointer, _ which: String) throws(CaptureError) -> JSONTape {
        do {
            return try JSONTape(parsing: body.assumingMemoryBound(to: UInt8.self), maxNodes: maxValues, nonFinite: true)
        } catch {
            throw failure(error, which)
        }
    }

    /// What a body that `JSONTape` refused is: ``CaptureFailure/tooManyRows`` past ``maxValues``, else
    /// ``CaptureFailure/invalidJSON`` naming `which` and the byte offset.
    func failure(_ error: JSONTapeError, _ which: String) -> CaptureError {
        if error.overLimit {
            return CaptureError(
                .tooManyRows, "\(which) holds more than \(maxValues) JSON values (\(maxRows) rows at most)")
        }
        return CaptureError(.invalidJSON, "\(which) at byte offset \(error.offset): \(error.message)")
    }

    /// `use` given an Open Inference Protocol v2 body parsed (``parse(_:_:)``). A body in the binary tensor
    /// extension (a JSON header, then the tensors' raw bytes: tritonclient's default for its inputs, and for outputs
    /// from servers that honour `binary_data_output`) is read as the all-JSON body it stands for
    /// (``BinaryTensorBody``); `use` is told whether it was (its tensors' `binary_data_size` then read).
    func withTensorBody(
        _ body: UnsafeRawBufferPointer, _ which: String,
        _ use: (JSONTape, _ binaryRead: Bool) throws(CaptureError) -> Void
    ) throws(CaptureError) {
        let header: JSONTape
        do throws(JSONTapeError) {
            header = try JSONTape(
                parsing: body.assumingMemoryBound(to: UInt8.self), maxNodes: maxValues, nonFinite: true)
        } catch {
            // JSON followed by bytes: the binary extension when the JSON before them has binary tensors.
            guard !error.overLimit, error.offset > 0, error.offset < body.count,
                let tape = try? JSONTape(
                    parsing: UnsafeRawBufferPointer(rebasing: body[..<error.offset]).assumingMemoryBound(
                        to: UInt8.self), maxNodes: maxValues, nonFinite: true),
                let json = try binaryJSON(body, tape, which)
            else { throw failure(error, which) }
            return try parsed(json, which, use)
        }
        // Binary data that happens to be all whitespace leaves a valid JSON body with whitespace after it. (One with
        // no bytes after its JSON is read as all-JSON, its binary tensors refused: the reference decoder's rule.)
        guard header.nodes[0].end < body.count, let json = try binaryJSON(body, header, which) else {
            return try use(header, false)
        }
        try parsed(json, which, use)
    }

    /// The all-JSON body for `body` whose JSON is `header` (``BinaryTensorBody``); nil when it has no binary tensor.
    private func binaryJSON(
        _ body: UnsafeRawBufferPointer, _ header: JSONTape, _ which: String
    ) throws(CaptureError) -> [UInt8]? {
        try BinaryTensorBody.json(
            body, header: header, maxValues: maxValues, maxTextBytes: maxBinaryTextBytes, which: which)
    }

    /// `use` given `json` (a binary body rewritten) parsed.
    private func parsed(
        _ json: [UInt8], _ which: String, _ use: (JSONTape, _ binaryRead: Bool) throws(CaptureError) -> Void
    ) throws(CaptureError) {
        var failed: CaptureError?
        json.withUnsafeBytes { bytes in
            do throws(CaptureError) { try use(parse(bytes, which), true) } catch { failed = error }
        }
        if let failed { throw failed }
    }

    /// Throws ``CaptureFailure/tooManyRows`` above ``maxRows``.
    func checkRowCount(_ count: Int) throws(CaptureError) {
        guard count <= maxRows else { throw CaptureError(.tooManyRows, "\(count) rows > \(maxRows)") }
    }

    /// A response's predictions: `{"predictions": [...]}` (or a bare list when `bareList`), one per row.
    func predictionList(_ tape: JSONTape, _ rows: inout Rows, bareList: Bool) throws(CaptureError) {
        let list: Int
        if let member = tape.member(0, "predictions") {
            list = member
        } else if bareList && tape.nodes[0].kind == .array {
            list = 0
        } else if bareList && tape.nodes[0].kind != .object {
            throw CaptureError(.unsupported, "response is \(reader.typeName(tape.nodes[0])), not a list")
        } else {
            throw CaptureError(.missingField, "response has no 'predictions'")
        }
        guard tape.nodes[list].kind == .array else {
            throw CaptureError(
                .unsupported, "response 'predictions' is \(reader.typeName(tape.nodes[list])), not a list")
        }
        let count = tape.nodes[list].count
        guard count == rows.count else {
            throw CaptureError(.rowCountMismatch, "\(rows.count) request rows but \(count) predictions")
        }
        var entry = list + 1
        for row in 0..<count {
            try reader.prediction(tape, entry, &rows, row, "response predictions[\(row)]")
            entry = tape.nodes[entry].next
        }
    }
}
