/// The request the proxy sends upstream, and the response head it sends back: hop-by-hop fields removed (RFC 9110
/// §7.6.1: `Connection`, the fields it names, `Proxy-Connection`, `Keep-Alive`, `TE`, `Transfer-Encoding`,
/// `Upgrade`, and `Trailer`), `X-Forwarded-For`/`-Proto`/`-Host` added, `Host` kept.
enum ForwardedRequest {
    /// Hop-by-hop fields, lowercased.
    static let hopByHop: Set<String> = [
        "connection", "proxy-connection", "keep-alive", "te", "transfer-encoding", "upgrade", "trailer",
    ]

    /// `headers` without hop-by-hop fields and without the fields `Connection` lists.
    static func endToEnd(_ headers: HTTPHeaders, alsoDropping extra: Set<String> = []) -> HTTPHeaders {
        var listed: Set<String> = []
        for value in headers.values(for: "Connection") {
            for token in value.split(separator: ",") {
                let name = token.trimmingASCIIWhitespace().lowercased()
                if !name.isEmpty { listed.insert(name) }
            }
        }
        var kept = HTTPHeaders()
        for field in headers {
            let name = field.name.lowercased()
            if hopByHop.contains(name) || listed.contains(name) || extra.contains(name) { continue }
            kept.add(name: field.name, value: field.value)
        }
        return kept
    }

    /// The request head and body to write upstream for `request`.
    ///
    /// - Parameters:
    ///   - basePath: the upstream URL's path prefix (empty or starting with `/`, no trailing `/`).
    ///   - requestID: the value of `requestIDHeader` to send (the client's, or a generated one).
    static func encode(
        _ request: HTTPRequest, basePath: String, hostFallback: String, forwardedProto: String, requestIDHeader: String,
        requestID: String
    ) -> [[UInt8]] {
        // Framing is the proxy's: the body was received whole, so it goes with a Content-Length; `Expect` was
        // answered on the client side already.
        var headers = endToEnd(request.headers, alsoDropping: ["content-length", "expect", "host"])
        let host = request.headers["Host"] ?? request.headers[":authority"] ?? hostFallback
        let clientAddress = Self.address(of: request.remoteAddress)
        if let previous = request.headers.values(for: "X-Forwarded-For").last, !previous.isEmpty {
            headers.remove(name: "X-Forwarded-For")
            headers.add(name: "X-Forwarded-For", value: previous + ", " + clientAddress)
        } else {
            headers.replaceOrAdd(name: "X-Forwarded-For", value: clientAddress)
        }
        headers.replaceOrAdd(name: "X-Forwarded-Proto", value: forwardedProto)
        headers.replaceOrAdd(name: "X-Forwarded-Host", value: host)
        if request.headers[requestIDHeader] == nil { headers.add(name: requestIDHeader, value: requestID) }

        var head: [UInt8] = []
        head.reserveCapacity(256 + headers.count * 48)
        head.append(contentsOf: request.method.utf8)
        head.append(UInt8(ascii: " "))
        head.append(contentsOf: basePath.utf8)
        head.append(contentsOf: request.path.utf8)
        if let query = request.query {
            head.append(UInt8(ascii: "?"))
            head.append(contentsOf: query.utf8)
        }
        head.append(contentsOf: " HTTP/1.1\r\nHost: ".utf8)
        head.append(contentsOf: host.utf8)
        head.append(contentsOf: "\r\n".utf8)
        for field in headers where HTTPHeaders.isSendable(name: field.name.utf8, value: field.value) {
            if field.name.first == ":" { continue }  // HTTP/2 pseudo-fields never go into HTTP/1.1
            head.append(contentsOf: field.name.utf8)
            head.append(contentsOf: ": ".utf8)
            head.append(contentsOf: field.value.utf8)
            head.append(contentsOf: "\r\n".utf8)
        }
        let hasBody = !request.body.isEmpty || !["GET", "HEAD", "DELETE", "OPTIONS", "TRACE"].contains(request.method)
        if hasBody {
            head.append(contentsOf: "Content-Length: ".utf8)
            HTTP1ResponseEncoder.appendDecimal(request.body.count, to: &head)
            head.append(contentsOf: "\r\n".utf8)
        }
        head.append(contentsOf: "\r\n".utf8)
        if request.body.isEmpty { return [head] }
        if request.body.count <= 4096 {
            head.append(contentsOf: request.body)
            return [head]
        }
        return [head, request.body]
    }

    /// The address part of `address:port` / `[v6]:port`.
    static func address(of remote: String) -> String {
        if remote.hasPrefix("["), let end = remote.firstIndex(of: "]") {
            return String(remote[remote.index(after: remote.startIndex)..<end])
        }
        if let colon = remote.lastIndex(of: ":") { return String(remote[..<colon]) }
        return remote
    }

    /// The response head's fields to pass to the client: end-to-end fields only, framing left to the server.
    static func responseFields(_ headers: HTTPHeaders) -> HTTPHeaders {
        endToEnd(headers, alsoDropping: ["content-length"])
    }
}

extension Substring {
    fileprivate func trimmingASCIIWhitespace() -> Substring {
        var slice = self
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return slice
    }
}
