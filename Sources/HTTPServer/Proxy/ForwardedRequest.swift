/// The request the proxy sends upstream, and the response head it sends back: hop-by-hop fields removed (RFC 9110
/// §7.6.1: `Connection`, the fields it names, `Proxy-Connection`, `Keep-Alive`, `TE`, `Transfer-Encoding`,
/// `Upgrade`, and `Trailer`), `X-Forwarded-For`/`-Proto`/`-Host` added, `Host` kept.
///
/// Per request: one pass over the fields, names compared in place (no lowercased copies); the fields `Connection`
/// lists are collected only when it is present.
enum ForwardedRequest {
    /// What a field is to the proxy, decided from its name.
    enum Kind: Equatable {
        /// Passed on.
        case endToEnd
        /// Never passed on (hop-by-hop, or framing the proxy sets itself).
        case dropped
        case host
        case forwardedFor
        case forwardedProto
        case forwardedHost
    }

    /// The kind of a request field named `name`.
    static func requestKind(_ name: String) -> Kind {
        let n = name.utf8
        switch n.count {
        case 2: if ASCII.equalsIgnoringCase(n, "te".utf8) { return .dropped }
        case 4: if ASCII.equalsIgnoringCase(n, "host".utf8) { return .host }
        case 6: if ASCII.equalsIgnoringCase(n, "expect".utf8) { return .dropped }
        case 7:
            if ASCII.equalsIgnoringCase(n, "upgrade".utf8) || ASCII.equalsIgnoringCase(n, "trailer".utf8) {
                return .dropped
            }
        case 10:
            if ASCII.equalsIgnoringCase(n, "connection".utf8) || ASCII.equalsIgnoringCase(n, "keep-alive".utf8) {
                return .dropped
            }
        case 14: if ASCII.equalsIgnoringCase(n, "content-length".utf8) { return .dropped }
        case 15: if ASCII.equalsIgnoringCase(n, "x-forwarded-for".utf8) { return .forwardedFor }
        case 16:
            if ASCII.equalsIgnoringCase(n, "proxy-connection".utf8) { return .dropped }
            if ASCII.equalsIgnoringCase(n, "x-forwarded-host".utf8) { return .forwardedHost }
        case 17:
            if ASCII.equalsIgnoringCase(n, "transfer-encoding".utf8) { return .dropped }
            if ASCII.equalsIgnoringCase(n, "x-forwarded-proto".utf8) { return .forwardedProto }
        default: break
        }
        return name.first == ":" ? .dropped : .endToEnd  // HTTP/2 pseudo-fields never go into HTTP/1.1
    }

    /// Whether a response field named `name` is hop-by-hop (or framing, which the server sets).
    static func isHopByHopResponseField(_ name: String) -> Bool {
        let n = name.utf8
        switch n.count {
        case 2: return ASCII.equalsIgnoringCase(n, "te".utf8)
        case 7: return ASCII.equalsIgnoringCase(n, "upgrade".utf8) || ASCII.equalsIgnoringCase(n, "trailer".utf8)
        case 10:
            return ASCII.equalsIgnoringCase(n, "connection".utf8) || ASCII.equalsIgnoringCase(n, "keep-alive".utf8)
        case 14: return ASCII.equalsIgnoringCase(n, "content-length".utf8)
        case 16: return ASCII.equalsIgnoringCase(n, "proxy-connection".utf8)
        case 17: return ASCII.equalsIgnoringCase(n, "transfer-encoding".utf8)
        default: return false
        }
    }

    /// The field names `Connection` lists (RFC 9110 §7.6.1), empty when there is no `Connection` field.
    static func connectionListed(_ headers: HTTPHeaders) -> [Substring] {
        var listed: [Substring] = []
        for field in headers.storage
        where field.name.utf8.count == 10 && HTTPHeaders.namesEqual(field.name, "Connection") {
            // Over the bytes (a comma, space or tab is never inside a multi-byte character): splitting the String
            // by Character costs many times as much, and `Connection: keep-alive` comes with most responses.
            let value = field.value
            let utf8 = value.utf8
            var start = utf8.startIndex
            while start < utf8.endIndex {
                var end = start
                while end < utf8.endIndex && utf8[end] != UInt8(ascii: ",") { utf8.formIndex(after: &end) }
                var low = start
                var high = end
                while low < high && (utf8[low] == UInt8(ascii: " ") || utf8[low] == UInt8(ascii: "\t")) {
                    utf8.formIndex(after: &low)
                }
                while low < high {
                    let last = utf8.index(before: high)
                    guard utf8[last] == UInt8(ascii: " ") || utf8[last] == UInt8(ascii: "\t") else { break }
                    high = last
                }
                start = end < utf8.endIndex ? utf8.index(after: end) : end
                let name = utf8[low..<high]
                // `keep-alive` and `close`, the usual values, are no field names: nothing more to drop.
                if name.isEmpty || ASCII.equalsIgnoringCase(name, "keep-alive".utf8)
                    || ASCII.equalsIgnoringCase(name, "close".utf8)
                {
                    continue
                }
                listed.append(value[low..<high])
            }
        }
        return listed
    }

    private static func isListed(_ name: String, _ listed: [Substring]) -> Bool {
        listed.contains { ASCII.equalsIgnoringCase($0.utf8, name.utf8) }
    }

    /// The request head to write upstream for `request`, with the whole body behind it when it is small, else
    /// apart (`body`). A head for a streamed body has room reserved for its first 4 KiB (appended in place).
    ///
    /// - Parameters:
    ///   - basePath: the upstream URL's path prefix (empty or starting with `/`, no trailing `/`).
    ///   - requestID: the value of `requestIDHeader` to send when the client sent none.
    static func encode(
        _ request: HTTPRequest, basePath: String, hostFallback: String, forwardedProto: String,
        requestIDHeader: String, requestID: String, addRequestID: Bool
    ) -> (head: [UInt8], body: [UInt8]?) {
        let listed = connectionListed(request.headers)
        var head: [UInt8] = []
        let bodyRoom = min(request.bodyStream.map { $0.contentLength ?? 0 } ?? request.body.count, 4096)
        head.reserveCapacity(320 + request.headers.count * 40 + bodyRoom)
        head.appendUTF8(request.method)
        head.append(UInt8(ascii: " "))
        head.appendUTF8(basePath)
        head.appendUTF8(request.path)
        if let query = request.query {
            head.append(UInt8(ascii: "?"))
            head.appendUTF8(query)
        }
        head.appendUTF8(" HTTP/1.1\r\n")
        var host: String?
        var forwardedFor: String?
        for field in request.headers {
            switch requestKind(field.name) {
            case .dropped, .forwardedProto, .forwardedHost:
                continue
            case .host:
                if host == nil { host = field.value }
                continue
            case .forwardedFor:
                forwardedFor = field.value  // the last one, extended below
                continue
            case .endToEnd:
                if !listed.isEmpty && isListed(field.name, listed) { continue }
                // An empty request id is replaced by the generated one.
                if addRequestID && HTTPHeaders.namesEqual(field.name, requestIDHeader) { continue }
                guard HTTPHeaders.isSendable(name: field.name.utf8, value: field.value) else { continue }
                append(field.name, field.value, to: &head)
            }
        }
        let authority = host ?? request.headers[":authority"] ?? hostFallback
        append("Host", authority, to: &head)
        let client = address(of: request.remoteAddress)
        append("X-Forwarded-For", forwardedFor.map { $0.isEmpty ? client : $0 + ", " + client } ?? client, to: &head)
        append("X-Forwarded-Proto", forwardedProto, to: &head)
        append("X-Forwarded-Host", authority, to: &head)
        if addRequestID { append(requestIDHeader, requestID, to: &head) }
        // A whole body goes with a Content-Length (an `Expect` was answered on the client side); a streamed one with
        // its own, or chunked.
        if let stream = request.bodyStream {
            if let length = stream.contentLength {
                head.appendUTF8("Content-Length: ")
                HTTP1ResponseEncoder.appendDecimal(length, to: &head)
                head.appendUTF8("\r\n")
            } else {
                head.appendUTF8("Transfer-Encoding: chunked\r\n")
            }
            head.appendUTF8("\r\n")
            return (head, nil)
        }
        let hasBody = !request.body.isEmpty || !methodHasNoBody(request.method)
        if hasBody {
            head.appendUTF8("Content-Length: ")
            HTTP1ResponseEncoder.appendDecimal(request.body.count, to: &head)
            head.appendUTF8("\r\n")
        }
        head.appendUTF8("\r\n")
        if request.body.isEmpty { return (head, nil) }
        if request.body.count <= 4096 {
            head.append(contentsOf: request.body)
            return (head, nil)
        }
        return (head, request.body)
    }

    /// Methods whose requests carry no body unless they say so (no `Content-Length: 0` sent for them).
    private static func methodHasNoBody(_ method: String) -> Bool {
        switch method {
        case "GET", "HEAD", "DELETE", "OPTIONS", "TRACE": return true
        default: return false
        }
    }

    private static func append(_ name: String, _ value: String, to head: inout [UInt8]) {
        head.appendUTF8(name)
        head.appendUTF8(": ")
        head.appendUTF8(value)
        head.appendUTF8("\r\n")
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
        let listed = connectionListed(headers)
        var kept = HTTPHeaders()
        kept.storage.reserveCapacity(headers.count + 1)
        for field in headers {
            if isHopByHopResponseField(field.name) || (!listed.isEmpty && isListed(field.name, listed)) { continue }
            kept.storage.append(field)
        }
        return kept
    }
}
