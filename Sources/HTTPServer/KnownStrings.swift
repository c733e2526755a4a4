extension HTTP1Framing {
    /// The request method `bytes` (token characters, checked by the caller) as a String: the methods of RFC 9110
    /// §9.3 and PATCH are literals, which need no UTF-8 validation and no storage; any other token is decoded.
    static func methodString(_ bytes: Bytes) -> String {
        switch bytes.count {
        case 3:
            if bytes.elementsEqual(literal: "GET") { return "GET" }
            if bytes.elementsEqual(literal: "PUT") { return "PUT" }
        case 4:
            if bytes.elementsEqual(literal: "POST") { return "POST" }
            if bytes.elementsEqual(literal: "HEAD") { return "HEAD" }
        case 5:
            if bytes.elementsEqual(literal: "PATCH") { return "PATCH" }
            if bytes.elementsEqual(literal: "TRACE") { return "TRACE" }
        case 6:
            if bytes.elementsEqual(literal: "DELETE") { return "DELETE" }
        case 7:
            if bytes.elementsEqual(literal: "OPTIONS") { return "OPTIONS" }
            if bytes.elementsEqual(literal: "CONNECT") { return "CONNECT" }
        default:
            break
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A status line's reason phrase `bytes` as a String: `OK` and the empty phrase are literals (nearly every
    /// upstream answer), any other phrase is decoded.
    static func reasonString(_ bytes: Bytes) -> String {
        if bytes.isEmpty { return "" }
        if bytes.elementsEqual(literal: "OK") { return "OK" }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Slice where Base == UnsafeBufferPointer<UInt8> {
    /// Whether these bytes are exactly `literal`'s UTF-8, byte by byte (no generic sequence comparison).
    @inline(__always)
    fileprivate func elementsEqual(literal: StaticString) -> Bool {
        // `withUTF8Buffer`, not `utf8Start`: a one-scalar literal has no pointer to its bytes.
        literal.withUTF8Buffer { other in
            guard count == other.count else { return false }
            var offset = 0
            for byte in self {
                guard byte == other[offset] else { return false }
                offset += 1
            }
            return true
        }
    }
}
