/// One proxied request on its event loop: waits for an upstream connection, sends the request, streams the
/// response back to the client as it arrives, copies what the observer asked to capture, and reports the end.
///
/// Failures are answered, never hidden: before the response head, 502 (refused, reset, bad response), 503 (pool
/// full) or 504 (timeouts) with a one-line reason; after it, the client's response is cut (the connection closes
/// or the stream is reset), so the client sees it incomplete. A client that leaves cancels the upstream request:
/// its connection is closed, never reused.
final class ProxyExchange {
    private let proxy: ReverseProxy
    private let pool: UpstreamPool
    let request: HTTPRequest
    private let requestID: String
    /// The client sent no request id: the generated one is returned in the response.
    private let generatedID: Bool
    private let tap: ProxyTap
    private let startedAt: UInt64
    private let stream: HTTPResponseStream?
    private let responder: HTTPResponder
    private var upstreamRequest: [[UInt8]]
    private var connection: UpstreamConnection?
    private var headAt: UInt64?
    private var status: Int?
    private var responseHeaders: HTTPHeaders?
    private var captured: [UInt8]?
    private var overLimit = false
    /// The request body to come (HTTP/1.x), or nil when it arrived whole.
    private let bodyStream: HTTPRequestBodyStream?
    private var requestComplete: Bool
    private var capturedRequest: [UInt8]?
    private var requestOverLimit = false
    /// Request bytes held until a connection is attached.
    private var heldRequestBytes = 0
    private var bodyBytes = 0
    /// Without a stream (``HTTPResponder/makeStream()`` gave none: the protocol cannot stream the request): the
    /// response collected whole, bounded.
    private var buffered: [UInt8] = []
    private var ended = false

    init(
        proxy: ReverseProxy, pool: UpstreamPool, request: HTTPRequest, requestID: String, generatedID: Bool,
        tap: ProxyTap, upstreamRequest: [[UInt8]], stream: HTTPResponseStream?, responder: HTTPResponder
    ) {
        self.proxy = proxy
        self.pool = pool
        self.request = request
        self.requestID = requestID
        self.generatedID = generatedID
        self.tap = tap
        self.startedAt = pool.loop.now
        self.upstreamRequest = upstreamRequest
        self.stream = stream
        self.responder = responder
        self.bodyStream = request.bodyStream
        self.requestComplete = request.bodyStream == nil
        if tap.captureLimit > 0 {
            captured = []
            if request.bodyStream == nil {
                capturedRequest = Array(request.body.prefix(tap.captureLimit))
                requestOverLimit = request.body.count > tap.captureLimit
            } else {
                capturedRequest = []
            }
        }
    }

    func start() {
        stream?.onCancel = { [weak self] in self?.clientLeft() }
        if let bodyStream {
            // Weak: an exchange answered before its client finished sending ends while the rest of the body is
            // still read (and dropped).
            bodyStream.onData = { [weak self] piece in self?.requestBody(piece) ?? true }
            bodyStream.onEnd = { [weak self] in self?.requestBodyEnded() }
            bodyStream.onFailure = { [weak self] in self?.requestBodyFailed() }
        }
        if !ended { pool.acquire(self) }
    }

    // MARK: - The request body, streamed

    private static let crlf: [UInt8] = Array("\r\n".utf8)
    private static let lastChunk: [UInt8] = Array("0\r\n\r\n".utf8)

    /// A piece of the client's body: captured, framed and queued upstream; false to pause the client.
    private func requestBody(_ piece: UnsafeRawBufferPointer) -> Bool {
        guard !ended else { return true }  // the exchange is over (answered early): the rest is read and dropped
        if capturedRequest != nil, !requestOverLimit {
            let room = tap.captureLimit - capturedRequest!.count
            if piece.count <= room {
                capturedRequest!.append(contentsOf: piece)
            } else {
                capturedRequest!.append(contentsOf: piece.prefix(room))
                requestOverLimit = true
            }
        }
        var pieces: [[UInt8]]
        if bodyStream?.contentLength == nil {
            var size: [UInt8] = []
            size.reserveCapacity(10)
            var value = piece.count
            var digits: [UInt8] = []
            repeat {
                digits.append(Array("0123456789abcdef".utf8)[value & 0xF])
                value >>= 4
            } while value > 0
            size.append(contentsOf: digits.reversed())
            size.append(contentsOf: Self.crlf)
            pieces = [size, [UInt8](piece), Self.crlf]
        } else {
            pieces = [[UInt8](piece)]
        }
        return queueRequest(pieces, complete: false)
    }

    private func requestBodyEnded() {
        guard !ended else { return }
        requestComplete = true
        _ = queueRequest(bodyStream?.contentLength == nil ? [Self.lastChunk] : [], complete: true)
    }

    private func requestBodyFailed() {
        // The client's body cannot be completed: the server answers the client; the upstream request is abandoned.
        guard !ended else { return }
        if let connection {
            self.connection = nil
            connection.abandon()
        } else {
            pool.withdraw(self)
        }
        ended = true
        stream?.onCancel = nil
        stream?.onWritable = nil
        report(failure: nil, cancelled: true)
    }

    /// Queues request bytes on the connection, or holds them until one is attached; false when enough waits.
    private func queueRequest(_ pieces: [[UInt8]], complete: Bool) -> Bool {
        if let connection {
            connection.send(pieces, complete: complete)
            return connection.queuedRequestBytes < UpstreamConnection.requestHighWater
        }
        upstreamRequest.append(contentsOf: pieces)
        heldRequestBytes += pieces.reduce(0) { $0 + $1.count }
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
        let bytes = upstreamRequest
        upstreamRequest = []
        heldRequestBytes = 0
        connection.begin(self, request: bytes, isHEAD: request.method == "HEAD", complete: requestComplete)
    }

    func upstreamHead(_ head: UpstreamResponseHead) {
        guard !ended else { return }
        headAt = pool.loop.now
        status = head.status
        responseHeaders = head.headers
        var fields = ForwardedRequest.responseFields(head.headers)
        if generatedID { fields.add(name: proxy.configuration.requestIDHeader, value: requestID) }
        guard let stream else {
            buffered.reserveCapacity(min(Self.contentLength(head) ?? 0, proxy.configuration.maxBufferedResponseBytes))
            bufferedHeaders = fields
            return
        }
        let length: Int? =
            switch head.framing {
            case .contentLength(let n): n
            case .none: request.method == "HEAD" ? Self.contentLength(head) : nil
            case .chunked, .closeDelimited: nil
            }
        stream.onWritable = { [weak connection] in connection?.resumeReading() }
        stream.start(status: head.status, headers: fields, contentLength: length)
    }

    private var bufferedHeaders = HTTPHeaders()

    /// A piece of the response body; false when the client is full (reading pauses until it has room).
    func upstreamBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !ended else { return false }
        bodyBytes += bytes.count
        if captured != nil, !overLimit {
            let room = tap.captureLimit - captured!.count
            if bytes.count <= room {
                captured!.append(contentsOf: bytes)
            } else {
                captured!.append(contentsOf: bytes.prefix(room))
                overLimit = true
            }
        }
        if let stream { return stream.write(bytes) }
        if responder.isCancelled {
            clientLeft()
            return false
        }
        guard buffered.count + bytes.count <= proxy.configuration.maxBufferedResponseBytes else {
            connection?.abandon()
            connection = nil
            answer(HTTPResponse(status: 502, text: "upstream response too large to relay whole\n"))
            finish(failure: .badResponse)
            return false
        }
        buffered.append(contentsOf: bytes)
        return true
    }

    func upstreamEnded() {
        guard !ended else { return }
        connection = nil
        if let stream {
            stream.finish()
        } else {
            responder(HTTPResponse(status: status ?? 502, headers: bufferedHeaders, body: buffered))
        }
        finish(failure: nil)
    }

    func upstreamFailed(_ failure: UpstreamFailure, reusedConnection: Bool) {
        guard !ended else { return }
        connection = nil
        if headAt == nil {
            answer(Self.errorResponse(failure))
        } else if let stream {
            stream.abort()
        } else {
            answer(Self.errorResponse(failure))
        }
        finish(failure: failure)
    }

    // MARK: - Ending

    private func clientLeft() {
        guard !ended else { return }
        if let connection {
            self.connection = nil
            connection.abandon()
        } else {
            pool.withdraw(self)
        }
        ended = true
        report(failure: nil, cancelled: true)
    }

    private func answer(_ response: HTTPResponse) {
        var response = response
        if generatedID { response.headers.add(name: proxy.configuration.requestIDHeader, value: requestID) }
        status = response.status
        if let stream { stream.respond(response) } else { responder(response) }
    }

    private func finish(failure: UpstreamFailure?) {
        ended = true
        stream?.onCancel = nil
        stream?.onWritable = nil
        report(failure: failure, cancelled: false)
    }

    private func report(failure: UpstreamFailure?, cancelled: Bool) {
        let now = pool.loop.now
        let record = ProxyExchangeRecord(
            request: request, requestBody: capturedRequest, requestBodyOverLimit: requestOverLimit,
            requestID: requestID, tap: tap, status: cancelled ? nil : status,
            responseHeaders: responseHeaders, responseBody: captured, responseBodyOverLimit: overLimit,
            responseBodyBytes: bodyBytes, failure: failure, cancelled: cancelled,
            durationSeconds: Double(now &- startedAt) / 1e9,
            timeToHeadSeconds: headAt.map { Double($0 &- startedAt) / 1e9 })
        proxy.observer?.proxyExchangeEnded(record)
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
        }
    }

    private static func contentLength(_ head: UpstreamResponseHead) -> Int? {
        head.headers["Content-Length"].flatMap { Int($0) }
    }
}
