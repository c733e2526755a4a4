/// An incremental HTTP/1.x response parser (RFC 9112) for the client side of the proxy, working on a contiguous
/// byte buffer: the upstream connection's unconsumed bytes.
///
/// Each ``parse(_:isHEAD:limit:)`` call returns how many bytes it consumed (the caller drops them before the next
/// call) and one ``UpstreamEvent``: 1xx responses, then the final response's head, its body in pieces of at most
/// `limit` bytes (offsets into the input: the body is never copied), then its end. After ``UpstreamEvent/end(trailers:)``
/// the parser reads the next response on the same connection. A head is never scanned twice while it arrives.
///
/// Rules enforced:
/// - status line `HTTP/1.x SP 3DIGIT SP reason` (the reason may be empty, and so may the space before an empty
///   one); status 100...599; another major version, or 101, is ``UpstreamParseError/Kind/unsupported``.
/// - lines end in CRLF or a bare LF; up to 16 bytes of empty lines before a status line are skipped; field lines
///   as in the request parser (obs-fold rejected); at most `maxHeaderCount` fields in `maxHeaderBytes` bytes,
///   and the same for a chunked body's trailer section (``UpstreamParseError/Kind/tooLarge``).
/// - framing (RFC 9112 §6.3): no body for a response to HEAD, 1xx, 204 and 304; else `Transfer-Encoding` must be
///   `chunked` alone (any other coding is ``UpstreamParseError/Kind/unsupported``: it cannot be passed on); else
///   `Content-Length` (list elements must agree); else close-delimited. `Content-Length` is always validated, and
///   `Transfer-Encoding` in an HTTP/1.0 response is an error.
struct HTTP1ResponseParser {
    /// A chunk-size line, extensions included.
    static let maxChunkLineLength = 4 * 1024

    private enum Phase {
        case head
        /// `remaining` body bytes; 0: the end is due.
        case fixedBody(remaining: Int)
        case chunked
        case closeDelimited
        /// ``inputEnded()`` was called: the event it returned (``closedEvent``), returned again.
        case closed
        /// ``failure``, returned again.
        case failed
    }

    let maxHeaderBytes: Int
    let maxHeaderCount: Int
    /// No payload that needs releasing (those of `closed` and `failed` are kept apart, below): a phase is changed
    /// several times per response, and with such a payload each change destroyed the old phase through an outlined
    /// destroy (~36 instructions).
    private var phase = Phase.head
    private var closedEvent = UpstreamEvent.needMore
    private var failure = UpstreamParseError(.malformed, "")
    private var scanner = HTTP1HeadScanner()
    private var chunked: ChunkedDecoder
    private var trailers = HTTPHeaders()
    /// Whether the connection may carry another exchange once the current response ends.
    private var reusable = false

    /// Whether the connection may carry another request: true only after ``UpstreamEvent/end(trailers:)`` of an
    /// HTTP/1.1 response without `Connection: close` that had no body, a `Content-Length` or the chunked
    /// coding (not both `Content-Length` and `Transfer-Encoding`), read to the end. False from the next head on,
    /// after an error and after ``inputEnded()``.
    private(set) var canReuseConnection = false

    /// Where a head's field lines are copied (``ByteArrayPool``: the proxy's loop gets them back); nil: new arrays.
    private let arrays: ByteArrayPool?

    init(limits: (maxHeaderBytes: Int, maxHeaderCount: Int), arrays: ByteArrayPool? = nil) {
        self.arrays = arrays
        maxHeaderBytes = limits.maxHeaderBytes
        maxHeaderCount = limits.maxHeaderCount
        chunked = ChunkedDecoder(limits: Self.chunkedLimits(limits))
    }

    private static func chunkedLimits(_ limits: (maxHeaderBytes: Int, maxHeaderCount: Int)) -> ChunkedDecoder.Limits {
        .init(
            maxChunkLineLength: maxChunkLineLength, maxBodySize: .max, maxTrailerBytes: limits.maxHeaderBytes,
            maxTrailerCount: limits.maxHeaderCount)
    }

    /// Parses from the start of `input`, the connection's unconsumed bytes, delivering at most `limit` (> 0) body
    /// bytes. `isHEAD`: the request this response answers was a HEAD (its response has no body).
    mutating func parse(
        _ input: UnsafeBufferPointer<UInt8>, isHEAD: Bool, limit: Int
    ) -> (consumed: Int, event: UpstreamEvent) {
        precondition(limit > 0, "a body limit must be positive")
        var consumed = 0
        while true {
            switch phase {
            case .failed:
                return (0, .error(failure))
            case .closed:
                return (0, closedEvent)
            case .head:
                precondition(consumed == 0, "a response head always starts at the beginning of the input")
                return parseHead(input, isHEAD: isHEAD)
            case .fixedBody(let remaining):
                if remaining == 0 { return (0, finish(trailers: nil)) }
                let count = min(remaining, input.count, limit)
                if count == 0 { return (0, .needMore) }
                phase = .fixedBody(remaining: remaining - count)
                return (count, .body(0..<count))
            case .closeDelimited:
                let count = min(input.count, limit)
                return count == 0 ? (0, .needMore) : (count, .body(0..<count))
            case .chunked:
                switch chunked.next(input, at: consumed, limit: limit) {
                case .needMore:
                    return (consumed, .needMore)
                case .framing(let count):
                    consumed += count
                case .data(let range):
                    return (range.upperBound, .body(range))
                case .trailer(let line, let length):
                    do {
                        let (name, value) = try HTTP1Framing.parseFieldLine(input, line)
                        trailers.append(name: name, value: value)
                    } catch {
                        return (consumed, fail(.malformed, "trailer: \(error.reason)"))
                    }
                    consumed += length
                case .end(let count):
                    let fields = trailers
                    trailers = HTTPHeaders()
                    return (consumed + count, finish(trailers: fields.isEmpty ? nil : fields))
                case .fail(.malformed(let reason)):
                    return (consumed, fail(.malformed, reason))
                case .fail(.bodyTooLarge):
                    return (consumed, fail(.malformed, "chunk size too large"))
                case .fail(.trailerSectionTooLarge):
                    return (consumed, fail(.tooLarge, "trailer section larger than \(maxHeaderBytes) bytes"))
                case .fail(.tooManyTrailerFields):
                    return (consumed, fail(.tooLarge, "more than \(maxHeaderCount) trailer fields"))
                }
            }
        }
    }

    /// The connection closed (after every byte received was given to ``parse(_:isHEAD:limit:)``): ends a
    /// close-delimited body (or a response whose end was due), unless `reset` (the input ended by an error, not the
    /// upstream's orderly close); anywhere else in a response, its head included, it is a
    /// ``UpstreamParseError/Kind/truncated`` error. Call it only while a response is expected. Final: the
    /// parser returns the same event from then on, and ``canReuseConnection`` is false.
    mutating func inputEnded(reset: Bool = false) -> UpstreamEvent {
        let event: UpstreamEvent
        switch phase {
        case .failed:
            return .error(failure)
        case .closed:
            return closedEvent
        case .head:
            event = fail(.truncated, "the connection closed before a complete response head")
        case .closeDelimited where reset:
            // Only an orderly close (FIN) ends such a body; a reset cuts it.
            event = fail(.truncated, "the connection was reset inside a body delimited by its close")
        case .fixedBody(0), .closeDelimited:
            event = finish(trailers: nil)
        case .fixedBody(let remaining):
            event = fail(.truncated, "the connection closed with \(remaining) body bytes missing")
        case .chunked:
            event = fail(.truncated, "the connection closed inside a chunked body")
        }
        closedEvent = event
        phase = .closed
        canReuseConnection = false
        return event
    }

    private mutating func finish(trailers: HTTPHeaders?) -> UpstreamEvent {
        canReuseConnection = reusable
        phase = .head
        return .end(trailers: trailers)
    }

    private mutating func fail(_ kind: UpstreamParseError.Kind, _ reason: String) -> UpstreamEvent {
        let error = UpstreamParseError(kind, reason)
        failure = error
        phase = .failed
        canReuseConnection = false
        return .error(error)
    }

    // MARK: - Head

    private mutating func parseHead(
        _ input: UnsafeBufferPointer<UInt8>, isHEAD: Bool
    ) -> (consumed: Int, event: UpstreamEvent) {
        let limits = HTTP1HeadScanner.Limits(
            maxFirstLineLength: maxHeaderBytes, maxHeaderBytes: maxHeaderBytes, maxHeaderCount: maxHeaderCount)
        // An upstream that speaks something else (an SSH banner, a TLS alert, another server's greeting) is told apart
        // from a slow one by its first bytes, not after the response timeout; checked before the head is scanned, so
        // that the verdict does not depend on how the bytes were split (whole, such a head was too large instead).
        guard Self.mayBeginStatusLine(input) else {
            return (0, fail(.malformed, "not an HTTP/1.x response (no status line)"))
        }
        switch scanner.scan(input, limits: limits) {
        case .needMore:
            return (0, .needMore)
        case .fail(.tooManyEmptyLines):
            return (0, fail(.malformed, "too many empty lines before the status line"))
        case .fail(.firstLineTooLong):
            return (0, fail(.tooLarge, "status line longer than \(maxHeaderBytes) bytes"))
        case .fail(.tooManyFields):
            return (0, fail(.tooLarge, "more than \(maxHeaderCount) header fields"))
        case .fail(.sectionTooLarge):
            return (0, fail(.tooLarge, "header section larger than \(maxHeaderBytes) bytes"))
        case .complete(let statusLine, let fields, let headEnd):
            scanner = HTTP1HeadScanner()
            canReuseConnection = false
            let head: UpstreamResponseHead
            do {
                head = try parseHead(input, statusLine: statusLine, fields: fields, isHEAD: isHEAD)
            } catch {
                return (0, fail(error.kind, error.reason))
            }
            if head.status < 200 {
                return (headEnd, .informational(status: head.status, headers: head.headers))
            }
            switch head.framing {
            case .none: phase = .fixedBody(remaining: 0)
            case .contentLength(let length): phase = .fixedBody(remaining: length)
            case .chunked:
                phase = .chunked
                chunked = ChunkedDecoder(limits: chunked.limits)
            case .closeDelimited: phase = .closeDelimited
            }
            return (headEnd, .head(head))
        }
    }

    /// The head of a response; sets ``reusable`` for a final one.
    private mutating func parseHead(
        _ input: UnsafeBufferPointer<UInt8>, statusLine: Range<Int>, fields: Range<Int>, isHEAD: Bool
    ) throws(UpstreamParseError) -> UpstreamResponseHead {
        let (version, status, reason) = try Self.parseStatusLine(input[statusLine])
        if status == 101 { throw UpstreamParseError(.unsupported, "101 Switching Protocols without an upgrade") }

        var headers = HTTPHeaders()
        var framingFields = HTTP1Framing.FramingFields()
        var plan = FieldLineCopyPlan.Builder(sectionStart: fields.lowerBound)
        do {
            try HTTP1Framing.forEachField(input, in: fields, into: &headers, arrays: arrays) {
                name, value throws(HTTP1Framing.Malformed) in
                try framingFields.read(name: name, value: value)
                plan.read(name: name, value: value, in: input)
            }
        } catch {
            throw UpstreamParseError(.malformed, error.reason)
        }
        let contentLength = framingFields.contentLength
        let transferCodings = framingFields.transferCodings
        let hasTransferEncoding = framingFields.hasTransferEncoding

        let framing: UpstreamResponseHead.Framing
        if hasTransferEncoding && version == .http1_0 {
            throw UpstreamParseError(.malformed, "Transfer-Encoding in an HTTP/1.0 response")
        }
        if isHEAD || status < 200 || status == 204 || status == 304 {
            framing = .none
        } else if hasTransferEncoding {
            guard !transferCodings.isEmpty else { throw UpstreamParseError(.malformed, "empty Transfer-Encoding") }
            let chunkedCount = transferCodings.count { ASCII.equalsIgnoringCase($0.utf8, "chunked".utf8) }
            guard chunkedCount <= 1 else { throw UpstreamParseError(.malformed, "chunked applied more than once") }
            // Any other coding (gzip, deflate, compress) would reach the client still applied and no longer named
            // (Transfer-Encoding is hop-by-hop), so it is refused rather than passed on.
            if let other = transferCodings.first(where: { !ASCII.equalsIgnoringCase($0.utf8, "chunked".utf8) }) {
                throw UpstreamParseError(.unsupported, "unsupported transfer coding \"\(other.prefix(32))\"")
            }
            framing = .chunked
        } else if let contentLength {
            // Past Int.max (the value saturates there): passed on, the client would be told a length no body has.
            guard contentLength < Int.max else { throw UpstreamParseError(.malformed, "Content-Length too large") }
            framing = .contentLength(contentLength)
        } else {
            framing = .closeDelimited
        }
        reusable =
            version == .http1_1 && !framingFields.close && framing != .closeDelimited
            && !(hasTransferEncoding && contentLength != nil)
        return UpstreamResponseHead(
            version: version, status: status, reason: reason, headers: headers, framing: framing,
            copyPlan: plan.finish(sectionEnd: fields.upperBound))
    }

    /// Whether `input` (a head not yet complete) may still become a status line: after any empty lines, its bytes so
    /// far are a prefix of `HTTP/`.
    private static func mayBeginStatusLine(_ input: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 0
        while index < input.count && (input[index] == UInt8(ascii: "\r") || input[index] == UInt8(ascii: "\n")) {
            index += 1
        }
        let prefix: StaticString = "HTTP/"
        var k = 0
        while k < prefix.utf8CodeUnitCount && index < input.count {
            guard input[index] == prefix.utf8Start[k] else { return false }
            k += 1
            index += 1
        }
        return true
    }

    /// `HTTP/1.x SP 3DIGIT [SP reason]`.
    private static func parseStatusLine(
        _ line: HTTP1Framing.Bytes
    ) throws(UpstreamParseError) -> (HTTPVersion, Int, String) {
        let start = line.startIndex
        guard line.count >= 12, line[start + 8] == UInt8(ascii: " ") else {
            throw UpstreamParseError(.malformed, "malformed status line")
        }
        let version: HTTPVersion
        switch HTTP1Framing.parseVersion(line[start..<start + 8]) {
        case .version(let parsed): version = parsed
        case .malformed: throw UpstreamParseError(.malformed, "malformed HTTP version")
        case .unsupported: throw UpstreamParseError(.unsupported, "HTTP version not supported")
        }
        var status = 0
        for byte in line[start + 9..<start + 12] {
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10 else { throw UpstreamParseError(.malformed, "malformed status code") }
            status = status * 10 + Int(digit)
        }
        guard (100...599).contains(status) else { throw UpstreamParseError(.malformed, "status code out of range") }
        let rest = line[(start + 12)...]
        guard rest.isEmpty || rest.first == UInt8(ascii: " ") else {
            throw UpstreamParseError(.malformed, "malformed status line")
        }
        let reason = rest.dropFirst()
        guard reason.allSatisfy(HTTP1Framing.isFieldValueCharacter) else {
            throw UpstreamParseError(.malformed, "invalid character in reason phrase")
        }
        return (version, status, HTTP1Framing.reasonString(reason))
    }
}
