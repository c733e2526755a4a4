/// The request the proxy sends upstream, and the response head it sends back: hop-by-hop fields removed (RFC 9110
/// §7.6.1: `Connection`, the fields it names, `Proxy-Connection`, `Keep-Alive`, `TE`, `Transfer-Encoding`,
/// `Upgrade`, and `Trailer`), `X-Forwarded-For`/`-Proto`/`-Host` added, `Host` kept.
///
/// Per request: one pass over the fields, names compared in place (no lowercased copies); the fields `Connection`
/// lists are collected only when it is present. Fields an HTTP/1.x client sent are copied as the bytes received
/// (``ForwardedFields``); the `String`s are encoded only for HTTP/2 and for requests built in code.
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

    /// The kind of a request field named `n` (its UTF-8 bytes).
    @inline(__always)
    static func requestKind<Name: Collection<UInt8>>(_ n: Name) -> Kind {
        switch n.count {
        case 2: if ASCII.equalsLowercase(n, "te") { return .dropped }
        case 4: if ASCII.equalsLowercase(n, "host") { return .host }
        case 6: if ASCII.equalsLowercase(n, "expect") { return .dropped }
        case 7:
            if ASCII.equalsLowercase(n, "upgrade") || ASCII.equalsLowercase(n, "trailer") {
                return .dropped
            }
        case 10:
            if ASCII.equalsLowercase(n, "connection") || ASCII.equalsLowercase(n, "keep-alive") {
                return .dropped
            }
        case 14: if ASCII.equalsLowercase(n, "content-length") { return .dropped }
        case 15: if ASCII.equalsLowercase(n, "x-forwarded-for") { return .forwardedFor }
        case 16:
            if ASCII.equalsLowercase(n, "proxy-connection") { return .dropped }
            if ASCII.equalsLowercase(n, "x-forwarded-host") { return .forwardedHost }
        case 17:
            if ASCII.equalsLowercase(n, "transfer-encoding") { return .dropped }
            if ASCII.equalsLowercase(n, "x-forwarded-proto") { return .forwardedProto }
        default: break
        }
        // HTTP/2 pseudo-fields never go into HTTP/1.1.
        return n.first == UInt8(ascii: ":") ? .dropped : .endToEnd
    }

    /// Whether a response field named `n` (its UTF-8 bytes) is hop-by-hop (or framing, which the server sets).
    @inline(__always)
    static func isHopByHopResponseField<Name: Collection<UInt8>>(_ n: Name) -> Bool {
        switch n.count {
        case 2: return ASCII.equalsLowercase(n, "te")
        case 7: return ASCII.equalsLowercase(n, "upgrade") || ASCII.equalsLowercase(n, "trailer")
        case 10:
            return ASCII.equalsLowercase(n, "connection") || ASCII.equalsLowercase(n, "keep-alive")
        case 14: return ASCII.equalsLowercase(n, "content-length")
        case 16: return ASCII.equalsLowercase(n, "proxy-connection")
        case 17: return ASCII.equalsLowercase(n, "transfer-encoding")
        default: return false
        }
    }

    /// The field names `Connection` lists (RFC 9110 §7.6.1), empty when there is no `Connection` field.
    static func connectionListed(_ headers: HTTPHeaders) -> [Substring] {
        var listed: [Substring] = []
        // `values(for:)` decodes only the `Connection` values of received fields.
        for value in headers.values(for: "Connection") {
            // Over the bytes (a comma, space or tab is never inside a multi-byte character): splitting the String
            // by Character costs many times as much, and `Connection: keep-alive` comes with most responses.
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

    /// Whether `listed` (``connectionListed(_:)``) holds the field name `name` (its UTF-8 bytes).
    static func isListed<Name: Collection<UInt8>>(_ name: Name, _ listed: [Substring]) -> Bool {
        listed.contains { ASCII.equalsIgnoringCase($0.utf8, name) }
    }

    /// The request head to write upstream for `request`, with the whole body behind it when it is small, else
    /// apart (`body`). A head for a streamed body has room reserved for its first 4 KiB (appended in place).
    ///
    /// - Parameters:
    ///   - plan: the parser's plan for the request's received field lines (``RequestFieldPlan``), if it made one.
    ///   - basePath: the upstream URL's path prefix (empty or starting with `/`, no trailing `/`).
    ///   - requestID: the value of `requestIDHeader` to send when the client sent none.
    ///   - arrays: where the head's array is taken from (``ByteArrayPool``); nil: a new one.
    static func encode(
        _ request: HTTPRequest, plan: RequestFieldPlan? = nil, basePath: String, hostFallback: String,
        forwardedProto: String,
        requestIDHeader: String, requestID: String, addRequestID: Bool, arrays: ByteArrayPool? = nil
    ) -> (head: [UInt8], body: [UInt8]?) {
        let bodyRoom = min(request.bodyStream.map { $0.contentLength ?? 0 } ?? request.body.count, 4096)
        let received = request.headers.receivedLines
        // What the fields may take: the received lines (each may grow by a space and a CR) or the `String`s; Host and
        // X-Forwarded-For are among them (or the fallback).
        let fields =
            received.map { ForwardedFields.capacity(sectionBytes: $0.count, lines: request.headers.count) }
            ?? request.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
        // Summed in parts: one expression of all the terms took the type checker seconds.
        let target: Int = request.method.utf8.count + basePath.utf8.count + request.path.utf8.count
        let added: Int = forwardedProto.utf8.count + requestIDHeader.utf8.count + requestID.utf8.count
        let capacity: Int =
            target + (request.query?.utf8.count ?? 0) + 3 * fields + 2 * hostFallback.utf8.count
            + request.remoteAddress.utf8.count + added + 192 + bodyRoom
        var whole = true
        let head = ByteWriter.array(capacity: capacity, reusing: arrays?.take(minimumCapacity: capacity) ?? []) {
            head in
            head.write(request.method)
            head.write(UInt8(ascii: " "))
            // `OPTIONS *` (asterisk-form: the server as a whole) goes as it came, not under the base path ("/base*").
            if request.path.utf8.first != UInt8(ascii: "*") { head.write(basePath) }
            head.write(request.path)
            if let query = request.query {
                head.write(UInt8(ascii: "?"))
                head.write(query)
            }
            head.write(" HTTP/1.1\r\n")
            if let received, let plan, plan.sectionCount == received.count {
                // Worked out by the parser: the lines kept copied in runs, no second pass over them.
                plan.lines.copy(received, into: &head)
                received.withUnsafeBufferPointer { section in
                    ForwardedFields.appendForwarding(
                        section, host: plan.host, forwardedFor: plan.forwardedFor, hostFallback: hostFallback,
                        remoteAddress: request.remoteAddress, forwardedProto: forwardedProto, into: &head)
                }
            } else if let received {
                received.withUnsafeBufferPointer { section in
                    ForwardedFields.appendRequestFields(
                        section, requestIDHeader: addRequestID ? requestIDHeader : nil,
                        hostFallback: hostFallback, remoteAddress: request.remoteAddress,
                        forwardedProto: forwardedProto, into: &head)
                }
            } else {
                appendParsedFields(
                    request.headers, listed: connectionListed(request.headers),
                    requestIDHeader: addRequestID ? requestIDHeader : nil,
                    hostFallback: hostFallback, remoteAddress: request.remoteAddress, forwardedProto: forwardedProto,
                    into: &head)
            }
            if addRequestID { append(requestIDHeader, requestID, to: &head) }
            // A whole body goes with a Content-Length (an `Expect` was answered on the client side); a streamed one
            // with its own, or chunked.
            if let stream = request.bodyStream {
                if let length = stream.contentLength {
                    head.write("Content-Length: ")
                    head.writeDecimal(length)
                    head.write("\r\n")
                } else {
                    head.write("Transfer-Encoding: chunked\r\n")
                }
                head.write("\r\n")
                return
            }
            if !request.body.isEmpty || !methodHasNoBody(request.method) {
                head.write("Content-Length: ")
                head.writeDecimal(request.body.count)
                head.write("\r\n")
            }
            head.write("\r\n")
            if !request.body.isEmpty && request.body.count <= 4096 {
                head.write(request.body)
            } else {
                whole = request.body.isEmpty
            }
        }
        return (head, whole ? nil : request.body)
    }

    /// Methods whose requests carry no body unless they say so (no `Content-Length: 0` sent for them).
    private static func methodHasNoBody(_ method: String) -> Bool {
        switch method {
        case "GET", "HEAD", "DELETE", "OPTIONS", "TRACE": return true
        default: return false
        }
    }

    private static func append(_ name: String, _ value: String, to head: inout ByteWriter) {
        head.write(name)
        head.write(": ")
        head.write(value)
        head.write("\r\n")
    }

    /// The `String` path of ``encode``: the fields of `headers` to pass upstream (see
    /// ``ForwardedFields/appendRequestFields(_:listed:requestIDHeader:hostFallback:remoteAddress:forwardedProto:into:)``,
    /// which does the same from received bytes), then `Host` and `X-Forwarded-*`.
    private static func appendParsedFields(
        _ headers: HTTPHeaders, listed: [Substring], requestIDHeader: String?, hostFallback: String,
        remoteAddress: String, forwardedProto: String, into head: inout ByteWriter
    ) {
        var host: String?
        var forwardedFor: String?
        for field in headers {
            switch requestKind(field.name.utf8) {
            case .dropped, .forwardedProto, .forwardedHost:
                continue
            case .host:
                if host == nil { host = field.value }
                continue
            case .forwardedFor:
                // All of them in order, one list (RFC 9110 §5.3), extended below; none when `Connection` names the
                // field (hop-by-hop then, RFC 9110 §7.6.1).
                if !listed.isEmpty && isListed(field.name.utf8, listed) { continue }
                if !field.value.isEmpty { forwardedFor = forwardedFor.map { $0 + ", " + field.value } ?? field.value }
                continue
            case .endToEnd:
                if !listed.isEmpty && isListed(field.name.utf8, listed) { continue }
                // An empty request id is replaced by the generated one.
                if let requestIDHeader, HTTPHeaders.namesEqual(field.name, requestIDHeader) { continue }
                guard HTTPHeaders.isSendable(name: field.name.utf8, value: field.value) else { continue }
                append(field.name, field.value, to: &head)
            }
        }
        let requested = host ?? headers[":authority"]
        var authority = requested ?? hostFallback
        authority.withUTF8 { authority in
            guard var forwardedFor else {
                appendForwarding(
                    authority: authority, forwardedFor: nil, remoteAddress: remoteAddress,
                    forwardedProto: forwardedProto, forwardedHost: requested != nil, to: &head)
                return
            }
            forwardedFor.withUTF8 { forwardedFor in
                appendForwarding(
                    authority: authority, forwardedFor: forwardedFor, remoteAddress: remoteAddress,
                    forwardedProto: forwardedProto, forwardedHost: requested != nil, to: &head)
            }
        }
    }

    /// Appends `Host: authority`, `X-Forwarded-For` (`forwardedFor`, the client's, all its lines joined, extended with
    /// the client's address; the address alone when there was none or it was empty), `X-Forwarded-Proto` and, when
    /// `forwardedHost` (the authority is the one the client asked for, not the upstream's own in place of a `Host` an
    /// HTTP/1.0 client did not send), `X-Forwarded-Host: authority`.
    static func appendForwarding(
        authority: UnsafeBufferPointer<UInt8>, forwardedFor: UnsafeBufferPointer<UInt8>?, remoteAddress: String,
        forwardedProto: String, forwardedHost: Bool = true, to head: inout ByteWriter
    ) {
        head.write("Host: ")
        head.write(authority)
        head.write("\r\nX-Forwarded-For: ")
        if let forwardedFor, !forwardedFor.isEmpty {
            head.write(forwardedFor)
            head.write(", ")
        }
        var remote = remoteAddress
        remote.withUTF8 { head.write($0[address(of: $0)]) }
        head.write("\r\nX-Forwarded-Proto: ")
        head.write(forwardedProto)
        if forwardedHost {
            head.write("\r\nX-Forwarded-Host: ")
            head.write(authority)
        }
        head.write("\r\n")
    }

    /// Where the address is in `address:port` / `[v6]:port` (its UTF-8 bytes): the part before the last colon, the
    /// part inside the brackets; all of it when there is neither.
    static func address(of remote: UnsafeBufferPointer<UInt8>) -> Range<Int> {
        if remote.first == UInt8(ascii: "["), let end = remote.firstIndex(of: UInt8(ascii: "]")) { return 1..<end }
        if let colon = remote.lastIndex(of: UInt8(ascii: ":")) { return 0..<colon }
        return 0..<remote.count
    }

    /// ``responseFields(_:)`` as field lines (``HTTPHeaders/receivedLines``) when `headers` holds the lines the parser
    /// received, so that a value that is not UTF-8 reaches an HTTP/2 client unchanged (decoded, it became U+FFFD);
    /// `added`, when given, replaces the lines of its name. Nil when there are no such lines.
    static func responseFieldLines(
        _ headers: HTTPHeaders, adding added: (name: String, value: String)?
    )
        -> HTTPHeaders?
    {
        guard let received = headers.receivedLines else { return nil }
        let listed = connectionListed(headers)
        var lines: [UInt8] = []
        lines.reserveCapacity(received.count + (added.map { $0.name.utf8.count + $0.value.utf8.count + 4 } ?? 0))
        var count = 0
        received.withUnsafeBufferPointer { section in
            var reader = ReceivedFieldLines(section)
            while let line = reader.next() {
                let name = section[line.name]
                if isHopByHopResponseField(name) || (!listed.isEmpty && isListed(name, listed)) { continue }
                if let added, ASCII.equalsIgnoringCase(name, added.name.utf8) { continue }
                lines.append(contentsOf: name)
                lines.append(contentsOf: [UInt8(ascii: ":"), UInt8(ascii: " ")])
                lines.append(contentsOf: section[line.value])
                lines.append(contentsOf: [0x0D, 0x0A])
                count += 1
            }
        }
        if let added {
            lines.append(contentsOf: "\(added.name): \(added.value)\r\n".utf8)
            count += 1
        }
        return HTTPHeaders(receivedLines: lines, count: count)
    }

    /// The response head's fields to pass to the client: end-to-end fields only, framing left to the server.
    static func responseFields(_ headers: HTTPHeaders) -> HTTPHeaders {
        let listed = connectionListed(headers)
        var kept = HTTPHeaders()
        kept.storage.reserveCapacity(headers.count + 1)
        for field in headers {
            if isHopByHopResponseField(field.name.utf8) || (!listed.isEmpty && isListed(field.name.utf8, listed)) {
                continue
            }
            kept.storage.append(field)
        }
        return kept
    }
}
