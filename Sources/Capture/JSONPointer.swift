import Ingestion

/// A parsed RFC 6901 pointer with `*` wildcards: its reference tokens, unescaped.
struct JSONPointer: Sendable, Equatable {
    enum Segment: Sendable, Equatable {
        /// An object key, or an array index when it is a decimal integer without leading zeros.
        case key(String)
        /// Every element of an array.
        case star
    }

    let segments: [Segment]
    /// The position of the `*` segment, if any.
    let star: Int?

    /// Parses `text`; the error says what is wrong.
    init(_ text: String) throws(CaptureConfigError) {
        guard !text.isEmpty else {
            segments = []
            star = nil
            return
        }
        guard text.hasPrefix("/") else {
            throw CaptureConfigError(field: "", message: "JSON pointer '\(text)' must be empty or start with '/'")
        }
        var segments: [Segment] = []
        for raw in text.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            if raw == "*" {
                segments.append(.star)
                continue
            }
            var token = ""
            var chars = raw.makeIterator()
            while let c = chars.next() {
                guard c == "~" else {
                    token.append(c)
                    continue
                }
                switch chars.next() {
                case "0": token.append("~")
                case "1": token.append("/")
                default:
                    throw CaptureConfigError(
                        field: "", message: "JSON pointer '\(text)': '~' must be followed by '0' or '1'")
                }
            }
            segments.append(.key(token))
        }
        let stars = segments.indices.filter { segments[$0] == .star }
        guard stars.count <= 1 else {
            throw CaptureConfigError(field: "", message: "JSON pointer '\(text)' has more than one '*'")
        }
        self.segments = segments
        star = stars.first
    }

    /// The node at the end of `segments[range]` from `node`, or nil when a step does not exist.
    func resolve(_ tape: JSONTape, from node: Int, _ range: Range<Int>) -> Int? {
        var at = node
        for segment in segments[range] {
            guard case .key(let key) = segment else { return nil }
            switch tape.nodes[at].kind {
            case .object:
                guard let value = tape.member(at, key) else { return nil }
                at = value
            case .array:
                guard let index = arrayIndex(key), index < tape.nodes[at].count else { return nil }
                at = tape.elements(at)[index]
            default:
                return nil
            }
        }
        return at
    }

    private func arrayIndex(_ key: String) -> Int? {
        guard let first = key.utf8.first, key.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        if first == 0x30 && key.utf8.count > 1 { return nil }
        return Int(key)
    }
}
