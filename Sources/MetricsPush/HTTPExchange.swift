#if canImport(Glibc)
    import Glibc
#endif

/// One HTTP/1.1 request and its response over a fresh connection (`Connection: close`), blocking, the whole exchange
/// bounded by a timeout (each socket operation waits at most what is left of it: a server that answers a byte at a
/// time cannot hold it longer): enough for a push. No TLS. Redirects that keep the method and body (307, 308) to an
/// `http://` URL or a path are followed, at most ``maxRedirects`` of them within the same timeout (as Prometheus'
/// remote write does, `follow_redirects`); other redirects are answers (Go's client turns a POST into a GET). A
/// redirect to another host gets no credentials (`Authorization`, `Proxy-Authorization`, `Cookie`), as Go's client
/// sends none there: a receiver's redirect could collect them.
struct HTTPExchange {
    /// A response: status, and body (at most 64 KiB kept).
    struct Response: Equatable {
        var status: Int
        var headers: [(name: String, value: String)]
        var body: String

        /// The value of header `name` (case-insensitive), if present.
        func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }

        static func == (a: Response, b: Response) -> Bool { a.status == b.status && a.body == b.body }
    }

    /// Redirects followed at most for one exchange.
    static let maxRedirects = 5

    /// Sends `method path` with `body` to `host:port` and reads the answer, within `timeout` seconds in all,
    /// following 307 and 308 redirects. `userAgent`: the sender's name and version (`mlops-exporter/0.1.0`; the
    /// remote-write spec requires both).
    static func send(
        method: String, host: String, port: UInt16, path: String, contentType: String, body: [UInt8],
        timeout: Double, userAgent: String, headers: [(name: String, value: String)] = []
    ) throws(PushError) -> Response {
        let deadline = Pushgateway.monotonicNow() + max(0.001, timeout)
        var (host, port, path) = (host, port, path)
        var headers = headers
        let firstHost = host
        var redirects = 0
        while true {
            let response = try sendOnce(
                method: method, host: host, port: port, path: path, contentType: contentType, body: body,
                deadline: deadline, userAgent: userAgent, headers: headers)
            guard response.status == 307 || response.status == 308, let location = response.header("location"),
                let next = redirectTarget(location, host: host, port: port)
            else { return response }
            redirects += 1
            guard redirects <= maxRedirects else {
                throw .io("more than \(maxRedirects) redirects (the last to \(location))")
            }
            (host, port, path) = next
            if host.lowercased() != firstHost.lowercased() {
                headers.removeAll { Self.credentialHeaders.contains($0.name.lowercased()) }
            }
        }
    }

    /// The request headers a redirect to another host does not get.
    static let credentialHeaders: Set<String> = ["authorization", "proxy-authorization", "cookie"]

    /// Where a `Location` sends the request: an `http://` URL, or a path on the same server; nil for anything else
    /// (`https://`, a relative reference), which is then the answer.
    static func redirectTarget(
        _ location: String, host: String, port: UInt16
    ) -> (host: String, port: UInt16, path: String)? {
        // Visible ASCII only: what goes into the request line and `Host` must not end or split them.
        guard location.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else { return nil }
        if location.hasPrefix("/") && !location.hasPrefix("//") { return (host, port, location) }
        guard location.lowercased().hasPrefix("http://") else { return nil }
        let url = "http://" + location.dropFirst("http://".count)
        guard let endpoint = try? HTTPEndpoint(url: url),
            endpoint.host.utf8.allSatisfy({
                $0 == 0x2D || $0 == 0x2E || $0 == 0x3A || $0 == 0x5F || isalnum(Int32($0)) != 0
            })
        else { return nil }
        return (endpoint.host, endpoint.port, endpoint.path.isEmpty ? "/" : endpoint.path)
    }

    private static func sendOnce(
        method: String, host: String, port: UInt16, path: String, contentType: String, body: [UInt8],
        deadline: Double, userAgent: String, headers: [(name: String, value: String)]
    ) throws(PushError) -> Response {
        let timeout = deadline - Pushgateway.monotonicNow()
        guard timeout > 0 else { throw .io("no answer in time") }
        let fd = try connect(host: host, port: port, timeout: timeout)
        defer { _ = close(fd) }
        var head =
            "\(method) \(path) HTTP/1.1\r\nHost: \(host.contains(":") ? "[\(host)]" : host):\(port)\r\n"
            + "Content-Type: \(contentType)\r\n"
            + "Content-Length: \(body.count)\r\nUser-Agent: \(userAgent)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        try write(fd, Array(head.utf8) + body, deadline: deadline)
        return try readResponse(fd, deadline: deadline)
    }

    /// Bounds the next socket operation on `fd` by what is left until `deadline`; throws when nothing is left.
    private static func limit(_ fd: Int32, by deadline: Double) throws(PushError) {
        let left = deadline - Pushgateway.monotonicNow()
        guard left > 0 else { throw .io("no answer in time") }
        var tv = timeval(tv_sec: Int(left), tv_usec: Int((left - left.rounded(.down)) * 1e6))
        if tv.tv_sec == 0 && tv.tv_usec == 0 { tv.tv_usec = 1 }
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    private static func connect(host: String, port: UInt16, timeout: Double) throws(PushError) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw .io("cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastError: Int32 = 0
        var lastCall = "cannot connect to"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        let seconds = max(0.001, timeout)
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1e6))
        while let info = entry {
            let s = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if s >= 0 {
                // On Linux, SO_SNDTIMEO also bounds connect().
                _ = setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                _ = setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                if Glibc.connect(s, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return s }
                lastError = errno
                lastCall = "cannot connect to"
                _ = close(s)
            } else {
                // Said as the socket's failure: "cannot connect …: Success" before (out of descriptors, a probe found).
                lastError = errno
                lastCall = "cannot make a socket to connect to"
            }
            entry = info.pointee.ai_next
        }
        throw .io("\(lastCall) \(host):\(port): \(String(cString: strerror(lastError)))")
    }

    private static func write(_ fd: Int32, _ bytes: [UInt8], deadline: Double) throws(PushError) {
        var offset = 0
        while offset < bytes.count {
            try limit(fd, by: deadline)
            let n = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw .io(errno == EAGAIN ? "no answer in time" : "send failed: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    /// Reads the whole response (the server closes after it): head, then a body framed by `Content-Length`,
    /// chunked encoding, or the end of the connection.
    private static func readResponse(_ fd: Int32, deadline: Double) throws(PushError) -> Response {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while buffer.count < 1 << 20 {
            try limit(fd, by: deadline)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n == 0 { break }
            guard n > 0 else {
                if buffer.isEmpty || errno == EAGAIN {
                    throw .io(
                        errno == EAGAIN
                            ? "no answer in time"
                            : "receive failed: \(String(cString: strerror(errno)))")
                }
                break
            }
            buffer += chunk[0..<n]
            if let response = parse(buffer, complete: false) { return response }
        }
        guard let response = parse(buffer, complete: true) else {
            throw .io(buffer.isEmpty ? "connection closed without an answer" : "malformed answer")
        }
        return response
    }

    /// Interim responses skipped before the answer at most.
    static let maxInterimResponses = 16

    /// The response in `bytes` if it is whole (or, when `complete`, whatever body there is). Interim responses
    /// (1xx but 101: a `100 Continue`, asked for by an `Expect` header or not, `103 Early Hints`) are skipped, as RFC
    /// 9110 §15.2 requires: the answer is the final response after them. Before, a `100 Continue` was taken for the
    /// answer and a delivered request counted refused.
    static func parse(_ bytes: [UInt8], complete: Bool) -> Response? {
        let crlf2: [UInt8] = [13, 10, 13, 10]
        var start = 0
        var interim = 0
        // In a loop, not by recursion: a receiver answering thousands of `100 Continue` in the 1 MiB read overflowed
        // the stack (the remote write thread, so the whole exporter). Past ``maxInterimResponses`` the last interim
        // one is the answer (counted `http_other`).
        var end = 0
        var status = 0
        var lines: [Substring] = []
        while true {
            guard bytes.count - start >= 4,
                let found = (start...(bytes.count - 4)).first(where: { bytes[$0..<($0 + 4)].elementsEqual(crlf2) })
            else { return nil }
            end = found
            lines = String(decoding: bytes[start..<end], as: UTF8.self).split(separator: "\r\n")
            let statusParts = lines.first?.split(separator: " ") ?? []
            guard statusParts.count >= 2, let code = Int(statusParts[1]) else { return nil }
            status = code
            guard (100..<200).contains(status), status != 101, interim < maxInterimResponses else { break }
            interim += 1
            start = end + 4
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append(
                (String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingSpaces()))
        }
        var response = Response(status: status, headers: headers, body: "")
        let rest = Array(bytes[(end + 4)...])
        if let length = response.header("content-length").flatMap({ Int($0) }) {
            guard length >= 0 else { return nil }  // malformed (and `rest[0..<length]` would trap)
            guard rest.count >= length else { return complete ? response.with(rest) : nil }
            return response.with(Array(rest[0..<length]))
        }
        if response.header("transfer-encoding")?.lowercased().contains("chunked") == true {
            if let body = dechunk(rest) { return response.with(body) }
            return complete ? response.with(rest) : nil
        }
        if status == 204 || status == 304 || (100..<200).contains(status) { return response }
        if !complete { return nil }
        response = response.with(rest)
        return response
    }

    /// A chunked body, if it is whole.
    static func dechunk(_ bytes: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var i = 0
        while true {
            guard let lineEnd = (i..<max(i, bytes.count - 1)).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 })
            else { return nil }
            let sizeText = String(decoding: bytes[i..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingSpaces(), radix: 16), size >= 0 else { return nil }
            i = lineEnd + 2
            if size == 0 { return out }
            // As a difference: `i + size + 2` overflows for a size near Int.max.
            guard size <= bytes.count - i - 2 else { return nil }
            out += bytes[i..<(i + size)]
            i += size + 2
        }
    }
}

extension HTTPExchange.Response {
    fileprivate func with(_ body: [UInt8]) -> Self {
        var copy = self
        copy.body = String(decoding: body.prefix(65_536), as: UTF8.self)
        return copy
    }
}

extension StringProtocol {
    fileprivate func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return String(s)
    }
}
