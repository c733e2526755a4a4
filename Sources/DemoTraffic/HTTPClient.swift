#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A minimal blocking HTTP/1.1 client for `http://host:port` targets: one keep-alive connection, reopened
/// after any failure, 5-second socket timeouts. Enough for POSTing batches to the exporter; no TLS.
final class DemoHTTPClient {
    /// A response: status code and body.
    struct Response {
        var status: Int
        var body: String
    }

    let host: String
    let port: UInt16
    let basePath: String
    private var fd: Int32 = -1

    /// Parses `http://host:port[/path]` (port default 80).
    init(target: String) throws(DemoError) {
        guard target.hasPrefix("http://") else {
            throw .invalidArgument("--target: only http:// URLs are supported (got \"\(target)\")")
        }
        var rest = Substring(target.dropFirst("http://".count))
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
                throw .invalidArgument("--target: invalid port in \"\(target)\"")
            }
            port = p
            hostPart = rest[..<colon]
        }
        if hostPart.hasPrefix("[") && hostPart.hasSuffix("]") { hostPart = hostPart.dropFirst().dropLast() }
        guard !hostPart.isEmpty else { throw .invalidArgument("--target: no host in \"\(target)\"") }
        host = String(hostPart)
        self.port = port
        basePath = path
    }

    /// The `Host` header's value: an IPv6 address in brackets (RFC 9110 §7.2, as in the URL: `[::1]:9747`; without
    /// them the exporter refused every request, 400 invalid Host header).
    var hostHeader: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    deinit { close() }

    func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
    }

    private func connect() throws(DemoError) {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw .io("cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastError: Int32 = 0
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            let s = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if s >= 0 {
                var timeout = timeval(tv_sec: 5, tv_usec: 0)
                _ = setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                _ = setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                var one: Int32 = 1
                _ = setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                if Glibc.connect(s, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 {
                    fd = s
                    return
                }
                lastError = errno
                _ = Glibc.close(s)
            }
            entry = info.pointee.ai_next
        }
        throw .io("cannot connect to \(host):\(port): \(String(cString: strerror(lastError)))")
    }

    /// POSTs `body` to `basePath + path`; retries once on a fresh connection if a kept-alive one was closed.
    func post(path: String, body: String, contentType: String) throws(DemoError) -> Response {
        do {
            return try attempt(path: path, body: body, contentType: contentType)
        } catch {
            close()
            return try attempt(path: path, body: body, contentType: contentType)
        }
    }

    private func attempt(path: String, body: String, contentType: String) throws(DemoError) -> Response {
        if fd < 0 { try connect() }
        let bodyBytes = Array(body.utf8)
        let head =
            "POST \(basePath)\(path) HTTP/1.1\r\nHost: \(hostHeader)\r\nContent-Type: \(contentType)\r\n"
            + "Content-Length: \(bodyBytes.count)\r\nUser-Agent: mlops-exporter-demo\r\n\r\n"
        try send(Array(head.utf8) + bodyBytes)
        return try readResponse()
    }

    private func send(_ bytes: [UInt8]) throws(DemoError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .io("send failed: \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    private func readResponse() throws(DemoError) -> Response {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        var headerEnd: Int?
        var contentLength = 0
        var status = 0
        var closeAfter = false
        while true {
            if let end = headerEnd, buffer.count >= end + contentLength { break }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw .io(
                    n == 0 ? "connection closed by the target" : "receive failed: \(String(cString: strerror(errno)))")
            }
            buffer += chunk[0..<n]
            if headerEnd == nil, let end = Self.find(Array("\r\n\r\n".utf8), in: buffer) {
                headerEnd = end + 4
                let head = String(decoding: buffer[0..<end], as: UTF8.self).lowercased()
                let lines = head.split(separator: "\r\n")
                let statusParts = lines.first?.split(separator: " ") ?? []
                guard statusParts.count >= 2, let code = Int(statusParts[1]) else {
                    throw .io("malformed response from the target")
                }
                status = code
                for line in lines.dropFirst() {
                    if line.hasPrefix("content-length:") {
                        contentLength = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: " ")) ?? 0
                    } else if line.hasPrefix("connection:") && line.contains("close") {
                        closeAfter = true
                    }
                }
            }
        }
        let start = headerEnd ?? 0
        let body = String(decoding: buffer[start..<(start + contentLength)], as: UTF8.self)
        if closeAfter { close() }
        return Response(status: status, body: body)
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if Array(haystack[i..<(i + needle.count)]) == needle { return i }
        }
        return nil
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in character: Character) -> Substring {
        var s = self
        while s.first == character { s.removeFirst() }
        while s.last == character { s.removeLast() }
        return s
    }
}
