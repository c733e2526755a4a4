import Ingestion

/// Reads the few members of an OpenAI-style request body that the proxy's LLM metrics need, from the pieces of the
/// body as they pass, without holding the body: the top-level `model` (a string), `stream` (a boolean) and
/// `stream_options.include_usage` (a boolean). Any size of body costs one pass over its bytes and a fixed amount
/// of memory.
///
/// It follows JSON's structure (strings with their escapes, nesting up to 64 levels) but does not validate the
/// document: the upstream judges that. A body that is not a JSON object gives no model. A member given twice is read
/// as the usual JSON decoders read it (Python's, Go's, serde's: the last one wins), and a key written with escapes
/// (`"mod\u0065l"`) is the key it decodes to: the model the upstream serves is the one recorded. A top-level `Model`
/// (`model` in another letter case), which Go's decoder reads as `model` and Python's ignores, leaves no model.
public struct OpenAIRequestScanner: Sendable {
    /// The longest `model` value kept, in bytes (a longer one is no model: ``model`` is nil).
    public static let maxModelBytes = 256

    /// The `model` member's value (JSON escapes decoded), once the body is complete; nil when there is none, it is
    /// not a string, or it is longer than ``maxModelBytes``.
    public var model: String? {
        guard modelState == .done, !modelCaseVariant else { return nil }
        return Self.unescape(modelBytes)
    }
    /// `stream: true` at the top level.
    public private(set) var stream = false
    /// `stream_options: {include_usage: true}`.
    public private(set) var includeUsage = false
    /// The top-level `n` (how many choices the request asks for) when it is a whole number from 1 to 1,000,000; nil
    /// when absent or anything else.
    public var choices: Int? { choicesState == .done && choicesValue >= 1 ? choicesValue : nil }

    private enum Capture: UInt8, Sendable { case none, pending, reading, done, failed }

    /// Depth of nesting (0: outside the document).
    private var depth = 0
    /// Bit d set: the container at depth d + 1 is an object (for depths up to 64).
    private var objects: UInt64 = 0
    private var inString = false
    private var escaped = false
    /// In an object, the next string is a key (after `{` or `,`).
    private var expectingKey = false
    /// The string being read is a key at depth 1 or 2 (its bytes go to `key`).
    private var readingKey = false
    /// The most raw bytes of a key kept: the longest member name read (`stream_options`, 14) with every character
    /// escaped as `\uXXXX`.
    private static let maxKeyBytes = 96
    private var key: [UInt8] = []
    private var keyTooLong = false
    /// Which member's value comes next (after its key's `:`): 0 none, 1 model, 2 stream, 3 stream_options,
    /// 4 include_usage (in stream_options), 5 `model` in another letter case, 6 n.
    private var pendingMember: UInt8 = 0
    private var member: UInt8 = 0
    private var inStreamOptions = false
    private var modelState = Capture.none
    /// A top-level key that is `model` but for letter case (`Model`, `MODEL`) after the last `model`: Go's decoder
    /// (Ollama, LocalAI) takes it for `model` (the last one winning), Python's ignores it, so which model serves the
    /// request is not known: none.
    private var modelCaseVariant = false
    private var modelBytes: [UInt8] = []
    private var sawRoot = false
    private var choicesState = Capture.none
    private var choicesValue = 0

    /// A scanner at the start of a body.
    public init() {}

    /// Scans the next piece of the body.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        for byte in bytes { step(byte) }
    }

    @inline(__always)
    private mutating func step(_ b: UInt8) {
        if choicesState == .reading {
            if b >= 0x30 && b <= 0x39 {
                choicesValue = choicesValue * 10 + Int(b - 0x30)
                if choicesValue > 1_000_000 { choicesState = .failed }
                return
            }
            // A fraction or an exponent: no whole number read here (the upstream judges it).
            choicesState = b == 0x2E || b == 0x65 || b == 0x45 ? .failed : .done
        }
        if inString {
            if escaped {
                escaped = false
                record(b)
                return
            }
            if b == 0x5C {  // backslash
                escaped = true
                record(b)
                return
            }
            if b == 0x22 {  // closing quote
                inString = false
                if readingKey {
                    readingKey = false
                    member = keyTooLong ? 0 : memberCode()
                } else if modelState == .reading {
                    modelState = .done
                }
                return
            }
            record(b)
            return
        }
        switch b {
        case 0x20, 0x0A, 0x0D, 0x09: return
        case 0x22:  // a string starts
            inString = true
            if expectingKey {
                expectingKey = false
                if depth == 1 || (depth == 2 && inStreamOptions) {
                    readingKey = true
                    key.removeAll(keepingCapacity: true)
                    keyTooLong = false
                }
            } else {
                valueStarts(isString: true)
            }
        case 0x3A:  // the key's value follows
            pendingMember = member
            member = 0
        case 0x7B, 0x5B:  // { [
            valueStarts(isString: false, opens: b)
            depth += 1
            if depth <= 64 {
                let bit: UInt64 = 1 << UInt64(depth - 1)
                if b == 0x7B { objects |= bit } else { objects &= ~bit }
            }
            if depth == 1 && b == 0x7B { sawRoot = true }
            expectingKey = b == 0x7B
        case 0x7D, 0x5D:  // } ]
            if depth == 2 && inStreamOptions { inStreamOptions = false }
            depth = Swift.max(0, depth - 1)
            expectingKey = false
        case 0x2C:  // ,
            expectingKey = depth >= 1 && depth <= 64 && objects & (1 << UInt64(depth - 1)) != 0
        default:
            // The first byte of a number or literal.
            if pendingMember != 0 {
                let isTrue = b == 0x74
                switch pendingMember {
                case 1 where depth == 1:
                    modelState = .failed
                    modelCaseVariant = false
                case 5 where depth == 1: modelCaseVariant = true
                case 3 where depth == 1: includeUsage = false
                case 6 where depth == 1:
                    // The last `n` wins; a digit starts it, anything else (`-1`, `null`, `true`) is none.
                    choicesValue = 0
                    if b >= 0x30 && b <= 0x39 {
                        choicesValue = Int(b - 0x30)
                        choicesState = .reading
                    } else {
                        choicesState = .failed
                    }
                case 2: stream = isTrue
                case 4: includeUsage = isTrue
                default: break
                }
                pendingMember = 0
            }
        }
    }

    private mutating func valueStarts(isString: Bool, opens: UInt8 = 0) {
        defer { pendingMember = 0 }
        switch pendingMember {
        case 1 where depth == 1:
            // Every top-level `model` replaces the one before (the last wins); one that is no string is no model. A
            // case variant before it is overridden by it in Go's decoder too: both read this one.
            modelState = isString ? .reading : .failed
            modelCaseVariant = false
            modelBytes.removeAll(keepingCapacity: true)
        case 5 where depth == 1:
            modelCaseVariant = true
        case 2 where depth == 1:
            stream = false  // a string, object or array: no `stream: true` (the last member wins)
        case 3 where depth == 1:
            includeUsage = false
            inStreamOptions = opens == 0x7B
        case 6 where depth == 1:
            choicesState = .failed  // a string, object or array
        default: break
        }
    }

    @inline(__always)
    private mutating func record(_ b: UInt8) {
        if readingKey {
            if key.count < Self.maxKeyBytes { key.append(b) } else { keyTooLong = true }
        } else if modelState == .reading {
            if modelBytes.count < Self.maxModelBytes * 2 {
                modelBytes.append(b)
            } else {
                modelState = .failed
            }
        }
    }

    private func memberCode() -> UInt8 {
        // A key with escapes is compared as it decodes (rare: clients write names plainly).
        if key.contains(0x5C) {
            guard let decoded = Self.unescape(key) else { return 0 }
            return Array(decoded.utf8).withUnsafeBufferPointer { memberCode(of: $0) }
        }
        return key.withUnsafeBufferPointer { memberCode(of: $0) }
    }

    private func memberCode(of k: UnsafeBufferPointer<UInt8>) -> UInt8 {
        if depth == 1 {
            if ServerSentEventParser.equals(k, "model") { return 1 }
            if ServerSentEventParser.equals(k, "stream") { return 2 }
            if ServerSentEventParser.equals(k, "stream_options") { return 3 }
            if ServerSentEventParser.equals(k, "n") { return 6 }
            if k.count == 5 && zip(k, "model".utf8).allSatisfy({ $0 | 0x20 == $1 }) { return 5 }
        } else if ServerSentEventParser.equals(k, "include_usage") {
            return 4
        }
        return 0
    }

    /// The text of a JSON string's raw bytes (between the quotes), escapes decoded by the ingestion scanner; nil
    /// when malformed or longer than ``maxModelBytes`` decoded.
    static func unescape(_ raw: [UInt8]) -> String? {
        let text: String
        if raw.contains(0x5C) {
            let quoted = [0x22] + raw + [0x22]
            guard
                let decoded = quoted.withUnsafeBufferPointer({ bytes -> String? in
                    guard let tape = try? JSONTape(parsing: bytes), tape.nodes[0].kind == .string else { return nil }
                    return tape.string(0)
                })
            else { return nil }
            text = decoded
        } else {
            guard let plain = String(validating: raw, as: UTF8.self) else { return nil }
            text = plain
        }
        return text.utf8.count <= maxModelBytes ? text : nil
    }

    /// Whether the body was a JSON object (its first value opened an object).
    public var isObject: Bool { sawRoot }
}
