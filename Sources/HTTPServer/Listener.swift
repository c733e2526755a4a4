import CSystemShims
import Glibc

/// A bound, listening, non-blocking TCP socket, polled by the acceptor loop.
final class Listener {
    /// The outcome of one `accept4` call.
    enum AcceptResult {
        /// A new non-blocking, close-on-exec socket with `TCP_NODELAY` set.
        case connection(Int32, remoteAddress: String)
        /// The backlog is empty.
        case wouldBlock
        /// A transient failure for this one connection (EINTR, ECONNABORTED, EPROTO, ...): try again.
        case retry
        /// EMFILE, ENFILE, ENOBUFS or ENOMEM: retrying at once would fail again.
        case outOfDescriptors(Int32)
        /// Any other errno.
        case failed(Int32)
    }

    let fileDescriptor: Int32
    let boundAddress: BoundAddress
    /// The epoll token, assigned by the acceptor loop.
    var token: UInt64 = 0
    private var isClosed = false

    private init(fileDescriptor: Int32, boundAddress: BoundAddress) {
        self.fileDescriptor = fileDescriptor
        self.boundAddress = boundAddress
    }

    deinit {
        close()
    }

    /// Binds and listens on `address`. For ``ListenAddress/Host/any`` this is one dual-stack `[::]`
    /// socket (`IPV6_V6ONLY` off), falling back to `0.0.0.0` when the kernel has no IPv6.
    static func bind(_ address: ListenAddress, backlog: Int) throws(HTTPServerError) -> Listener {
        switch address.host {
        case .ipv4(let host):
            return try bind(
                ipv6: false, host: host, port: address.port, dualStack: false, backlog: backlog, text: address)
        case .ipv6(let host):
            return try bind(
                ipv6: true, host: host, port: address.port, dualStack: false, backlog: backlog, text: address)
        case .any:
            do {
                return try bind(
                    ipv6: true, host: "::", port: address.port, dualStack: true, backlog: backlog, text: address)
            } catch  where error.errno == EAFNOSUPPORT {
                return try bind(
                    ipv6: false, host: "0.0.0.0", port: address.port, dualStack: false, backlog: backlog, text: address)
            }
        }
    }

    private static func bind(
        ipv6: Bool, host: String, port: Int, dualStack: Bool, backlog: Int, text: ListenAddress
    ) throws(HTTPServerError) -> Listener {
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, cshims_sock_stream_cloexec(), 0)
        guard fd >= 0 else { throw HTTPServerError(.bindFailed, "cannot create a socket for \(text)", errno: errno) }
        func fail(_ what: String, _ error: Int32) -> HTTPServerError {
            Syscall.close(fd)
            return HTTPServerError(.bindFailed, "\(what) \(text) failed", errno: error)
        }
        // SO_REUSEADDR lets a restarted server bind while old connections sit in TIME_WAIT. Deliberately
        // no SO_REUSEPORT: a second instance on the same port must fail, not share the traffic.
        if let error = Syscall.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1) { throw fail("SO_REUSEADDR on", error) }
        if ipv6, let error = Syscall.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, dualStack ? 0 : 1) {
            throw fail("IPV6_V6ONLY on", error)
        }
        var storage = sockaddr_storage()
        let length = SocketAddressCoding.make(ipv6: ipv6, numericHost: host, port: port, into: &storage)
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) }
        }
        if bound != 0 { throw fail("bind to", errno) }
        if listen(fd, Int32(clamping: backlog)) != 0 { throw fail("listen on", errno) }
        let flags = fcntl(fd, F_GETFL)
        if flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 { throw fail("O_NONBLOCK on", errno) }

        var actual = sockaddr_storage()
        var actualLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &actualLength) }
        }
        if named != 0 { throw fail("getsockname for", errno) }
        guard var boundAddress = SocketAddressCoding.decode(actual) else {
            throw fail("decoding the bound address of", EAFNOSUPPORT)
        }
        boundAddress.isIPv6 = ipv6
        return Listener(fileDescriptor: fd, boundAddress: boundAddress)
    }

    /// Accepts one pending connection with `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)` and sets `TCP_NODELAY`
    /// (responses go out in one write; without it Nagle plus delayed ACK can add 40 ms).
    func accept() -> AcceptResult {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let fd = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                accept4(fileDescriptor, $0, &length, cshims_sock_nonblock_cloexec())
            }
        }
        guard fd >= 0 else {
            let error = errno
            switch error {
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            case EINTR, ECONNABORTED, EPROTO, EPERM, ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH,
                EOPNOTSUPP, ENETUNREACH:
                // Errors of that one pending connection (accept(2), "Error handling"): skip it.
                return .retry
            case EMFILE, ENFILE, ENOBUFS, ENOMEM: return .outOfDescriptors(error)
            default: return .failed(error)
            }
        }
        Syscall.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        let remote = SocketAddressCoding.decode(storage)?.description ?? "unknown"
        return .connection(fd, remoteAddress: remote)
    }

    /// Closes the listening socket (idempotent); pending, unaccepted connections are reset by the kernel.
    func close() {
        guard !isClosed else { return }
        isClosed = true
        Syscall.close(fileDescriptor)
    }
}
