import Logging

extension Array where Element == UInt8 {
    /// Appends the UTF-8 bytes of `string` in one copy (the generic `append(contentsOf: string.utf8)` goes through
    /// the sequence protocol, several times slower for the short strings of a head).
    @inline(__always)
    mutating func appendUTF8(_ string: String) {
        var string = string
        string.withUTF8 { append(contentsOf: $0) }
    }
}

/// Serialises HTTP/1.1 response heads into a byte buffer, with no string interpolation.
enum HTTP1ResponseEncoder {
    /// How the `Connection` field is set on a response.
    enum ConnectionField {
        /// Nothing: HTTP/1.1 persistent connection.
        case none
        /// `Connection: keep-alive`, for an HTTP/1.0 client that asked for it.
        case keepAlive
        /// `Connection: close`: the server closes after this response.
        case close
    }

    /// Appends the status line and header section of `response` to `buffer`.
    ///
    /// - Parameters:
    ///   - contentLength: the `Content-Length` to send, `nil` for none (1xx, 204, 304, or a streamed body).
    ///   - chunked: whether to send `Transfer-Encoding: chunked` (a streamed body of unknown length).
    /// - Returns: the number of handler-supplied fields dropped because they are managed by the server
    ///   or invalid (name not a token, or CR, LF or NUL in the value).
    @discardableResult
    static func encodeHead(
        status: Int, headers: HTTPHeaders, contentLength: Int?, chunked: Bool = false, connection: ConnectionField,
        date: inout DateCache, into buffer: inout [UInt8]
    ) -> Int {
        appendStatusLine(status, to: &buffer)
        var dropped = 0
        var hasDate = false
        for field in headers {
            let name = field.name.utf8
            switch name.count {
            case 4 where ASCII.equalsIgnoringCase(name, "date".utf8):
                hasDate = true
            case 10 where ASCII.equalsIgnoringCase(name, "connection".utf8),
                14 where ASCII.equalsIgnoringCase(name, "content-length".utf8),
                17 where ASCII.equalsIgnoringCase(name, "transfer-encoding".utf8):
                dropped += 1
                continue
            default:
                break
            }
            guard HTTPHeaders.isSendable(name: name, value: field.value) else {
                dropped += 1
                continue
            }
            buffer.appendUTF8(field.name)
            buffer.appendUTF8(": ")
            buffer.appendUTF8(field.value)
            buffer.appendUTF8("\r\n")
        }
        appendFraming(contentLength: contentLength, chunked: chunked, connection: connection, to: &buffer)
        if !hasDate { date.appendHeaderLine(to: &buffer) }
        buffer.appendUTF8("\r\n")
        return dropped
    }

    /// Appends a status line, `fieldLines` as they are (HTTP/1.1 field lines the caller checked: see
    /// ``HTTPResponseStream/start(status:fieldLines:hasDate:contentLength:)``), the framing and `Connection` fields,
    /// a `Date` unless `hasDate`, and the empty line: the same head as ``encodeHead(status:headers:contentLength:chunked:connection:date:into:)``
    /// writes for the same fields.
    /// `skipping`: runs of `fieldLines` left out; then `lastLinePrefix`, `lastLineValue` and CRLF, unless the prefix is
    /// empty.
    ///
    /// Into a ``ByteWriter``, the head takes at most ``headRoom`` bytes besides the field lines written (those of
    /// `fieldLines` kept, and the last line).
    static func encodeHead<Sink: ByteSink>(
        status: Int, fieldLines: [UInt8], skipping: FieldLineCopyPlan? = nil,
        lastLinePrefix: [UInt8] = [], lastLineValue: String = "", hasDate: Bool, contentLength: Int?, chunked: Bool,
        connection: ConnectionField, date: inout DateCache, into sink: inout Sink
    ) {
        appendStatusLine(status, to: &sink)
        if let skipping {
            skipping.copy(fieldLines, into: &sink)
        } else {
            sink.write(fieldLines)
        }
        if !lastLinePrefix.isEmpty {
            sink.write(lastLinePrefix)
            var value = lastLineValue
            value.withUTF8 { sink.write($0) }
            sink.write("\r\n")
        }
        appendFraming(contentLength: contentLength, chunked: chunked, connection: connection, to: &sink)
        if !hasDate { date.appendHeaderLine(to: &sink) }
        sink.write("\r\n")
    }

    /// The most bytes a head takes besides its field lines: the status line (`HTTP/1.1 `, three digits, a space, the
    /// longest reason phrase, 31 bytes, CRLF: 46), `Content-Length` with 19 digits (37), `Transfer-Encoding: chunked`
    /// (28), `Connection: keep-alive` (24), `Date` (37) and the empty line (2): 174, rounded up.
    static let headRoom = 192

    private static func appendStatusLine<Sink: ByteSink>(_ status: Int, to sink: inout Sink) {
        sink.write("HTTP/1.1 ")
        sink.writeDecimal(status)
        sink.write(" ")
        var reason = HTTPStatus.reasonPhrase(for: status)
        reason.withUTF8 { sink.write($0) }
        sink.write("\r\n")
    }

    private static func appendFraming<Sink: ByteSink>(
        contentLength: Int?, chunked: Bool, connection: ConnectionField, to sink: inout Sink
    ) {
        if let contentLength {
            sink.write("Content-Length: ")
            sink.writeDecimal(contentLength)
            sink.write("\r\n")
        }
        if chunked { sink.write("Transfer-Encoding: chunked\r\n") }
        switch connection {
        case .none: break
        case .keepAlive: sink.write("Connection: keep-alive\r\n")
        case .close: sink.write("Connection: close\r\n")
        }
    }

    /// Calls `body` with the decimal digits of a non-negative integer (on the stack, no allocation).
    @inline(__always)
    static func withDecimalDigits<R>(_ value: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        precondition(value >= 0)
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
            ) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var remaining = value
        return withUnsafeMutableBytes(of: &digits) { raw in
            repeat {
                raw[19 - count] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
                count += 1
            } while remaining > 0
            let bytes = UnsafeRawBufferPointer(rebasing: raw[(20 - count)...]).bindMemory(to: UInt8.self)
            return body(bytes)
        }
    }
}

/// Standard reason phrases (RFC 9110 §15).
enum HTTPStatus {
    /// The reason phrase for `status`, or an empty string for codes without a registered one.
    static func reasonPhrase(for status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 206: "Partial Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 412: "Precondition Failed"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 416: "Range Not Satisfiable"
        case 417: "Expectation Failed"
        case 421: "Misdirected Request"
        case 422: "Unprocessable Content"
        case 426: "Upgrade Required"
        case 428: "Precondition Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: ""
        }
    }

    /// Whether a response with this status never carries a body or `Content-Length` (1xx, 204)
    /// or carries no body (304, whose length would describe the unsent representation).
    static func forbidsBody(_ status: Int) -> Bool {
        status < 200 || status == 204 || status == 304
    }

    /// The `Content-Length` a streamed response with `status` sends when its head declares `declared`: none for 1xx
    /// and 204 (RFC 9110 §8.6: MUST NOT), the declared one for 304 (the length a 200 would have had, which caches
    /// read) and for every status that has a body.
    static func streamedContentLength(_ status: Int, declared: Int?) -> Int? {
        status < 200 || status == 204 ? nil : declared
    }

    /// A handler's status as sent: 200...999 as is, anything else 500 (logged).
    /// The logger is read only for an invalid status (an autoclosure: passing the `Logger` itself copied it, with its
    /// handler and metadata, for every response).
    static func sanitized(_ status: Int, logger: @autoclosure () -> Logger) -> Int {
        if (200...999).contains(status) { return status }
        logger().error("handler returned an invalid status; sending 500", metadata: ["status": "\(status)"])
        return 500
    }

    /// The `Content-Length` a response with `status` declares for a body of `bodyCount` bytes (also for `HEAD`,
    /// where the body is not sent): none for 204 and 304, 0 where a body is forbidden.
    static func contentLength(_ status: Int, bodyCount: Int) -> Int? {
        status == 204 || status == 304 ? nil : (forbidsBody(status) ? 0 : bodyCount)
    }
}
