import CSystemShims
import Glibc

/// A parsed listen address (`host:port`), see ``HTTPServer/Configuration/listenAddresses``.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// What to bind.
    public enum Host: Sendable, Hashable {
        /// All interfaces: a dual-stack `[::]` socket, or `0.0.0.0` if the host has no IPv6.
        case any
        /// A numeric IPv4 address such as `127.0.0.1` or `0.0.0.0`.
        case ipv4(String)
        /// A numeric IPv6 address without brackets, such as `::1` or `::`.
        case ipv6(String)
    }

    /// The interface part.
    public var host: Host
    /// The TCP port, 0 for "pick a free one".
    public var port: Int

    /// Parses `0.0.0.0:9464`, `[::1]:9464`, `:9464`, `*:9464`, `localhost:9464`; throws
    /// ``HTTPServerError/Kind/invalidAddress`` with the offending text otherwise.
    public init(_ text: String) throws(HTTPServerError) {
        func fail(_ why: String) -> HTTPServerError {
            HTTPServerError(.invalidAddress, "invalid listen address \"\(text)\": \(why)")
        }
        guard let colon = text.lastIndex(of: ":") else { throw fail("expected host:port") }
        let hostPart = String(text[..<colon])
        let portPart = text[text.index(after: colon)...]
        guard let port = Int(portPart), (0...65535).contains(port), portPart.allSatisfy(\.isASCII) else {
            throw fail("port must be a number in 0...65535")
        }
        self.port = port
        if hostPart.isEmpty || hostPart == "*" {
            host = .any
        } else if hostPart == "localhost" {
            host = .ipv4("127.0.0.1")
        } else if hostPart.hasPrefix("[") && hostPart.hasSuffix("]") {
            let inner = String(hostPart.dropFirst().dropLast())
            var probe = in6_addr()
            guard inet_pton(AF_INET6, inner, &probe) == 1 else { throw fail("not a numeric IPv6 address") }
            host = .ipv6(inner)
        } else {
            var probe = in_addr()
            guard inet_pton(AF_INET, hostPart, &probe) == 1 else {
                throw fail("host must be a numeric IPv4 address, [IPv6], localhost, * or empty")
            }
            host = .ipv4(hostPart)
        }
    }

    /// Whether `self` and `other` cannot both be bound (no `SO_REUSEPORT`: the second bind fails with "address
    /// already in use"): the same port, not 0, and the same address, or a wildcard that covers the other's: `:P`
    /// (dual-stack `[::]`, every address), `0.0.0.0:P` every IPv4 address, `[::]:P` every IPv6 address (it is bound
    /// IPv6-only). Addresses are compared as numbers (`[::1]` and `[0::1]` are one).
    public func overlaps(_ other: ListenAddress) -> Bool {
        guard port != 0, port == other.port else { return false }
        switch (host, other.host) {
        case (.any, _), (_, .any):
            return true
        case (.ipv4(let a), .ipv4(let b)):
            let (x, y) = (Self.number(a, family: AF_INET), Self.number(b, family: AF_INET))
            return x == y || x == Self.number("0.0.0.0", family: AF_INET)
                || y == Self.number("0.0.0.0", family: AF_INET)
        case (.ipv6(let a), .ipv6(let b)):
            let (x, y) = (Self.number(a, family: AF_INET6), Self.number(b, family: AF_INET6))
            return x == y || x == Self.number("::", family: AF_INET6) || y == Self.number("::", family: AF_INET6)
        default:
            return false
        }
    }

    /// The address `text` as `inet_pton` writes it (16 bytes, IPv4 in the first 4), as two words.
    private static func number(_ text: String, family: Int32) -> [UInt64] {
        var words = (UInt64(0), UInt64(0))
        _ = withUnsafeMutableBytes(of: &words) { inet_pton(family, text, $0.baseAddress) }
        return [words.0, words.1]
    }

    /// The address in the form accepted by ``init(_:)``.
    public var description: String {
        switch host {
        case .any: ":\(port)"
        case .ipv4(let address): "\(address):\(port)"
        case .ipv6(let address): "[\(address)]:\(port)"
        }
    }
}

/// An address a listener is actually bound to, with port 0 resolved.
public struct BoundAddress: Sendable, Hashable, CustomStringConvertible {
    /// The numeric host (`127.0.0.1`, `::1`, `::`), without brackets.
    public var host: String
    /// The bound TCP port.
    public var port: Int
    /// Whether this is an IPv6 socket (possibly dual-stack).
    public var isIPv6: Bool

    /// `host:port`, with brackets around IPv6 hosts.
    public var description: String {
        isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// `sockaddr_storage` helpers: building from a ``ListenAddress`` and formatting peers.
enum SocketAddressCoding {
    /// Fills `storage` for `host`/`port`; returns the length to pass to `bind`.
    static func make(
        ipv6: Bool, numericHost: String, port: Int, into storage: inout sockaddr_storage
    ) -> socklen_t {
        storage = sockaddr_storage()
        if ipv6 {
            return withUnsafeMutableBytes(of: &storage) { raw in
                let address = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)
                address.pointee.sin6_family = sa_family_t(AF_INET6)
                address.pointee.sin6_port = in_port_t(UInt16(port).bigEndian)
                _ = inet_pton(AF_INET6, numericHost, &address.pointee.sin6_addr)
                return socklen_t(MemoryLayout<sockaddr_in6>.size)
            }
        } else {
            return withUnsafeMutableBytes(of: &storage) { raw in
                let address = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
                address.pointee.sin_family = sa_family_t(AF_INET)
                address.pointee.sin_port = in_port_t(UInt16(port).bigEndian)
                _ = inet_pton(AF_INET, numericHost, &address.pointee.sin_addr)
                return socklen_t(MemoryLayout<sockaddr_in>.size)
            }
        }
    }

    /// Host, port and family of a socket address; IPv4-mapped IPv6 peers are shown as IPv4.
    static func decode(_ storage: sockaddr_storage) -> BoundAddress? {
        var storage = storage
        return withUnsafeBytes(of: &storage) { raw -> BoundAddress? in
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            switch Int32(raw.load(as: sa_family_t.self)) {
            case AF_INET:
                var address = raw.load(as: sockaddr_in.self)
                guard inet_ntop(AF_INET, &address.sin_addr, &text, socklen_t(text.count)) != nil else { return nil }
                return BoundAddress(
                    host: decodeCString(text), port: Int(UInt16(bigEndian: address.sin_port)), isIPv6: false)
            case AF_INET6:
                var address = raw.load(as: sockaddr_in6.self)
                guard inet_ntop(AF_INET6, &address.sin6_addr, &text, socklen_t(text.count)) != nil else {
                    return nil
                }
                var host = decodeCString(text)
                var isIPv6 = true
                if host.hasPrefix("::ffff:"), host.contains(".") {
                    host.removeFirst(7)
                    isIPv6 = false
                }
                return BoundAddress(host: host, port: Int(UInt16(bigEndian: address.sin6_port)), isIPv6: isIPv6)
            default:
                return nil
            }
        }
    }

    private static func decodeCString(_ text: [CChar]) -> String {
        let bytes = text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
