import Ingestion

/// The binary tensor extension of the Open Inference Protocol (Triton's and KServe's; tritonclient's default for its
/// inputs, and for outputs when a request asks for them): a body is a JSON header whose binary tensors have
/// `parameters.binary_data_size` and no `data`, followed by those tensors' raw bytes, one after another in the order
/// the tensors appear in the header. A fixed-size datatype is its elements little-endian, row-major (BOOL one byte,
/// FP16 and BF16 two); BYTES is each element as a 4-byte little-endian length and its bytes.
///
/// The header's length is the body's less the binary sizes' sum (the `Inference-Header-Content-Length` header says
/// the same; it is not needed, so a response's headers are not either). ``json(_:header:maxValues:which:)`` rewrites
/// such a body as the all-JSON body it stands for (each binary tensor given its `data`), which the v2 decoder then
/// reads like any other: the same values as the JSON form tritonclient sends with `binary_data=False` (FP32 values
/// as their exact double, as Python's json writes numpy's); NaN becomes `null`, a missing value.
enum BinaryTensorBody {
    /// A binary tensor of the header: its object node and its bytes' size.
    private struct Part {
        var node: Int
        var size: Int
    }

    /// Byte widths of ``Tensor/datatypes`` (in that order; BYTES, last, has none).
    fileprivate static let widths = [1, 1, 2, 4, 8, 1, 2, 4, 8, 2, 4, 8, 2]

    /// The all-JSON body for `body`, whose JSON header `header` (parsed from its first bytes) has binary tensors; nil
    /// when it has none (the bytes after the JSON are then not the extension's). Errors name `which` (`request`,
    /// `response`): sizes that do not add up to the bytes after the header, or do not fit a tensor's shape and
    /// datatype, are ``CaptureFailure/shapeMismatch``; more elements than `maxValues`,
    /// ``CaptureFailure/tooManyRows``.
    static func json(
        _ body: UnsafeRawBufferPointer, header: JSONTape, maxValues: Int, which: String
    ) throws(CaptureError) -> [UInt8]? {
        let parts = try binaryParts(header, which)
        guard !parts.isEmpty else { return nil }
        let jsonEnd = header.nodes[0].end
        var sum = 0
        for part in parts {
            sum = sum.addingReportingOverflow(part.size).partialValue
            guard sum <= body.count else { break }
        }
        let binaryStart = body.count - sum
        // Between the JSON's end and the binary data there may be only whitespace (the header was parsed up to the
        // first byte that is not).
        guard sum <= body.count, binaryStart >= jsonEnd,
            body[jsonEnd..<binaryStart].allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 })
        else {
            throw CaptureError(
                .shapeMismatch,
                "\(which): the binary_data_size of its tensors add up to \(sum) bytes, but \(body.count - jsonEnd) "
                    + "bytes follow its JSON")
        }
        var out: [UInt8] = []
        out.reserveCapacity(jsonEnd + 8 * sum)
        var copied = 0
        var offset = binaryStart
        var values = 0
        for part in parts {
            let tensor = try BinaryTensor(header, part.node, which)
            values = values.addingReportingOverflow(tensor.count).partialValue
            guard values <= maxValues else {
                throw CaptureError(.tooManyRows, "\(which) holds more than \(maxValues) tensor values")
            }
            // The tensor's object closes at its last byte: `"data": [...]` goes just before it.
            let close = header.nodes[part.node].end - 1
            out.append(contentsOf: body[copied..<close])
            copied = close
            out.append(contentsOf: #","data":["#.utf8)
            try tensor.appendValues(
                UnsafeRawBufferPointer(rebasing: body[offset..<offset + part.size]), to: &out, which)
            out.append(0x5D)
            offset += part.size
        }
        out.append(contentsOf: body[copied..<jsonEnd])
        return out
    }

    /// The tensors of `inputs` and `outputs` with `parameters.binary_data_size`, in the order they appear.
    private static func binaryParts(_ header: JSONTape, _ which: String) throws(CaptureError) -> [Part] {
        guard header.nodes.first?.kind == .object else { return [] }
        var parts: [Part] = []
        for member in ["inputs", "outputs"] {
            guard let list = header.member(0, member), header.nodes[list].kind == .array else { continue }
            var tensor = list + 1
            for _ in 0..<header.nodes[list].count {
                defer { tensor = header.nodes[tensor].next }
                guard header.nodes[tensor].kind == .object, let parameters = header.member(tensor, "parameters"),
                    let size = header.member(parameters, "binary_data_size")
                else { continue }
                let n = header.nodes[size]
                guard n.kind == .number, n.flag, n.number >= 0, n.number < 1e15 else {
                    throw CaptureError(
                        .shapeMismatch,
                        "\(which) \(member) tensor's binary_data_size must be a non-negative integer")
                }
                if header.member(tensor, "data") != nil {
                    throw CaptureError(
                        .shapeMismatch, "\(which) \(member) tensor has both 'data' and binary_data_size")
                }
                parts.append(Part(node: tensor, size: Int(n.number)))
            }
        }
        parts.sort { $0.node < $1.node }
        return parts
    }
}

/// A binary tensor's datatype and element count, from its header object.
private struct BinaryTensor {
    /// The index in ``Tensor/datatypes``.
    var type: Int
    var count: Int
    var place: String

    init(_ header: JSONTape, _ node: Int, _ which: String) throws(CaptureError) {
        let name = header.member(node, "name").map { header.string($0) } ?? "?"
        place = "\(which) tensor '\(name)'"
        guard let datatype = header.member(node, "datatype"), header.nodes[datatype].kind == .string,
            let type = Tensor.datatypes.firstIndex(where: { $0.description == header.string(datatype) })
        else {
            throw CaptureError(.missingField, "\(place) has no known 'datatype'")
        }
        self.type = type
        guard let shape = header.member(node, "shape"), header.nodes[shape].kind == .array else {
            throw CaptureError(.missingField, "\(place) has no 'shape'")
        }
        var count = 1
        var d = shape + 1
        for _ in 0..<header.nodes[shape].count {
            let n = header.nodes[d]
            guard n.kind == .number, n.flag, n.number >= 0, n.number < 1e15 else {
                throw CaptureError(.shapeMismatch, "\(place) 'shape' must list non-negative integers")
            }
            let product = count.multipliedReportingOverflow(by: Int(n.number))
            guard !product.overflow, product.partialValue < 1 << 40 else {
                throw CaptureError(.tooManyRows, "\(place) has a shape of more than 2^40 elements")
            }
            count = product.partialValue
            d = n.next
        }
        self.count = count
    }

    /// The tensor's values from `bytes` as JSON, comma-separated, onto `out`.
    func appendValues(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8], _ which: String) throws(CaptureError) {
        let datatype = Tensor.datatypes[type]
        guard type < BinaryTensorBody.widths.count else {
            try appendStrings(bytes, to: &out)
            return
        }
        let width = BinaryTensorBody.widths[type]
        guard bytes.count == count * width else {
            throw CaptureError(
                .shapeMismatch,
                "\(place) has \(bytes.count) bytes of binary data for \(count) \(datatype) values (\(count * width))")
        }
        for i in 0..<count {
            if i > 0 { out.append(0x2C) }
            let at = i * width
            switch type {
            case 0: out.append(contentsOf: bytes[at] == 0 ? "false".utf8 : "true".utf8)
            case 1: append(UInt64(bytes[at]), &out)
            case 2: append(UInt64(load(UInt16.self, bytes, at)), &out)
            case 3: append(UInt64(load(UInt32.self, bytes, at)), &out)
            case 4: append(load(UInt64.self, bytes, at), &out)
            case 5: append(Int64(Int8(bitPattern: bytes[at])), &out)
            case 6: append(Int64(Int16(bitPattern: load(UInt16.self, bytes, at))), &out)
            case 7: append(Int64(Int32(bitPattern: load(UInt32.self, bytes, at))), &out)
            case 8: append(Int64(bitPattern: load(UInt64.self, bytes, at)), &out)
            case 9: append(Double(Float(Float16(bitPattern: load(UInt16.self, bytes, at)))), &out)
            case 10: append(Double(Float(bitPattern: load(UInt32.self, bytes, at))), &out)
            case 11: append(Double(bitPattern: load(UInt64.self, bytes, at)), &out)
            default: append(Double(Float(bitPattern: UInt32(load(UInt16.self, bytes, at)) << 16)), &out)  // BF16
            }
        }
    }

    /// BYTES: `count` elements, each a 4-byte little-endian length and its bytes, filling `bytes` exactly; written
    /// as JSON strings (bytes that are not UTF-8 as U+FFFD).
    private func appendStrings(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) throws(CaptureError) {
        var at = 0
        for i in 0..<count {
            guard bytes.count - at >= 4 else {
                throw CaptureError(
                    .shapeMismatch, "\(place) has \(i) BYTES elements in its \(bytes.count) bytes, not \(count)")
            }
            let length = Int(load(UInt32.self, bytes, at))
            at += 4
            guard bytes.count - at >= length else {
                throw CaptureError(
                    .shapeMismatch,
                    "\(place) BYTES element \(i) is \(length) bytes long, past the tensor's \(bytes.count) bytes")
            }
            if i > 0 { out.append(0x2C) }
            appendString(UnsafeRawBufferPointer(rebasing: bytes[at..<at + length]), &out)
            at += length
        }
        guard at == bytes.count else {
            throw CaptureError(
                .shapeMismatch,
                "\(place) has \(bytes.count - at) bytes left after its \(count) BYTES elements")
        }
    }

    private func load<T: FixedWidthInteger>(_ type: T.Type, _ bytes: UnsafeRawBufferPointer, _ at: Int) -> T {
        T(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: T.self))
    }

    private func append(_ value: UInt64, _ out: inout [UInt8]) { out.append(contentsOf: String(value).utf8) }
    private func append(_ value: Int64, _ out: inout [UInt8]) { out.append(contentsOf: String(value).utf8) }

    /// A finite value as its shortest text (which reads back as the same double); NaN as null (missing); an infinity
    /// as a number beyond a double's range (read as out of range, as the JSON form's would be).
    private func append(_ value: Double, _ out: inout [UInt8]) {
        if value.isNaN {
            out.append(contentsOf: "null".utf8)
        } else if value.isInfinite {
            out.append(contentsOf: (value < 0 ? "-1e999" : "1e999").utf8)
        } else {
            out.append(contentsOf: value.description.utf8)
        }
    }

    private func appendString(_ bytes: UnsafeRawBufferPointer, _ out: inout [UInt8]) {
        out.append(0x22)
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
            switch scalar.value {
            case 0x22: out.append(contentsOf: #"\""#.utf8)
            case 0x5C: out.append(contentsOf: #"\\"#.utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: #"\u00"#.utf8)
                out.append(hex[Int(scalar.value >> 4)])
                out.append(hex[Int(scalar.value & 0xF)])
            default: out.append(contentsOf: String(scalar).utf8)
            }
        }
        out.append(0x22)
    }
}
