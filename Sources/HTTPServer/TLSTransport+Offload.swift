import COpenSSL
import CSystemShims
import Glibc

/// What one offloaded handshake step came to.
enum HandshakeStep {
    /// The handshake is complete; ALPN chose this protocol (nil: none).
    case done(negotiatedProtocol: String?)
    /// OpenSSL waits for more of the client's bytes.
    case wantsInput
    /// The handshake failed: the label for it and OpenSSL's detail.
    case failed(reason: String, detail: String?)
}

extension TLSTransport {
    /// Most ciphertext the handshake's steps may be given before it completes: OpenSSL's own bound on a ClientHello
    /// (128 KiB) and a client certificate chain, with room; beyond, the handshake fails (`tls_handshake_failed`). What
    /// arrives behind the client's last handshake message (TLS 1.3 lets a request, a body of megabytes, follow its
    /// Finished in one flight) is no part of it: it is read ``handshakeReadChunk`` at a time. The socket BIO's
    /// handshake on the loop is bounded by OpenSSL alone.
    static let maxHandshakeBytes = 256 * 1024
    /// Most ciphertext read from the socket for one step, and held while a step runs: beyond it the loop stops reading
    /// until the step is back (back-pressure, not a failure).
    static let handshakeReadChunk = 64 * 1024

    /// The connection stops reading while a step runs with enough held (``handshakeReadChunk``) or after the client's
    /// end of input (a level-triggered poll would report the socket again and again meanwhile).
    var pausesInput: Bool {
        offload != nil && stepInFlight && (peerEnded || heldInput.count >= Self.handshakeReadChunk)
    }

    /// The loop's part of an offloaded handshake (``read(into:)`` calls it while ``isHandshaking``): takes a finished
    /// step back, sends what it wrote, moves the socket's ciphertext into the memory BIO and hands the next step to
    /// the offload when new input is there. `.bytes(0)` once the handshake is complete (the caller reads on);
    /// `.wouldBlock` while it goes on; `.failed` with ``failureReason`` set when it failed or the client left. A
    /// client's end of input while its last bytes wait for a step (a request and `shutdown(SHUT_WR)` behind its
    /// Finished) ends the handshake only if the step wants more: it was taken for an abort.
    func advanceOffloadedHandshake() -> TransportResult {
        if stepInFlight {
            // The outcome is read only once the step said so (``stepReturned``): before, the offload's thread may
            // be writing it.
            guard stepReturned, let outcome = stepOutcome else { return holdInputWhileStepRuns() }
            stepInFlight = false
            stepReturned = false
            stepOutcome = nil
            drainMemoryOutput()
            switch outcome {
            case .failed(let reason, let detail):
                failureReason = reason
                failureDetail = detail
                _ = flushHeldOutput()  // the alert, best effort
                if reason == "tls_http_request" { answerPlaintextRequest() }
                return .failed(EPROTO)
            case .done(let negotiated):
                negotiatedProtocol = negotiated
                isHandshaking = false
                appendHeldInput(counted: false)  // records behind the handshake: application data
                if case .failed(let code) = switchOutputToSocket() { return aborted(code) }
                return .bytes(0)
            case .wantsInput:
                break
            }
        }
        if case .failed(let code) = flushHeldOutput() { return aborted(code) }
        guard appendHeldInput(counted: true) else { return tooMuchInput() }
        if !peerEnded {
            switch receive(into: nil) {
            case .failed(EMSGSIZE): return tooMuchInput()
            case .failed(let code): return aborted(code)
            case .endOfFile: peerEnded = true
            default: break
            }
        }
        guard inputSinceStep else { return peerEnded ? aborted(0) : .wouldBlock }
        return submitStep()
    }

    /// Hands `SSL_do_handshake` to the offload. The job holds this transport until it has run or expired.
    private func submitStep() -> TransportResult {
        stepInFlight = true
        inputSinceStep = false
        let accepted = offload!(
            { [self] in
                // The connection closed while the step waited: nothing to sign for (a client that sends a ClientHello
                // and resets cost a signature each, and queued real clients behind them).
                stepOutcome =
                    abandoned.load(ordering: .relaxed)
                    ? .failed(reason: "tls_handshake_aborted", detail: nil) : runStep()
                stepFinished?()
            },
            { [self] in
                stepOutcome = .failed(reason: "tls_handshake_timeout", detail: "waited too long for a handshake worker")
                stepFinished?()
            })
        guard accepted else {
            stepInFlight = false
            failureReason = "tls_handshake_failed"
            failureDetail = "no handshake worker free"
            return .failed(EAGAIN)
        }
        return .wouldBlock
    }

    /// One step, on the offload's thread (OpenSSL's error queue is per thread: read here).
    private func runStep() -> HandshakeStep {
        ERR_clear_error()
        let result = SSL_do_handshake(connection)
        if result == 1 {
            var data: UnsafePointer<UInt8>?
            var length: UInt32 = 0
            SSL_get0_alpn_selected(connection, &data, &length)
            guard let data, length > 0 else { return .done(negotiatedProtocol: nil) }
            return .done(
                negotiatedProtocol: String(
                    decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self))
        }
        if SSL_get_error(connection, result) == SSL_ERROR_WANT_READ { return .wantsInput }
        let code = ERR_peek_last_error()
        let detail = code == 0 ? nil : ERR_reason_error_string(code).map { String(cString: $0) }
        ERR_clear_error()
        return .failed(reason: Self.handshakeReason(detail), detail: detail)
    }

    /// While a step runs: the socket's ciphertext is kept aside (a level-triggered poll would report it again), up to
    /// ``handshakeReadChunk`` (then ``pausesInput``); the client's end of input is noted for when the step is back.
    private func holdInputWhileStepRuns() -> TransportResult {
        // The last step's output the socket did not take: sent now (a writable socket would wake the loop for ever).
        if case .failed(let code) = flushHeldOutput() { return aborted(code) }
        guard !peerEnded, heldInput.count < Self.handshakeReadChunk else { return .wouldBlock }
        switch receive(into: &heldInput) {
        case .failed(let code): return aborted(code)
        case .endOfFile:
            peerEnded = true
            return .wouldBlock
        default: return .wouldBlock
        }
    }

    /// Reads the socket until it would block or ``handshakeReadChunk`` bytes came, into `held` (up to that much in
    /// all) or (nil) the memory BIO; `.failed(EMSGSIZE)` past ``maxHandshakeBytes`` given to the handshake.
    private func receive(into held: UnsafeMutablePointer<[UInt8]>?) -> TransportResult {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        var total = 0
        while true {
            let room = Self.handshakeReadChunk - (held?.pointee.count ?? total)
            guard room > 0 else { return .bytes(total) }
            let count = buffer.withUnsafeMutableBytes { recv(fileDescriptor, $0.baseAddress, min($0.count, room), 0) }
            if count > 0 {
                total += count
                if let held {
                    held.pointee.append(contentsOf: buffer[0..<count])
                } else {
                    _ = buffer.withUnsafeBytes { BIO_write(memoryInput, $0.baseAddress, Int32(count)) }
                    inputSinceStep = true
                    handshakeBytes += count
                    if handshakeBytes > Self.maxHandshakeBytes { return .failed(EMSGSIZE) }
                }
                continue
            }
            if count == 0 { return .endOfFile }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return total > 0 ? .bytes(total) : .wouldBlock
            default: return .failed(errno)
            }
        }
    }

    /// Ciphertext held while the last step ran goes to the memory BIO; `counted`: toward ``maxHandshakeBytes`` (false
    /// when the handshake is complete: what follows it). False when that passes the bound.
    @discardableResult
    private func appendHeldInput(counted: Bool) -> Bool {
        guard !heldInput.isEmpty, let input = memoryInput else { return true }
        _ = heldInput.withUnsafeBytes { BIO_write(input, $0.baseAddress, Int32($0.count)) }
        if counted { handshakeBytes += heldInput.count }
        heldInput.removeAll()
        inputSinceStep = true
        return !counted || handshakeBytes <= Self.maxHandshakeBytes
    }

    /// What OpenSSL wrote to the memory BIO, moved to ``heldOutput``.
    private func drainMemoryOutput() {
        guard let output = memoryOutput else { return }
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while BIO_ctrl_pending(output) > 0 {
            let count = chunk.withUnsafeMutableBytes { BIO_read(output, $0.baseAddress, Int32($0.count)) }
            guard count > 0 else { break }
            heldOutput.append(contentsOf: chunk[0..<Int(count)])
        }
    }

    /// Sends ``heldOutput`` as far as the socket takes it: `.bytes(0)` when all is sent, `.wouldBlock` (and
    /// ``wantsWritable``) when some waits.
    func flushHeldOutput() -> TransportResult {
        while !heldOutput.isEmpty {
            let sent = heldOutput.withUnsafeBytes {
                send(fileDescriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if sent > 0 {
                heldOutput.removeFirst(sent)
                continue
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK:
                wantsWrite = true
                return .wouldBlock
            default: return .failed(errno)
            }
        }
        wantsWrite = false
        return .bytes(0)
    }

    /// After the handshake: the handshake's remaining output is sent, then OpenSSL writes to the socket directly.
    func switchOutputToSocket() -> TransportResult {
        guard memoryOutput != nil else { return .bytes(0) }
        drainMemoryOutput()
        let flushed = flushHeldOutput()
        guard case .bytes = flushed else { return flushed }
        guard let socket = copenssl_socket_bio(fileDescriptor) else { return .failed(ENOMEM) }
        SSL_set0_wbio(connection, socket)  // frees the memory BIO
        memoryOutput = nil
        return .bytes(0)
    }

    /// After the handshake, once the memory BIO is read to its end: OpenSSL reads from the socket directly. False
    /// when records remain in it (or no BIO could be made).
    func switchInputToSocket() -> Bool {
        guard let input = memoryInput, BIO_ctrl_pending(input) == 0, heldInput.isEmpty,
            let socket = copenssl_socket_bio(fileDescriptor)
        else { return false }
        SSL_set0_rbio(connection, socket)  // frees the memory BIO
        memoryInput = nil
        return true
    }

    /// The handshake was given more than ``maxHandshakeBytes``.
    private func tooMuchInput() -> TransportResult {
        failureReason = "tls_handshake_failed"
        failureDetail = "more than \(Self.maxHandshakeBytes) bytes before the handshake completed"
        return .failed(EMSGSIZE)
    }

    /// The client left or the socket failed during the handshake (`code` 0: end of input).
    private func aborted(_ code: Int32) -> TransportResult {
        failureReason = "tls_handshake_aborted"
        return .failed(code == 0 ? ECONNRESET : code)
    }
}
