import Glibc

/// Dot segments (`.` and `..`, RFC 3986 §3.3) in a request path the proxy forwards.
///
/// The proxy writes the upstream's base path, then the client's path as sent: `/../secret` behind a base path `/base`
/// would reach the upstream as `/base/../secret`, which an upstream that resolves dot segments serves from outside
/// `/base`. Clients resolve dot segments before sending (RFC 3986 §5.2.4), so such a path is refused (400) rather
/// than resolved, as nginx refuses one that climbs above the root. Percent-encoded dots (`%2e`, `%2E`) count as dots.
/// A segment ends where any server may end it: at `/`, at `\` (Windows servers), at `#` (a fragment, which no
/// request should carry and upstreams cut off: `/..#x` reached nginx as `/base/..`), at `%2f` and `%5c` (upstreams
/// that decode them); a `;` starts the segment's parameters (`/..;/x` is `..` to Tomcat and Spring).
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
            // The segment after this separator (or from the start).
            index += separator(bytes, at: index)
            var dots = 0
            var other = false
            var parameters = false
            while index < count && separator(bytes, at: index) == 0 {
                if parameters {
                    index += 1
                } else if bytes[index] == UInt8(ascii: ".") {
                    dots += 1
                    index += 1
                } else if encoded(bytes, at: index, "2", "e") {
                    dots += 1
                    index += 3
                } else if bytes[index] == UInt8(ascii: ";") {
                    parameters = true
                    index += 1
                } else {
                    other = true
                    index += 1
                }
            }
            if !other && (dots == 1 || dots == 2) { return true }
        }
        return false
    }

    /// The length of the segment separator at `index` (`/`, `\`, `#`, `%2f`, `%5c`), 0 when there is none.
    @inline(__always)
    private static func separator(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Int {
        switch bytes[index] {
        case UInt8(ascii: "/"), UInt8(ascii: "\\"), UInt8(ascii: "#"): 1
        case UInt8(ascii: "%") where encoded(bytes, at: index, "2", "f") || encoded(bytes, at: index, "5", "c"): 3
        default: 0
        }
    }

    /// Whether `%<high><low>` (`low` a lower-case letter, matched in either case) starts at `index`.
    @inline(__always)
    private static func encoded(
        _ bytes: UnsafeBufferPointer<UInt8>, at index: Int, _ high: Unicode.Scalar, _ low: Unicode.Scalar
    ) -> Bool {
        index + 2 < bytes.count && bytes[index] == UInt8(ascii: "%") && bytes[index + 1] == UInt8(ascii: high)
            && bytes[index + 2] | 0x20 == UInt8(ascii: low)
    }
}
