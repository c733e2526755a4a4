import Ingestion

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#elseif canImport(Musl)
    import Musl
#endif

/// The binary tensor extension of the Open Inference Protocol (Triton's and KServe's; tritonclient's default for its
/// inputs, and for outputs when a request asks for them): a body is a JSON header whose binary tensors have
/// `parameters.binary_data_size` and no `data`, followed by those tensors' raw bytes, one after another in the order
/// the tensors appear in the header. A fixed-size datatype is its elements little-endian, row-major (BOOL one byte,
/// FP16 and BF16 two); BYTES is each element as a 4-byte little-endian length and its bytes.
///
/// The header's length is the body's less the binary sizes' sum (the `Inference-Header-Content-Length` header says
/// the same; it is not needed, so a response's headers are not either). ``json(_:header:maxValues:maxTextBytes:which:)`` rewrites
/// such a body as the all-JSON body it stands for (each binary tensor given its `data`), which the v2 decoder then
/// reads like any other: the same values as the JSON form tritonclient sends with `binary_data=False` (FP32 values
/// as their exact double, as Python's json writes numpy's); NaN becomes `null`, a missing value.
public enum BinaryTensorBody {
    /// A binary tensor of the header: its object node and its bytes' size.
    private struct Part {
        var node: Int
        var size: Int
    }

    /// Byte widths of ``Tensor/datatypes`` (in that order; BYTES, last, has none).
    fileprivate static let widths = [1, 1, 2, 4, 8, 1, 2, 4, 8, 2, 4, 8, 2]

    /// The most a body's bytes grow as JSON text: 12 times for FP16 and BF16 (`-1.1754943508222875e-38,` for 2
    /// bytes), ~6 for FP32, 6 for a BYTES control character (`\u0001`) (``decodingCost(_:)``).
    public static let maxExpansion = 12
    /// The `binary_data_size` key, as it appears in a binary tensor's parameters.
    private static let marker = Array(#""binary_data_size""#.utf8)

    /// What decoding `body` for a capture costs, in bytes of JSON text, for a caller choosing where to decode it
    /// (on an event loop, or a worker): its size, or ``maxExpansion`` times it when it may be in the binary tensor
    /// extension (``mayBeBinary(_:)``, from the body itself, whatever headers came with it). A body under 2 KiB is
    /// not looked into (24 KiB of text at most).
    public static func decodingCost(_ body: UnsafeRawBufferPointer) -> Int {
        body.count < 2048 || !mayBeBinary(body) ? body.count : body.count * maxExpansion
    }

    /// ``decodingCost(_:)`` of an exchange's two bodies, for a caller that decodes up to `limit` where it is and
    /// beyond elsewhere: bodies already over it by their size are not looked into.
    public static func decodingCost(request: [UInt8], response: [UInt8], limit: Int) -> Int {
        let size = request.count + response.count
        guard size <= limit else { return size }
        return request.withUnsafeBytes { decodingCost($0) } + response.withUnsafeBytes { decodingCost($0) }
    }

    /// Whether `body` may be in the binary tensor extension: it has the `"binary_data_size"` key. Each `_` is found
    /// by memchr (rare in tensor data, unlike `"`: a BYTES tensor's text has one every other byte) and the key
    /// compared around its first one.
    public static func mayBeBinary(_ body: UnsafeRawBufferPointer) -> Bool {
        guard let base = body.baseAddress, body.count >= marker.count else { return false }
        let underscore = 7  // `"binary_`
        var at = underscore
        let last = body.count - marker.count + underscore
        while at <= last {
            guard let found = memchr(base + at, 0x5F, last - at + 1) else { return false }
            at = UnsafeRawPointer(found) - base
            if marker.withUnsafeBytes({ memcmp(base + at - underscore, $0.baseAddress!, $0.count) == 0 }) {
                return true
            }
            at += 1
        }
        return false
    }

    /// The all-JSON body for `body`, whose JSON header `header` (parsed from its first bytes) has binary tensors; nil
    /// when it has none (the bytes after the JSON are then not the extension's). Errors name `which` (`request`,
    /// `response`): sizes that do not add up to the bytes after the header, or do not fit a tensor's shape and
    /// datatype, are ``CaptureFailure/shapeMismatch``; more elements than `maxValues`,
    /// ``CaptureFailure/tooManyRows``.
    static func json(
        _ body: UnsafeRawBufferPointer, header: JSONTape, maxValues: Int, maxTextBytes: Int, which: String
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
        out.reserveCapacity(Swift.min(jsonEnd + 8 * sum, maxTextBytes))
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
                UnsafeRawBufferPointer(rebasing: body[offset..<offset + part.size]), to: &out, limit: maxTextBytes)
            out.append(0x5D)
            offset += part.size
            guard out.count <= maxTextBytes else {
                throw CaptureError(
                    .tooManyRows, "\(which)'s binary tensors make more than \(maxTextBytes) bytes of JSON text")
            }
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
            let type = Tensor.datatype(header, datatype)
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
    /// `limit`: the most text `out` may hold, checked as it is written (every 4 KiB of a BYTES element, every 4,096
    /// fixed-size values).
    func appendValues(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8], limit: Int) throws(CaptureError) {
        let datatype = Tensor.datatypes[type]
        guard type < BinaryTensorBody.widths.count else {
            try appendStrings(bytes, to: &out, limit: limit)
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
            if i & 4095 == 4095 && out.count > limit {
                throw CaptureError(.tooManyRows, "\(place)'s values make more than \(limit) bytes of JSON text")
            }
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
    private func appendStrings(
        _ bytes: UnsafeRawBufferPointer, to out: inout [UInt8], limit: Int
    ) throws(CaptureError) {
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
            let written = appendString(UnsafeRawBufferPointer(rebasing: bytes[at..<at + length]), &out, limit: limit)
            at += length
            guard written, out.count <= limit else {
                throw CaptureError(.tooManyRows, "\(place)'s BYTES make more than \(limit) bytes of JSON text")
            }
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

    /// `bytes` as a JSON string: printable ASCII as it is, `"`, `\\` and control bytes escaped, valid UTF-8 sequences
    /// as they are (the JSON reader's rules: no overlongs, surrogates or code points past U+10FFFF), and every byte
    /// of an invalid sequence as U+FFFD. One pass, no `String` made.
    /// False, the string cut short, once `out` holds more than `limit` bytes (checked every 4 KiB of `bytes`: one
    /// element of 60 MiB is not written whole first).
    private func appendString(_ bytes: UnsafeRawBufferPointer, _ out: inout [UInt8], limit: Int) -> Bool {
        let hex: StaticString = "0123456789abcdef"
        out.append(0x22)
        var i = 0
        var nextCheck = 4096
        while i < bytes.count {
            if i >= nextCheck {
                if out.count > limit { return false }
                nextCheck = i + 4096
            }
            let b = bytes[i]
            if b >= 0x20 && b < 0x80 {
                if b == 0x22 || b == 0x5C { out.append(0x5C) }
                out.append(b)
                i += 1
            } else if b < 0x20 {
                out.append(contentsOf: [
                    0x5C, 0x75, 0x30, 0x30, hex.utf8Start[Int(b >> 4)], hex.utf8Start[Int(b & 0xF)],
                ])
                i += 1
            } else if let length = Self.utf8SequenceLength(bytes, at: i) {
                out.append(contentsOf: bytes[i..<i + length])
                i += length
            } else {
                out.append(contentsOf: [0xEF, 0xBF, 0xBD])
                i += 1
            }
        }
        out.append(0x22)
        return true
    }

    /// The length of the valid UTF-8 sequence of two to four bytes at `i` (RFC 3629's table), nil when there is none.
    private static func utf8SequenceLength(_ bytes: UnsafeRawBufferPointer, at i: Int) -> Int? {
        let b0 = bytes[i]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch b0 {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            high = 0x9F
        case 0xF0:
            length = 4
            low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            high = 0x8F
        default: return nil
        }
        guard i + length <= bytes.count, bytes[i + 1] >= low, bytes[i + 1] <= high else { return nil }
        for k in 2..<length where bytes[i + k] < 0x80 || bytes[i + k] > 0xBF { return nil }
        return length
    }
}
