import Ingestion

/// Where a proxy route finds a name in a request's JSON body (the model's, a route's `model_pointer`; the version's,
/// its `version_pointer`): an RFC 6901 pointer to one value, a string (its text) or a number (its text as written).
public struct BodyName: Sendable, Equatable {
    private let pointer: JSONPointer

    /// The most JSON values a body is read to (its tape takes ~48 bytes a value: 48 MiB at most, as a capture
    /// decoder's bound for some 10,000 rows of 20 features); a request body of more is not attributed by its body.
    public static let maxValues = 1 << 20

    /// Parses `pointer`; the error says what is wrong (one with a `*` names no single value).
    public init(pointer: String) throws(CaptureConfigError) {
        let parsed = try JSONPointer(pointer)
        guard parsed.star == nil else {
            throw CaptureConfigError(field: "", message: "JSON pointer '\(pointer)' names one value: no '*'")
        }
        self.pointer = parsed
    }

    /// The name `body` holds at the pointer; nil when the body is not JSON (or holds more than ``maxValues``
    /// values), or the pointer leads nowhere, or to a value that is not a string or a number.
    public func name(in body: UnsafeRawBufferPointer) -> String? {
        guard
            let tape = try? JSONTape(
                parsing: body.assumingMemoryBound(to: UInt8.self), maxNodes: Self.maxValues, nonFinite: true),
            let node = pointer.resolve(tape, from: 0, 0..<pointer.segments.count)
        else { return nil }
        switch tape.nodes[node].kind {
        case .string: return tape.string(node)
        case .number: return tape.numberText(node)
        default: return nil
        }
    }
}
