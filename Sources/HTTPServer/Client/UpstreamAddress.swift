import CSystemShims
import Glibc

/// Where the reverse proxy connects: a host and port resolved once to a socket address, and the text sent as the
/// upstream's identity.
///
/// Resolution (`getaddrinfo`, blocking) happens in ``resolve(host:port:)``, called when the proxy is configured,
/// never on an event loop; the first address returned is used (IPv4 or IPv6). A name whose addresses change needs
/// a reload of the configuration.
public struct UpstreamAddress: Sendable, CustomStringConvertible {
    /// The host as configured (a name, an IPv4 address or an IPv6 address without brackets).
    public let host: String
    /// The TCP port, 1...65535.
    public let port: Int
    let family: Int32
    let storage: sockaddr_storage
    let length: socklen_t

    /// `host:port` (`[v6]:port` for IPv6 literals).
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Resolves `host` (name or literal) and `port`; throws when nothing resolves.
    public static func resolve(host: String, port: Int) throws(HTTPServerError) -> UpstreamAddress {
        guard (1...65535).contains(port) else {
            throw HTTPServerError(.invalidAddress, "upstream port \(port) is out of range")
        }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let first = result else {
            let why = status == 0 ? "no address" : String(cString: gai_strerror(status))
            throw HTTPServerError(.invalidAddress, "cannot resolve upstream host \(host): \(why)")
        }
        defer { freeaddrinfo(result) }
        var storage = sockaddr_storage()
        let length = min(socklen_t(MemoryLayout<sockaddr_storage>.size), first.pointee.ai_addrlen)
        withUnsafeMutableBytes(of: &storage) { raw in
            raw.copyMemory(from: UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: Int(length)))
        }
        return UpstreamAddress(
            host: host, port: port, family: first.pointee.ai_family, storage: storage, length: length)
    }

    /// Opens a non-blocking socket and starts connecting: the descriptor and whether the connection is already
    /// established (loopback may complete at once), or the errno of a failure.
    func connect() -> Result<(fd: Int32, connected: Bool), ConnectError> {
        let fd = socket(family, cshims_sock_stream_cloexec() | cshims_sock_nonblock_cloexec(), 0)
        guard fd >= 0 else { return .failure(ConnectError(errno: errno)) }
        _ = Syscall.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        var address = storage
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) }
        }
        if result == 0 { return .success((fd, true)) }
        let error = errno
        if error == EINPROGRESS || error == EINTR { return .success((fd, false)) }
        Syscall.close(fd)
        return .failure(ConnectError(errno: error))
    }

    struct ConnectError: Error {
        var errno: Int32
    }
}
