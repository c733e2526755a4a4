import CNghttp2
import Glibc

/// HTTP/2 over one connection, through libnghttp2 in memory mode: the connection's input buffer is fed
/// to `nghttp2_session_mem_recv`, and `nghttp2_session_mem_send` is pulled into its output queue.
///
/// A connection becomes HTTP/2 in one of three ways (see ``ConnectionProtocolHandler``): the client
/// preface arrived where an HTTP/1 request was expected (h2c with prior knowledge), the first HTTP/1.1
/// request asked for `Upgrade: h2c` and was answered with `101` (that request becomes stream 1), or
/// TLS negotiated ALPN `h2`.
///
/// Each request stream is handed to the same ``HTTPHandler`` as HTTP/1 requests, with
/// ``HTTPRequest/version`` `.http2` and ``HTTPRequest/protocolName`` `h2`; the `:authority` pseudo-header
/// appears as a `host` field. Bodies are collected up to ``HTTPServer/Configuration/maxBodySize``
/// (beyond it the stream is answered 413).
///
/// Back-pressure: output is pulled from nghttp2 only while less than ``outputThreshold`` bytes wait in
/// the output queue, and input is read only below that threshold too, so a peer that sends without
/// reading (requests, pings, resets) cannot grow server memory. Our SETTINGS frame limits concurrent
/// streams to ``HTTPServer/Configuration/http2MaxConcurrentStreams``; nghttp2 refuses streams beyond it.
///
/// Shutdown sends GOAWAY naming the last stream taken, lets those streams finish, then closes.
final class HTTP2Session: ConnectionProtocolHandler {
    /// The HTTP/2 client connection preface (RFC 9113 §3.4).
    static let clientPreface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    /// Stop pulling frames from nghttp2 while this many bytes wait to be written (as libevent-server does).
    static let outputThreshold = 64 * 1024

    /// The state of one request stream.
    private final class Stream {
        let id: Int32
        var method = ""
        var path = ""
        var authority: String?
        var headers = HTTPHeaders()
        var headerBytes = 0
        var body: [UInt8] = []
        var receivedAt: UInt64 = 0
        /// Handed to the handler; waiting for its response.
        var dispatched = false
        /// Answered (by the handler or with an error status).
        var responded = false
        var responseBody: [UInt8] = []
        var responseOffset = 0
        var completion: CompletedResponse?

        init(id: Int32) { self.id = id }
    }

    private let context: ServerContext
    private unowned let connection: Connection
    private var session: OpaquePointer?
    private var streams: [Int32: Stream] = [:]
    private var inputEnded = false
    private var terminated = false
    /// The last pull stopped at ``outputThreshold`` with frames still to come.
    private var heldBackOutput = false
    /// Streams handed to the handler and not yet answered by it, including streams the peer has reset
    /// meanwhile: the handler's work per connection, capped at the concurrent-stream limit.
    private var outstanding = Set<Int32>()

    /// Creates the session and queues our SETTINGS frame. The connection keeps the session alive.
    init(context: ServerContext, connection: Connection) {
        self.context = context
        self.connection = connection
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        Self.installCallbacks(callbacks)
        var options: OpaquePointer?
        nghttp2_option_new(&options)
        // The server answers PING and SETTINGS itself; cap the replies a peer may make it queue.
        nghttp2_option_set_max_outbound_ack(options, 1000)
        nghttp2_session_server_new2(&session, callbacks, Unmanaged.passUnretained(self).toOpaque(), options)
        nghttp2_option_del(options)
        nghttp2_session_callbacks_del(callbacks)
        var settings = [
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue),
                value: UInt32(context.configuration.http2MaxConcurrentStreams)),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue),
                value: UInt32(clamping: context.configuration.maxHeaderBytes)),
        ]
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
    }

    deinit {
        nghttp2_session_del(session)
    }

    /// Takes over `request` (an HTTP/1.1 request with `Upgrade: h2c`, already answered with 101) as
    /// stream 1, with the peer's settings from its `HTTP2-Settings` field. Returns false when nghttp2
    /// rejects the settings payload.
    func upgrade(from request: HTTPRequest, settingsPayload: [UInt8]) -> Bool {
        let result = settingsPayload.withUnsafeBufferPointer { payload in
            nghttp2_session_upgrade2(
                session, payload.baseAddress, payload.count, request.method == "HEAD" ? 1 : 0, nil)
        }
        guard result == 0 else { return false }
        let stream = Stream(id: 1)
        stream.method = request.method
        stream.path = request.query.map { "\(request.path)?\($0)" } ?? request.path
        stream.headers = request.headers
        stream.body = request.body
        stream.receivedAt = connection.loop.now
        streams[1] = stream
        dispatch(stream)
        return true
    }

    // MARK: - ConnectionProtocolHandler

    func process(_ connection: Connection) {
        guard !terminated else { return }
        if !connection.input.isEmpty && connection.output.pendingBytes < Self.outputThreshold {
            let consumed = connection.input.withReadableBytes { bytes in
                nghttp2_session_mem_recv(session, bytes.baseAddress, bytes.count)
            }
            guard consumed >= 0 else {
                fail(connection, reason: "bad_request", error: Int32(consumed))
                return
            }
            connection.input.consume(consumed)
        }
        pullOutput(connection)
    }

    func deliver(_ response: HTTPResponse, requestID: UInt64, connection: Connection) {
        let id = Int32(truncatingIfNeeded: requestID)
        guard outstanding.remove(id) != nil else { return }  // answered already
        connection.loop.markDirty(connection)
        guard let stream = streams[id], stream.dispatched, !stream.responded else {
            return  // reset by the peer meanwhile
        }
        submit(response, on: stream, reportCompletion: true)
    }

    func wantsInput(_ connection: Connection) -> Bool {
        !terminated && !inputEnded && connection.output.pendingBytes < Self.outputThreshold
            && nghttp2_session_want_read(session) != 0
    }

    func isFinished(_ connection: Connection) -> Bool {
        if terminated { return true }
        let wantsWrite = nghttp2_session_want_write(session) != 0
        if nghttp2_session_want_read(session) == 0 && !wantsWrite { return true }
        return inputEnded && !wantsWrite && !streams.values.contains { $0.dispatched && !$0.responded }
    }

    func timerPhase(_ connection: Connection) -> TimerPhase {
        if streams.values.contains(where: { $0.dispatched && !$0.responded }) { return .none }
        return streams.values.contains { !$0.dispatched } ? .body : .idle
    }

    func timerExpired(_ phase: TimerPhase, connection: Connection) {
        switch phase {
        case .idle:
            // Idle keep-alive ended: say goodbye (GOAWAY, no error) and close once it is written.
            nghttp2_session_terminate_session(session, UInt32(NGHTTP2_NO_ERROR.rawValue))
        case .body, .head:
            context.observer?.connectionError(reason: "body_timeout")
            nghttp2_session_terminate_session(session, UInt32(NGHTTP2_PROTOCOL_ERROR.rawValue))
        case .none, .write, .linger, .handshake:
            break
        }
    }

    func inputEnded(_ connection: Connection) {
        inputEnded = true
    }

    func beginDrain(_ connection: Connection) {
        // Graceful GOAWAY: the streams taken so far complete, no new one is accepted.
        let last = nghttp2_session_get_last_proc_stream_id(session)
        nghttp2_submit_goaway(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, UInt32(NGHTTP2_NO_ERROR.rawValue), nil, 0)
    }

    // MARK: - Output

    func hasMoreOutput(_ connection: Connection) -> Bool {
        heldBackOutput && !terminated
    }

    /// Serialises queued frames into the output queue until nghttp2 has nothing more or the threshold is
    /// reached. In the second case ``hasMoreOutput(_:)`` says so, and the connection calls ``process(_:)``
    /// again once the queue has been written.
    private func pullOutput(_ connection: Connection) {
        var pending = connection.output.pendingBytes
        guard pending < Self.outputThreshold else { return }
        var chunk: [UInt8] = []
        heldBackOutput = false
        while true {
            if pending >= Self.outputThreshold {
                heldBackOutput = true
                break
            }
            var data: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(session, &data)
            if count < 0 {
                fail(connection, reason: "reset", error: Int32(count))
                return
            }
            if count == 0 { break }
            chunk.append(contentsOf: UnsafeBufferPointer(start: data, count: count))
            pending += count
        }
        if !chunk.isEmpty { connection.output.append(chunk) }
    }

    /// A fatal session error (bad preface, flood, out of memory): nothing more can be said on it.
    private func fail(_ connection: Connection, reason: String, error: Int32) {
        terminated = true
        connection.lingerOnClose = true
        context.logger.debug(
            "closing HTTP/2 connection",
            metadata: [
                "peer": "\(connection.remoteAddress)",
                "error": "\(String(cString: nghttp2_strerror(error)))",
            ])
        connection.close(reason: reason)
    }

    // MARK: - Requests

    private func dispatch(_ stream: Stream) {
        stream.dispatched = true
        // Rapid reset (CVE-2023-44487): a peer that resets streams at once frees its stream slots while the
        // handler still works on them. Cap the handler's unanswered work too; REFUSED_STREAM is safe to retry.
        guard outstanding.count < context.configuration.http2MaxConcurrentStreams else {
            stream.responded = true
            context.observer?.connectionError(reason: "stream_refused")
            nghttp2_submit_rst_stream(
                session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream.id, UInt32(NGHTTP2_REFUSED_STREAM.rawValue))
            return
        }
        outstanding.insert(stream.id)
        let target = stream.path
        let path: String
        let query: String?
        if let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = String(target[..<mark])
            query = String(target[target.utf8.index(after: mark)...])
        } else {
            path = target
            query = nil
        }
        var headers = stream.headers
        if let authority = stream.authority, !headers.contains("host") {
            headers.add(name: "host", value: authority)
        }
        let request = HTTPRequest(
            method: stream.method, path: path, query: query, version: .http2, headers: headers, body: stream.body,
            protocolName: "h2", remoteAddress: connection.remoteAddress)
        stream.body = []
        context.handler.handle(
            request,
            respond: HTTPResponder(loop: connection.loop, connectionID: connection.id, requestID: UInt64(stream.id)))
    }

    /// Submits the response HEADERS (and DATA through the read callback) for `stream`.
    private func submit(_ response: HTTPResponse, on stream: Stream, reportCompletion: Bool) {
        stream.responded = true
        let status = HTTPStatus.sanitized(response.status, logger: context.logger)
        let bodyAllowed = !HTTPStatus.forbidsBody(status)
        let sendsBody = bodyAllowed && stream.method != "HEAD" && !response.body.isEmpty
        var fields = HTTP2ResponseFields()
        fields.add(":status", String(status))
        var hasDate = false
        for field in response.headers {
            switch HTTP2ResponseFields.classify(field) {
            case .dropped: continue
            case .date: hasDate = true
            case .regular: break
            }
            fields.add(field.name.lowercased(), field.value)
        }
        if let length = HTTPStatus.contentLength(status, bodyCount: response.body.count) {
            fields.add("content-length", String(length))
        }
        if !hasDate { fields.add("date") { connection.loop.dateCache.appendValue(to: &$0) } }

        stream.responseBody = sendsBody ? response.body : []
        stream.responseOffset = 0
        if reportCompletion {
            stream.completion = CompletedResponse(
                method: stream.method, status: status, protocolName: "h2",
                bytes: fields.byteCount + response.body.count, receivedAt: stream.receivedAt)
        }
        let result = fields.withNameValues { nva in
            if sendsBody {
                var provider = nghttp2_data_provider(
                    source: nghttp2_data_source(ptr: nil), read_callback: HTTP2Session.readBody)
                return nghttp2_submit_response(session, stream.id, nva.baseAddress, nva.count, &provider)
            }
            return nghttp2_submit_response(session, stream.id, nva.baseAddress, nva.count, nil)
        }
        if result != 0 {
            context.logger.debug(
                "nghttp2 refused a response", metadata: ["error": "\(String(cString: nghttp2_strerror(result)))"])
        }
    }

    // MARK: - nghttp2 callbacks

    private static func from(_ userData: UnsafeMutableRawPointer?) -> HTTP2Session {
        Unmanaged<HTTP2Session>.fromOpaque(userData!).takeUnretainedValue()
    }

    /// Copies the next piece of a response body into nghttp2's frame buffer.
    private static let readBody: nghttp2_data_source_read_callback = {
        _, streamID, buffer, length, flags, _, userData in
        let session = HTTP2Session.from(userData)
        guard let stream = session.streams[streamID] else {
            return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        let count = min(length, stream.responseBody.count - stream.responseOffset)
        if count > 0 {
            stream.responseBody.withUnsafeBytes { body in
                buffer!.update(
                    from: body.baseAddress!.assumingMemoryBound(to: UInt8.self) + stream.responseOffset, count: count)
            }
            stream.responseOffset += count
        }
        if stream.responseOffset == stream.responseBody.count {
            flags!.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            stream.responseBody = []
        }
        return count
    }

    private static func installCallbacks(_ callbacks: OpaquePointer?) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            let frame = frame!.pointee
            guard frame.hd.type == UInt8(NGHTTP2_HEADERS.rawValue), frame.headers.cat == NGHTTP2_HCAT_REQUEST else {
                return 0
            }
            let session = HTTP2Session.from(userData)
            let stream = Stream(id: frame.hd.stream_id)
            stream.receivedAt = session.connection.loop.now
            session.streams[frame.hd.stream_id] = stream
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) {
            _, frame, name, nameLength, value, valueLength, _, userData in
            let session = HTTP2Session.from(userData)
            guard let stream = session.streams[frame!.pointee.hd.stream_id], !stream.dispatched else { return 0 }
            return session.receiveHeader(
                stream, name: UnsafeBufferPointer(start: name, count: nameLength),
                value: UnsafeBufferPointer(start: value, count: valueLength))
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) {
            session, _, streamID, data, length, userData in
            let owner = HTTP2Session.from(userData)
            guard let stream = owner.streams[streamID], !stream.responded else { return 0 }
            if stream.body.count + length > owner.context.configuration.maxBodySize {
                owner.context.observer?.connectionError(reason: "too_large")
                owner.submit(
                    HTTPResponse(status: 413, text: "request body too large\n"), on: stream, reportCompletion: false)
                stream.body = []
                return 0
            }
            stream.body.append(contentsOf: UnsafeBufferPointer(start: data, count: length))
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            let header = frame!.pointee.hd
            let type = Int(header.type)
            guard type == Int(NGHTTP2_HEADERS.rawValue) || type == Int(NGHTTP2_DATA.rawValue),
                header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
            else { return 0 }
            let session = HTTP2Session.from(userData)
            // May run after the stream closed: look it up rather than assume it.
            guard let stream = session.streams[header.stream_id], !stream.dispatched, !stream.responded else {
                return 0
            }
            if stream.method.isEmpty || stream.path.isEmpty {
                session.submit(
                    HTTPResponse(status: 400, text: "missing :method or :path\n"), on: stream, reportCompletion: false)
                return 0
            }
            session.dispatch(stream)
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            let session = HTTP2Session.from(userData)
            // A stream closed without error has had its last DATA frame serialised.
            if let stream = session.streams.removeValue(forKey: streamID), let completion = stream.completion,
                errorCode == NGHTTP2_NO_ERROR.rawValue
            {
                session.connection.loop.responseCompleted(completion)
            }
            return 0
        }
    }

    /// Records one header field; refuses the stream (RST_STREAM) beyond the header size or count limit.
    private func receiveHeader(
        _ stream: Stream, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>
    ) -> Int32 {
        stream.headerBytes += name.count + value.count + 32  // RFC 9113 §6.5.2 accounting
        if stream.headerBytes > context.configuration.maxHeaderBytes
            || stream.headers.count >= context.configuration.maxHeaderCount
        {
            context.observer?.connectionError(reason: "too_large")
            streams[stream.id] = nil
            return Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        let valueText = String(decoding: value, as: UTF8.self)
        if name.first == UInt8(ascii: ":") {
            switch String(decoding: name, as: UTF8.self) {
            case ":method": stream.method = valueText
            case ":path": stream.path = valueText
            case ":authority": stream.authority = valueText
            default: break
            }
        } else {
            stream.headers.add(name: String(decoding: name, as: UTF8.self), value: valueText)
        }
        return 0
    }
}
