/// One proxied request on its event loop: waits for an upstream connection, sends the request, streams the
/// response back to the client as it arrives, copies what the observer asked to capture, and reports the end.
///
/// Failures are answered, never hidden: before the response head, 502 (refused, reset, bad response), 503 (pool
/// full) or 504 (timeouts) with a one-line reason; after it, the client's response is cut (the connection closes
/// or the stream is reset), so the client sees it incomplete. A client that leaves cancels the upstream request
/// (``UpstreamConnection/abandon(closing:)``): its connection is closed once the response is under way; before that it
/// keeps its place in the pool until the upstream is done with it (nothing sent: at once; the response head awaited:
/// the response is read and dropped), so that resets cannot make the proxy open connection after connection, unless
/// the watcher asks for the upstream to be stopped at once (``ProxyExchangeWatcher/cancelClosesUpstream``: a
/// generation).
final class ProxyExchange: HTTPResponseStreamDelegate, HTTPRequestBodyStreamDelegate {
    private let proxy: ReverseProxy
    private let pool: UpstreamPool
    /// The pool's loop (the caller's: the exchange runs on it), held here strongly: a read of the pool's
    /// `unowned(unsafe)` reference is a copy (a retain and a release), a `let` of the exchange is borrowed. (The
    /// exchange ends before its loop stops, or with it.)
    private let loop: EventLoop
    /// The client's request, moved into the record at the end (nil from then on: no copy of it is made). Spelled
    /// `Optional<…>`, not `HTTPRequest?`, so that it has no implicit `nil` default: the initializer's assignment is
    /// then its initialization, not the destruction of a `nil` through the runtime's generic witness (~60
    /// instructions) followed by a store.
    @exclusivity(unchecked) private var request: Optional<HTTPRequest>
    /// The request's method is `HEAD` (its response has no body whatever its framing says).
    private let isHEAD: Bool
    private let requestID: String
    /// The client sent no request id: the generated one is returned in the response.
    private let generatedID: Bool
    private let tap: ProxyTap
    private let watcher: (any ProxyExchangeWatcher)?
    private let startedAt: UInt64
    private let stream: HTTPResponseStream
    /// The request head, and the body bytes queued before a connection is attached.
    @exclusivity(unchecked) private var heldRequest: [UInt8]
    /// A whole body too large to be copied behind the head (sent apart, after it).
    @exclusivity(unchecked) private var heldBody: [UInt8]?
    @exclusivity(unchecked) private var connection: UpstreamConnection?
    @exclusivity(unchecked) private var headAt: UInt64?
    @exclusivity(unchecked) private var status: Int?
    @exclusivity(unchecked) private var responseHeaders: HTTPHeaders?
    @exclusivity(unchecked) private var captured: [UInt8]?
    @exclusivity(unchecked) private var overLimit = false
    /// The request body to come (HTTP/1.x), or nil when it arrived whole.
    private let bodyStream: HTTPRequestBodyStream?
    @exclusivity(unchecked) private var requestComplete: Bool
    @exclusivity(unchecked) private var capturedRequest: [UInt8]?
    @exclusivity(unchecked) private var requestOverLimit = false
    /// Request bytes held until a connection is attached.
    @exclusivity(unchecked) private var heldRequestBytes = 0
    /// The streamed body held whole for the watcher's rewrite (``ProxyExchangeWatcher/requestBodyHoldLimit``): nil
    /// when not holding (never, or given up); no connection is asked for while it holds.
    @exclusivity(unchecked) private var holdingBody: [UInt8]?
    private let holdLimit: Int
    @exclusivity(unchecked) private var bodyBytes = 0
    @exclusivity(unchecked) private var ended = false
    @exclusivity(unchecked) private var informationalSent = 0
    /// How it ended (``end(failure:cancelled:)``), for the report made after the loop's flush.
    @exclusivity(unchecked) private var endedAt: UInt64 = 0
    @exclusivity(unchecked) private var endFailure: UpstreamFailure?
    @exclusivity(unchecked) private var endCancelled = false
    /// Whether the exchange ended because the client's body could not be completed (``requestBodyFailed()``).
    @exclusivity(unchecked) private var endBodyFailed = false
    /// The exchange ended (answered by the upstream, or failed by the proxy) before the client's body was all in, and
    /// that body is captured or watched: the report waits for the rest of it (read only into the capture and the
    /// watcher), so that the record holds the whole request (an upstream answering early, such as nginx's `return`,
    /// had the capture decode a cut body: `invalid_json`; a 502 `connect_refused`, or an early 413, on a route whose
    /// model the body names was counted for no model when the body came after the head).
    @exclusivity(unchecked) private var reportAwaitsBody = false
    /// The client's body could not be completed after the answer: the captured request is cut.
    @exclusivity(unchecked) private var capturedRequestCut = false
    /// The request as it was sent, kept while an idempotent request (its body whole, at most ``maxReplayBytes``) may
    /// be sent again: a pooled connection the upstream closed as the request went out answers nothing, and the
    /// request goes once more on a new connection (RFC 9112 §9.3.1; nginx, Go and Envoy do so). Once at most.
    @exclusivity(unchecked) private var replay: (head: [UInt8], body: [UInt8]?)?
    @exclusivity(unchecked) private var retried = false
    /// The most request bytes kept to send a request again.
    static let maxReplayBytes = 64 * 1024

    init(
        proxy: ReverseProxy, pool: UpstreamPool, loop: EventLoop, request: consuming HTTPRequest, requestID: String,
        generatedID: Bool, tap: ProxyTap, upstreamRequest: (head: [UInt8], body: [UInt8]?), stream: HTTPResponseStream
    ) {
        self.proxy = proxy
        self.pool = pool
        self.isHEAD = request.method == "HEAD"
        self.requestID = requestID
        self.generatedID = generatedID
        self.tap = tap
        self.watcher = tap.watcher
        self.loop = loop
        self.startedAt = loop.now
        self.heldRequest = upstreamRequest.head
        self.heldBody = upstreamRequest.body
        self.stream = stream
        self.bodyStream = request.bodyStream
        self.requestComplete = request.bodyStream == nil
        // A streamed body is held for the watcher when it may fit (a whole body was offered by the proxy already).
        let limit = request.bodyStream == nil ? 0 : (tap.watcher?.requestBodyHoldLimit ?? 0)
        holdLimit = limit
        if limit > 0, (request.bodyStream?.contentLength ?? 1) <= limit, request.bodyStream?.contentLength != 0 {
            holdingBody = []
        }
        if tap.captureLimit > 0 {
            if request.bodyStream == nil {
                // A body within the limit is shared, not copied (the record keeps the request's own bytes).
                requestOverLimit = request.body.count > tap.captureLimit
                capturedRequest = requestOverLimit ? [] : request.body
            } else {
                // A body announced over the limit is not copied: it could only be counted as such.
                requestOverLimit = (request.bodyStream?.contentLength ?? 0) > tap.captureLimit
                capturedRequest = []
            }
            // Nor is the response of a request over the limit (nothing decodes one half).
            if !requestOverLimit { captured = loop.byteArrays.take() }
        }
        self.request = request
    }

    func start() {
        if let watcher, bodyStream == nil, let request {
            request.body.withUnsafeBytes { watcher.requestBody($0) }
            watcher.requestEnded(elapsed: 0)
        }
        // Both streams hold the exchange until they end (the response stream: until `end` lets go too); an exchange
        // answered before its client finished sending stays until the rest of the body is read (and dropped).
        stream.delegate = self
        bodyStream?.delegate = self
        if !ended && holdingBody == nil { pool.acquire(self) }
    }

    // MARK: - From the client's streams

    func responseStreamCancelled() { cancel() }

    func responseStreamWritable() {
        guard !ended, headAt != nil else { return }
        connection?.resumeReading()
    }

    func requestBodyPiece(_ piece: UnsafeRawBufferPointer) -> Bool { requestBody(piece) }

    /// The client's body cannot be completed: the server answers the client; the upstream request goes. Recorded as
    /// such, not as a client that left (it was counted in `client_cancelled_total` as well as by the server).
    func requestBodyFailed() {
        if reportAwaitsBody {
            reportAwaitsBody = false
            capturedRequestCut = true
            loop.reportAfterFlush(self)
            return
        }
        if !ended { endBodyFailed = true }
        cancel()
    }

    // MARK: - The request body, streamed

    /// A piece of the client's body: captured, framed and queued upstream; false to pause the client.
    private func requestBody(_ piece: UnsafeRawBufferPointer) -> Bool {
        guard !ended else {
            // The exchange is over (answered early): the rest is read and dropped, but for its capture and watcher.
            if reportAwaitsBody { observeRequestPiece(piece) }
            return true
        }
        observeRequestPiece(piece)
        if holdingBody != nil {
            if holdingBody!.count + piece.count <= holdLimit {
                holdingBody!.append(contentsOf: piece)
                return true
            }
            releaseHeldBody(rewrite: false)  // too long to hold: forwarded unchanged from here
            // Asking for a connection there may have ended the exchange at once (503 `pool_full`): the rest of the
            // body is read on (queued for no connection, the piece paused the body, which nothing resumed: the
            // exchange was never reported, and its client's connection stayed open for good; a review found).
            if ended { return true }
        }
        return queueBodyPiece(piece)
    }

    /// Shows a piece of the client's body to the watcher and copies it into the capture, up to the limit.
    @inline(__always)
    private func observeRequestPiece(_ piece: UnsafeRawBufferPointer) {
        watcher?.requestBody(piece)
        Self.copy(piece, into: &capturedRequest, overLimit: &requestOverLimit, limit: tap.captureLimit)
    }

    /// Appends `piece` to `capture` (nil: nothing is captured) up to `limit` bytes in all; a piece that does not fit
    /// whole is cut there and sets `overLimit`, after which nothing more is copied. The request's and the response's.
    @inline(__always)
    private static func copy(
        _ piece: UnsafeRawBufferPointer, into capture: inout [UInt8]?, overLimit: inout Bool, limit: Int
    ) {
        guard capture != nil, !overLimit else { return }
        let room = limit - capture!.count
        if piece.count <= room {
            capture!.append(contentsOf: piece)
        } else {
            capture!.append(contentsOf: piece.prefix(room))
            overLimit = true
        }
    }

    /// Frames and queues one piece of the body (chunked when the client's body is).
    private func queueBodyPiece(_ piece: UnsafeRawBufferPointer) -> Bool {
        if bodyStream?.contentLength == nil {
            _ = ChunkedEncoding.sizeLine(piece.count).withUnsafeBytes { queueRequest($0, complete: false) }
            _ = queueRequest(piece, complete: false)
            return ChunkedEncoding.crlf.withUnsafeBytes { queueRequest($0, complete: false) }
        }
        return queueRequest(piece, complete: false)
    }

    /// Stops holding the body: offers it whole to the watcher when `rewrite` (a new length goes into the head's
    /// Content-Length), queues it, and asks for a connection unless `acquire` is false (the caller does, once it has
    /// queued the body's end).
    private func releaseHeldBody(rewrite: Bool, acquire: Bool = true) {
        guard var body = holdingBody else { return }
        holdingBody = nil
        if rewrite, let replacement = watcher?.rewriteRequestBody(body), replacement != body {
            if let length = bodyStream?.contentLength {
                // The head (nothing of the body is behind it yet) ends with the Content-Length field ForwardedRequest
                // wrote last.
                let old = Array("Content-Length: \(length)\r\n\r\n".utf8)
                if heldRequest.count >= old.count && heldRequest.suffix(old.count).elementsEqual(old) {
                    heldRequest.removeLast(old.count)
                    heldRequest.append(contentsOf: "Content-Length: \(replacement.count)\r\n\r\n".utf8)
                    body = replacement
                }
            } else {
                body = replacement
            }
        }
        if !body.isEmpty { _ = body.withUnsafeBytes { queueBodyPiece($0) } }
        if acquire && !ended { pool.acquire(self) }
    }

    /// The client's body is complete: the end goes upstream.
    func requestBodyEnded() {
        if reportAwaitsBody {
            reportAwaitsBody = false
            requestComplete = true
            watcher?.requestEnded(elapsed: elapsed)  // it saw the whole body (a compressed one checked complete)
            loop.reportAfterFlush(self)
            return
        }
        guard !ended else { return }
        requestComplete = true
        watcher?.requestEnded(elapsed: elapsed)
        let held = holdingBody != nil
        releaseHeldBody(rewrite: true, acquire: false)
        let last = bodyStream?.contentLength == nil ? ChunkedEncoding.lastChunk : []
        _ = last.withUnsafeBytes { queueRequest($0, complete: true) }
        // A held request goes upstream whole: the connection is asked for once all of it is queued.
        if held && !ended { pool.acquire(self) }
    }

    /// Queues (a copy of) request bytes on the connection, or holds them until one is attached; false when enough
    /// waits.
    private func queueRequest(_ bytes: UnsafeRawBufferPointer, complete: Bool) -> Bool {
        if let connection {
            connection.send(bytes, complete: complete)
            return connection.queuedRequestBytes < UpstreamConnection.requestHighWater
        }
        heldRequest.append(contentsOf: bytes)
        heldRequestBytes += bytes.count
        return heldRequestBytes < UpstreamConnection.requestHighWater
    }

    /// The upstream connection wrote most of what was queued: a paused client body may go on.
    func upstreamWritable() {
        if let bodyStream, bodyStream.isPaused, !requestComplete { bodyStream.resume() }
    }

    // MARK: - From the pool and the upstream connection

    func attach(_ connection: UpstreamConnection) {
        guard !ended else {
            pool.connectionReady(connection)  // the client left while waiting: the connection serves the next
            return
        }
        self.connection = connection
        let head = heldRequest
        let body = heldBody
        heldRequest = []
        heldBody = nil
        heldRequestBytes = 0
        if !retried, requestComplete, let method = request?.method, Self.isIdempotent(method),
            head.count + (body?.count ?? 0) <= Self.maxReplayBytes
        {
            replay = (head, body)  // shared, not copied (the arrays are not written to once queued)
        }
        connection.begin(self, head: head, body: body, isHEAD: isHEAD, complete: requestComplete)
    }

    /// Interim responses passed on per exchange (an upstream sending more has the rest dropped).
    static let maxInformational = 8

    /// An interim (1xx) response from the upstream: passed on to the client (RFC 9110 §15.2: a proxy forwards those it
    /// did not ask for), hop-by-hop fields removed; not 100 Continue, which the proxy answered itself.
    func upstreamInformational(status: Int, headers: HTTPHeaders) {
        guard !ended, status != 100 else { return }
        guard informationalSent < Self.maxInformational else {
            proxy.observer?.proxyInterimResponseDropped(reason: "over_limit")
            return
        }
        informationalSent += 1
        stream.informational(status: status, headers: ForwardedRequest.responseFields(headers))
    }

    func upstreamHead(_ head: UpstreamResponseHead) {
        guard !ended else { return }
        headAt = loop.now
        status = head.status
        responseHeaders = head.headers
        watcher?.responseHead(status: head.status, headers: head.headers, elapsed: elapsed)
        let length: Int? =
            switch head.framing {
            case .contentLength(let n): n
            // No body: the upstream's length still describes one (the GET's for HEAD, the 200's for 304).
            case .none: isHEAD || head.status == 304 ? Self.contentLength(head) : nil
            case .chunked, .closeDelimited: nil
            }
        // A body announced over the capture limit is not copied (it could only be counted as such): a client slow to
        // take it then holds its response queue only, not a copy of the limit's size as well.
        if case .contentLength(let n) = head.framing, n > tap.captureLimit, captured != nil {
            overLimit = true
            loop.byteArrays.give(&captured)
            captured = []
        }
        // A generated id replaces a field of that name from the upstream, rather than being a second one: the client
        // could not tell which is the event id (and a label posted with both joined would match nothing).
        let replacesUpstreamID =
            generatedID && head.headers.mayHaveReceived(nameBit: proxy.requestIDNameBit)
            && head.headers.contains(proxy.configuration.requestIDHeader)
        // An HTTP/1.x client gets the received field lines copied as bytes; HTTP/2 (HPACK) needs the `String`s.
        if stream.acceptsFieldLines, !replacesUpstreamID, let received = head.headers.receivedLines {
            let idPrefix =
                generatedID && HTTPHeaders.isSendable(value: requestID) ? proxy.requestIDLinePrefix : nil
            if let plan = head.copyPlan {
                // Worked out by the parser: the lines kept go from the received bytes straight into the client's
                // head (no copy of them here, no second pass over them).
                stream.start(
                    status: head.status, fieldLines: received, skipping: plan, hasDate: plan.hasDate,
                    lastLinePrefix: idPrefix ?? [], lastLineValue: idPrefix == nil ? "" : requestID,
                    contentLength: length)
                return
            }
            let capacity =
                ForwardedFields.capacity(sectionBytes: received.count, lines: head.headers.count)
                + (idPrefix.map { $0.count + requestID.utf8.count + 2 } ?? 0)
            var hasDate = false
            let lines = ByteWriter.array(capacity: capacity) { lines in
                hasDate = received.withUnsafeBufferPointer { ForwardedFields.appendResponseFields($0, into: &lines) }
                if let idPrefix {
                    lines.write(idPrefix)
                    lines.write(requestID)
                    lines.write("\r\n")
                }
            }
            stream.start(status: head.status, fieldLines: lines, hasDate: hasDate, contentLength: length)
            return
        }
        let added =
            generatedID && HTTPHeaders.isSendable(value: requestID)
            ? (name: proxy.configuration.requestIDHeader, value: requestID) : nil
        if let lines = ForwardedRequest.responseFieldLines(head.headers, adding: added) {
            stream.start(status: head.status, headers: lines, contentLength: length)
            return
        }
        var fields = ForwardedRequest.responseFields(head.headers)
        if generatedID { fields.replaceOrAdd(name: proxy.configuration.requestIDHeader, value: requestID) }
        stream.start(status: head.status, headers: fields, contentLength: length)
    }

    /// A piece of the response body; false when the client is full (reading pauses until it has room).
    func upstreamBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !ended else { return false }
        bodyBytes += bytes.count
        watcher?.responseBody(bytes, elapsed: elapsed)
        Self.copy(bytes, into: &captured, overLimit: &overLimit, limit: tap.captureLimit)
        return stream.write(bytes)
    }

    func upstreamEnded() {
        guard !ended else { return }
        replay = nil
        connection = nil
        stream.finish()
        end(failure: nil, cancelled: false)
    }

    /// RFC 9110 §9.2.2's idempotent methods: sending one again does what sending it once does. Told by length and
    /// first byte first (per request: a POST, the usual proxied request, is told apart by those two alone).
    @inline(__always)
    static func isIdempotent(_ method: String) -> Bool {
        let utf8 = method.utf8
        guard let first = utf8.first else { return false }
        switch (utf8.count, first) {
        case (3, UInt8(ascii: "G")): return method == "GET"
        case (4, UInt8(ascii: "H")): return method == "HEAD"
        case (7, UInt8(ascii: "O")): return method == "OPTIONS"
        case (5, UInt8(ascii: "T")): return method == "TRACE"
        case (3, UInt8(ascii: "P")): return method == "PUT"
        case (6, UInt8(ascii: "D")): return method == "DELETE"
        default: return false
        }
    }

    /// The upstream failed the request; `beforeAnyResponse`: on a connection that had served responses before, it
    /// closed without a byte of this one (the race of its keep-alive timeout with the request going out): an
    /// idempotent request is sent once more, on a new connection (it was a 502 `reset` whatever its method).
    func upstreamFailed(_ failure: UpstreamFailure, beforeAnyResponse: Bool = false) {
        guard !ended else { return }
        if beforeAnyResponse, headAt == nil, !retried, let replay {
            retried = true
            self.replay = nil
            connection = nil
            heldRequest = replay.head
            heldBody = replay.body
            pool.acquire(self, fresh: true)
            return
        }
        replay = nil
        connection = nil
        if headAt == nil {
            var response = Self.errorResponse(failure)
            if generatedID { response.headers.add(name: proxy.configuration.requestIDHeader, value: requestID) }
            status = response.status
            stream.respond(response)
        } else {
            stream.abort()
        }
        end(failure: failure, cancelled: false)
    }

    /// The client's response is one stream of an HTTP/2 connection (which flow control lets it hold open a byte at a
    /// time).
    var clientIsMultiplexed: Bool { stream.connectionUnsent != nil }

    /// The client took too little of the response for reading to resume within the write-stall timeout (its upstream
    /// connection, paused for it, is closed already): the response is cut (HTTP/2: the stream reset; HTTP/1.x: the
    /// connection closed), counted `write_stall` as a client connection that stalls is, and the exchange ends as
    /// cancelled by its client.
    func clientStalled() {
        guard !ended else { return }
        connection = nil
        stream.connection?.loop.context.observer?.connectionError(reason: "write_stall")  // per stream
        stream.abort()
        end(failure: nil, cancelled: true)
    }

    /// Seconds since the request arrived, by the loop's clock.
    private var elapsed: Double { Double(loop.now &- startedAt) / 1e9 }

    // MARK: - Ending

    /// The client left (its connection closed, or its body cannot be completed): the upstream request is abandoned
    /// (``UpstreamConnection/abandon(closing:)``; a place in the pool's queue is given up).
    private func cancel() {
        guard !ended else { return }
        if let connection {
            self.connection = nil
            connection.abandon(closing: watcher?.cancelClosesUpstream ?? false)
        } else {
            pool.withdraw(self)
        }
        end(failure: nil, cancelled: true)
    }

    private func end(failure: UpstreamFailure?, cancelled: Bool) {
        guard !ended else { return }
        ended = true
        stream.delegate = nil
        // The rest of a body paused for the upstream is read now (dropped, or captured below): paused, it was never
        // read again, and neither was the client's close (no timer runs for a body paused by its handler).
        if !requestComplete, let bodyStream, bodyStream.isPaused { bodyStream.resume() }
        guard proxy.observer != nil else {
            // The arrays the exchange is done with are kept for the next ones (``ByteArrayPool``).
            let arrays = loop.byteArrays
            if var request = request.take() {
                arrays.give(&request.body)
                arrays.give(linesOf: &request.headers)
            }
            if responseHeaders != nil { arrays.give(linesOf: &responseHeaders!) }
            arrays.give(&captured)
            return
        }
        endedAt = loop.now
        endFailure = failure
        endCancelled = cancelled
        if !cancelled, !requestComplete, watcher != nil || (capturedRequest != nil && !requestOverLimit) {
            reportAwaitsBody = true  // reported at the body's end (or failure), which the server reads on
            return
        }
        loop.reportAfterFlush(self)
    }

    /// Reports the exchange that ended to the observer (once), after the loop flushed what the iteration wrote.
    func report() {
        // Once: the request is moved into the record.
        guard let request = request.take(), let observer = proxy.observer else { return }
        // What the exchange holds only for the record is moved into it, not copied, and the record is lent to the
        // call: without the `consume` the optimizer copied the request into the record (a retain and a release of
        // every field), and a record passed by value (even `consume`d) was copied into the argument.
        var record = ProxyExchangeRecord(
            request: consume request, requestBody: capturedRequest.take(), requestBodyOverLimit: requestOverLimit,
            requestBodyCut: capturedRequestCut,
            // A client that left once its response head was sent got that status (it was not counted as a response).
            requestID: requestID, tap: tap, status: endCancelled && headAt == nil ? nil : status,
            responseHeaders: responseHeaders.take(), responseBody: captured.take(), responseBodyOverLimit: overLimit,
            responseBodyBytes: bodyBytes, failure: endFailure, cancelled: endCancelled,
            requestBodyFailed: endBodyFailed,
            durationSeconds: Double(endedAt &- startedAt) / 1e9,
            timeToHeadSeconds: headAt.map { Double($0 &- startedAt) / 1e9 })
        observer.proxyExchangeEnded(&record)
        // The arrays the record still holds are kept for the next exchanges (``ByteArrayPool``: emptied in place only
        // when the observer kept no share of them). The captured request body is dropped first: within the limit it
        // is the request's body itself.
        let arrays = loop.byteArrays
        record.requestBody = nil
        arrays.give(&record.request.body)
        arrays.give(linesOf: &record.request.headers)
        if record.responseHeaders != nil { arrays.give(linesOf: &record.responseHeaders!) }
        arrays.give(&record.responseBody)
    }

    static func errorResponse(_ failure: UpstreamFailure) -> HTTPResponse {
        switch failure {
        case .connectRefused: HTTPResponse(status: 502, text: "upstream refused the connection\n")
        case .connectFailed: HTTPResponse(status: 502, text: "cannot connect to the upstream\n")
        case .connectTimeout: HTTPResponse(status: 504, text: "connecting to the upstream timed out\n")
        case .reset: HTTPResponse(status: 502, text: "upstream closed the connection before responding\n")
        case .responseTimeout: HTTPResponse(status: 504, text: "upstream did not respond in time\n")
        case .readTimeout: HTTPResponse(status: 504, text: "upstream stopped sending its response\n")
        case .badResponse: HTTPResponse(status: 502, text: "upstream sent an invalid response\n")
        case .poolFull:
            HTTPResponse(
                status: 503, headers: ["Retry-After": "1", "Content-Type": "text/plain; charset=utf-8"],
                body: Array("too many requests waiting for an upstream connection\n".utf8))
        case .reclaimed:
            HTTPResponse(
                status: 503, headers: ["Retry-After": "1", "Content-Type": "text/plain; charset=utf-8"],
                body: Array("request body too slow: its upstream connection went to a waiting request\n".utf8))
        }
    }

    private static func contentLength(_ head: UpstreamResponseHead) -> Int? {
        head.headers["Content-Length"].flatMap { Int($0) }
    }
}
