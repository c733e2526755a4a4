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
/// Bodies and flow control: a stream whose HEADERS announce a body is first put to the handler
/// (``HTTPHandler/admit(_:admission:)``); its DATA is acknowledged (`nghttp2_session_consume`, so WINDOW_UPDATE)
/// only once it is admitted and its bytes are reserved in the connection's and the process's body budget
/// (``BodyBudget``). Automatic window updates are off, so a peer can never have more than one connection
/// window (64 KiB) of unacknowledged data in memory. When the connection's share is held by earlier requests
/// the credit is withheld until they are answered; when the process-wide budget or the receiving-connection
/// slots are exhausted the stream is answered 503 with `Retry-After`. A refused stream gets its response and
/// then RST_STREAM(NO_ERROR), and its DATA is discarded. Each body must keep up
/// ``HTTPServer/Configuration/minBodyRate`` and finish within ``HTTPServer/Configuration/bodyTimeout`` (408).
///
/// Back-pressure: output is pulled from nghttp2 only while less than ``outputThreshold`` bytes wait in
/// the output queue, and input is read only below that threshold too, so a peer that sends without
/// reading (requests, pings, resets) cannot grow server memory. Our SETTINGS frame limits concurrent
/// streams to ``HTTPServer/Configuration/http2MaxConcurrentStreams``; nghttp2 refuses streams beyond it.
///
/// Streamed responses (``HTTPResponseStream``, through ``HTTPResponder/makeStream()``): the head is submitted when
/// the stream starts, with a data source that feeds DATA frames from the stream's pieces as the peer's flow-control
/// windows allow, and defers (`NGHTTP2_ERR_DEFERRED`) while the writer has nothing more; the end is END_STREAM, an
/// abort is RST_STREAM(INTERNAL_ERROR). A stream's unsent pieces stay in the ``HTTPResponseStream`` but the one being
/// framed, so its writer is told to stop by ``HTTPResponseStream/write(_:)`` when its peer does not read: per stream,
/// and per connection once all its unsent answers, whole and streamed (``UnsentResponseBytes``), reach
/// ``HTTPServer/Configuration/http2MaxUnsentResponseBytes``; stopped writers are woken oldest first.
/// A peer that resets the stream, or a connection that closes, cancels it (``HTTPResponseStream/cancel()``).
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
        /// `cookie` fields received (joined into one for the handler when several).
        var cookieFields = 0
        /// The regular fields as received, `name: value` CRLF each (one copy, no `String` per field): the handler's
        /// ``HTTPHeaders/receivedLines``, so that a value that is not UTF-8 (obs-text, RFC 9110 §5.5) is forwarded
        /// unchanged, as over HTTP/1.1.
        var fieldLines: [UInt8] = []
        var fieldCount = 0
        /// The fields, read from ``fieldLines`` (a lookup makes the `String`s it needs).
        var headers: HTTPHeaders { HTTPHeaders(receivedLines: fieldLines, count: fieldCount) }
        var headerBytes = 0
        /// Trailer fields received (counted against the header limits, never kept: see ``receiveHeader``).
        var trailerFields = 0
        /// Why its head or trailers are over a header limit (the 431's reason): the rest of the block is not taken, and
        /// the stream is answered 431 when the block ends (``refuseOversizedHeaders(_:endsStream:)``).
        var headerProblem: String?
        var body: [UInt8] = []
        var receivedAt: UInt64 = 0
        /// Where the handler's decision on the body stands.
        var admission = Admission.notAsked
        /// END_STREAM arrived: the request is complete.
        var ended = false
        /// Its header block arrived whole (the HEADERS frame and every CONTINUATION): until then the connection is
        /// in its head phase (header timeout, evictable at capacity), as an HTTP/1.1 connection reading a head is.
        var headComplete = false
        /// Body bytes reserved in the budget (kept in ``HTTP2Session/outstanding`` once dispatched).
        var bodyReserved = 0
        /// Received body bytes not yet acknowledged to flow control.
        var withheld = 0
        /// When the body was admitted (monotonic ns).
        var admittedAt: UInt64 = 0
        /// Complete and handed over (to the handler, or to ``HTTP2Session/waiting``); waiting for its response.
        var dispatched = false
        /// Closed when the stream closes (a reset by the client, or the connection's end): what its admission and
        /// responder answer `isCancelled` with, so that work queued for a reset stream (a password check) is
        /// skipped, as for a client that left (it was run: only the connection's close was seen). Made on first use.
        var liveness: ConnectionLiveness?

        func liveness(of connection: Connection) -> ConnectionLiveness {
            if let liveness { return liveness }
            let made = ConnectionLiveness(parent: connection.liveness)
            liveness = made
            return made
        }
        /// Complete, but waiting in ``HTTP2Session/waiting`` for the peer to take the answers held for it.
        var waits = false
        /// The server reset it (RST_STREAM sent: nghttp2's own resets of a malformed request included): not abandoned by
        /// its client.
        var serverReset = false
        /// Answered (by the handler, with an error status, or the head of its streamed response submitted).
        var responded = false
        var responseBody: [UInt8] = []
        var responseOffset = 0
        var completion: CompletedResponse?

        init(id: Int32) { self.id = id }
    }

    /// The handler's decision on a stream's body.
    private enum Admission {
        /// No body announced (or not yet).
        case notAsked
        case pending
        /// Admitted and being received.
        case admitted
        /// Refused or answered early (401, 413, 503, 408): its DATA is discarded.
        case refused
    }

    /// A handler's streamed response tied to its request stream: from ``attachStream(_:connection:)`` until the
    /// handler's side is over (its last byte handed to nghttp2 with END_STREAM, aborted, answered whole, or
    /// cancelled). Kept apart from ``Stream``, which nghttp2's stream closing removes: a bodiless head (HEAD, 204,
    /// 304) ends the request stream while the writer may still be going.
    private final class Attachment {
        let stream: HTTPResponseStream
        /// The head was submitted.
        var headSent = false
        /// The head was submitted with a data source: a body is allowed and the request was not HEAD.
        var sendsBody = false
        /// The data source answered `NGHTTP2_ERR_DEFERRED`: resumed when the stream changes.
        var deferred = false
        /// The piece being copied into DATA frames, taken from the stream (``HTTPResponseStream/takePiece()``) when
        /// the previous one is all copied: the rest stays in the stream, where it counts for its writer.
        var piece: [UInt8] = []
        var pieceOffset = 0

        init(stream: HTTPResponseStream) { self.stream = stream }

        /// Bytes of ``piece`` not yet copied.
        var bufferedBytes: Int { piece.count - pieceOffset }

        /// Copies up to `capacity` body bytes into `buffer`, taking the stream's pieces as needed; returns how many.
        func copy(into buffer: UnsafeMutablePointer<UInt8>, capacity: Int) -> Int {
            var copied = 0
            while copied < capacity {
                if pieceOffset == piece.count {
                    guard let next = stream.takePiece() else { break }
                    piece = next
                    pieceOffset = 0
                    continue
                }
                let count = min(capacity - copied, piece.count - pieceOffset)
                piece.withUnsafeBufferPointer { bytes in
                    (buffer + copied).update(from: bytes.baseAddress! + pieceOffset, count: count)
                }
                copied += count
                pieceOffset += count
            }
            if pieceOffset == piece.count {
                piece = []
                pieceOffset = 0
            }
            return copied
        }
    }

    private let context: ServerContext
    private unowned let connection: Connection
    private var session: OpaquePointer?
    private var streams: [Int32: Stream] = [:]
    /// Streamed responses by request stream id (see ``Attachment``).
    private var attachments: [Int32: Attachment] = [:]
    /// Streamed responses whose request stream closed inside an nghttp2 callback: cancelled once nghttp2 has
    /// returned (a writer's cancel handler may come back into the session: answer, abort, close upstream work).
    private var cancelledStreams: [HTTPResponseStream] = []
    /// The connection closed: nothing more is submitted, and late answers are dropped.
    private var closed = false
    private var inputEnded = false
    private var terminated = false
    /// The server ended the connection (a timeout, a protocol error, a flood): streams it cut were not abandoned by
    /// their client (``HTTPHandler/abandoned(_:clientLeft:)``).
    private var serverEnded = false
    /// The last pull stopped at ``outputThreshold`` with frames still to come.
    private var heldBackOutput = false
    /// Streams handed to the handler and not yet answered by it, including streams the peer has reset
    /// meanwhile, with the body bytes each holds in the budget: the handler's work per connection, capped at
    /// the concurrent-stream limit.
    private var outstanding: [Int32: Int] = [:]
    /// Admitted streams still receiving their body; the connection holds a receiving slot while any is.
    private var receivingStreams = 0
    /// Response body bytes submitted and not yet framed, whole answers and streamed ones: answers waiting for the
    /// peer's flow-control window, bounded by ``HTTPServer/Configuration/http2MaxUnsentResponseBytes``.
    private let unsent: UnsentResponseBytes
    /// Body bytes framed in DATA frames since ``windowProgress(_:)`` last found progress, counted while the
    /// connection waits for window (``timerPhase(_:)`` `write`).
    private var framedBodyBytes = 0
    /// The body bytes a peer's window must let through, within the write-stall timeout, to count as progress (or
    /// all that is held, when less): a peer opening its window a byte at a time held its answers and its slot for
    /// ever.
    static let minimumWindowProgress = 4096
    /// What a GET under way is taken to add to the answers held for its peer before any larger answer was seen.
    static let minimumAnswerEstimate = 64 * 1024
    /// Complete requests not handed to the handler while ``unsent`` is at
    /// ``HTTPServer/Configuration/http2MaxUnsentResponseBytes``, oldest first; started as the peer takes its answers.
    private var waiting: [Stream] = []
    /// GETs handed to the handler whose answer has come neither whole nor as a stream: each may add an answer as
    /// large as the server's largest to those held for the peer (``mayStart(_:)``).
    private var unansweredGETs: Set<Int32> = []
    /// The peer's allowance of frames that ask nothing of the server (see ``HTTP2FrameBudget``).
    private var frameBudget: HTTP2FrameBudget
    /// The budget ran out and GOAWAY(ENHANCE_YOUR_CALM) was submitted.
    private var calmedDown = false
    /// The header block being received (HEADERS and its CONTINUATIONs; one at a time on a connection): its fields
    /// as decoded (an invalid one resets its stream in nghttp2, which then decodes the rest without checks), and their
    /// size as RFC 9113 §6.5.2 counts it (``headerBlockFieldArrived(_:)``).
    private var headerBlockFields = 0
    private var headerBlockBytes = 0
    /// The header bytes (as ``Stream/headerBytes`` counts them) of the streams open on this connection: bounded by
    /// ``maxHeldHeaderBytes`` (a new stream beyond it is refused).
    private var heldHeaderBytes = 0
    /// The most header bytes a connection's open streams hold before a new stream is refused (RST_STREAM
    /// REFUSED_STREAM, safe to retry; counted `stream_refused`): HPACK lets one byte on the wire stand for a 4 KB
    /// field, and 900 connections of 100 streams each, every head just under the 16 KiB limit and waiting for a body,
    /// held 1.5 GB for 11 MB sent. With it: `--web.max-connections` x (256 KiB + one head).
    static let maxHeldHeaderBytes = 256 << 10
    /// The peer opened a request stream (or upgraded with one): until then the connection is in its `head` phase.
    private var requestStarted = false
    /// The highest request stream opened, and the ids below it the client skipped (RFC 9113 §5.1.1: opening a
    /// stream closes the idle ones below it, and a HEADERS frame on one of them is a connection error: nghttp2 ignores
    /// it, as it cannot tell such an id from a stream it closed). The last ``maxSkippedRanges`` runs are kept: an id
    /// in an older run is ignored, as before.
    private var highestRequestStream: Int32 = -1
    private var skippedStreamIDs: [ClosedRange<Int32>] = []
    static let maxSkippedRanges = 64
    /// A frame that carries a request (HEADERS, DATA of a stream still receiving) arrived since
    /// ``idleActivity(_:didRead:)`` last looked.
    private var requestFramesReceived = false

    /// Creates the session and queues our SETTINGS frame. The connection keeps the session alive.
    init(context: ServerContext, connection: Connection) {
        self.context = context
        self.connection = connection
        self.frameBudget = HTTP2FrameBudget(now: connection.loop.now)
        self.unsent = UnsentResponseBytes(limit: context.configuration.http2MaxUnsentResponseBytes)
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        Self.installCallbacks(callbacks)
        var options: OpaquePointer?
        nghttp2_option_new(&options)
        // The server answers PING and SETTINGS itself; cap the replies a peer may make it queue.
        nghttp2_option_set_max_outbound_ack(options, 1000)
        // Flow-control credit is given by hand, once a body's bytes are admitted and reserved.
        nghttp2_option_set_no_auto_window_update(options, 1)
        // RST_STREAM floods are the frame budget's (ENHANCE_YOUR_CALM, at nghttp2's default bound): nghttp2's own
        // limit, four times looser, is left as a backstop (it ends the connection with INTERNAL_ERROR).
        nghttp2_option_set_stream_reset_rate_limit(
            options, UInt64(4 * HTTP2FrameBudget.resetBurst), UInt64(4 * HTTP2FrameBudget.resetsPerSecond))
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

    /// Takes the upgrade request's `HTTP2-Settings` as the client's first SETTINGS; false when nghttp2 refuses them
    /// (a length that is no multiple of 6, more entries than its limit). Nothing is written. A value out of range
    /// passes here: nghttp2 then ends the upgraded connection with GOAWAY (FLOW_CONTROL_ERROR, PROTOCOL_ERROR).
    func acceptUpgradeSettings(_ settingsPayload: [UInt8], isHEAD: Bool) -> Bool {
        settingsPayload.withUnsafeBufferPointer { payload in
            nghttp2_session_upgrade2(session, payload.baseAddress, payload.count, isHEAD ? 1 : 0, nil)
        } == 0
    }

    /// Takes over `request` (an HTTP/1.1 request with `Upgrade: h2c`, already answered with 101) as stream 1, after
    /// ``acceptUpgradeSettings(_:isHEAD:)`` took its settings.
    func upgrade(from request: HTTPRequest) {
        let stream = Stream(id: 1)
        stream.method = request.method
        stream.path = request.query.map { "\(request.path)?\($0)" } ?? request.path
        if let lines = request.headers.receivedLines {
            stream.fieldLines = lines
        } else {
            for field in request.headers {
                stream.fieldLines.append(contentsOf: "\(field.name): \(field.value)\r\n".utf8)
            }
        }
        stream.fieldCount = request.headers.count
        stream.body = request.body
        stream.receivedAt = connection.loop.now
        streams[1] = stream
        highestRequestStream = 1
        requestStarted = true
        dispatch(stream)
    }

    // MARK: - ConnectionProtocolHandler

    func process(_ connection: Connection) {
        guard !terminated else { return }
        if !connection.input.isEmpty && connection.output.pendingBytes < Self.outputThreshold {
            frameBudget.refill(now: connection.loop.now)
            let consumed = connection.input.withReadableBytes { bytes -> Int in
                // Charged in runs: where the tokens run out, what comes before goes to nghttp2 first, whose refunds
                // (DATA with body bytes) and credits may pay for the rest. Frames beyond the budget never reach
                // nghttp2: the rest of the input is dropped.
                var fed = 0
                while true {
                    let rest = UnsafeBufferPointer(rebasing: bytes[fed...])
                    let allowed = frameBudget.charge(rest)
                    let count = nghttp2_session_mem_recv(session, rest.baseAddress, allowed)
                    guard count >= 0 else { return count }
                    fed += count
                    guard frameBudget.ranOut, count == allowed, frameBudget.resume() else { break }
                }
                return frameBudget.isExhausted ? bytes.count : fed
            }
            guard consumed >= 0 else {
                fail(connection, reason: "bad_request", error: Int32(consumed))
                return
            }
            connection.input.consume(consumed)
            if frameBudget.isExhausted { calmDown() }
        }
        cancelClosedStreams()
        guard !connection.isClosed else { return }
        startWaiting()
        pullOutput(connection)
        // The pull framed held answers: waiting requests may start, on the next pass (not while those under way keep
        // the next one from starting: its answer starts it; marked dirty meanwhile, the loop would spin on this
        // connection and never take that answer from its inbox).
        if let next = waiting.first, mayStart(next) {
            connection.loop.markDirty(connection)
        }
        wakeWriters()
    }

    func deliver(_ response: HTTPResponse, requestID: UInt64, connection: Connection) {
        let id = Int32(truncatingIfNeeded: requestID)
        guard !closed else { return }
        if let attachment = attachments[id] {
            // A streamed request answered whole (``HTTPResponseStream/respond(_:)``: an error before the head).
            guard !attachment.headSent else { return }  // its head is out: the stream goes on
            detach(id)
        }
        if unansweredGETs.remove(id) != nil, response.body.count > context.largestWholeAnswer.load(ordering: .relaxed) {
            context.largestWholeAnswer.store(response.body.count, ordering: .relaxed)
        }
        guard let held = outstanding.removeValue(forKey: id) else { return }  // answered already
        connection.releaseBodyBytes(held)
        creditWithheldStreams()
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
        return inputEnded && !wantsWrite && attachments.isEmpty
            && !streams.values.contains { $0.dispatched && !$0.responded }
    }

    /// As for HTTP/1, plus: `write` when a response body (a whole answer, or a streamed one not waiting for its
    /// writer) is held back only for the peer's flow-control window: a peer that does not read has the write-stall
    /// timeout, restarted only when body data moves (``windowProgress(_:)``), not by its PINGs. Otherwise, while a
    /// streamed response goes on, `none`.
    func timerPhase(_ connection: Connection) -> TimerPhase {
        if receivingStreams > 0 { return .body }
        // Called once the output is written and nghttp2 had no more frames: whole answers with bytes left wait for
        // window (before, such a connection was `idle`, kept open by anything it sent, and held its answers).
        if unsent.whole > 0 { return .write }
        if !attachments.isEmpty {
            // Called once the output is written and nghttp2 had no more frames: a body neither deferred (waiting for
            // its writer) nor finished waits for window.
            let blocked = attachments.contains { id, attachment in
                attachment.sendsBody && !attachment.deferred && streams[id] != nil
            }
            if !blocked { framedBodyBytes = 0 }
            return blocked ? .write : .none
        }
        framedBodyBytes = 0
        if streams.values.contains(where: { $0.dispatched && !$0.responded }) { return .none }
        // A header block still arriving is a head being read: the header timeout, not restarted by progress. (Before,
        // a HEADERS frame without END_HEADERS put the connection in its body phase: it left the eviction list, and
        // a CONTINUATION trickle held the slot past any header timeout.)
        var undispatched = false
        for stream in streams.values where !stream.dispatched {
            if !stream.responded && !stream.headComplete { return .head }
            undispatched = true
        }
        if undispatched { return .body }
        // As over HTTP/1.1, a fresh connection must start its first request within the header timeout; later it may
        // idle. (Before, a client that sent only the preface held its slot for the idle timeout.)
        return requestStarted ? .idle : .head
    }

    /// Only frames that carry requests are activity: a peer's PINGs, SETTINGS and WINDOW_UPDATEs do not keep an idle
    /// connection open (as Go's server does not count PINGs).
    func idleActivity(_ connection: Connection, didRead: Bool) -> Bool {
        defer { requestFramesReceived = false }
        return requestFramesReceived
    }

    /// Whether the peer's window let body data move since the last progress: at least ``minimumWindowProgress``
    /// bytes, or every byte held.
    func windowProgress(_ connection: Connection) -> Bool {
        guard framedBodyBytes >= Self.minimumWindowProgress || (framedBodyBytes > 0 && unsent.total == 0) else {
            return false
        }
        framedBodyBytes = 0
        return true
    }

    func bodyDeadline(_ connection: Connection) -> UInt64? {
        guard receivingStreams > 0 else { return nil }
        var earliest: UInt64?
        for stream in streams.values where stream.admission == .admitted && !stream.dispatched {
            let deadline = context.bodyDeadline(start: stream.admittedAt, received: stream.body.count)
            earliest = min(earliest ?? deadline, deadline)
        }
        return earliest
    }

    func timerExpired(_ phase: TimerPhase, connection: Connection) {
        switch phase {
        case .head
        where !requestStarted || streams.values.contains { !$0.dispatched && !$0.responded && !$0.headComplete }:
            // No request, or a header block not whole, within the header timeout: say goodbye (GOAWAY, no error) and
            // close once it is written.
            connection.countError("header_timeout")
            endSession(UInt32(NGHTTP2_NO_ERROR.rawValue))
        case .idle:
            // Idle keep-alive ended: say goodbye (GOAWAY, no error) and close once it is written; counted as HTTP/1.x's
            // idle close is (security.md's table).
            connection.countError("idle_timeout")
            endSession(UInt32(NGHTTP2_NO_ERROR.rawValue))
        case .body, .head:
            // Streams past their total time or below the minimum rate get 408; with none, the whole
            // connection went quiet for the read timeout.
            let now = connection.loop.now
            var late = streams.values.filter {
                $0.admission == .admitted && !$0.dispatched
                    && context.bodyDeadline(start: $0.admittedAt, received: $0.body.count) <= now
            }
            if late.isEmpty && !connection.bodyReadGapExpired {
                // Bytes read just before the expiry moved the deadline a little: the earliest stream is the late one.
                let receiving = streams.values.filter { $0.admission == .admitted && !$0.dispatched }
                late = Array(
                    receiving.min {
                        context.bodyDeadline(start: $0.admittedAt, received: $0.body.count)
                            < context.bodyDeadline(start: $1.admittedAt, received: $1.body.count)
                    }.map { [$0] } ?? [])
            }
            guard late.isEmpty else {
                for stream in late {
                    refuse(
                        stream,
                        HTTPResponse(
                            status: 408, text: "request body too slow (below the minimum rate or over the total time)\n"
                        ),
                        reason: "body_too_slow")
                }
                return
            }
            connection.countError("body_timeout")
            endSession(UInt32(NGHTTP2_PROTOCOL_ERROR.rawValue))
        case .none, .write, .linger, .handshake:
            break
        }
    }

    func inputEnded(_ connection: Connection) {
        inputEnded = true
        // As over HTTP/1.1 (and nginx): a client that closes while a streamed response is being written has left.
        // It could not give flow-control credit any more either. Its writers are cancelled, not served for nobody.
        if attachments.values.contains(where: { $0.stream.state == .idle || $0.stream.state == .streaming }) {
            connection.close(reason: nil)
        }
    }

    func beginDrain(_ connection: Connection) {
        // Graceful GOAWAY: the streams taken so far complete, no new one is accepted; bodies still coming when the
        // drain's deadline closes the connection are cut by the server.
        serverEnded = true
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
        cancelClosedStreams()
    }

    /// A request stream `id` was opened: the ids the client skipped to it are closed (``skippedStreamIDs``).
    private func requestStreamOpened(_ id: Int32) {
        guard id > highestRequestStream else { return }
        if id > highestRequestStream + 2 {
            skippedStreamIDs.append(max(1, highestRequestStream + 2)...(id - 2))
            if skippedStreamIDs.count > Self.maxSkippedRanges { skippedStreamIDs.removeFirst() }
        }
        highestRequestStream = id
    }

    /// A HEADERS frame begins on stream `id`: on an id the client skipped (a stream it can no longer open), a
    /// connection error, GOAWAY(PROTOCOL_ERROR), counted `bad_request` (RFC 9113 §5.1.1; it was ignored, and the
    /// request never answered).
    private func headersBegin(on id: Int32) {
        // A new id counts as opened whatever nghttp2 then does with it (a stream it refuses over the concurrent-stream
        // limit is never begun, but it is no skipped id: the client's trailers on it must be ignored).
        if id > highestRequestStream, id & 1 == 1 {
            requestStreamOpened(id)
            return
        }
        guard id < highestRequestStream, id & 1 == 1, streams[id] == nil,
            skippedStreamIDs.contains(where: { $0.contains(id) })
        else { return }
        connection.countError("bad_request")
        connection.lingerOnClose = true
        endSession(UInt32(NGHTTP2_PROTOCOL_ERROR.rawValue))
    }

    /// The peer sent more frames that ask nothing than its ``HTTP2FrameBudget`` allows: GOAWAY(ENHANCE_YOUR_CALM),
    /// counted `bad_request` once (as nghttp2's own flood limits), and the connection closes once it is written.
    private func calmDown() {
        guard !calmedDown else { return }
        calmedDown = true
        connection.countError("bad_request")
        connection.lingerOnClose = true  // the peer is still sending: let the GOAWAY reach it
        context.logger.debug(
            "closing HTTP/2 connection: frame flood", metadata: ["peer": "\(connection.remoteAddress)"])
        endSession(UInt32(NGHTTP2_ENHANCE_YOUR_CALM.rawValue))
    }

    /// A fatal session error (bad preface, flood, out of memory): nothing more can be said on it.
    private func fail(_ connection: Connection, reason: String, error: Int32) {
        terminated = true
        serverEnded = true
        connection.lingerOnClose = true
        context.logger.debug(
            "closing HTTP/2 connection",
            metadata: [
                "peer": "\(connection.remoteAddress)",
                "error": "\(String(cString: nghttp2_strerror(error)))",
            ])
        connection.close(reason: reason)
    }

    /// Evicted while idle: GOAWAY (NO_ERROR, naming the last stream taken) into the output, which
    /// ``Connection/evict()`` writes before it closes.
    func sayGoodbye(_ connection: Connection) {
        guard !serverEnded else { return }
        endSession(UInt32(NGHTTP2_NO_ERROR.rawValue))
        pullOutput(connection)
    }

    /// Says goodbye (GOAWAY with `code`): the connection closes once it is written.
    private func endSession(_ code: UInt32) {
        serverEnded = true
        nghttp2_session_terminate_session(session, code)
    }

    /// Whether `stream` was taken up and is neither handed to the handler nor answered: its head valid and its body
    /// admitted (or being decided), or its complete request waiting in ``waiting``.
    private func neverHandedOver(_ stream: Stream) -> Bool {
        guard !stream.responded, stream.headComplete else { return false }
        return stream.waits || (!stream.dispatched && (stream.admission == .admitted || stream.admission == .pending))
    }

    /// Tells the handler that `stream`'s request will never reach it, with `body`, what had come of its body (once: the
    /// stream counts as answered after).
    private func reportAbandoned(_ stream: Stream, body: [UInt8]) {
        stream.responded = true
        context.handler.abandoned(
            request(for: stream, body: body), clientLeft: !serverEnded && !stream.serverReset)
    }

    // MARK: - Requests

    private func dispatch(_ stream: Stream) {
        stream.dispatched = true
        if stream.admission == .admitted { finishReceiving() }
        // Rapid reset (CVE-2023-44487): a peer that resets streams at once frees its stream slots while the
        // handler still works on them. Cap the handler's unanswered work too; REFUSED_STREAM is safe to retry.
        guard outstanding.count + waiting.count < context.configuration.http2MaxConcurrentStreams else {
            let held = stream.bodyReserved
            stream.bodyReserved = 0
            stream.responded = true
            connection.releaseBodyBytes(held)
            context.observer?.connectionError(reason: "stream_refused")
            nghttp2_submit_rst_stream(
                session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream.id, UInt32(NGHTTP2_REFUSED_STREAM.rawValue))
            return
        }
        // Peers that do not take their answers hold too much over the process: a short 503, as over HTTP/1.x
        // (``HTTPServer/Configuration/maxUnreadAnswerBytes``).
        if context.holdsTooManyUnreadAnswers {
            context.observer?.connectionError(reason: "answer_memory")
            connection.releaseBodyBytes(stream.bodyReserved)
            stream.bodyReserved = 0
            discard(stream)
            submit(
                Self.overloaded("the server holds too many answers its clients have not read"), on: stream,
                reportCompletion: true)
            return
        }
        if stream.admission == .notAsked { frameBudget.credit(HTTP2FrameBudget.creditPerRequest) }
        // A peer that does not take its answers (its windows stay shut) must not have answer after answer kept whole
        // for it: past the bound, requests wait (a reading peer's window is shut between two reads too: refusing
        // would fail it) and start as the held bytes go out, after those waiting before them.
        guard waiting.isEmpty, mayStart(stream) else {
            stream.waits = true
            waiting.append(stream)
            return
        }
        start(stream)
    }

    /// Whether `stream` may be handed to the handler now: the answers held for the peer are below the bound, and so
    /// they stay with an answer as large as the server's largest (``ServerContext/largestWholeAnswer``, 64 KiB before
    /// any larger) for this GET and each one under way (requests that
    /// came together all started before any answer existed: a peer that asked for 40 scrapes at once with its
    /// windows shut had all 40 answers kept, 7.5 MiB per connection). A first GET under way always may (one answer
    /// larger than the bound is still served); other methods' answers are small (ingestion's, errors).
    private func mayStart(_ stream: Stream) -> Bool {
        guard !unsent.isFull else { return false }
        guard stream.method == "GET", !unansweredGETs.isEmpty else { return true }
        let estimate = context.largestWholeAnswer.load(ordering: .relaxed)
        return unsent.total + (unansweredGETs.count + 1) * estimate <= unsent.limit
    }

    /// Hands a complete request to the handler.
    private func start(_ stream: Stream) {
        // Streams the peer reset earlier in the same input are withdrawn first (their upstream requests, their places
        // in the proxy's queue): a peer that resets 32 waiting streams and opens one in one write got 503 `pool_full`
        // for it, the queue still holding the 32 until the whole input had been read.
        cancelClosedStreams()
        if stream.method == "GET" { unansweredGETs.insert(stream.id) }
        let held = stream.bodyReserved
        stream.bodyReserved = 0
        outstanding[stream.id] = held
        let request = request(for: stream, body: stream.body)
        stream.body = []
        context.handler.handle(
            request,
            respond: HTTPResponder(
                connection: connection, requestID: UInt64(stream.id), liveness: stream.liveness(of: connection)))
    }

    /// Starts the waiting requests while the answers held for the peer are below the bound.
    private func startWaiting() {
        while let stream = waiting.first, mayStart(stream), !closed, !terminated {
            waiting.removeFirst()
            stream.waits = false
            start(stream)
        }
    }

    /// Why a request's `:authority` and `host` cannot stand (nil when they can): a value that is no
    /// `uri-host [":" port]`, more than one `host`, or a `host` naming another authority than `:authority` (RFC 9113
    /// §8.3.1: malformed; an intermediary makes `Host` from `:authority`, and a front end that routed by one would
    /// disagree with an upstream that reads the other).
    static func hostProblem(authority: String?, hosts: [String]) -> String? {
        if let authority, !HTTP1Framing.isHostValue(Array(authority.utf8)) { return "invalid :authority" }
        guard let host = hosts.first else { return nil }
        guard hosts.count == 1 else { return "more than one host field" }
        guard HTTP1Framing.isHostValue(Array(host.utf8)) else { return "invalid host field" }
        if let authority, !ASCII.equalsIgnoringCase(authority.utf8, host.utf8) {
            return "host field differs from :authority"
        }
        return nil
    }

    /// The 413 of a body over ``HTTPServer/Configuration/maxBodySize``, announced or found in its DATA: HTTP/1.1's
    /// reason (the DATA path said "request body too large", where HTTP/1.1 names the limit).
    private var bodyTooLarge: HTTPResponse {
        HTTPResponse(status: 413, text: "request body larger than \(context.configuration.maxBodySize) bytes\n")
    }

    /// Answers (and returns true) a request the server does not take, counted as over HTTP/1.1: CONNECT (nghttp2 lets
    /// it through without `:path`, RFC 9113 §8.5) 501, counted `bad_request`; a request without `:method` or `:path`,
    /// or whose hosts cannot stand (``hostProblem(authority:hosts:)``), 400, counted `bad_request`; a `:path` longer
    /// than ``HTTPServer/Configuration/maxRequestTargetLength`` 414, counted `too_large`; a `content-length` over
    /// ``HTTPServer/Configuration/maxBodySize`` 413, counted `too_large`, before any of the body is read. (Before,
    /// CONNECT was answered 400 and counted nowhere.)
    private func refusedAsMalformed(_ stream: Stream) -> Bool {
        if stream.method == "CONNECT" {
            refuse(stream, HTTPResponse(status: 501, text: "CONNECT is not supported\n"), reason: "bad_request")
            return true
        }
        if stream.method.isEmpty || stream.path.isEmpty {
            refuse(stream, HTTPResponse(status: 400, text: "missing :method or :path\n"), reason: "bad_request")
            return true
        }
        // As HTTP/1.1 refuses it (RFC 9112 §3.2, RFC 3986: ASCII only); nghttp2 lets bytes above 0x7F through, which
        // were forwarded as they came or, not UTF-8, as U+FFFD.
        if !stream.path.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
            refuse(stream, HTTPResponse(status: 400, text: "invalid request target\n"), reason: "bad_request")
            return true
        }
        let limit = context.configuration.maxRequestTargetLength
        if stream.path.utf8.count > limit {
            refuse(
                stream, HTTPResponse(status: 414, text: "request target longer than \(limit) bytes\n"),
                reason: "too_large")
            return true
        }
        if let problem = Self.hostProblem(authority: stream.authority, hosts: stream.headers.values(for: "host")) {
            refuse(stream, HTTPResponse(status: 400, text: problem + "\n"), reason: "bad_request")
            return true
        }
        // Refused from its head, as HTTP/1.1 refuses it: a body announced over the limit was read up to the limit
        // (16 MiB by default) before its 413.
        if let declared = stream.headers["content-length"].flatMap({ Int($0) }),
            declared > context.configuration.maxBodySize
        {
            refuse(stream, bodyTooLarge, reason: "too_large")
            return true
        }
        return false
    }

    /// The handler's view of `stream` with `body`: `host` from `:authority` when absent, and the `cookie` fields an
    /// HTTP/2 client may send apart joined into one with "; " (RFC 9113 §8.2.3: as HTTP/1.1 carries them).
    private func request(for stream: Stream, body: [UInt8]) -> HTTPRequest {
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
        // The fields' bytes as received (``Stream/fieldLines``); `host` from `:authority` added as a line, and the
        // `cookie` fields joined into one line, as bytes too.
        var lines: [UInt8]
        var count = stream.fieldCount
        if stream.cookieFields > 1 {
            lines = []
            lines.reserveCapacity(stream.fieldLines.count + 16)
            var cookie: [UInt8] = Array("cookie: ".utf8)
            stream.fieldLines.withUnsafeBufferPointer { section in
                var reader = ReceivedFieldLines(section)
                var first = true
                while let line = reader.next() {
                    guard ASCII.equalsLowercase(section[line.name], "cookie") else {
                        lines.append(contentsOf: section[line.whole])
                        continue
                    }
                    if !first { cookie.append(contentsOf: [UInt8(ascii: ";"), UInt8(ascii: " ")]) }
                    first = false
                    cookie.append(contentsOf: section[line.value])
                }
            }
            lines.append(contentsOf: cookie)
            lines.append(contentsOf: [0x0D, 0x0A])
            count -= stream.cookieFields - 1
        } else {
            lines = stream.fieldLines
        }
        if let authority = stream.authority, !stream.headers.contains("host") {
            lines.append(contentsOf: "host: \(authority)\r\n".utf8)
            count += 1
        }
        let headers = HTTPHeaders(receivedLines: lines, count: count)
        return HTTPRequest(
            method: stream.method, path: path, query: query, version: .http2, headers: headers, body: body,
            protocolName: "h2", remoteAddress: connection.remoteAddress)
    }

    // MARK: - Bodies

    /// Puts the body announced by `stream`'s HEADERS to the handler.
    private func askAdmission(_ stream: Stream) {
        guard !refusedAsMalformed(stream) else { return }
        stream.admission = .pending
        frameBudget.credit(HTTP2FrameBudget.creditPerRequest)
        guard context.handler.screensRequestBodies else {
            admissionDecided(nil, requestID: UInt64(stream.id), connection: connection)
            connection.loop.markDirty(connection)  // as an admission decided on the loop is
            return
        }
        context.handler.admit(
            request(for: stream, body: []),
            admission: connection.admission(requestID: UInt64(stream.id), liveness: stream.liveness(of: connection)))
    }

    func admissionDecided(_ rejection: HTTPResponse?, requestID: UInt64, connection: Connection) {
        guard !terminated, let stream = streams[Int32(truncatingIfNeeded: requestID)], stream.admission == .pending
        else { return }
        if let rejection {
            refuse(stream, rejection, reason: nil)
            return
        }
        if receivingStreams == 0 && !connection.claimReceivingSlot() {
            refuse(
                stream, Self.overloaded("too many connections are sending request bodies"), reason: "body_connections")
            return
        }
        stream.admission = .admitted
        stream.admittedAt = connection.loop.now
        receivingStreams += 1
        if !stream.ended && stream.body.isEmpty && stream.withheld == 0, Self.expectsContinue(stream.headers) {
            // RFC 9110 §10.1.1: a client that asked for 100-continue may hold its body until it comes (Java's
            // HttpClient does over HTTP/2), as the HTTP/1.x session answers it. Before, none was sent: 408 at the
            // body timeout.
            var fields = HTTP2ResponseFields()
            fields.add(":status", "100")
            _ = fields.withNameValues { nva in
                nghttp2_submit_headers(
                    session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream.id, nil, nva.baseAddress, nva.count, nil)
            }
        }
        credit(stream)
        settle(stream)
    }

    /// Whether `headers` hold `expect: 100-continue` (the only expectation HTTP defines).
    private static func expectsContinue(_ headers: HTTPHeaders) -> Bool {
        guard let value = headers["expect"] else { return false }
        return ASCII.equalsLowercase(ASCII.trimmingWhitespace(value.utf8), "100-continue")
    }

    /// Reserves and acknowledges `stream`'s withheld bytes: withholds them while the connection's earlier
    /// requests hold its share, refuses the stream (503) when nothing would free it or the process is full.
    private func credit(_ stream: Stream) {
        guard stream.admission == .admitted, stream.withheld > 0 else { return }
        switch connection.reserveBodyBytes(stream.withheld) {
        case .reserved:
            stream.bodyReserved += stream.withheld
            nghttp2_session_consume(session, stream.id, stream.withheld)
            stream.withheld = 0
        case .connectionLimit where outstanding.values.contains(where: { $0 > 0 }):
            break  // credit withheld until an earlier request is answered
        case .connectionLimit, .processLimit:
            refuse(stream, Self.overloaded("the server holds too many request bodies"), reason: "body_memory")
        }
    }

    /// Retries the credit of streams that waited for the connection's share.
    private func creditWithheldStreams() {
        for stream in streams.values where stream.admission == .admitted && stream.withheld > 0 {
            credit(stream)
            settle(stream)
        }
    }

    /// Dispatches `stream` once its request is complete and every byte of its body is reserved.
    private func settle(_ stream: Stream) {
        guard stream.ended, !stream.dispatched, !stream.responded else { return }
        switch stream.admission {
        case .notAsked:
            guard !refusedAsMalformed(stream) else { return }
            dispatch(stream)
        case .admitted where stream.withheld == 0:
            dispatch(stream)
        case .admitted, .pending, .refused:
            break
        }
    }

    /// An admitted stream stopped receiving (dispatched, refused or closed).
    private func finishReceiving() {
        receivingStreams -= 1
        if receivingStreams == 0 { connection.releaseReceivingSlot() }
    }

    /// Answers 431 with ``Stream/headerProblem`` for a stream whose head or trailers went over a header limit (its
    /// HEADERS block ended: `endsStream` when it carried END_STREAM), counted `too_large`, as HTTP/1.1 answers a head
    /// or a chunked body's trailers over the limits; its body, if any comes, is discarded and what it held given back.
    /// Before, nghttp2 reset such a stream (INTERNAL_ERROR) without a status.
    private func refuseOversizedHeaders(_ stream: Stream, endsStream: Bool) {
        if endsStream { stream.ended = true }
        refuse(
            stream, HTTPResponse(status: 431, text: (stream.headerProblem ?? "header section too large") + "\n"),
            reason: "too_large")
    }

    /// Answers `stream` with `response` before its body is complete (or instead of receiving it), returns its
    /// reservation and discards its body; RST_STREAM(NO_ERROR) follows the response (RFC 9113 §8.1).
    private func refuse(_ stream: Stream, _ response: HTTPResponse, reason: String?) {
        if stream.admission == .admitted { finishReceiving() }
        stream.admission = .refused
        connection.releaseBodyBytes(stream.bodyReserved)
        stream.bodyReserved = 0
        discard(stream)
        if let reason { context.observer?.connectionError(reason: reason) }
        submit(response, on: stream, reportCompletion: true)
    }

    /// Drops `stream`'s buffered body and acknowledges its withheld bytes, so the connection window reopens.
    private func discard(_ stream: Stream) {
        stream.body = []
        if stream.withheld > 0 {
            nghttp2_session_consume(session, stream.id, stream.withheld)
            stream.withheld = 0
        }
    }

    /// A 503 with `Retry-After` for a body the server cannot take now.
    private static func overloaded(_ reason: String) -> HTTPResponse {
        HTTPResponse(status: 503, headers: ["Retry-After": "1"], body: Array("\(reason); retry later\n".utf8))
    }

    /// The header block of a response: `:status`, the handler's fields that HTTP/2 allows, `content-length` when
    /// given, and `date` unless the handler set one.
    private func responseFields(status: Int, headers: HTTPHeaders, contentLength: Int?) -> HTTP2ResponseFields {
        var fields = HTTP2ResponseFields()
        fields.add(":status", String(status))
        let hasDate = fields.addFields(of: headers)
        if let contentLength { fields.add("content-length", String(contentLength)) }
        if !hasDate { fields.add("date") { connection.loop.dateCache.appendValue(to: &$0) } }
        return fields
    }

    /// Submits the response HEADERS (and DATA through the read callback) for `stream`.
    private func submit(_ response: HTTPResponse, on stream: Stream, reportCompletion: Bool) {
        stream.responded = true
        let status = HTTPStatus.sanitized(response.status, logger: context.logger)
        let bodyAllowed = !HTTPStatus.forbidsBody(status)
        let sendsBody = bodyAllowed && stream.method != "HEAD" && !response.body.isEmpty
        var fields = responseFields(
            status: status, headers: response.headers,
            contentLength: HTTPStatus.contentLength(status, bodyCount: response.body.count))

        unsent.whole -= stream.responseBody.count - stream.responseOffset
        stream.responseBody = sendsBody ? response.body : []
        stream.responseOffset = 0
        unsent.whole += stream.responseBody.count
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
            unsent.whole -= stream.responseBody.count
            stream.responseBody = []
        }
    }

    // MARK: - Streamed responses

    func attachStream(_ stream: HTTPResponseStream, connection: Connection) -> Bool {
        guard !terminated, !closed, let id = Int32(exactly: stream.requestID), outstanding[id] != nil,
            attachments[id] == nil, let request = streams[id], request.dispatched, !request.responded
        else { return false }
        attachments[id] = Attachment(stream: stream)
        stream.connectionUnsent = unsent
        unansweredGETs.remove(id)
        return true
    }

    func streamChanged(_ stream: HTTPResponseStream, connection: Connection) {
        let id = Int32(truncatingIfNeeded: stream.requestID)
        guard !closed, let attachment = attachments[id], attachment.stream === stream else { return }
        switch stream.state {
        case .idle, .closed:
            return  // `respond` goes through `deliver`, `cancel` comes from the session
        case .aborted:
            // What nghttp2 has not framed yet is dropped: the client sees the stream reset, the body incomplete.
            detach(id)
            endStreamedWork(id)
            reset(id, error: NGHTTP2_INTERNAL_ERROR)
            return
        case .streaming, .finished:
            break
        }
        if !attachment.headSent {
            guard submitHead(attachment, id: id) else { return }
        }
        if !attachment.sendsBody {
            unsent.streamed -= stream.pendingBytes
            _ = stream.takePending()  // no body goes out (HEAD, 1xx, 204, 304): pieces are dropped
            if stream.state == .finished {
                detach(id)
                endStreamedWork(id)
            }
        } else if attachment.deferred {
            attachment.deferred = false
            nghttp2_session_resume_data(session, id)
        }
    }

    func outputWritten(_ connection: Connection) {
        wakeWriters()
    }

    /// Wakes the writers told to stop, oldest first, while the connection holds less than its bound and their own
    /// stream has room (its pieces and the connection's queue below ``HTTPResponseStream/lowWater``); a writer woken
    /// writes on at once (the proxy reads its upstream), so each is woken only while the bound is not reached again.
    /// One whose stream is full stays in the queue, in its place.
    private func wakeWriters() {
        guard !unsent.waiting.isEmpty, !unsent.isFull, !closed else { return }
        let queued = connection.output.pendingBytes
        let candidates = unsent.waiting
        unsent.waiting = []
        var kept: [HTTPResponseStream] = []
        for stream in candidates where stream.waitsForConnection {
            guard !unsent.isFull, !closed, stream.pendingBytes + queued < HTTPResponseStream.lowWater else {
                kept.append(stream)
                continue
            }
            stream.waitsForConnection = false
            stream.outputDrained(queuedBytes: queued)
        }
        // Writers told to stop meanwhile (the ones just woken, among others) queue behind those still waiting.
        unsent.waiting = kept + unsent.waiting
    }

    /// Unties streamed response `id` from its request stream: its bytes no longer count for the connection, and its
    /// writer no longer waits for the connection's room. Returns the attachment.
    @discardableResult
    private func detach(_ id: Int32) -> Attachment? {
        guard let attachment = attachments.removeValue(forKey: id) else { return nil }
        release(attachment)
        return attachment
    }

    /// See ``detach(_:)``.
    private func release(_ attachment: Attachment) {
        let stream = attachment.stream
        unsent.streamed -= stream.pendingBytes + attachment.bufferedBytes
        attachment.piece = []
        attachment.pieceOffset = 0
        stream.connectionUnsent = nil
        if stream.waitsForConnection {
            stream.waitsForConnection = false
            unsent.waiting.removeAll { $0 === stream }
        }
    }

    func connectionClosed(_ connection: Connection) {
        guard !closed else { return }
        closed = true
        // Requests taken up whose streams nghttp2 never closed (the connection ended under them), in stream order.
        for id in streams.keys.sorted() {
            if let stream = streams[id], neverHandedOver(stream) { reportAbandoned(stream, body: stream.body) }
        }
        let detached = attachments.sorted { $0.key < $1.key }.map(\.value)
        attachments = [:]
        for attachment in detached { release(attachment) }
        let cancelled = cancelledStreams + detached.map(\.stream)
        cancelledStreams = []
        // Each stream is cancelled once: a stream that ended (or was answered) meanwhile ignores it.
        for stream in cancelled { stream.cancel() }
    }

    /// A non-final HEADERS frame (RFC 9113 §8.1) before the stream's response.
    func streamInformational(
        _ stream: HTTPResponseStream, status: Int, headers: HTTPHeaders, connection: Connection
    ) {
        let id = Int32(truncatingIfNeeded: stream.requestID)
        guard !closed, !terminated, let attachment = attachments[id], attachment.stream === stream,
            !attachment.headSent, let request = streams[id], !request.responded
        else { return }
        var fields = HTTP2ResponseFields()
        fields.add(":status", String(status))
        _ = fields.addFields(of: headers)
        _ = fields.withNameValues { nva in
            nghttp2_submit_headers(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, nil, nva.baseAddress, nva.count, nil)
        }
    }

    /// Submits the stream's head, with a data source when a body goes out; false (the stream reset, its writer
    /// cancelled) when nghttp2 refuses it.
    private func submitHead(_ attachment: Attachment, id: Int32) -> Bool {
        guard let head = attachment.stream.head else { return false }
        attachment.headSent = true
        guard let request = streams[id] else {
            // Cannot happen: a request stream that closes takes its attachment with it.
            detach(id)
            endStreamedWork(id)
            cancelledStreams.append(attachment.stream)
            return false
        }
        request.responded = true
        // The handler is done with the request body (a proxy sent it upstream before its head came back).
        if let held = outstanding[id], held > 0 {
            outstanding[id] = 0
            connection.releaseBodyBytes(held)
            creditWithheldStreams()
        }
        let status = HTTPStatus.sanitized(head.status, logger: context.logger)
        let bodyAllowed = !HTTPStatus.forbidsBody(status)
        attachment.sendsBody = bodyAllowed && request.method != "HEAD"
        var fields = responseFields(
            status: status, headers: head.headers,
            contentLength: HTTPStatus.streamedContentLength(status, declared: head.contentLength))
        // The body's bytes are added when its last DATA frame is framed.
        request.completion = CompletedResponse(
            method: request.method, status: status, protocolName: "h2", bytes: fields.byteCount,
            receivedAt: request.receivedAt)
        let result = fields.withNameValues { nva in
            if attachment.sendsBody {
                var provider = nghttp2_data_provider(
                    source: nghttp2_data_source(ptr: nil), read_callback: HTTP2Session.readStreamedBody)
                return nghttp2_submit_response(session, id, nva.baseAddress, nva.count, &provider)
            }
            return nghttp2_submit_response(session, id, nva.baseAddress, nva.count, nil)
        }
        guard result != 0 else { return true }
        context.logger.debug(
            "nghttp2 refused a response", metadata: ["error": "\(String(cString: nghttp2_strerror(result)))"])
        detach(id)
        endStreamedWork(id)
        reset(id, error: NGHTTP2_INTERNAL_ERROR)
        cancelledStreams.append(attachment.stream)
        connection.loop.markDirty(connection)
        return false
    }

    /// Fills one DATA frame of stream `id` with its streamed body: `NGHTTP2_ERR_DEFERRED` while the writer has
    /// nothing more, END_STREAM once it finished and everything is copied, a reset (INTERNAL_ERROR) when it is
    /// gone or its body is not the length its head announced.
    private func readStreamedBody(
        _ id: Int32, into buffer: UnsafeMutablePointer<UInt8>, capacity: Int, flags: UnsafeMutablePointer<UInt32>
    ) -> Int {
        let failure = Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        guard !closed, let attachment = attachments[id] else { return failure }
        let stream = attachment.stream
        let count = attachment.copy(into: buffer, capacity: capacity)
        unsent.streamed -= count
        switch stream.state {
        case .streaming:
            guard count == 0 else { return count }
            attachment.deferred = true
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        case .finished:
            guard attachment.bufferedBytes == 0, stream.pendingBytes == 0 else { return count }
            detach(id)
            endStreamedWork(id)
            if let length = stream.head?.contentLength, length != stream.bodyBytes {
                context.logger.debug(
                    "streamed body differs from its content-length",
                    metadata: ["announced": "\(length)", "sent": "\(stream.bodyBytes)"])
                return failure
            }
            streams[id]?.completion?.bytes += stream.bodyBytes
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            return count
        case .idle, .aborted, .closed:
            detach(id)  // not reached: an abort or a cancel detaches the stream first
            endStreamedWork(id)
            return failure
        }
    }

    /// The handler's work on streamed request `id` is over: its place among the outstanding requests is free.
    private func endStreamedWork(_ id: Int32) {
        guard let held = outstanding.removeValue(forKey: id), held > 0 else { return }
        connection.releaseBodyBytes(held)
        creditWithheldStreams()
    }

    /// Resets request stream `id` with `error` unless it is closed already.
    private func reset(_ id: Int32, error: nghttp2_error_code) {
        guard let stream = streams[id] else { return }
        stream.responded = true
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, UInt32(error.rawValue))
        connection.loop.markDirty(connection)
    }

    /// Cancels the streamed responses whose request stream closed during the last nghttp2 call.
    private func cancelClosedStreams() {
        while !cancelledStreams.isEmpty {
            let cancelled = cancelledStreams
            cancelledStreams = []
            for stream in cancelled { stream.cancel() }
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
            session.unsent.whole -= count
        }
        if stream.responseOffset == stream.responseBody.count {
            flags!.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            stream.responseBody = []
            stream.responseOffset = 0
        }
        return count
    }

    private static let readStreamedBody: nghttp2_data_source_read_callback = {
        _, streamID, buffer, length, flags, _, userData in
        HTTP2Session.from(userData).readStreamedBody(streamID, into: buffer!, capacity: length, flags: flags!)
    }

    private static func installCallbacks(_ callbacks: OpaquePointer?) {
        nghttp2_session_callbacks_set_on_begin_frame_callback(callbacks) { _, header, userData in
            let header = header!.pointee
            guard header.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
            HTTP2Session.from(userData).headersBegin(on: header.stream_id)
            return 0
        }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            let frame = frame!.pointee
            HTTP2Session.from(userData).headerBlockBegins()
            guard frame.hd.type == UInt8(NGHTTP2_HEADERS.rawValue), frame.headers.cat == NGHTTP2_HCAT_REQUEST else {
                return 0
            }
            let session = HTTP2Session.from(userData)
            guard session.heldHeaderBytes < HTTP2Session.maxHeldHeaderBytes else {
                // Not made: its fields, DATA and closing find no stream (ignored, their flow-control credit given back);
                // the RST_STREAM of a stream unknown here is counted `stream_refused` when it is sent.
                nghttp2_submit_rst_stream(
                    session.session, UInt8(NGHTTP2_FLAG_NONE.rawValue), frame.hd.stream_id,
                    UInt32(NGHTTP2_REFUSED_STREAM.rawValue))
                return 0
            }
            let stream = Stream(id: frame.hd.stream_id)
            stream.receivedAt = session.connection.loop.now
            session.streams[frame.hd.stream_id] = stream
            session.requestStarted = true
            session.requestFramesReceived = true
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) {
            _, frame, name, nameLength, value, valueLength, _, userData in
            let session = HTTP2Session.from(userData)
            guard session.headerBlockFieldArrived(nameLength + valueLength) else {
                return session.resetOversizedBlock(frame!.pointee.hd.stream_id)
            }
            guard let stream = session.streams[frame!.pointee.hd.stream_id], !stream.dispatched,
                stream.headerProblem == nil
            else { return 0 }
            return session.receiveHeader(
                stream, name: UnsafeBufferPointer(start: name, count: nameLength),
                value: UnsafeBufferPointer(start: value, count: valueLength),
                trailer: frame!.pointee.headers.cat != NGHTTP2_HCAT_REQUEST)
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) {
            session, _, streamID, data, length, userData in
            let owner = HTTP2Session.from(userData)
            guard let stream = owner.streams[streamID], !stream.responded, stream.admission != .refused
            else {
                nghttp2_session_consume(session, streamID, length)  // discarded: give the credit back
                return 0
            }
            if stream.body.count + length > owner.context.configuration.maxBodySize {
                nghttp2_session_consume(session, streamID, length)
                owner.refuse(stream, owner.bodyTooLarge, reason: "too_large")
                return 0
            }
            stream.body.append(contentsOf: UnsafeBufferPointer(start: data, count: length))
            stream.withheld += length
            owner.credit(stream)
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            let header = frame!.pointee.hd
            let type = Int(header.type)
            guard type == Int(NGHTTP2_HEADERS.rawValue) || type == Int(NGHTTP2_DATA.rawValue) else { return 0 }
            let session = HTTP2Session.from(userData)
            // A DATA frame that carried body bytes or ended its stream did work: its token is given back.
            if type == Int(NGHTTP2_DATA.rawValue)
                && (header.length > frame!.pointee.data.padlen
                    || header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0)
            {
                session.frameBudget.refund()
            }
            // May run after the stream closed: look it up rather than assume it.
            guard let stream = session.streams[header.stream_id], !stream.dispatched, !stream.responded
            else { return 0 }
            session.requestFramesReceived = true
            if type == Int(NGHTTP2_HEADERS.rawValue) { stream.headComplete = true }
            if type == Int(NGHTTP2_HEADERS.rawValue), stream.headerProblem != nil {
                session.refuseOversizedHeaders(
                    stream, endsStream: header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0)
                return 0
            }
            if header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0 {
                stream.ended = true
                session.settle(stream)
            } else if type == Int(NGHTTP2_HEADERS.rawValue) && frame!.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
                session.askAdmission(stream)
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, userData in
            let header = frame!.pointee.hd
            let session = HTTP2Session.from(userData)
            if header.type == UInt8(NGHTTP2_DATA.rawValue) {
                // The WINDOW_UPDATEs a reader sends for it are earned.
                session.frameBudget.credit(HTTP2FrameBudget.credit(forDataFrameOf: header.length))
                session.framedBodyBytes &+= header.length
            }
            if header.type == UInt8(NGHTTP2_GOAWAY.rawValue) || header.type == UInt8(NGHTTP2_RST_STREAM.rawValue) {
                // Sent before the stream (or the session) closes: what is cut from here on is the server's doing
                // (a GOAWAY with an error: a connection error nghttp2 found by itself; a reset: a malformed stream).
                if header.type == UInt8(NGHTTP2_RST_STREAM.rawValue) {
                    session.streams[header.stream_id]?.serverReset = true
                } else if frame!.pointee.goaway.error_code != NGHTTP2_NO_ERROR.rawValue {
                    session.serverEnded = true
                }
                session.countProtocolError(frame!.pointee, streamKnown: session.streams[header.stream_id] != nil)
                return 0
            }
            // The response to a refused stream is complete while the peer may still send: ask it to stop.
            guard header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0 else { return 0 }
            if let stream = session.streams[header.stream_id], stream.admission == .refused, !stream.ended {
                nghttp2_submit_rst_stream(
                    session.session, UInt8(NGHTTP2_FLAG_NONE.rawValue), header.stream_id,
                    UInt32(NGHTTP2_NO_ERROR.rawValue))
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            let session = HTTP2Session.from(userData)
            // A streamed response still being written: its client reset the stream (or the session ends). A bodiless
            // head (HEAD, 204, 304) closes the stream cleanly while its writer may go on: it stays attached.
            if let attachment = session.attachments[streamID],
                !(attachment.headSent && !attachment.sendsBody && errorCode == NGHTTP2_NO_ERROR.rawValue)
            {
                session.detach(streamID)
                session.endStreamedWork(streamID)
                session.cancelledStreams.append(attachment.stream)
            }
            guard let stream = session.streams.removeValue(forKey: streamID) else { return 0 }
            // What came of its body, kept before it is discarded below (a body route names its model in it).
            let abandoned = session.neverHandedOver(stream) ? stream.body : nil
            session.heldHeaderBytes -= stream.headerBytes
            stream.liveness?.markClosed()
            // An answer the peer reset (or never took) before it was all framed.
            session.unsent.whole -= stream.responseBody.count - stream.responseOffset
            stream.responseBody = []
            stream.responseOffset = 0
            // A waiting request: never handed over, its body bytes given back.
            if stream.waits {
                stream.waits = false
                session.waiting.removeAll { $0 === stream }
                session.connection.releaseBodyBytes(stream.bodyReserved)
                stream.bodyReserved = 0
            }
            // A stream closed before its request was complete gives back its reservation and credit.
            if !stream.dispatched {
                if stream.admission == .admitted { session.finishReceiving() }
                session.connection.releaseBodyBytes(stream.bodyReserved)
                stream.bodyReserved = 0
                session.discard(stream)
            }
            // A stream closed without error has had its last DATA frame serialised.
            if let completion = stream.completion, errorCode == NGHTTP2_NO_ERROR.rawValue {
                session.connection.loop.responseCompleted(completion)
            }
            if let abandoned { session.reportAbandoned(stream, body: abandoned) }
            return 0
        }
    }

    /// Counts the errors nghttp2 answers by itself, inside `nghttp2_session_mem_recv`, without returning one: a
    /// GOAWAY with an error code (a peer's connection error: a frame on an idle stream, a flow-control violation, the
    /// stream-reset rate limit) counts `bad_request` once per connection; a RST_STREAM of a stream the session never
    /// saw begin with REFUSED_STREAM (beyond SETTINGS_MAX_CONCURRENT_STREAMS) counts `stream_refused`, with
    /// PROTOCOL_ERROR and the like (a malformed request) `bad_request`. The session's own resets are counted where
    /// they are decided: NO_ERROR after an answer, REFUSED_STREAM of a known stream, INTERNAL_ERROR.
    private func countProtocolError(_ frame: nghttp2_frame, streamKnown: Bool) {
        if frame.hd.type == UInt8(NGHTTP2_GOAWAY.rawValue) {
            guard frame.goaway.error_code != NGHTTP2_NO_ERROR.rawValue else { return }
            connection.countError("bad_request")
            return
        }
        switch frame.rst_stream.error_code {
        case NGHTTP2_NO_ERROR.rawValue, NGHTTP2_INTERNAL_ERROR.rawValue, NGHTTP2_CANCEL.rawValue:
            break
        case NGHTTP2_REFUSED_STREAM.rawValue:
            if !streamKnown { context.observer?.connectionError(reason: "stream_refused") }
        case NGHTTP2_ENHANCE_YOUR_CALM.rawValue:
            // Only this server resets a stream with it (``resetOversizedBlock(_:)``), which counted it `too_large`.
            break
        default:
            context.observer?.connectionError(reason: "bad_request")
        }
    }

    /// A header block begins (a request's head or trailers, or a block nghttp2 will decode for no stream).
    private func headerBlockBegins() {
        headerBlockFields = 0
        headerBlockBytes = 0
    }

    /// Counts one decoded field of the header block being received (`size`: its name and value); false when the block
    /// has gone past 4 times the header limits (``HTTPServer/Configuration/maxHeaderBytes`` and
    /// ``HTTPServer/Configuration/maxHeaderCount``): its stream is then reset (``resetOversizedBlock(_:)``). Up to
    /// that a stream over the limits is answered 431 when its block ends. HPACK lets a few bytes on the wire stand for
    /// a large field (an index into the dynamic table), and nghttp2 checks every field it decodes: 2.8 MB of
    /// references to one 4,000-byte entry took 3.7 s of an event loop, the stream answered 431 only after all of it.
    private func headerBlockFieldArrived(_ size: Int) -> Bool {
        headerBlockFields &+= 1
        headerBlockBytes &+= size &+ 32
        let limits = context.configuration
        return headerBlockBytes / 4 <= limits.maxHeaderBytes && headerBlockFields / 4 <= limits.maxHeaderCount
    }

    /// A header block 4 times over the header limits: its stream is reset (RST_STREAM ENHANCE_YOUR_CALM, no answer),
    /// counted `too_large`, and nghttp2 decodes the rest of the block without calling back or checking its fields
    /// (what keeps the dynamic table in step: ~20 ns a byte on the wire). The connection and its other streams go on.
    private func resetOversizedBlock(_ id: Int32) -> Int32 {
        context.observer?.connectionError(reason: "too_large")
        context.logger.debug(
            "resetting an HTTP/2 stream: a header block 4 times over the header limits",
            metadata: ["peer": "\(connection.remoteAddress)"])
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
        return Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
    }

    /// Records one header field; beyond the header size or count limit (its trailer fields counted too) notes why
    /// (``Stream/headerProblem``) and takes no more of the block: the stream is answered 431 when the block ends. A
    /// trailer field (`trailer`: a HEADERS block after the request's head, ending the
    /// stream) is counted but dropped, as the HTTP/1.x parser drops a chunked body's trailers: merged into the
    /// headers it would reach the handler (and the proxy's upstream) after the head was screened (a second `host`,
    /// a request id of the sender's choosing).
    private func receiveHeader(
        _ stream: Stream, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>, trailer: Bool
    ) -> Int32 {
        stream.headerBytes += name.count + value.count + 32  // RFC 9113 §6.5.2 accounting
        heldHeaderBytes += name.count + value.count + 32  // given back when the stream closes
        let limits = context.configuration
        if stream.headerBytes > limits.maxHeaderBytes {
            stream.headerProblem =
                trailer
                ? "trailer section larger than \(limits.maxHeaderBytes) bytes"
                : "header section larger than \(limits.maxHeaderBytes) bytes"
            return 0
        }
        // Cookie crumbs (RFC 9113 §8.2.3: one `cookie` field split for compression) are one field, as they are
        // joined into one for HTTP/1.1: 150 crumbs were refused 431 where the same cookie in one HTTP/1.1 line passed.
        // The header section's byte limit bounds them.
        let crumbs = max(0, stream.cookieFields - 1)
        let isCrumb =
            !trailer && stream.cookieFields > 0 && name.count == 6 && ASCII.equalsLowercase(name, "cookie")
        if !isCrumb && stream.fieldCount - crumbs + stream.trailerFields >= limits.maxHeaderCount {
            stream.headerProblem =
                trailer
                ? "more than \(limits.maxHeaderCount) header and trailer fields"
                : "more than \(limits.maxHeaderCount) header fields"
            return 0
        }
        if trailer {
            stream.trailerFields += 1
            return 0
        }
        if name.first == UInt8(ascii: ":") {
            let valueText = String(decoding: value, as: UTF8.self)
            switch String(decoding: name, as: UTF8.self) {
            case ":method": stream.method = valueText
            case ":path": stream.path = valueText
            case ":authority": stream.authority = valueText
            default: break
            }
        } else {
            if name.count == 6 && ASCII.equalsLowercase(name, "cookie") { stream.cookieFields += 1 }
            stream.fieldLines.append(contentsOf: name)
            stream.fieldLines.append(contentsOf: [UInt8(ascii: ":"), UInt8(ascii: " ")])
            stream.fieldLines.append(contentsOf: value)
            stream.fieldLines.append(contentsOf: [0x0D, 0x0A])
            stream.fieldCount += 1
        }
        return 0
    }
}
