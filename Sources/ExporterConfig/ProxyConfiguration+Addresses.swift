#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#elseif canImport(Musl)
    import Musl
#endif

/// The syntax of the proxy's addresses: the upstream URL and the listen addresses.
extension ProxyConfiguration.Upstream {
    /// The upstream `url` spells (`http://host[:port][/base-path]`), or nil when it is not one the proxy can use
    /// (``parse(_:)`` says why).
    public init?(url: String) {
        guard case .success(let upstream) = Self.parse(url) else { return nil }
        self = upstream
    }

    /// Reads `http://host[:port][/base-path]`: the scheme case-insensitively; the host a DNS name (letters, digits,
    /// `-`, `_`, dot-separated labels of 1-63), a numeric IPv4 address or a bracketed numeric IPv6 address; the port
    /// 1...65535 (default 80); the base path made of RFC 3986 path characters, its trailing `/` dropped. No user
    /// name, query or fragment; `https` is refused (not supported yet).
    static func parse(_ text: String) -> Result<Self, ProxyConfiguration.SyntaxProblem> {
        func fail(_ message: String) -> Result<Self, ProxyConfiguration.SyntaxProblem> {
            .failure(ProxyConfiguration.SyntaxProblem(message: message))
        }
        let lower = text.lowercased()
        if lower.hasPrefix("https://") { return fail("https upstreams are not supported yet") }
        guard lower.hasPrefix("http://") else {
            return fail("\"\(text)\" is not an http:// URL (http://host:port[/base-path])")
        }
        let rest = text.dropFirst("http://".count)
        if rest.contains("?") || rest.contains("#") { return fail("an upstream URL has no query or fragment") }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        var basePath = Substring(rest[slash...])
        if authority.contains("@") { return fail("an upstream URL has no user name or password (user@)") }
        let hostAndPort: (host: String, port: Int)
        switch Self.authority(authority) {
        case .success(let value): hostAndPort = value
        case .failure(let problem): return .failure(problem)
        }
        if let problem = Self.pathProblem(basePath) { return fail(problem) }
        while basePath.hasSuffix("/") { basePath = basePath.dropLast() }
        return .success(Self(host: hostAndPort.host, port: hostAndPort.port, basePath: String(basePath)))
    }

    /// `host[:port]`, the host possibly a bracketed IPv6 address.
    private static func authority(
        _ text: Substring
    ) -> Result<(host: String, port: Int), ProxyConfiguration.SyntaxProblem> {
        func fail(_ message: String) -> Result<(host: String, port: Int), ProxyConfiguration.SyntaxProblem> {
            .failure(ProxyConfiguration.SyntaxProblem(message: message))
        }
        var host = text
        var port: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return fail("\"\(text)\": unclosed [ of an IPv6 host") }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return fail("\"\(text)\": expected :port after the IPv6 host") }
                port = after.dropFirst()
            }
            guard ProxyConfiguration.isNumericAddress(String(host), ipv6: true) else {
                return fail("\"\(host)\" is not a numeric IPv6 address")
            }
        } else {
            if let colon = text.lastIndex(of: ":") {
                host = text[..<colon]
                port = text[text.index(after: colon)...]
            }
            if let problem = Self.hostProblem(host) { return fail(problem) }
        }
        guard let port else { return .success((String(host), 80)) }
        guard !port.isEmpty, port.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let number = Int(port),
            (1...65535).contains(number)
        else {
            return fail("port \"\(port)\" must be a number in 1...65535")
        }
        return .success((String(host), number))
    }

    /// Why `host` is neither a DNS name nor a numeric IPv4 address, or nil.
    private static func hostProblem(_ host: Substring) -> String? {
        guard !host.isEmpty else { return "the URL has no host" }
        if host.utf8.allSatisfy({ $0 == UInt8(ascii: ".") || (0x30...0x39).contains($0) }) {
            return ProxyConfiguration.isNumericAddress(String(host), ipv6: false)
                ? nil : "\"\(host)\" is not a numeric IPv4 address"
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        let valid =
            host.utf8.count <= 253
            && labels.allSatisfy { label in
                (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
                    && label.utf8.allSatisfy { byte in
                        switch byte {
                        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
                            true
                        default: false
                        }
                    }
            }
        return valid
            ? nil
            : "host \"\(host)\" is not a DNS name (labels of letters, digits, '-' and '_'), an IPv4 address or [an IPv6 one]"
    }

    /// Why `path` (empty, or starting with `/`) has a character that is not an RFC 3986 path character, or nil.
    static func pathProblem(_ path: Substring) -> String? {
        let bytes = Array(path.utf8)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, bytes[i + 1].isHexDigit, bytes[i + 2].isHexDigit else {
                    return "\"%\" must start a percent-encoded byte (%XX) in \"\(path)\""
                }
                i += 3
                continue
            }
            guard b.isPathCharacter else {
                return
                    "\"\(path)\" has a character a URL path cannot have (RFC 3986: letters, digits, -._~!$&'()*+,;=:@/ and %XX)"
            }
            i += 1
        }
        return nil
    }
}

extension ProxyConfiguration {
    /// Why a value of the `proxy` section is not what its field takes (the message of a located error).
    struct SyntaxProblem: Error, Equatable {
        var message: String
    }

    /// Why `text` is not a listen address in the syntax of the exporter's `--web.listen-address` (the same checks
    /// and messages as the server's `ListenAddress`), or nil.
    static func listenAddressProblem(_ text: String) -> String? {
        func fail(_ why: String) -> String { "invalid listen address \"\(text)\": \(why)" }
        guard let colon = text.lastIndex(of: ":") else { return fail("expected host:port") }
        let host = String(text[..<colon])
        let port = text[text.index(after: colon)...]
        guard let number = Int(port), (0...65535).contains(number), port.allSatisfy(\.isASCII) else {
            return fail("port must be a number in 0...65535")
        }
        if host.isEmpty || host == "*" || host == "localhost" { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") {
            return isNumericAddress(String(host.dropFirst().dropLast()), ipv6: true)
                ? nil : fail("not a numeric IPv6 address")
        }
        return isNumericAddress(host, ipv6: false)
            ? nil : fail("host must be a numeric IPv4 address, [IPv6], localhost, * or empty")
    }

    /// Whether `text` is a numeric address as `inet_pton` reads it (IPv4 dotted decimal, or IPv6 without brackets).
    static func isNumericAddress(_ text: String, ipv6: Bool) -> Bool {
        var probe = (UInt64(0), UInt64(0))
        return withUnsafeMutableBytes(of: &probe) { inet_pton(ipv6 ? AF_INET6 : AF_INET, text, $0.baseAddress) == 1 }
    }

    /// Header names `request_id_header` may not be (lower-case): the message's framing and target, the hop-by-hop
    /// fields (RFC 9110 §7.6.1) and those the proxy writes itself (`X-Forwarded-*`, `Via`, `Date`, `Server`), and the
    /// content's description.
    static let reservedRequestIDHeaders: Set<String> = [
        "content-length", "transfer-encoding", "host", "connection", "keep-alive", "te", "trailer", "upgrade",
        "proxy-connection", "proxy-authenticate", "proxy-authorization", "expect", "x-forwarded-for",
        "x-forwarded-proto", "x-forwarded-host", "forwarded", "via", "date", "server", "content-type",
        "content-encoding", "max-forwards", "authorization", "cookie", "set-cookie", "location",
    ]

    /// Whether `text` is an HTTP token (RFC 9110 §5.6.2): what a method or a header name is made of.
    /// The methods RFC 9110 (§9.3) and RFC 5789 define, in their (case-sensitive) spelling.
    static let standardMethods: Set<String> = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ]

    static func isToken(_ text: String) -> Bool {
        !text.isEmpty
            && text.utf8.allSatisfy { b in
                switch b {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"):
                    true
                default: "!#$%&'*+-.^_`|~".utf8.contains(b)
                }
            }
    }
}

extension UInt8 {
    /// An ASCII hexadecimal digit.
    fileprivate var isHexDigit: Bool {
        switch self {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
            UInt8(ascii: "A")...UInt8(ascii: "F"):
            true
        default: false
        }
    }

    /// `/` or an RFC 3986 `pchar` other than a percent-encoding: unreserved, sub-delims, `:` and `@`.
    fileprivate var isPathCharacter: Bool {
        switch self {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default: "-._~!$&'()*+,;=:@/".utf8.contains(self)
        }
    }
}
