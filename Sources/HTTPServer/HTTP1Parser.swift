/// Why a request was rejected: the status to answer and a one-line reason for the plain-text body.
/// Every parse error leaves the request framing unknown, so the connection is closed after the answer.
struct HTTP1ParseError: Error, Equatable, Sendable {
    /// 400, 408, 413, 414, 431, 501 or 505.
    var status: Int
    /// One line of plain text, without a line break.
    var reason: String

    init(_ status: Int, _ reason: String) {
        self.status = status
        self.reason = reason
    }

    /// The ``HTTPServerObserver/connectionError(reason:)`` label for this error.
    var observerReason: String {
        switch status {
        case 413, 414, 431: "too_large"
        default: "bad_request"
        }
    }
}

/// An incremental HTTP/1.x request parser (RFC 9112) working on a contiguous byte buffer.
///
/// Feed it the unconsumed bytes of the connection's input buffer with ``parse(_:)``; it returns how
/// many bytes it consumed and whether a complete request is available, more bytes are needed, or the
/// input is malformed. It never reads a byte twice while waiting for a request head (the scan position
/// is kept between calls) and copies each body byte once. One call yields at most one request, so the
/// caller controls pipelining back-pressure simply by not calling again.
///
/// Rules enforced:
/// - request line `method SP request-target SP HTTP-version` with single spaces; method a token;
///   origin-form target (absolute-form accepted, `*` only for OPTIONS); `HTTP/1.0` or `HTTP/1.1`
///   (another 1.x minor is treated as 1.1, another major answers 505). CONNECT answers 501.
/// - lines end in CRLF or a bare LF; up to 8 empty lines before a request line are ignored.
/// - header names are tokens directly followed by `:`; values may hold SP, HTAB, VCHAR and obs-text;
///   obs-fold (a line starting with whitespace) is rejected; an HTTP/1.1 request needs exactly one `Host`, and a
///   `Host` (or an absolute-form target's authority) must be `uri-host [ ":" port ]` (RFC 9112 §3.2: 400 otherwise).
/// - `Content-Length` must be digits, duplicates (as lines or list elements) must agree;
///   `Transfer-Encoding` must be exactly `chunked` (other codings answer 501) and is rejected together
///   with `Content-Length` or in HTTP/1.0; chunk extensions are tolerated and trailers checked as field lines,
///   then dropped.
/// - size limits from ``Limits`` answer 414, 431 and 413.
struct HTTP1Parser {
    /// Size limits, taken from ``HTTPServer/Configuration``.
    struct Limits: Sendable {
        var maxRequestTargetLength = 8 * 1024
        var maxHeaderBytes = 16 * 1024
        var maxHeaderCount = 100
        var maxBodySize = 16 * 1024 * 1024
        /// A chunk-size line, extensions included.
        var maxChunkLineLength = 4 * 1024

        /// Longest request line: the target plus room for a method and the version.
        var maxRequestLineLength: Int { maxRequestTargetLength + 64 }
    }

    /// The parsed request line and header section.
    struct Head: Sendable, Equatable {
        var method: String
        var path: String
        var query: String?
        var version: HTTPVersion
        var headers: HTTPHeaders
        /// Whether the connection may carry another request after this one.
        var keepAlive: Bool
        /// `Expect: 100-continue` on an HTTP/1.1 request.
        var expectsContinue: Bool

        /// The handler's request, made of this head's fields moved out (swapped for empty ones: the head is left
        /// with no reference to release), not copied: copying them retained every one and destroying the head
        /// released them again.
        mutating func moveIntoRequest(
            body: consuming [UInt8], remoteAddress: String, bodyStream: HTTPRequestBodyStream?
        ) -> HTTPRequest {
            var method = ""
            var path = ""
            var query: String? = nil
            var headers = HTTPHeaders()
            swap(&method, &self.method)
            swap(&path, &self.path)
            swap(&query, &self.query)
            swap(&headers, &self.headers)
            return HTTPRequest(
                method: method, path: path, query: query, version: version, headers: headers, body: body,
                protocolName: version == .http1_0 ? "http/1.0" : "http/1.1", remoteAddress: remoteAddress,
                bodyStream: bodyStream)
        }
    }

    /// A complete request.
    struct Request: Sendable, Equatable {
        var head: Head
        var body: [UInt8]
    }

    /// The outcome of one ``parse(_:)`` call.
    enum Result: Equatable {
        /// The buffered bytes do not complete a request; read more.
        case needMoreData
        /// One request is complete.
        case request(Request)
        /// The head is complete and a body follows (`contentLength` nil: chunked); no body byte has been
        /// consumed. The caller decides whether to receive it (the server asks its handler); the next call goes
        /// on with the body. The head is the caller's from here (moved, not copied: the parser keeps none of it).
        case bodyAnnounced(Head, contentLength: Int?)
        /// The body of the request whose head came in the last ``bodyAnnounced(_:contentLength:)`` is complete
        /// (when it was collected by ``parse(_:)``, not read by ``parseBodyPiece(_:limit:)``).
        case body([UInt8])
        /// The input is malformed or over a limit; answer and close.
        case error(HTTP1ParseError)
    }

    /// No payload that needs releasing (a failure's error is kept in ``failure``): the phase changes and is compared
    /// (``isAtRequestBoundary``) several times per request, plain stores and compares so.
    private enum Phase: Equatable {
        case head
        case fixedBody(length: Int)
        case chunked
        /// ``failure``, returned from then on.
        case failed
    }

    let limits: Limits
    /// Whether a head gets a ``RequestFieldPlan`` (the handler ``HTTPHandler/forwardsRequests``).
    let plansForwarding: Bool
    /// The plan for the last head parsed (nil: none asked for, or its section needs ``ForwardedFields``). Kept here,
    /// not in ``Head``: a bigger head is moved by `memcpy` wherever it goes (measured: +0.9k instructions a request).
    /// A head is dispatched before the next one is parsed (HTTP/1.1 requests come one after another), so the plan
    /// read at dispatch is the dispatched head's.
    private(set) var forwardPlan: RequestFieldPlan?
    private var phase: Phase = .head
    private var failure = HTTP1ParseError(400, "")
    private var body: [UInt8] = []
    // Offsets are relative to the start of the input, which does not move while the parser is in `.head`
    // because nothing is consumed until the head is complete.
    private var scanner = HTTP1HeadScanner()
    private var chunked: ChunkedDecoder

    init(limits: Limits, plansForwarding: Bool = false) {
        self.limits = limits
        self.plansForwarding = plansForwarding
        self.chunked = ChunkedDecoder(limits: Self.chunkedLimits(limits))
    }

    /// Trailers are skipped, bounded by the header section's byte and field limits (before, by its bytes only: 3,200
    /// trailer fields passed); chunk lines end in CRLF (a request's).
    private static func chunkedLimits(_ limits: Limits) -> ChunkedDecoder.Limits {
        .init(
            maxChunkLineLength: limits.maxChunkLineLength, maxBodySize: limits.maxBodySize,
            maxTrailerBytes: limits.maxHeaderBytes, maxTrailerCount: limits.maxHeaderCount, requiresCRLF: true)
    }

    /// Body bytes collected so far from a chunked body (a fixed-length body stays in the input until complete).
    var chunkedBodyCount: Int { body.count }

    /// Whether no part of a request has been consumed: a boundary between requests. Together with an
    /// empty input buffer this means the connection is idle.
    var isAtRequestBoundary: Bool { phase == .head }

    /// Parses from the start of `input`, the connection's unconsumed bytes. The caller must drop the
    /// returned number of bytes from its buffer before the next call. `arrays`: where the copies of a head's field
    /// lines and of a body collected whole are made (a proxy's loop gets them back, ``ByteArrayPool``); nil: new arrays.
    mutating func parse(
        _ input: UnsafeBufferPointer<UInt8>, arrays: ByteArrayPool? = nil
    ) -> (consumed: Int, result: Result) {
        var consumed = 0
        while true {
            let step: Step
            switch phase {
            case .failed:
                return (0, .error(failure))
            case .head:
                precondition(consumed == 0, "a request head always starts at the beginning of the input")
                // The head goes straight to the caller (consumed by the match: moved, not copied), never kept here:
                // an optional head stored between the steps cost a copy in and out and two destroys of the empty
                // optional a request.
                let headStep = parseHead(input, arrays: arrays)
                switch consume headStep {
                case .needMore:
                    return (0, .needMoreData)
                case .fail(let error):
                    fail(error)
                    return (0, .error(error))
                case .complete(let head, let count, nil):
                    reset()
                    return (count, .request(Request(head: head, body: [])))
                case .complete(let head, let count, let next?):
                    // A body follows: stop so that the caller can decide whether to receive it. The head is the
                    // caller's now.
                    phase = next
                    if case .fixedBody(let length) = next {
                        return (count, .bodyAnnounced(head, contentLength: length))
                    }
                    return (count, .bodyAnnounced(head, contentLength: nil))
                }
            case .fixedBody(let length):
                if input.count - consumed < length {
                    step = .needMore
                } else {
                    body =
                        arrays?.copy(input[consumed..<consumed + length]) ?? Array(input[consumed..<consumed + length])
                    step = .advance(length, next: nil)
                }
            case .chunked:
                step = decodeChunked(input, at: consumed)
            }
            switch step {
            case .needMore:
                return (consumed, .needMoreData)
            case .advance(let count, let next):
                consumed += count
                guard let next else {
                    // The body of the head announced before (the head went with `bodyAnnounced`).
                    let result = Result.body(takeBody())
                    reset()
                    return (consumed, result)
                }
                phase = next
            case .fail(let error):
                fail(error)
                return (consumed, .error(error))
            }
        }
    }

    /// A piece of a body read by ``parseBodyPiece(_:limit:)``.
    enum BodyPiece: Equatable {
        case needMoreData
        /// Body bytes (chunked coding removed): offsets into the input, within the consumed bytes.
        case data(Range<Int>)
        /// The body is complete; the parser reads the next request.
        case end
        case error(HTTP1ParseError)
    }

    /// After ``Result/bodyAnnounced(_:contentLength:)``: reads the body piece by piece instead of collecting it
    /// (a streamed request body), at most `limit` bytes per piece. The caller drops the consumed bytes.
    mutating func parseBodyPiece(_ input: UnsafeBufferPointer<UInt8>, limit: Int) -> (consumed: Int, piece: BodyPiece) {
        var consumed = 0
        while true {
            switch phase {
            case .failed:
                return (0, .error(failure))
            case .head:
                return (0, .end)
            case .fixedBody(let length):
                if length == 0 {
                    reset()
                    return (consumed, .end)
                }
                let count = min(length, input.count - consumed, limit)
                if count == 0 { return (consumed, .needMoreData) }
                phase = .fixedBody(length: length - count)
                return (consumed + count, .data(consumed..<consumed + count))
            case .chunked:
                switch chunked.next(input, at: consumed, limit: limit) {
                case .needMore:
                    return (consumed, .needMoreData)
                case .framing(let count):
                    consumed += count
                case .trailer(let line, let count):
                    if let error = Self.malformedTrailer(input, line) {
                        fail(error)
                        return (consumed, .error(error))
                    }
                    consumed += count
                case .data(let range):
                    return (range.upperBound, .data(range))
                case .end(let count):
                    reset()
                    return (consumed + count, .end)
                case .fail(.malformed(let reason)):
                    let error = HTTP1ParseError(400, reason)
                    fail(error)
                    return (consumed, .error(error))
                case .fail(.bodyTooLarge):
                    let error = HTTP1ParseError(413, "request body larger than \(limits.maxBodySize) bytes")
                    fail(error)
                    return (consumed, .error(error))
                case .fail(.trailerSectionTooLarge):
                    let error = HTTP1ParseError(431, "trailer section larger than \(limits.maxHeaderBytes) bytes")
                    fail(error)
                    return (consumed, .error(error))
                case .fail(.tooManyTrailerFields):
                    let error = HTTP1ParseError(431, "more than \(limits.maxHeaderCount) trailer fields")
                    fail(error)
                    return (consumed, .error(error))
                }
            }
        }
    }

    private enum Step {
        case needMore
        /// Consume `count` bytes, then continue in `next` (nil: the request is complete).
        case advance(Int, next: Phase?)
        case fail(HTTP1ParseError)
    }

    /// What reading a head came to.
    private enum HeadStep {
        case needMore
        /// The head, `count` bytes long; the body follows in `next` (nil: none, the request is complete).
        case complete(Head, count: Int, next: Phase?)
        case fail(HTTP1ParseError)
    }

    private mutating func takeBody() -> [UInt8] {
        var taken: [UInt8] = []
        swap(&taken, &body)
        return taken
    }

    /// Fails for good with `error` (every later call returns it).
    private mutating func fail(_ error: HTTP1ParseError) {
        failure = error
        phase = .failed
    }

    private mutating func reset() {
        phase = .head
        body = []
        scanner = HTTP1HeadScanner()
    }

    // MARK: - Head

    private mutating func parseHead(_ input: UnsafeBufferPointer<UInt8>, arrays: ByteArrayPool?) -> HeadStep {
        let scanLimits = HTTP1HeadScanner.Limits(
            maxFirstLineLength: limits.maxRequestLineLength, maxHeaderBytes: limits.maxHeaderBytes,
            maxHeaderCount: limits.maxHeaderCount)
        switch scanner.scan(input, limits: scanLimits) {
        case .needMore:
            return .needMore
        case .complete(let requestLine, let fields, let headEnd):
            return completeHead(input, requestLine: requestLine, fields: fields, headEnd: headEnd, arrays: arrays)
        case .fail(.tooManyEmptyLines):
            return .fail(.init(400, "too many empty lines before the request line"))
        case .fail(.firstLineTooLong):
            return .fail(.init(414, "request line longer than \(limits.maxRequestLineLength) bytes"))
        case .fail(.tooManyFields):
            return .fail(.init(431, "more than \(limits.maxHeaderCount) header fields"))
        case .fail(.sectionTooLarge):
            return .fail(.init(431, "header section larger than \(limits.maxHeaderBytes) bytes"))
        }
    }

    private mutating func completeHead(
        _ input: UnsafeBufferPointer<UInt8>, requestLine: Range<Int>, fields: Range<Int>, headEnd: Int,
        arrays: ByteArrayPool?
    ) -> HeadStep {
        let parsed: Head
        let framing: Framing
        do {
            (parsed, framing, forwardPlan) = try Self.parseHead(
                input, requestLine: requestLine, fields: fields, limits: limits, plansForwarding: plansForwarding,
                arrays: arrays)
        } catch {
            return .fail(error)
        }
        switch framing {
        case .none:
            return .complete(parsed, count: headEnd, next: nil)
        case .length(let length):
            return .complete(parsed, count: headEnd, next: .fixedBody(length: length))
        case .chunked:
            chunked = ChunkedDecoder(limits: Self.chunkedLimits(limits))
            return .complete(parsed, count: headEnd, next: .chunked)
        }
    }

    private enum Framing {
        case none
        case length(Int)
        case chunked
    }

    private static func parseHead(
        _ input: UnsafeBufferPointer<UInt8>, requestLine: Range<Int>, fields: Range<Int>, limits: Limits,
        plansForwarding: Bool, arrays: ByteArrayPool?
    ) throws(HTTP1ParseError) -> (Head, Framing, RequestFieldPlan?) {
        // Request line.
        let line = input[requestLine]
        guard let firstSpace = line.firstIndex(of: UInt8(ascii: " ")) else {
            throw HTTP1ParseError(400, "malformed request line")
        }
        let methodBytes = line[..<firstSpace]
        guard !methodBytes.isEmpty, methodBytes.allSatisfy(ASCII.isTokenCharacter) else {
            throw HTTP1ParseError(400, "invalid method")
        }
        let afterMethod = line[(firstSpace + 1)...]
        guard let secondSpace = afterMethod.firstIndex(of: UInt8(ascii: " ")) else {
            throw HTTP1ParseError(400, "malformed request line")
        }
        let target = afterMethod[..<secondSpace]
        guard target.count <= limits.maxRequestTargetLength else {
            throw HTTP1ParseError(414, "request target longer than \(limits.maxRequestTargetLength) bytes")
        }
        let version = try parseVersion(afterMethod[(secondSpace + 1)...])
        guard !target.isEmpty, target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw HTTP1ParseError(400, "invalid request target")
        }
        let method = HTTP1Framing.methodString(methodBytes)
        if method == "CONNECT" { throw HTTP1ParseError(501, "CONNECT is not supported") }
        let (path, query, authority) = try splitTarget(target, method: method)

        // Header section.
        var headers = HTTPHeaders()
        var framingFields = HTTP1Framing.FramingFields()
        var hostCount = 0
        var expectsContinue = false
        var plan = RequestFieldPlan.Builder(sectionStart: fields.lowerBound)
        do {
            try HTTP1Framing.forEachField(input, in: fields, into: &headers, arrays: arrays) {
                name, value throws(HTTP1Framing.Malformed) in
                if plansForwarding { plan.read(name: name, value: value, in: input) }
                if name.count == 4 && ASCII.equalsLowercase(name, "host") {
                    hostCount += 1
                    guard HTTP1Framing.isHostValue(value) else { throw HTTP1Framing.Malformed("invalid Host header") }
                } else if name.count == 6 && ASCII.equalsLowercase(name, "expect") {
                    // A list (RFC 9110 §10.1.1): `100-continue, foo` asks for it too (it was not seen: no 100 sent).
                    expectsContinue =
                        expectsContinue
                        || value.split(separator: UInt8(ascii: ",")).contains {
                            ASCII.equalsLowercase(ASCII.trimmingWhitespace($0), "100-continue")
                        }
                } else {
                    try framingFields.read(name: name, value: value)
                }
            }
        } catch {
            throw HTTP1ParseError(400, error.reason)
        }
        let contentLength = framingFields.contentLength
        let transferCodings = framingFields.transferCodings

        if version == .http1_1 && hostCount == 0 { throw HTTP1ParseError(400, "missing Host header") }
        if hostCount > 1 { throw HTTP1ParseError(400, "more than one Host header") }
        if let authority {
            // RFC 9112 §3.2.2: the target's authority stands for the Host field received (a proxy passes it on).
            headers.setHost(String(decoding: authority, as: UTF8.self))
        }

        let framing: Framing
        if framingFields.hasTransferEncoding {
            if contentLength != nil {
                throw HTTP1ParseError(400, "both Content-Length and Transfer-Encoding")
            }
            if version == .http1_0 { throw HTTP1ParseError(400, "Transfer-Encoding in an HTTP/1.0 request") }
            if let unknown = transferCodings.first(where: { $0.lowercased() != "chunked" }) {
                throw HTTP1ParseError(501, "unsupported transfer coding \"\(unknown.prefix(32))\"")
            }
            guard transferCodings.count == 1 else { throw HTTP1ParseError(400, "invalid Transfer-Encoding") }
            if framingFields.transferCodingHasParameters {
                throw HTTP1ParseError(501, "unsupported transfer coding parameters (chunked has none)")
            }
            framing = .chunked
        } else if let contentLength {
            guard contentLength <= limits.maxBodySize else {
                throw HTTP1ParseError(413, "request body larger than \(limits.maxBodySize) bytes")
            }
            framing = contentLength == 0 ? .none : .length(contentLength)
        } else {
            framing = .none
        }

        let keepAlive = !framingFields.close && (version == .http1_1 || framingFields.keepAlive)
        let head = Head(
            method: method, path: path, query: query, version: version, headers: headers, keepAlive: keepAlive,
            expectsContinue: expectsContinue && version == .http1_1)
        let forwardPlan =
            plansForwarding && headers.receivedLines != nil ? plan.finish(sectionEnd: fields.upperBound) : nil
        return (head, framing, forwardPlan)
    }

    private static func parseVersion(_ bytes: HTTP1Framing.Bytes) throws(HTTP1ParseError) -> HTTPVersion {
        switch HTTP1Framing.parseVersion(bytes) {
        case .version(let version): return version
        case .malformed: throw HTTP1ParseError(400, "malformed HTTP version")
        case .unsupported: throw HTTP1ParseError(505, "HTTP version not supported")
        }
    }

    /// The target's path and query, and for an absolute-form target (`http://host:port/x`) its authority.
    private static func splitTarget(
        _ target: Slice<UnsafeBufferPointer<UInt8>>, method: String
    ) throws(HTTP1ParseError) -> (path: String, query: String?, authority: Slice<UnsafeBufferPointer<UInt8>>?) {
        var rest = target[...]
        var authority: Slice<UnsafeBufferPointer<UInt8>>?
        if target.first == UInt8(ascii: "/") {
            // origin-form
        } else if target.count == 1 && target.first == UInt8(ascii: "*") {
            guard method == "OPTIONS" else { throw HTTP1ParseError(400, "asterisk-form target is only for OPTIONS") }
            return ("*", nil, nil)
        } else if let schemeEnd = absoluteFormSchemeLength(target) {
            // absolute-form: the authority apart, then the path and query as for origin-form.
            let afterScheme = target[(target.startIndex + schemeEnd)...]
            let authorityEnd =
                afterScheme.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? afterScheme.endIndex
            guard authorityEnd > afterScheme.startIndex else { throw HTTP1ParseError(400, "invalid request target") }
            let named = afterScheme[..<authorityEnd]
            // RFC 9110 §4.2.4: userinfo in an http(s) URI is an error.
            guard !named.contains(UInt8(ascii: "@")) else {
                throw HTTP1ParseError(400, "request target with userinfo")
            }
            guard HTTP1Framing.isHostValue(named), !named.isEmpty else {
                throw HTTP1ParseError(400, "invalid authority in the request target")
            }
            authority = named
            rest = target[authorityEnd...]
            if rest.isEmpty || rest.first == UInt8(ascii: "?") {
                let query = rest.isEmpty ? nil : String(decoding: rest.dropFirst(), as: UTF8.self)
                return ("/", query, authority)
            }
        } else {
            throw HTTP1ParseError(400, "request target must be an absolute path")
        }
        if let question = rest.firstIndex(of: UInt8(ascii: "?")) {
            return (
                String(decoding: rest[..<question], as: UTF8.self),
                String(decoding: rest[(question + 1)...], as: UTF8.self),
                authority
            )
        }
        return (String(decoding: rest, as: UTF8.self), nil, authority)
    }

    private static func absoluteFormSchemeLength(_ target: Slice<UnsafeBufferPointer<UInt8>>) -> Int? {
        if target.count > 7, ASCII.equalsIgnoringCase(target.prefix(7), "http://".utf8) { return 7 }
        if target.count > 8, ASCII.equalsIgnoringCase(target.prefix(8), "https://".utf8) { return 8 }
        return nil
    }

    // MARK: - Chunked body

    /// A trailer field line that is no field line (RFC 9112 §7.1.2: the rules of the header section's; before, any
    /// bytes were skipped: no colon, a bare CR, NUL, obs-fold), as a 400; nil for a valid one (then dropped).
    static func malformedTrailer(_ input: UnsafeBufferPointer<UInt8>, _ line: Range<Int>) -> HTTP1ParseError? {
        do {
            _ = try HTTP1Framing.parseFieldLine(input, line)
            return nil
        } catch {
            return HTTP1ParseError(400, "trailer: \(error.reason)")
        }
    }

    private mutating func decodeChunked(_ input: UnsafeBufferPointer<UInt8>, at start: Int) -> Step {
        switch chunked.next(input, at: start) {
        case .needMore:
            return .needMore
        case .framing(let count):
            return .advance(count, next: .chunked)
        case .trailer(let line, let count):
            if let error = Self.malformedTrailer(input, line) { return .fail(error) }
            return .advance(count, next: .chunked)
        case .data(let range):
            body.append(contentsOf: input[range])
            return .advance(range.count, next: .chunked)
        case .end(let count):
            return .advance(count, next: nil)
        case .fail(.malformed(let reason)):
            return .fail(.init(400, reason))
        case .fail(.bodyTooLarge):
            return .fail(.init(413, "request body larger than \(limits.maxBodySize) bytes"))
        case .fail(.trailerSectionTooLarge):
            return .fail(.init(431, "trailer section larger than \(limits.maxHeaderBytes) bytes"))
        case .fail(.tooManyTrailerFields):
            return .fail(.init(431, "more than \(limits.maxHeaderCount) trailer fields"))
        }
    }
}
