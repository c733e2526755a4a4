import Glibc

/// Where a push goes: a Pushgateway's `http://host:port[/prefix]` and a grouping key, as the URL path
/// `/metrics/job/<job>/<name>/<value>...` that the Pushgateway documents: a value with a `/`, or an empty one, is
/// written base64url-encoded (RFC 4648 §5) with `@base64` after its name (`model@base64/…`); other values are
/// percent-encoded outside the URL's unreserved characters.
public struct PushgatewayTarget: Sendable, Equatable {
    /// Host name or address.
    public let host: String
    /// TCP port.
    public let port: UInt16
    /// The path before `/metrics` (empty or starting with `/`).
    public let basePath: String
    /// The grouping key: `job` first, then the other labels in order.
    public let groupingKey: [(name: String, value: String)]
    /// The `User-Agent` sent: the sender's name and version.
    public var userAgent = "mlops-exporter"

    /// Parses `url` (`http://host[:port][/prefix]`, port 80 by default; https, credentials (`user@`), a query and a
    /// fragment are not supported: ``PushError/invalidURL(_:)``).
    public init(url: String, job: String, labels: [(name: String, value: String)]) throws(PushError) {
        let endpoint = try HTTPEndpoint(url: url)
        host = endpoint.host
        port = endpoint.port
        basePath = endpoint.path
        groupingKey = [("job", job)] + labels
    }

    /// The request path: the base path, `/metrics`, then each grouping label's name and value.
    public var path: String {
        var out = basePath + "/metrics"
        for (name, value) in groupingKey { out += "/" + Self.segment(name: name, value: value) }
        return out
    }

    /// `name/value`, or `name@base64/base64url(value)` for a value that is empty, holds a `/`, or is `.` or `..`.
    public static func segment(name: String, value: String) -> String {
        // `.` and `..` too: the Pushgateway's router cleans them out of the path (a 301 to another group's URL).
        if value.isEmpty || value.contains("/") || value == "." || value == ".." {
            return "\(name)@base64/\(base64url(Array(value.utf8)))"
        }
        return "\(name)/\(percentEncoded(value))"
    }

    /// Base64 with the URL and filename safe alphabet (`-`, `_`) and `=` padding; `=` for no bytes, which the
    /// Pushgateway reads as the empty value.
    public static func base64url(_ bytes: [UInt8]) -> String {
        if bytes.isEmpty { return "=" }
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let b0 = UInt32(bytes[i])
            let b1 = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0
            let b2 = i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0
            let n = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(i + 1 < bytes.count ? alphabet[Int(n >> 6 & 63)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? alphabet[Int(n & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `value` with every byte outside `A-Z a-z 0-9 - . _ ~` written `%XX`.
    public static func percentEncoded(_ value: String) -> String {
        var out = ""
        for b in value.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(b >> 4)], hex[Int(b & 15)]], as: UTF8.self)
            }
        }
        return out
    }

    /// Same host, port, base path and grouping key.
    public static func == (a: PushgatewayTarget, b: PushgatewayTarget) -> Bool {
        a.host == b.host && a.port == b.port && a.basePath == b.basePath
            && a.groupingKey.elementsEqual(b.groupingKey) { $0.name == $1.name && $0.value == $1.value }
    }
}

/// An `http://host[:port][/path]` URL, split.
struct HTTPEndpoint: Equatable {
    let host: String
    let port: UInt16
    /// Without a trailing `/`; empty for none.
    let path: String

    init(url: String) throws(PushError) {
        guard url.hasPrefix("http://") else {
            throw .invalidURL("only http:// URLs are supported (got \"\(url)\")")
        }
        var rest = Substring(url.dropFirst("http://".count))
        // What this client would send wrong: credentials taken as the host, a query or fragment glued before the
        // path it appends. Refused now, not after a run of retries.
        // Neither message repeats the URL: its credentials or query may be secrets, and CI logs keep them.
        let authority = rest.prefix(while: { $0 != "/" && $0 != "?" && $0 != "#" })
        if let at = authority.lastIndex(of: "@") {
            throw .invalidURL(
                "\"http://***@\(authority[authority.index(after: at)...])...\": a user name or password (user@) is not "
                    + "supported")
        }
        guard !rest.contains("?"), !rest.contains("#") else {
            throw .invalidURL("a query or fragment (? or #) is not supported")
        }
        var path = ""
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[slash...])
            rest = rest[..<slash]
        }
        while path.hasSuffix("/") { path.removeLast() }
        var hostPart = rest
        var port: UInt16 = 80
        if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
            guard let p = UInt16(rest[rest.index(after: colon)...]), p > 0 else {
                throw .invalidURL("invalid port in \"\(url)\"")
            }
            port = p
            hostPart = rest[..<colon]
        }
        // A host this client cannot resolve is refused now, not retried as a network failure until the deadline
        // (`http://[::1` was 5 attempts of "cannot resolve [::").
        if hostPart.hasPrefix("[") {
            guard hostPart.hasSuffix("]"), let address = Self.ipv6Host(hostPart.dropFirst().dropLast()) else {
                throw .invalidURL("invalid IPv6 address in \"\(url)\" (http://[::1]:9091)")
            }
            hostPart = Substring(address)
        } else {
            guard hostPart.utf8.allSatisfy(Self.isHostByte) else {
                throw .invalidURL(
                    "invalid host in \"\(url)\" (a name or IPv4 address; an IPv6 address in brackets: http://[::1]:9091)"
                )
            }
        }
        guard !hostPart.isEmpty else { throw .invalidURL("no host in \"\(url)\"") }
        host = String(hostPart)
        self.port = port
        self.path = path
    }
}

extension HTTPEndpoint {
    /// A byte of a host name or IPv4 address (RFC 3986 reg-name: unreserved, percent-encoded, sub-delims).
    static func isHostByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default: "-._~%!$&'()*+,;=".utf8.contains(b)
        }
    }

    /// The host to resolve for bracketed `text` when it is an IPv6 address (`inet_pton`'s reading), with an optional
    /// zone, `%eth0` or RFC 6874's `%25eth0` (given to the resolver as `fe80::1%eth0`); nil otherwise.
    static func ipv6Host(_ text: Substring) -> String? {
        var address = in6_addr()
        guard let percent = text.firstIndex(of: "%") else {
            return inet_pton(AF_INET6, String(text), &address) == 1 ? String(text) : nil
        }
        var zone = text[text.index(after: percent)...]
        if zone.hasPrefix("25") && zone.count > 2 { zone = zone.dropFirst(2) }
        guard inet_pton(AF_INET6, String(text[..<percent]), &address) == 1, !zone.isEmpty,
            zone.utf8.allSatisfy({ isHostByte($0) && $0 != UInt8(ascii: "%") })
        else { return nil }
        return text[..<percent] + "%" + zone
    }
}

/// Why a push failed.
public enum PushError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The URL cannot be used.
    case invalidURL(String)
    /// No answer: the connection could not be made, or broke, or timed out.
    case io(String)
    /// The receiver answered with an error status that is not retried (and this body), at attempt `attempts`.
    case status(Int, body: String, attempts: Int)
    /// The deadline passed with no success; the last failure.
    case deadline(seconds: Double, attempts: Int, last: String, what: String = "push")

    /// One line.
    public var description: String {
        switch self {
        case .invalidURL(let m): m
        case .io(let m): m
        case .status(let code, let body, let attempts):
            "answered \(code) after \(attempts) attempt\(attempts == 1 ? "" : "s"): \(Self.oneLine(body))"
        case .deadline(let seconds, let attempts, let last, let what):
            "\(what) failed after \(attempts) attempt\(attempts == 1 ? "" : "s") in \((seconds * 10).rounded() / 10) s: \(last)"
        }
    }

    /// `text` on one line, at most 500 characters.
    static func oneLine(_ text: String) -> String {
        let flat = text.split(whereSeparator: \.isNewline).joined(separator: " ")
        return flat.count > 500 ? String(flat.prefix(500)) + "…" : flat
    }
}
