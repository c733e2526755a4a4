import CNghttp2
import Glibc

/// A minimal blocking HTTP/2 client on libnghttp2 (memory mode over a ``RawClient`` socket), so tests can
/// drive the server's HTTP/2 session frame by frame.
final class HTTP2Client {
    struct Response {
        var status = 0
        var headers: [(String, String)] = []
        var body: [UInt8] = []
        var closed = false
        var errorCode: UInt32 = 0

        func header(_ name: String) -> String? { headers.first { $0.0 == name }?.1 }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    let raw: RawClient
    private var session: OpaquePointer?
    var responses: [Int32: Response] = [:]
    private var uploads: [Int32: (body: [UInt8], offset: Int, ends: Bool, trailers: [(String, String)])] = [:]
    /// Set when the server sent GOAWAY.
    var goAwayReceived = false
    /// Set when the server closed the connection.
    var connectionClosed = false

    /// Connects and queues the client preface and SETTINGS; `sendPreface: false` leaves that to the test.
    /// `initialWindowSize`: the stream window announced in SETTINGS (default 65,535). `manualWindow`: no automatic
    /// WINDOW_UPDATE; the test gives credit back with ``consume(_:_:)`` (a slow reader).
    init(port: Int, sendPreface: Bool = true, initialWindowSize: UInt32? = nil, manualWindow: Bool = false) throws {
        raw = try RawClient(port: port)
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        nghttp2_session_callbacks_set_on_header_callback(callbacks) {
            _, frame, name, nameLength, value, valueLength, _, userData in
            let client = Unmanaged<HTTP2Client>.fromOpaque(userData!).takeUnretainedValue()
            let name = String(decoding: UnsafeBufferPointer(start: name, count: nameLength), as: UTF8.self)
            let value = String(decoding: UnsafeBufferPointer(start: value, count: valueLength), as: UTF8.self)
            let id = frame!.pointee.hd.stream_id
            if name == ":status" { client.responses[id, default: Response()].status = Int(value) ?? 0 }
            client.responses[id, default: Response()].headers.append((name, value))
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) {
            _, _, streamID, data, length, userData in
            let client = Unmanaged<HTTP2Client>.fromOpaque(userData!).takeUnretainedValue()
            client.responses[streamID, default: Response()].body.append(
                contentsOf: UnsafeBufferPointer(start: data, count: length))
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            let client = Unmanaged<HTTP2Client>.fromOpaque(userData!).takeUnretainedValue()
            client.responses[streamID, default: Response()].closed = true
            client.responses[streamID, default: Response()].errorCode = errorCode
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            if frame!.pointee.hd.type == UInt8(NGHTTP2_GOAWAY.rawValue) {
                Unmanaged<HTTP2Client>.fromOpaque(userData!).takeUnretainedValue().goAwayReceived = true
            }
            return 0
        }
        var options: OpaquePointer?
        nghttp2_option_new(&options)
        if manualWindow { nghttp2_option_set_no_auto_window_update(options, 1) }
        nghttp2_session_client_new2(&session, callbacks, Unmanaged.passUnretained(self).toOpaque(), options)
        nghttp2_option_del(options)
        nghttp2_session_callbacks_del(callbacks)
        if sendPreface {
            var settings =
                initialWindowSize.map {
                    [
                        nghttp2_settings_entry(
                            settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: $0)
                    ]
                } ?? []
            nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
        }
    }

    deinit {
        nghttp2_session_del(session)
    }

    /// Queues a request; returns its stream id. With `endStream: false` the body is sent without END_STREAM and
    /// the stream stays open (an unfinished upload). `trailers`: a HEADERS block after the body, which ends the
    /// stream (a body is needed).
    @discardableResult
    func request(
        _ method: String, _ path: String, body: [UInt8]? = nil, headers: [(String, String)] = [],
        endStream: Bool = true,
        trailers: [(String, String)] = []
    ) -> Int32 {
        let fields = [(":method", method), (":path", path), (":scheme", "http"), (":authority", "test")] + headers
        let (fieldBytes, ranges) = Self.fieldBytes(fields)
        var storage = fieldBytes
        let id = storage.withUnsafeMutableBufferPointer { bytes in
            var nva = Self.nameValues(ranges, in: bytes)
            guard body != nil else { return nghttp2_submit_request(session, nil, &nva, nva.count, nil, nil) }
            var provider = nghttp2_data_provider(
                source: nghttp2_data_source(ptr: nil),
                read_callback: { session, streamID, buffer, length, flags, _, userData in
                    let client = Unmanaged<HTTP2Client>.fromOpaque(userData!).takeUnretainedValue()
                    guard let upload = client.uploads[streamID] else { return 0 }
                    let count = min(length, upload.body.count - upload.offset)
                    if count == 0 && !upload.ends { return Int(NGHTTP2_ERR_DEFERRED.rawValue) }
                    upload.body.withUnsafeBytes { body in
                        buffer!.update(
                            from: body.baseAddress!.assumingMemoryBound(to: UInt8.self) + upload.offset, count: count)
                    }
                    client.uploads[streamID]!.offset += count
                    if upload.offset + count == upload.body.count && upload.ends {
                        flags!.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
                        if !upload.trailers.isEmpty {
                            flags!.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                            let (trailerBytes, ranges) = HTTP2Client.fieldBytes(upload.trailers)
                            var storage = trailerBytes
                            storage.withUnsafeMutableBufferPointer { bytes in
                                var nva = HTTP2Client.nameValues(ranges, in: bytes)
                                _ = nghttp2_submit_trailer(session, streamID, &nva, nva.count)
                            }
                        }
                    }
                    return count
                })
            return nghttp2_submit_request(session, nil, &nva, nva.count, &provider, nil)
        }
        if let body { uploads[id] = (body, 0, endStream, trailers) }
        return id
    }

    /// The names and values of `fields` in one buffer, with where each is.
    private static func fieldBytes(_ fields: [(String, String)]) -> ([UInt8], [(Range<Int>, Range<Int>)]) {
        var storage: [UInt8] = []
        var ranges: [(Range<Int>, Range<Int>)] = []
        for (name, value) in fields {
            let nameStart = storage.count
            storage.append(contentsOf: name.utf8)
            let valueStart = storage.count
            storage.append(contentsOf: value.utf8)
            ranges.append((nameStart..<valueStart, valueStart..<storage.count))
        }
        return (storage, ranges)
    }

    /// nghttp2's name-value pairs for `ranges` of `bytes` (valid while `bytes` is).
    private static func nameValues(
        _ ranges: [(Range<Int>, Range<Int>)], in bytes: UnsafeMutableBufferPointer<UInt8>
    ) -> [nghttp2_nv] {
        ranges.map { name, value in
            nghttp2_nv(
                name: bytes.baseAddress! + name.lowerBound, value: bytes.baseAddress! + value.lowerBound,
                namelen: name.count, valuelen: value.count, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
        }
    }

    /// Sends `bytes` more of stream `id`'s upload (begun with `endStream: false`), and ends it when `end`.
    func upload(_ id: Int32, _ bytes: [UInt8], end: Bool) {
        uploads[id]?.body += bytes
        if end { uploads[id]?.ends = true }
        nghttp2_session_resume_data(session, id)
    }

    /// Queues RST_STREAM (CANCEL) for stream `id`.
    func reset(_ id: Int32) {
        nghttp2_submit_rst_stream(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, UInt32(NGHTTP2_CANCEL.rawValue))
    }

    /// With `manualWindow`: `count` bytes of stream `id` are read, so WINDOW_UPDATE gives that much credit back
    /// (to the stream and the connection).
    func consume(_ id: Int32, _ count: Int) {
        nghttp2_session_consume(session, id, count)
    }

    /// Queues a PRIORITY frame for stream `id` (RFC 7540 priorities: depends on stream 0, weight 16), as browsers
    /// send when they rearrange their requests.
    func prioritize(_ id: Int32) {
        var spec = nghttp2_priority_spec()
        nghttp2_priority_spec_init(&spec, 0, 16, 0)
        nghttp2_submit_priority(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, &spec)
    }

    /// Queues SETTINGS announcing `initialWindowSize` as the streams' window (opens, or shuts, every stream's window).
    func settings(initialWindowSize: UInt32) {
        var settings = [
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: initialWindowSize)
        ]
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
    }

    /// Queues a WINDOW_UPDATE of `increment` for stream `stream` (0: the connection).
    func windowUpdate(_ increment: Int32, stream: Int32 = 0) {
        nghttp2_submit_window_update(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream, increment)
    }

    /// Queues an empty SETTINGS frame.
    func emptySettings() {
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil, 0)
    }

    /// Queues a PING (a keep-alive check).
    func ping() {
        nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
    }

    /// Queues GOAWAY (NO_ERROR): the client takes no more responses after the streams it has.
    func goAway() {
        nghttp2_submit_goaway(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session),
            UInt32(NGHTTP2_NO_ERROR.rawValue), nil, 0)
    }

    /// Exchanges frames until `done()` holds or the server closes the connection; throws on timeout.
    func run(timeout: Double = 5, until done: () -> Bool) throws {
        let end = monotonicSeconds() + timeout
        while true {
            try flush()
            if done() || connectionClosed { return }
            let left = end - monotonicSeconds()
            if left <= 0 { throw TestFailure("HTTP/2 exchange timed out") }
            var poller = pollfd(fd: raw.fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(left * 1000) + 1) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { Glibc.read(raw.fd, $0.baseAddress, $0.count) }
            if count <= 0 {
                connectionClosed = true
                return
            }
            let consumed = chunk.withUnsafeBufferPointer { nghttp2_session_mem_recv(session, $0.baseAddress, count) }
            if consumed < 0 { throw TestFailure("client session error \(consumed)") }
        }
    }

    /// Runs until stream `id` is closed.
    func response(_ id: Int32, timeout: Double = 5) throws -> Response {
        try run(timeout: timeout) { responses[id]?.closed == true }
        guard let response = responses[id], response.closed else { throw TestFailure("stream \(id) not closed") }
        return response
    }

    private func flush() throws {
        while true {
            var data: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(session, &data)
            if count < 0 { throw TestFailure("client mem_send error \(count)") }
            if count == 0 { return }
            try raw.send(Array(UnsafeBufferPointer(start: data, count: count)))
        }
    }
}
