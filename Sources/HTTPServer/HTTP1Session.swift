/// HTTP/1.0 and HTTP/1.1 over one connection: parses requests, hands them to the handler, and writes
/// the responses strictly in request order (pipelining), deciding keep-alive per RFC 9112 §9.3.
///
/// Back-pressure: at most ``HTTPServer/Configuration/maxPipelinedRequests`` requests may be in flight
/// (dispatched, or answered but not yet written), and no request head is parsed while
/// ``HTTPServer/Configuration/maxPipelinedResponseBytes`` of answers wait to be written; beyond either the session
/// stops parsing and the connection stops reading, so a client that pipelines without reading cannot grow server
/// memory.
///
/// After a parse error the session answers with the error status and a one-line reason, then takes
/// no further request: the framing of whatever follows is unknown, so the connection closes.
///
/// Bodies: when a head announces a body, the session stops and asks the handler
/// (``HTTPHandler/admit(_:admission:)``) before reading any of it, then claims one of the connection
/// slots for bodies and reserves the body's bytes (``BodyBudget``; a chunked body reserves as it grows).
/// A refusal is answered (401, 503 with `Retry-After`, …) and the connection closes, its body unread. A
/// body must arrive within ``HTTPServer/Configuration/bodyTimeout`` and keep up
/// ``HTTPServer/Configuration/minBodyRate``, or it is answered 408. The reservation is returned when the
/// request's response is delivered.
final class HTTP1Session: ConnectionProtocolHandler {
    private struct Slot {
        let id: UInt64
        let method: String
        let isHead: Bool
        let version: HTTPVersion
        let keepAlive: Bool
        let receivedAt: UInt64
        /// Error answers are not reported to ``HTTPServerObserver/requestCompleted``.
        let isParseError: Bool
        var response: HTTPResponse?
        /// Body bytes reserved for this request, returned when its response is delivered.
        var bodyBytes = 0
        /// A response streamed by the handler (``HTTPResponseStream``), sent as it comes once at the front.
        var stream: HTTPResponseStream?
        /// How the stream's body is framed, once its head is encoded.
        var streamFraming: StreamFraming?
    }

    /// How a streamed body goes on the wire.
    private enum StreamFraming {
        /// No body (HEAD, 1xx, 204, 304): pieces are dropped.
        case none
        /// The stream gave its length: pieces as they are.
        case raw
        /// `Transfer-Encoding: chunked`.
        case chunked
        /// HTTP/1.0 without a length: pieces as they are, the end is the connection's close.
        case closeDelimited
    }

    /// Where the body of the request being parsed stands.
    private enum BodyState {
        /// No body in progress (or it needs no decision: no body announced).
        case none
        /// The handler decides whether to receive it; nothing is read meanwhile.
        case awaitingAdmission(id: UInt64, head: HTTP1Parser.Head, contentLength: Int?)
        /// Admitted: waiting for a receiving slot and the body's bytes in the budget.
        case admitted(head: HTTP1Parser.Head, contentLength: Int?)
        /// Being received since `since` (monotonic ns).
        case receiving(head: HTTP1Parser.Head, contentLength: Int?, since: UInt64)
        /// Being handed to the handler piece by piece (``HTTPHandler/streamsRequestBodies``) since `since`; its
        /// request is dispatched already (the last slot).
        case streaming(HTTPRequestBodyStream, since: UInt64)
    }

    /// Body bytes reserved for a streamed body: a window, whatever its length.
    private static let streamedBodyWindow = 64 * 1024

    private static let continueResponse = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
    /// Bodies up to this size are copied behind the head (one chunk, one iovec); larger ones are queued
    /// as the handler's array.
    private static let inlineBodyLimit = 4096

    private let context: ServerContext
    @exclusivity(unchecked) private var parser: HTTP1Parser
    /// Requests dispatched and not yet encoded, in order.
    @exclusivity(unchecked) private var slots: [Slot] = []
    /// A body being received asked for `100 Continue` while earlier requests' answers were still due: sent after
    /// them (``encodeReadyResponses(_:)``), unless the body came whole first.
    @exclusivity(unchecked) private var continueOwed = false
    @exclusivity(unchecked) private var nextRequestID: UInt64 = 0
    @exclusivity(unchecked) private var requestsReceived = 0
    /// False once no further request will be read: after a non-keep-alive request, a parse error, the
    /// end of input, or when draining.
    @exclusivity(unchecked) private var acceptingRequests = true
    @exclusivity(unchecked) private var draining = false
    @exclusivity(unchecked) private var inputEnded = false
    /// A response was cut short (``cut(_:aborted:)``): the connection closes once it is written, a body still
    /// streaming or not.
    @exclusivity(unchecked) private var responseAborted = false
    @exclusivity(unchecked) private var bodyState = BodyState.none
    /// Bytes reserved for the body being received.
    @exclusivity(unchecked) private var bodyReserved = 0
    /// The body waits for the connection's earlier requests to return their reservations.
    @exclusivity(unchecked) private var bodyWaitsForBudget = false
    @exclusivity(unchecked) private var nextAdmissionID: UInt64 = 0
    /// Reservation steps of a chunked body.
    private static let chunkedReservationStep = 64 * 1024

    init(context: ServerContext) {
        self.context = context
        self.parser = HTTP1Parser(limits: context.limits, plansForwarding: context.handlerForwardsRequests)
    }

    private func hasCapacity(_ connection: Connection) -> Bool {
        slots.count + connection.output.pendingResponses < context.configuration.maxPipelinedRequests
    }

    /// Whether another request head may be parsed: the answers queued for the peer are under
    /// ``HTTPServer/Configuration/maxPipelinedResponseBytes``.
    @inline(__always)
    private func hasOutputRoom(_ connection: Connection) -> Bool {
        connection.output.pendingBytes < context.configuration.maxPipelinedResponseBytes
    }

    /// Whether the buffered request may start while the requests in ``slots`` are unanswered: it and they all have
    /// safe methods (GET, HEAD, OPTIONS, TRACE). False too while its method is not all buffered yet (the slots
    /// finishing brings the session back here).
    private func mayStartPipelined(_ connection: Connection) -> Bool {
        guard slots.allSatisfy({ Self.isSafe($0.method.utf8) }) else { return false }
        return connection.input.withReadableBytes { bytes in
            var start = 0
            while start < bytes.count && (bytes[start] == 0x0D || bytes[start] == 0x0A) { start += 1 }
            let window = bytes[start..<min(bytes.count, start + 8)]
            guard let space = window.firstIndex(of: UInt8(ascii: " ")) else { return false }
            return Self.isSafe(bytes[start..<space])
        }
    }

    /// GET, HEAD, OPTIONS or TRACE (RFC 9110 §9.2.1), by its bytes.
    private static func isSafe<Bytes: Collection<UInt8>>(_ method: Bytes) -> Bool {
        method.elementsEqual("GET".utf8) || method.elementsEqual("HEAD".utf8) || method.elementsEqual("OPTIONS".utf8)
            || method.elementsEqual("TRACE".utf8)
    }

    // MARK: - ConnectionProtocolHandler

    func process(_ connection: Connection) {
        // Before the first request: TLS chose h2 through ALPN, or the client sent the h2c preface (never in the
        // middle of a body).
        if requestsReceived == 0 && slots.isEmpty && parser.isAtRequestBoundary && context.configuration.http2Enabled {
            if connection.transport.negotiatedProtocol == "h2" {
                switchToHTTP2(connection)
                return
            }
            switch prefaceMatch(connection) {
            case .complete:
                switchToHTTP2(connection)
                return
            case .partial where !inputEnded:
                return  // wait for the rest of the 24 bytes
            case .partial, .none:
                break
            }
        }
        while readsRequests && hasCapacity(connection) {
            guard prepareBody(connection) else { return }
            guard acceptingRequests else { return }  // the last request's body is read: nothing after it is
            if connection.input.isEmpty { break }
            // A pipelined request starts only once those before it are answered, unless all are safe (RFC 9112
            // §9.3.2): a POST behind a POST must not reach the handler (an upstream) before the first is done.
            if !slots.isEmpty && parser.isAtRequestBoundary && !mayStartPipelined(connection) { return }
            // A peer that reads none of the answers queued for it gets no more until it does (written bytes bring
            // the connection back here).
            if parser.isAtRequestBoundary && !hasOutputRoom(connection) { return }
            // A proxy's copies of the head's lines and of a whole body are made in its loop's kept arrays (read in
            // the call, borrowed: a local optional copy of the reference was a retain and a release per parse).
            let (consumed, result) =
                context.handlerForwardsRequests
                ? connection.input.withReadableBytes { parser.parse($0, arrays: connection.loop.byteArrays) }
                : connection.input.withReadableBytes { parser.parse($0, arrays: nil) }
            connection.input.consume(consumed)
            // Consumed: the head in a case's payload is moved to its binding, not copied out of the result.
            switch consume result {
            case .needMoreData:
                // Leave the loop: the remaining bytes are an incomplete request.
                if inputEnded { finishAfterEndOfInput(connection) }
                return
            case .bodyAnnounced(let head, let contentLength):
                askAdmission(head, contentLength: contentLength, connection)
                if connection.isClosed { return }
            case .request(var request):
                if let settings = h2cUpgradeSettings(request.head, connection) {
                    upgradeToHTTP2(request, settings: settings, connection)
                    return
                }
                // The head and body moved out of the request (swapped), not copied into the handler's request.
                var body: [UInt8] = []
                swap(&body, &request.body)
                dispatch(&request.head, body: body, bodyStream: nil, connection)
                if connection.isClosed { return }
            case .body(let body):
                // The head announced it and is held here (moved out of the state: `dispatch` and `upgradeToHTTP2`
                // find the body's state `.none`, so its receiving slot is given back here). The state is consumed by
                // the match: binding the head of a borrowed one copied it (every field retained, then released).
                let state = takeBodyState()
                guard case .receiving(var head, _, _) = consume state else {
                    preconditionFailure("a collected body completes only while it is being received")
                }
                connection.releaseReceivingSlot()
                if let settings = h2cUpgradeSettings(head, connection) {
                    upgradeToHTTP2(HTTP1Parser.Request(head: head, body: body), settings: settings, connection)
                    return
                }
                dispatch(&head, body: body, bodyStream: nil, connection)
                if connection.isClosed { return }
            case .error(let error):
                fail(status: error.status, reason: error.reason, label: error.observerReason, connection)
                return
            }
        }
        if inputEnded && acceptingRequests && hasCapacity(connection) {
            finishAfterEndOfInput(connection)
        }
    }

    // MARK: - Switching to HTTP/2

    private enum PrefaceMatch { case none, partial, complete }

    /// Whether the buffered input starts with (a prefix of) the HTTP/2 client preface.
    private func prefaceMatch(_ connection: Connection) -> PrefaceMatch {
        connection.input.withReadableBytes { bytes in
            let preface = HTTP2Session.clientPreface
            let count = min(bytes.count, preface.count)
            guard count > 0, bytes[0..<count].elementsEqual(preface[0..<count]) else { return .none }
            return count == preface.count ? .complete : .partial
        }
    }

    /// Hands the connection, with its unconsumed input, to an HTTP/2 session.
    private func switchToHTTP2(_ connection: Connection) {
        let session = HTTP2Session(context: context, connection: connection)
        connection.protocolHandler = session
        session.process(connection)
    }

    /// The decoded `HTTP2-Settings` payload when `request` is a valid h2c upgrade request (RFC 7540 §3.2)
    /// that can be honoured: the first request on a cleartext connection with HTTP/2 enabled, and nothing received
    /// after it but (the start of) the HTTP/2 preface. A request pipelined behind it (a client that did not wait for
    /// the 101) makes the upgrade ignored, as RFC 9110 §7.8 lets a server: both are answered over HTTP/1.1. Before,
    /// the 101 was queued, the HTTP/2 session found no preface and closed: neither answer was sent. (Only what has
    /// arrived is looked at: a request that comes in a later read, after the 101 was decided, is still no preface, and
    /// the connection closes; a client must not send one before the 101, RFC 9113 §3.2.)
    private func h2cUpgradeSettings(_ head: borrowing HTTP1Parser.Head, _ connection: Connection) -> [UInt8]? {
        guard requestsReceived == 0, slots.isEmpty, connection.output.isEmpty, !draining,
            context.configuration.http2Enabled, !connection.transport.isSecure, head.version == .http1_1,
            connection.input.isEmpty || prefaceMatch(connection) != .none
        else { return nil }
        let headers = head.headers
        guard headers.containsToken("h2c", in: "Upgrade"), headers.containsToken("HTTP2-Settings", in: "Connection"),
            headers.values(for: "HTTP2-Settings").count == 1, let encoded = headers["HTTP2-Settings"]
        else { return nil }
        // Not base64url: a payload no SETTINGS frame has (one byte), which the upgrade answers 400 as the ones nghttp2
        // refuses (such a request was served over HTTP/1.1, the upgrade ignored, where a bad length got the 400).
        return Base64URL.decode(encoded) ?? [0]
    }

    /// Answers `101 Switching Protocols`, then serves `request` as stream 1 of a new HTTP/2 session.
    private func upgradeToHTTP2(_ request: HTTP1Parser.Request, settings: [UInt8], _ connection: Connection) {
        let session = HTTP2Session(context: context, connection: connection)
        // Settings nghttp2 refuses get a 400 with the reason, over HTTP/1.1. (Before, the 101 was written and the
        // connection closed at once: the client got no answer at all.)
        guard session.acceptUpgradeSettings(settings, isHEAD: request.head.method == "HEAD") else {
            fail(
                status: 400, reason: "invalid HTTP2-Settings (RFC 9113 §6.5: a SETTINGS payload)",
                label: "bad_request", connection)
            return
        }
        headReceived(connection)
        // The upgrade request's body (at most one, received already) goes to stream 1: the HTTP/1 session's
        // reservation and receiving slot end here.
        releaseBodyReservation(connection)
        if case .receiving = bodyState { connection.releaseReceivingSlot() }
        bodyState = .none
        let head = request.head
        var headers = head.headers
        headers.removeKeepingReceivedBytes(["Connection", "Upgrade", "HTTP2-Settings"])
        connection.output.append(Self.switchingProtocols)
        connection.protocolHandler = session
        let upgraded = HTTPRequest(
            method: head.method, path: head.path, query: head.query, version: .http2, headers: headers,
            body: request.body, protocolName: "h2", remoteAddress: connection.remoteAddress)
        session.upgrade(from: upgraded)
        session.process(connection)
    }

    private static let switchingProtocols = Array(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".utf8)

    /// Nothing more will arrive: anything buffered is an incomplete request, dropped.
    private func finishAfterEndOfInput(_ connection: Connection) {
        acceptingRequests = false
        if !connection.input.isEmpty || !parser.isAtRequestBoundary {
            connection.countError("incomplete_request")
        }
    }

    func deliver(_ response: HTTPResponse, requestID: UInt64, connection: Connection) {
        guard let index = slots.firstIndex(where: { $0.id == requestID }), slots[index].response == nil else {
            return  // already answered, or the request belongs to an earlier incarnation: ignore
        }
        slots[index].response = response
        // Answered whole: a body still streaming that the handler did not take is read and dropped, not held.
        if index == slots.count - 1, case .streaming(let body, _) = bodyState { body.discardUnclaimed() }
        connection.releaseBodyBytes(slots[index].bodyBytes)
        slots[index].bodyBytes = 0
        bodyWaitsForBudget = false
        encodeReadyResponses(connection)
    }

    func wantsInput(_ connection: Connection) -> Bool {
        guard !inputEnded && hasCapacity(connection) && !bodyWaitsForBudget else { return false }
        switch bodyState {
        case .none: return acceptingRequests && (!parser.isAtRequestBoundary || hasOutputRoom(connection))
        case .receiving: return acceptingRequests
        // Read whatever follows its request: one with `Connection: close` is dispatched before its streamed body.
        case .streaming(let stream, _): return !stream.isPaused
        case .awaitingAdmission, .admitted: return false
        }
    }

    /// Taking requests, or streaming the body of one already dispatched: a request that ends the connection
    /// (`Connection: close`, HTTP/1.0) is handed to a handler that streams bodies before its body is read, and the body
    /// must still be read (before, it was not: the proxy's upstream waited for it and the client got 408).
    private var readsRequests: Bool {
        if acceptingRequests { return true }
        if case .streaming = bodyState { return true }
        return false
    }

    func isFinished(_ connection: Connection) -> Bool {
        // A body still streaming to its handler after the last answer (`Connection: close`, answered before the body
        // was in: a proxy's upstream answering early) is read to its end first, bounded by the body timeouts: the
        // connection closed at the answer, the proxy's capture lost the body and the client's writes were reset.
        if case .streaming = bodyState, !responseAborted { return false }
        return slots.isEmpty && !acceptingRequests
    }

    func timerPhase(_ connection: Connection) -> TimerPhase {
        switch bodyState {
        case .receiving: return acceptingRequests && !bodyWaitsForBudget ? .body : .none
        case .streaming(let stream, _): return stream.isPaused ? .none : .body
        case .awaitingAdmission, .admitted: return .none
        case .none: break
        }
        if !slots.isEmpty || !acceptingRequests { return .none }
        if parser.isAtRequestBoundary && Self.holdsNoRequestByte(connection) {
            // A fresh connection must send its first request head in time; later it may idle (an empty line after a
            // request, which RFC 9112 §2.2 says to ignore, included: it went from the 60 s idle close to a 408 at the
            // 10 s header timeout).
            return requestsReceived == 0 ? .head : .idle
        }
        return parser.isAtRequestBoundary ? .head : .body
    }

    /// Whether the connection's unread input is empty or only empty lines (CR and LF): no request has begun.
    private static func holdsNoRequestByte(_ connection: Connection) -> Bool {
        connection.input.readableCount == 0
            || connection.input.withReadableBytes { bytes in
                bytes.allSatisfy { $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") }
            }
    }

    func timerExpired(_ phase: TimerPhase, connection: Connection) {
        switch phase {
        case .idle:
            connection.close(reason: "idle_timeout")
        case .head where parser.isAtRequestBoundary && Self.holdsNoRequestByte(connection):
            // Nothing of a request came: closed without an answer, as nginx and Go close it (a 408 nobody asked for
            // is read by a client that reuses the connection as the answer to its next request).
            connection.close(reason: "header_timeout")
        case .head:
            fail(status: 408, reason: "request header read timeout", label: "header_timeout", connection)
        case .body:
            if case .streaming = bodyState {
                failStreamedBody(
                    status: 408, reason: "request body too slow or stalled", label: "body_too_slow", connection)
                return
            }
            if !connection.bodyReadGapExpired {
                fail(
                    status: 408, reason: "request body too slow (below the minimum rate or over the total time)",
                    label: "body_too_slow", connection)
            } else {
                fail(status: 408, reason: "request body read timeout", label: "body_timeout", connection)
            }
        case .none, .write, .linger, .handshake:
            break
        }
    }

    func bodyDeadline(_ connection: Connection) -> UInt64? {
        if case .streaming(let stream, let since) = bodyState {
            return context.bodyDeadline(start: since, received: stream.bytesReceived + connection.input.readableCount)
        }
        guard case .receiving(_, let contentLength, let since) = bodyState else { return nil }
        let buffered = connection.input.readableCount
        let received = contentLength.map { min($0, buffered) } ?? parser.chunkedBodyCount + buffered
        return context.bodyDeadline(start: since, received: received)
    }

    func inputEnded(_ connection: Connection) {
        inputEnded = true
        // A streamed response (a proxied request) whose client closed: like nginx, take the FIN as the client
        // leaving, so that the upstream request is cancelled rather than completed for nobody.
        if slots.contains(where: { $0.stream != nil }) {
            connection.close(reason: nil)
            return
        }
        // The client left while its body waited for admission, and the body cannot be complete: nobody is
        // waiting for the answer any more (this also cancels the handler's admission work). A chunked body's
        // completeness is not known before parsing: it waits for the decision.
        if case .awaitingAdmission(_, _, let contentLength?) = bodyState, connection.input.readableCount < contentLength
        {
            connection.countError("incomplete_request")
            connection.close(reason: nil)
        }
    }

    func beginDrain(_ connection: Connection) {
        draining = true
        // Let a request that is partly received complete; otherwise take nothing new.
        if parser.isAtRequestBoundary && connection.input.isEmpty {
            acceptingRequests = false
        }
    }

    // MARK: - Bodies

    /// Asks the handler whether the body announced by `head` may be received.
    private func askAdmission(_ head: consuming HTTP1Parser.Head, contentLength: Int?, _ connection: Connection) {
        guard context.handlerScreensBodies else {
            // Nothing to decide: admitted at once, without a round through the waiting state (a copy of the head).
            // Called only from `process`, whose loop goes on with the body (`prepareBody`) when the connection has
            // room, or runs again when a response frees some: no extra pass through the dirty list.
            bodyState = .admitted(head: consume head, contentLength: contentLength)
            return
        }
        let id = nextAdmissionID
        nextAdmissionID &+= 1
        bodyState = .awaitingAdmission(id: id, head: head, contentLength: contentLength)
        let request = HTTPRequest(
            method: head.method, path: head.path, query: head.query, version: head.version, headers: head.headers,
            protocolName: head.version == .http1_0 ? "http/1.0" : "http/1.1", remoteAddress: connection.remoteAddress)
        context.handler.admit(request, admission: connection.admission(requestID: id))
    }

    func admissionDecided(_ rejection: HTTPResponse?, requestID: UInt64, connection: Connection) {
        guard case .awaitingAdmission(let id, let head, let contentLength) = bodyState, id == requestID else { return }
        if let rejection {
            refuseBody(head, rejection, reason: nil, connection)
        } else {
            bodyState = .admitted(head: head, contentLength: contentLength)
        }
        connection.loop.markDirty(connection)
    }

    /// Gets the body in progress ready to be parsed further: a slot and its bytes reserved. False while it
    /// must wait (admission, the connection's earlier requests) or after it was refused.
    private func prepareBody(_ connection: Connection) -> Bool {
        switch bodyState {
        case .none:
            return true
        case .awaitingAdmission:
            return false
        case .admitted:
            // Moved out, not copied: `startBody` sets the state that follows (or puts this one back).
            guard case .admitted(let head, let contentLength) = takeBodyState() else { return false }
            return startBody(head, contentLength: contentLength, connection)
        case .streaming(let stream, _):
            return streamBody(stream, connection)
        case .receiving(let head, let contentLength, _):
            guard contentLength == nil else { return true }
            // Chunked: keep the reservation ahead of the bytes buffered, in steps.
            let buffered = parser.chunkedBodyCount + connection.input.readableCount
            guard buffered > bodyReserved else { return true }
            let step = Self.chunkedReservationStep
            let wanted = min((buffered + step - 1) / step * step, context.configuration.maxBodySize + step)
            guard wanted > bodyReserved else { return true }  // over the limit: the parser answers 413
            switch reserve(wanted - bodyReserved, connection, head: head) {
            case .reserved:
                bodyReserved = wanted
                return true
            case .connectionLimit, .processLimit:
                return false  // waiting for earlier responses, or refused by `reserve`
            }
        }
    }

    /// Claims a receiving slot and reserves a fixed-length body; answers 503 when either is exhausted. Called with
    /// the body state `.admitted(head, contentLength)` taken out (``takeBodyState()``): sets the state that follows,
    /// `.admitted` again while the body waits for the budget.
    private func startBody(_ head: consuming HTTP1Parser.Head, contentLength: Int?, _ connection: Connection) -> Bool {
        let streamed = context.handlerStreamsBodies
        let wanted =
            streamed ? min(contentLength ?? Self.streamedBodyWindow, Self.streamedBodyWindow) : contentLength ?? 0
        switch reserve(wanted, connection, head: head) {
        case .reserved: break
        case .connectionLimit, .processLimit:
            // Waiting for the connection's earlier requests (a refusal has set the state to `.none`).
            if bodyWaitsForBudget { bodyState = .admitted(head: head, contentLength: contentLength) }
            return false
        }
        guard connection.claimReceivingSlot() else {
            connection.releaseBodyBytes(wanted)
            refuseBody(
                head, Self.overloaded("too many connections are sending request bodies"), reason: "body_connections",
                connection)
            return false
        }
        bodyReserved = wanted
        if head.expectsContinue && connection.input.isEmpty {
            if slots.isEmpty {
                // After any answer already encoded (an earlier request's, still being written): in order.
                connection.output.append(Self.continueResponse)
            } else if !streamed {
                // Pipelined behind requests not answered yet: the 100 follows their answers (before, it was never
                // sent, and the client waiting for it got 408 at the body timeout, counted against it).
                continueOwed = true
            }
        }
        // A fixed-length body buffered whole already (the usual small POST, sent with its head) goes whole even to a
        // handler that streams bodies: no stream object and no call per piece, and the handler can keep the bytes
        // without copying them (the proxy's capture).
        // (At most the streaming window, what `wanted` reserved for it.)
        let bufferedWhole =
            contentLength.map { $0 <= connection.input.readableCount && $0 <= Self.streamedBodyWindow } ?? false
        if streamed && !bufferedWhole {
            let stream = HTTPRequestBodyStream(contentLength: contentLength, connection: connection)
            bodyState = .streaming(stream, since: connection.loop.now)
            dispatch(&head, body: [], bodyStream: stream, connection)
            return connection.isClosed ? false : streamBody(stream, connection)
        }
        bodyState = .receiving(head: consume head, contentLength: contentLength, since: connection.loop.now)
        return true
    }

    /// Hands what is buffered of a streamed body to its stream; true once the body is complete (the next request
    /// may be parsed), false while it waits for input or for the handler.
    private func streamBody(_ stream: HTTPRequestBodyStream, _ connection: Connection) -> Bool {
        while !stream.isPaused {
            var piece = HTTP1Parser.BodyPiece.needMoreData
            let consumed = connection.input.withReadableBytes { bytes -> Int in
                let (consumed, parsed) = parser.parseBodyPiece(bytes, limit: Self.streamedBodyWindow)
                piece = parsed
                if case .data(let range) = parsed {
                    _ = stream.deliver(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[range])))
                }
                return consumed
            }
            if connection.isClosed { return false }
            connection.input.consume(consumed)
            switch piece {
            case .needMoreData:
                // The client closed its side and what it sent is read: the body cannot complete (any framing). Failed
                // now, not at the body timeouts: a body streaming after its answer (a proxy's upstream answered early)
                // waited 5 s for the minimum rate, counted `body_too_slow`, and the exchange's record with it.
                if inputEnded {
                    connection.countError("incomplete_request")
                    connection.close(reason: nil)
                }
                return false
            case .data:
                continue  // also when the input is used up: the end of a fixed-length body needs no more bytes
            case .end:
                connection.releaseReceivingSlot()
                releaseBodyReservation(connection)
                bodyState = .none
                stream.end()
                return !connection.isClosed
            case .error(let error):
                failStreamedBody(status: error.status, reason: error.reason, label: error.observerReason, connection)
                return false
            }
        }
        return false
    }

    /// A streamed body cannot be completed: its request is answered with the error instead of the handler's
    /// response (the handler is told through its streams), and the connection closes.
    private func failStreamedBody(status: Int, reason: String, label: String, _ connection: Connection) {
        guard case .streaming(let stream, _) = bodyState else { return }
        bodyState = .none
        // The body's failure first: the handler learns that its request failed before its response stream is
        // cancelled (the proxy took the cancelled stream for a client that left, and counted it so).
        stream.fail()
        if let index = slots.indices.last, slots[index].response == nil {
            let responseStream = slots[index].stream
            slots[index].stream = nil
            slots[index].streamFraming = nil
            slots[index].response = HTTPResponse(status: status, text: reason + "\n")
            responseStream?.cancel()
        }
        acceptingRequests = false
        connection.releaseReceivingSlot()
        connection.lingerOnClose = true
        connection.countError(label)
        encodeReadyResponses(connection)
    }

    /// Gives back what is reserved for the body being received.
    private func releaseBodyReservation(_ connection: Connection) {
        connection.releaseBodyBytes(bodyReserved)
        bodyReserved = 0
    }

    /// The body's state, moved out: ``bodyState`` is `.none` until the caller sets another. Binding the payload of
    /// the stored enum instead would copy the request head in it.
    private func takeBodyState() -> BodyState {
        var state = BodyState.none
        swap(&state, &bodyState)
        return state
    }

    /// Reserves `count` body bytes: waits (``bodyWaitsForBudget``) when the connection's earlier requests
    /// hold its share, answers 503 when the process-wide budget is exhausted or nothing would free the share.
    private func reserve(_ count: Int, _ connection: Connection, head: HTTP1Parser.Head) -> BodyReservation {
        let result = connection.reserveBodyBytes(count)
        switch result {
        case .reserved:
            bodyWaitsForBudget = false
        case .connectionLimit where slots.contains(where: { $0.bodyBytes > 0 }):
            bodyWaitsForBudget = true
        case .connectionLimit, .processLimit:
            refuseBody(
                head, Self.overloaded("the server holds too many request bodies"), reason: "body_memory", connection)
        }
        return result
    }

    /// A 503 with `Retry-After` for a body the server cannot take now.
    private static func overloaded(_ reason: String) -> HTTPResponse {
        HTTPResponse(status: 503, headers: ["Retry-After": "1"], body: Array("\(reason); retry later\n".utf8))
    }

    /// Answers the request whose body is refused with `response`, then closes: its body is never read.
    private func refuseBody(
        _ head: HTTP1Parser.Head, _ response: HTTPResponse, reason: String?, _ connection: Connection
    ) {
        bodyState = .none
        bodyWaitsForBudget = false
        releaseBodyReservation(connection)
        connection.releaseReceivingSlot()
        acceptingRequests = false
        connection.lingerOnClose = true
        if let reason { connection.countError(reason) }
        let id = nextRequestID
        nextRequestID &+= 1
        headReceived(connection)
        slots.append(
            Slot(
                id: id, method: head.method, isHead: head.method == "HEAD", version: head.version, keepAlive: false,
                receivedAt: connection.loop.now, isParseError: false, response: response))
        encodeReadyResponses(connection)
    }

    // MARK: - Requests

    /// A request head was read: counted, and the connection's header timeout starts afresh for the next one.
    @inline(__always)
    private func headReceived(_ connection: Connection) {
        requestsReceived += 1
        connection.requestHeadEnded()
    }

    /// Makes the request's slot and hands it to the handler: whole (`body`), or with its body to come through
    /// `bodyStream` (then the body's state and reservation stay until it ends). The head's references are moved into
    /// the handler's request (``HTTP1Parser/Head/moveIntoRequest(body:remoteAddress:bodyStream:)``): the caller's
    /// head is left empty.
    private func dispatch(
        _ head: inout HTTP1Parser.Head, body: consuming [UInt8], bodyStream: HTTPRequestBodyStream?,
        _ connection: Connection
    ) {
        let id = nextRequestID
        nextRequestID &+= 1
        continueOwed = false  // the body it was owed for is complete (or the request has none)
        headReceived(connection)
        let keepAlive = head.keepAlive && !draining
        if !keepAlive { acceptingRequests = false }
        slots.append(
            Slot(
                id: id, method: head.method, isHead: head.method == "HEAD", version: head.version,
                keepAlive: keepAlive, receivedAt: connection.loop.now, isParseError: false, response: nil,
                bodyBytes: bodyStream == nil ? bodyReserved : 0))
        if bodyStream == nil {
            // Usually `.none` already (a collected body's state was taken out): not assigned again then, which
            // destroyed the old state through its outlined destroy.
            switch bodyState {
            case .none: break
            case .receiving:
                connection.releaseReceivingSlot()
                bodyState = .none
            default: bodyState = .none
            }
            bodyReserved = 0
        }
        // Peers that do not take their answers hold too much over the process: this request gets a short 503, not
        // another answer to hold (its body, still to come, is read and dropped).
        if context.holdsTooManyUnreadAnswers {
            context.observer?.connectionError(reason: "answer_memory")
            deliver(
                Self.overloaded("the server holds too many answers its clients have not read"), requestID: id,
                connection: connection)
            return
        }
        let httpRequest = head.moveIntoRequest(
            body: body, remoteAddress: connection.remoteAddress, bodyStream: bodyStream)
        // The parser's plan for this head is lent to a forwarding handler for the call (see EventLoop.lentForwardPlan).
        if context.handlerForwardsRequests { connection.loop.lentForwardPlan = parser.forwardPlan }
        context.handler.handle(
            consume httpRequest, respond: HTTPResponder(connection: connection, requestID: id))
        if context.handlerForwardsRequests { connection.loop.lentForwardPlan = nil }
    }

    /// Answers a parse error or timeout with `status` and a one-line reason, then closes.
    private func fail(status: Int, reason: String, label: String, _ connection: Connection) {
        acceptingRequests = false
        bodyState = .none
        // What was reserved for the body goes back now: the input is discarded from here (not when the connection has
        // finished lingering, up to seconds later).
        releaseBodyReservation(connection)
        connection.releaseReceivingSlot()
        connection.lingerOnClose = true
        connection.countError(label)
        context.logger.debug(
            "rejecting request",
            metadata: ["peer": "\(connection.remoteAddress)", "status": "\(status)", "reason": "\(reason)"])
        let id = nextRequestID
        nextRequestID &+= 1
        slots.append(
            Slot(
                id: id, method: "", isHead: false, version: .http1_1, keepAlive: false, receivedAt: connection.loop.now,
                isParseError: true, response: HTTPResponse(status: status, text: reason + "\n")))
        encodeReadyResponses(connection)
    }

    // MARK: - Streamed responses

    func attachStream(_ stream: HTTPResponseStream, connection: Connection) -> Bool {
        guard let index = slots.firstIndex(where: { $0.id == stream.requestID }), slots[index].response == nil,
            slots[index].stream == nil
        else { return false }
        slots[index].stream = stream
        stream.sessionTakesFieldLines = true
        return true
    }

    func streamChanged(_ stream: HTTPResponseStream, connection: Connection) {
        guard slots.first?.stream === stream else { return }  // not at the front yet: its pieces wait in it
        encodeReadyResponses(connection)
    }

    /// Written at once when the stream is at the front, its head not encoded, and the client speaks HTTP/1.1 (RFC 9110
    /// §15.2: never to an HTTP/1.0 client); a stream behind another response drops it (it would arrive late).
    func streamInformational(
        _ stream: HTTPResponseStream, status: Int, headers: HTTPHeaders, connection: Connection
    ) {
        guard let slot = slots.first, slot.stream === stream, slot.streamFraming == nil, slot.version == .http1_1
        else { return }
        var bytes: [UInt8] = []
        HTTP1ResponseEncoder.encodeHead(
            status: status, headers: headers, contentLength: nil, connection: .none, date: &connection.loop.dateCache,
            into: &bytes)
        connection.output.append(bytes)
    }

    func streamWrite(_ stream: HTTPResponseStream, _ bytes: UnsafeRawBufferPointer, connection: Connection) -> Bool {
        guard !slots.isEmpty, slots[0].stream === stream, let framing = slots[0].streamFraming else { return false }
        switch framing {
        case .none:
            return true  // no body goes out: dropped, as its pieces would be
        case .raw, .closeDelimited:
            connection.output.appendCopy(bytes)  // into the head's buffer when it has room
            return true
        case .chunked:
            connection.output.appendChunkFramed(bytes)  // size line, bytes and CRLF in one copy
            return true
        }
    }

    func outputWritten(_ connection: Connection) {
        slots.first?.stream?.outputDrained(queuedBytes: connection.output.pendingBytes)
    }

    func connectionClosed(_ connection: Connection) {
        // The client left: its response streams are cancelled first, so that a handler streaming its body learns of a
        // client gone, not of a body the server refused (``failStreamedBody``, which fails the body first).
        let streams = slots.compactMap(\.stream)
        slots.removeAll()
        for stream in streams { stream.cancel() }
        if case .streaming(let body, _) = bodyState {
            bodyState = .none
            body.fail()
        }
    }

    /// Sends what the stream at the front has: its head once, its body pieces, its end. True when the slot is
    /// done (finished); false when it waits for more, or the connection is cut.
    private func encodeStream(_ stream: HTTPResponseStream, _ connection: Connection) -> Bool {
        if slots[0].streamFraming == nil {
            guard let head = stream.takeHead() else {
                if stream.state == .aborted { cut(connection) }
                return false  // no head yet
            }
            slots[0].streamFraming = encodeStreamHead(
                head, isHead: slots[0].isHead, version: slots[0].version, keepAlive: slots[0].keepAlive, connection)
            // The handler is done with the request's body (a proxy sent it upstream before the head came back).
            connection.releaseBodyBytes(slots[0].bodyBytes)
            slots[0].bodyBytes = 0
            bodyWaitsForBudget = false
        }
        // The slot's fields are read in place: a copy of the whole slot costs a retain and release of each field.
        let framing = slots[0].streamFraming ?? .none
        let pieces = stream.takePending()
        switch framing {
        case .none:
            break
        case .raw, .closeDelimited:
            for piece in pieces { connection.output.append(piece) }
        case .chunked:
            for piece in pieces {
                connection.output.append(ChunkedEncoding.sizeLine(piece.count))
                connection.output.append(piece)
                connection.output.append(ChunkedEncoding.crlf)
            }
        }
        switch stream.state {
        case .finished:
            let completion = CompletedResponse(
                method: slots[0].method, status: stream.status,
                protocolName: slots[0].version == .http1_0 ? "http/1.0" : "http/1.1", bytes: stream.bodyBytes,
                receivedAt: slots[0].receivedAt)
            if framing == .closeDelimited {
                connection.output.append([], completion: completion)
                cut(connection, aborted: false)  // complete: a body still streaming is read first
                return false
            }
            connection.output.append(framing == .chunked ? ChunkedEncoding.lastChunk : [], completion: completion)
            removeFrontSlot()
            return true
        case .aborted, .closed:
            cut(connection)
            return false
        case .idle, .streaming:
            return false
        }
    }

    /// Encodes the head of the stream at the front (`isHead`, `version`, `keepAlive`: its request's).
    private func encodeStreamHead(
        _ head: HTTPResponseStream.Head, isHead: Bool, version: HTTPVersion, keepAlive: Bool, _ connection: Connection
    ) -> StreamFraming {
        let status = HTTPStatus.sanitized(head.status, logger: context.logger)
        let bodyAllowed = !HTTPStatus.forbidsBody(status)
        let framing: StreamFraming =
            if !bodyAllowed || isHead {
                .none
            } else if head.contentLength != nil {
                .raw
            } else if version == .http1_1 {
                .chunked
            } else {
                .closeDelimited
            }
        let closing = !keepAlive || framing == .closeDelimited || (slots.count == 1 && !acceptingRequests)
        if framing == .closeDelimited { acceptingRequests = false }
        let connectionField: HTTP1ResponseEncoder.ConnectionField =
            closing ? .close : (version == .http1_0 ? .keepAlive : .none)
        let contentLength = HTTPStatus.streamedContentLength(status, declared: head.contentLength)
        var buffer: [UInt8] = []
        // Room for a small body, copied in behind the head as it arrives (``streamWrite``): one buffer, one iovec.
        let bodyRoom = framing == .raw ? min(head.contentLength ?? 0, 4096) : 0
        if let fieldLines = head.fieldLines {
            let capacity = HTTP1ResponseEncoder.headRoom + head.fieldLinesCount + bodyRoom
            // Sized beforehand, written with plain copies (an append per piece checks capacity and uniqueness).
            // A proxy's head is written in an array its loop kept (``ByteArrayPool``).
            buffer = ByteWriter.array(
                capacity: capacity,
                reusing: context.handlerForwardsRequests
                    ? connection.loop.byteArrays.take(minimumCapacity: capacity) : []
            ) { writer in
                HTTP1ResponseEncoder.encodeHead(
                    status: status, fieldLines: fieldLines, skipping: head.fieldLinesSkipping,
                    lastLinePrefix: head.lastLinePrefix, lastLineValue: head.lastLineValue,
                    hasDate: head.fieldLinesHaveDate, contentLength: contentLength,
                    chunked: framing == .chunked, connection: connectionField, date: &connection.loop.dateCache,
                    into: &writer)
            }
        } else {
            buffer.reserveCapacity(192 + head.headers.count * 48 + bodyRoom)
            HTTP1ResponseEncoder.encodeHead(
                status: status, headers: head.headers, contentLength: contentLength, chunked: framing == .chunked,
                connection: connectionField, date: &connection.loop.dateCache, into: &buffer)
        }
        connection.output.append(buffer)
        return framing
    }

    /// Ends the connection after what is queued: the response at the front is incomplete (aborted, or its length
    /// is the connection's end). Requests behind it are dropped.
    private func cut(_ connection: Connection, aborted: Bool = true) {
        acceptingRequests = false
        let streams = slots.dropFirst().compactMap(\.stream)
        for slot in slots { connection.releaseBodyBytes(slot.bodyBytes) }
        slots.removeAll()
        for stream in streams { stream.cancel() }
        // A response cut short closes the connection once written, a body still streaming or not, so that the client
        // learns at once (it was read to its end first, up to the body timeout). Not failed here: this runs inside the
        // handler's abort, before its exchange has ended with its own failure; the close fails it after.
        if aborted { responseAborted = true }
    }

    // MARK: - Responses

    /// Takes the front slot. The usual case, the only slot, empties the array in place: `removeFirst` goes through the
    /// generic `replaceSubrange` (~360 instructions for one element, measured).
    @discardableResult
    private func removeFrontSlot() -> Slot {
        guard slots.count == 1 else { return slots.removeFirst() }
        return slots.popLast()!
    }

    /// Encodes the answered requests at the front of the queue, in order, and what the streamed one at the front has.
    private func encodeReadyResponses(_ connection: Connection) {
        // The front slot is looked at in place (not copied) until it is taken.
        while !slots.isEmpty {
            if slots[0].response != nil {
                let slot = removeFrontSlot()
                encode(slot.response!, for: slot, connection)
            } else if let stream = slots[0].stream, encodeStream(stream, connection) {
                continue
            } else {
                break
            }
        }
        if continueOwed && slots.isEmpty {
            continueOwed = false
            if case .receiving = bodyState { connection.output.append(Self.continueResponse) }
        }
        connection.loop.markDirty(connection)
    }

    private func encode(_ response: HTTPResponse, for slot: Slot, _ connection: Connection) {
        let status = HTTPStatus.sanitized(response.status, logger: context.logger)
        let closing = !slot.keepAlive || (slots.isEmpty && !acceptingRequests)
        let connectionField: HTTP1ResponseEncoder.ConnectionField =
            closing ? .close : (slot.version == .http1_0 ? .keepAlive : .none)
        let bodyAllowed = !HTTPStatus.forbidsBody(status)
        let body = bodyAllowed && !slot.isHead ? response.body : []
        let contentLength = HTTPStatus.contentLength(status, bodyCount: response.body.count)

        let inline = body.count <= Self.inlineBodyLimit
        var buffer: [UInt8] = []
        buffer.reserveCapacity(192 + response.headers.count * 48 + (inline ? body.count : 0))
        let dropped = HTTP1ResponseEncoder.encodeHead(
            status: status, headers: response.headers, contentLength: contentLength, connection: connectionField,
            date: &connection.loop.dateCache, into: &buffer)
        if dropped > 0 {
            context.logger.debug(
                "dropped server-managed or invalid response header fields", metadata: ["count": "\(dropped)"])
        }
        let completion =
            slot.isParseError
            ? nil
            : CompletedResponse(
                method: slot.method, status: status,
                protocolName: slot.version == .http1_0 ? "http/1.0" : "http/1.1",
                bytes: buffer.count + body.count, receivedAt: slot.receivedAt)
        if inline {
            buffer.append(contentsOf: body)
            connection.output.append(buffer, completion: completion)
        } else {
            connection.output.append(buffer)
            connection.output.append(body, completion: completion)
        }
    }
}
