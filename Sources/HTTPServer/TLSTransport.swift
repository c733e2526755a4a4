import COpenSSL
import CSystemShims
import Glibc
import Synchronization

/// TLS over a non-blocking socket: the server side of the handshake runs inside ``read(into:)`` (it
/// reports `wouldBlock` until it completes, and ``wantsWritable`` while OpenSSL waits to send), then
/// reads decrypt and writes encrypt. After the handshake ``negotiatedProtocol`` holds the ALPN choice.
///
/// With a ``HTTPServer/Configuration/tlsHandshakeOffload`` the handshake's steps run off the event loop (a full
/// handshake signs with the server's key: milliseconds of CPU a client can ask for without credentials): the loop
/// moves ciphertext between the socket and two memory BIOs, a step (`SSL_do_handshake`) runs on the offload's
/// thread, and ``stepFinished`` tells the loop to call ``read(into:)`` again. While a step runs the loop touches
/// nothing of OpenSSL's: what arrives is held in ``heldInput``; the step's job holds this object, so a connection
/// closed meanwhile frees it only after the step. Once the handshake is done the socket BIOs take over (the memory
/// BIO's remaining records, data sent right after the client's Finished, are read first). Without an offload the
/// handshake runs on the loop, through the socket BIO.
///
/// Failures carry a short reason (``failureReason``, e.g. `tls_handshake_failed`,
/// `tls_no_client_certificate`, `tls_http_request`) that the connection reports to the observer.
final class TLSTransport: ConnectionTransport, @unchecked Sendable {
    let fileDescriptor: Int32
    private let ssl: OpaquePointer
    /// Keeps the context alive as long as the connection that was created from it.
    private let context: TLSContext
    var isHandshaking = true
    var negotiatedProtocol: String?
    var failureReason: String?
    /// OpenSSL's detail for the last failure (an error string; never key material), for debug logs.
    var failureDetail: String?
    /// OpenSSL, or the offloaded handshake's output, waits for the socket to take bytes.
    var wantsWrite = false

    // MARK: The handshake off the loop (TLSTransport+Offload.swift)

    /// Runs a step off the loop; nil: the handshake runs on the loop.
    let offload: HTTPServer.TLSHandshakeOffload?
    /// Called on the offload's thread after a step (or its expiry): the loop then calls ``read(into:)``.
    var stepFinished: (@Sendable () -> Void)?
    /// The memory BIOs the handshake reads from and writes to (owned by `ssl`); nil once the socket's replace them.
    var memoryInput: OpaquePointer?
    var memoryOutput: OpaquePointer?
    /// A step was handed to the offload and has not been taken back by the loop.
    var stepInFlight = false
    /// What the last step came to: written by the offload's thread before ``stepFinished``, read by the loop only
    /// after the loop got that message (``stepReturned``; the loop's inbox lock orders the two).
    var stepOutcome: HandshakeStep?
    /// The loop got the step's message (``Connection/handshakeStepped()``).
    var stepReturned = false
    /// Ciphertext read from the socket while a step runs (OpenSSL's BIO is the step's until it ends).
    var heldInput: [UInt8] = []
    /// Handshake bytes OpenSSL wrote that the socket has not taken yet.
    var heldOutput: [UInt8] = []
    /// Ciphertext the memory BIO received since the last step began (a step is due).
    var inputSinceStep = false
    /// Ciphertext given to the handshake's steps (bounded by ``maxHandshakeBytes``).
    var handshakeBytes = 0
    /// The client's end of input came during the handshake (taken up once the step under way is back).
    var peerEnded = false
    /// The connection closed: a step still waiting for the offload is not run (set on the loop, read by the step).
    let abandoned = Atomic<Bool>(false)

    init?(fileDescriptor: Int32, context: TLSContext, offload: HTTPServer.TLSHandshakeOffload? = nil) {
        guard let ssl = context.makeConnection(fileDescriptor: fileDescriptor) else { return nil }
        self.fileDescriptor = fileDescriptor
        self.ssl = ssl
        self.context = context
        self.offload = offload
        if offload != nil {
            // Every property is set: a failed init runs deinit, which frees `ssl` (freed here too, it was freed twice).
            guard let input = copenssl_retrying_memory_bio() else { return nil }
            guard let output = copenssl_retrying_memory_bio() else {
                BIO_free(input)
                return nil
            }
            SSL_set_bio(ssl, input, output)  // the socket BIO SSL_set_fd made is freed
            memoryInput = input
            memoryOutput = output
        }
    }

    deinit {
        SSL_free(ssl)
    }

    /// The SSL object, for the offloaded steps (TLSTransport+Offload.swift).
    var connection: OpaquePointer { ssl }

    var wantsWritable: Bool { wantsWrite || !heldOutput.isEmpty }
    var isSecure: Bool { true }
    /// Plaintext OpenSSL has decrypted but not yet handed out (epoll cannot see it).
    var hasBufferedInput: Bool {
        !isHandshaking && (SSL_pending(ssl) > 0 || (memoryInput.map { BIO_ctrl_pending($0) > 0 } ?? false))
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> TransportResult {
        if isHandshaking && offload != nil {
            let progress = advanceOffloadedHandshake()
            guard isHandshaking == false, case .bytes = progress else { return progress }
        } else if memoryOutput != nil, !isHandshaking, case .failed(let code) = switchOutputToSocket() {
            // The handshake's last bytes that the socket did not take at once (sent before anything read is answered).
            return .failed(code)
        }
        ERR_clear_error()
        if isHandshaking {
            let result = SSL_do_handshake(ssl)
            guard result == 1 else { return outcome(of: result, handshake: true) }
            isHandshaking = false
            wantsWrite = false
            var data: UnsafePointer<UInt8>?
            var length: UInt32 = 0
            SSL_get0_alpn_selected(ssl, &data, &length)
            if let data, length > 0 {
                negotiatedProtocol = String(
                    decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
            }
        }
        var total = 0
        // Fill the buffer: a record may be larger than one read, and what stays inside OpenSSL is
        // invisible to epoll (``hasBufferedInput`` covers the rest).
        while total < buffer.count {
            let count = SSL_read(ssl, buffer.baseAddress! + total, Int32(clamping: buffer.count - total))
            if count > 0 {
                total += Int(count)
                continue
            }
            // The handshake's memory BIO read to its end: the socket's takes over, and is read at once.
            if memoryInput != nil, SSL_get_error(ssl, count) == SSL_ERROR_WANT_READ, switchInputToSocket() { continue }
            let result = outcome(of: count, handshake: false)
            if total > 0, case .wouldBlock = result { break }
            if total > 0 { return .bytes(total) }  // report the error on the next read
            return result
        }
        wantsWrite = false
        return .bytes(total)
    }

    func write(_ vectors: UnsafeMutableBufferPointer<iovec>) -> TransportResult {
        if isHandshaking { return .wouldBlock }
        if memoryOutput != nil {
            // The handshake's last bytes (session tickets) go first; then OpenSSL writes to the socket itself.
            switch switchOutputToSocket() {
            case .failed(let code): return .failed(code)
            case .wouldBlock:
                wantsWrite = true
                return .wouldBlock
            default: break
            }
        }
        ERR_clear_error()
        var total = 0
        for vector in vectors {
            var offset = 0
            while offset < vector.iov_len {
                let count = SSL_write(
                    ssl, vector.iov_base! + offset, Int32(clamping: min(vector.iov_len - offset, 1 << 20)))
                if count > 0 {
                    offset += Int(count)
                    total += Int(count)
                    continue
                }
                let result = outcome(of: count, handshake: false)
                if case .wouldBlock = result { return total > 0 ? .bytes(total) : .wouldBlock }
                return total > 0 ? .bytes(total) : result
            }
        }
        wantsWrite = false
        return total > 0 ? .bytes(total) : .wouldBlock
    }

    func shutdownOutput() {
        if !isHandshaking && failureReason == nil {
            ERR_clear_error()
            _ = SSL_shutdown(ssl)  // close_notify; the peer's answer is not awaited
        }
        _ = Glibc.shutdown(fileDescriptor, Int32(SHUT_WR))
    }

    func close() {
        abandoned.store(true, ordering: .relaxed)
        Syscall.close(fileDescriptor)
    }

    /// Translates a non-positive OpenSSL result into a transport result, recording why on failure.
    private func outcome(of result: Int32, handshake: Bool) -> TransportResult {
        let error = SSL_get_error(ssl, result)
        switch error {
        case SSL_ERROR_WANT_READ:
            wantsWrite = false
            return .wouldBlock
        case SSL_ERROR_WANT_WRITE:
            wantsWrite = true
            return .wouldBlock
        case SSL_ERROR_ZERO_RETURN:
            return .endOfFile
        case SSL_ERROR_SYSCALL where ERR_peek_error() == 0:
            let code = errno
            if handshake {
                failureReason = "tls_handshake_aborted"
                return .failed(code == 0 ? ECONNRESET : code)
            }
            return code == 0 ? .endOfFile : .failed(code)
        default:
            let code = ERR_peek_last_error()
            let detail = code == 0 ? nil : ERR_reason_error_string(code).map { String(cString: $0) }
            ERR_clear_error()
            failureDetail = detail
            failureReason = handshake ? Self.handshakeReason(detail) : "tls_error"
            if failureReason == "tls_http_request" { answerPlaintextRequest() }
            return .failed(EPROTO)
        }
    }

    /// A plaintext HTTP request on the TLS port (a scrape with the wrong scheme) is answered in plaintext with the
    /// reason, as Go's server answers it; before, the connection closed with nothing said. What the client sent is
    /// drained first, so that the close after the answer is an orderly one, not a reset that could discard it. Best
    /// effort, without blocking: one small `send`.
    func answerPlaintextRequest() {
        var scratch = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<16 where recv(fileDescriptor, &scratch, scratch.count, Int32(MSG_DONTWAIT)) > 0 {}
        let answer = Array(
            ("HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
                + "client sent an HTTP request to an HTTPS server\n").utf8)
        _ = answer.withUnsafeBytes {
            send(fileDescriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
        }
        _ = Glibc.shutdown(fileDescriptor, Int32(SHUT_WR))
    }

    /// A small fixed set of labels for handshake failures, from OpenSSL's reason string.
    static func handshakeReason(_ detail: String?) -> String {
        guard let detail else { return "tls_handshake_failed" }
        if detail.contains("http request") || detail.contains("https proxy request") { return "tls_http_request" }
        if detail.contains("did not return a certificate") { return "tls_no_client_certificate" }
        if detail.contains("application protocol") { return "tls_no_application_protocol" }
        if detail.contains("certificate verify failed") || detail.contains("certificate") {
            return "tls_bad_client_certificate"
        }
        if detail.contains("protocol") || detail.contains("version") { return "tls_protocol_version" }
        if detail.contains("no shared cipher") || detail.contains("no suitable") { return "tls_no_shared_cipher" }
        return "tls_handshake_failed"
    }

    /// Every label ``handshakeReason(_:)`` and the transport can produce, plus the handshake timeout.
    static let failureReasons = [
        "tls_handshake_failed", "tls_handshake_aborted", "tls_handshake_timeout", "tls_http_request",
        "tls_no_client_certificate", "tls_bad_client_certificate", "tls_protocol_version", "tls_no_shared_cipher",
        "tls_no_application_protocol", "tls_error",
    ]
}
