import Glibc

/// Dot segments (`.` and `..`, RFC 3986 §3.3) in a request path the proxy forwards.
///
/// The proxy writes the upstream's base path, then the client's path as sent: `/../secret` behind a base path `/base`
/// would reach the upstream as `/base/../secret`, which an upstream that resolves dot segments serves from outside
/// `/base`. Clients resolve dot segments before sending (RFC 3986 §5.2.4), so such a path is refused (400) rather
/// than resolved, as nginx refuses one that climbs above the root. Percent-encoded dots (`%2e`, `%2E`) count as dots.
enum DotSegments {
    /// Whether `path` (the request target's path, query excluded) has a segment that is `.` or `..`, a dot written
    /// as itself or percent-encoded.
    static func present(in path: String) -> Bool {
        if let found = path.utf8.withContiguousStorageIfAvailable(present(in:)) { return found }
        return Array(path.utf8).withUnsafeBufferPointer(present(in:))
    }

    /// ``present(in:)-(String)`` for the path's bytes.
    static func present(in bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        // Most paths hold neither a dot nor a `%`: two library scans (a byte loop here cost ~190 more instructions).
        guard let base = bytes.baseAddress,
            memchr(base, Int32(UInt8(ascii: ".")), bytes.count) != nil
                || memchr(base, Int32(UInt8(ascii: "%")), bytes.count) != nil
        else { return false }
        var index = 0
        let count = bytes.count
        while index < count {
            // The segment after this slash (or from the start).
            if bytes[index] == UInt8(ascii: "/") { index += 1 }
            var dots = 0
            var other = false
            while index < count && bytes[index] != UInt8(ascii: "/") {
                if bytes[index] == UInt8(ascii: ".") {
                    dots += 1
                    index += 1
                } else if bytes[index] == UInt8(ascii: "%"), index + 2 < count, bytes[index + 1] == UInt8(ascii: "2"),
                    bytes[index + 2] | 0x20 == UInt8(ascii: "e")
                {
                    dots += 1
                    index += 3
                } else {
                    other = true
                    index += 1
                }
            }
            if !other && (dots == 1 || dots == 2) { return true }
        }
        return false
    }
}
