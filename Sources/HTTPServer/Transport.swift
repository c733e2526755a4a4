import CSystemShims
import Glibc

/// The outcome of one transport read or write.
enum TransportResult: Equatable {
    /// This many bytes were transferred (> 0).
    case bytes(Int)
    /// The operation would block: wait for readiness.
    case wouldBlock
    /// The peer finished sending (read returned 0).
    case endOfFile
    /// The operation failed with this errno (ECONNRESET, EPIPE, ...): the connection is dead.
    case failed(Int32)
}

/// The byte stream under a ``Connection``: reads, gathered writes, half-close and close.
///
/// Two implement it: ``PlainSocketTransport`` (TCP) and ``TLSTransport``, which wraps the same
/// non-blocking descriptor, runs the handshake inside `read` (reporting `wouldBlock` until it completes,
/// and `wantsWritable` while OpenSSL waits to send), decrypts into the caller's buffer, encrypts the
/// gathered chunks, and exposes the ALPN result so the connection can choose HTTP/2 or HTTP/1.1.
/// The connection and protocol layers above it only ever see plaintext bytes.
protocol ConnectionTransport: AnyObject {
    /// The descriptor the event loop polls.
    var fileDescriptor: Int32 { get }
    /// Whether the transport itself needs `EPOLLOUT` (always false for plain TCP).
    var wantsWritable: Bool { get }
    /// Whether the transport encrypts (TLS): h2c upgrades are refused on it.
    var isSecure: Bool { get }
    /// Whether a handshake is still under way (the handshake timeout runs instead of the protocol's).
    var isHandshaking: Bool { get }
    /// The protocol ALPN selected (`h2`, `http/1.1`), or nil (plain TCP, or no ALPN).
    var negotiatedProtocol: String? { get }
    /// Input already read from the socket and held inside the transport (TLS records): epoll will not
    /// report it, so the connection reads again without waiting.
    var hasBufferedInput: Bool { get }
    /// The connection stops polling for input for now (a TLS handshake step under way holds enough of it).
    var pausesInput: Bool { get }
    /// After a `.failed` result: the observer label for it (e.g. `tls_handshake_failed`); nil: `reset`.
    var failureReason: String? { get }
    /// After a `.failed` result: details for a debug log line, never secrets.
    var failureDetail: String? { get }
    /// Reads available plaintext into `buffer`.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> TransportResult
    /// Writes the chunks of `vectors` in order, as far as the socket accepts them.
    func write(_ vectors: UnsafeMutableBufferPointer<iovec>) -> TransportResult
    /// Half-closes: no more output (`shutdown(SHUT_WR)`, after a TLS close-notify).
    func shutdownOutput()
    /// Releases the descriptor. Called exactly once.
    func close()
}

extension ConnectionTransport {
    // Plain TCP's answers; TLSTransport overrides them.
    var isSecure: Bool { false }
    var isHandshaking: Bool { false }
    var negotiatedProtocol: String? { nil }
    var hasBufferedInput: Bool { false }
    var pausesInput: Bool { false }
    var failureReason: String? { nil }
    var failureDetail: String? { nil }
}

/// Plain TCP on a non-blocking socket.
final class PlainSocketTransport: ConnectionTransport {
    let fileDescriptor: Int32

    init(fileDescriptor: Int32) {
        self.fileDescriptor = fileDescriptor
    }

    var wantsWritable: Bool { false }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> TransportResult {
        while true {
            // recv rather than read: the socket call skips the file layer's read path (about 100 ns a call on
            // loopback TCP).
            let count = cshims_recv(fileDescriptor, buffer.baseAddress, buffer.count, 0)
            if count > 0 { return .bytes(count) }
            if count == 0 { return .endOfFile }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            case let error: return .failed(error)
            }
        }
    }

    /// The most bytes a write of several vectors copies into one buffer for `send`: a head and a small body (a
    /// proxied request, an inference response) leave through `send`, about 250 ns cheaper per call on loopback TCP
    /// than `sendmsg` with its message header and vector import, for a copy of at most this many bytes (on the stack).
    static let coalescedWriteLimit = 4096

    func write(_ vectors: UnsafeMutableBufferPointer<iovec>) -> TransportResult {
        if vectors.count == 1 { return send(UnsafeRawPointer(vectors[0].iov_base), vectors[0].iov_len) }
        var total = 0
        for vector in vectors { total &+= vector.iov_len }
        if total <= Self.coalescedWriteLimit {
            return withUnsafeTemporaryAllocation(byteCount: Self.coalescedWriteLimit, alignment: 16) { buffer in
                var at = buffer.baseAddress!
                for vector in vectors where vector.iov_len > 0 {
                    at.copyMemory(from: vector.iov_base!, byteCount: vector.iov_len)
                    at += vector.iov_len
                }
                return send(UnsafeRawPointer(buffer.baseAddress), total)
            }
        }
        // sendmsg rather than writev: only send* take MSG_NOSIGNAL (no SIGPIPE on a closed peer).
        var message = msghdr()
        message.msg_iov = vectors.baseAddress
        message.msg_iovlen = vectors.count
        while true {
            if let result = Self.written(cshims_sendmsg(fileDescriptor, &message, cshims_msg_nosignal())) {
                return result
            }
        }
    }

    /// One `send` of `count` bytes from `bytes`.
    private func send(_ bytes: UnsafeRawPointer?, _ count: Int) -> TransportResult {
        while true {
            if let result = Self.written(cshims_send(fileDescriptor, bytes, count, cshims_msg_nosignal())) {
                return result
            }
        }
    }

    /// What a send call's return `count` means; nil when it was interrupted (call again).
    @inline(__always)
    private static func written(_ count: Int) -> TransportResult? {
        if count >= 0 { return count == 0 ? .wouldBlock : .bytes(count) }
        switch errno {
        case EINTR: return nil
        case EAGAIN, EWOULDBLOCK: return .wouldBlock
        case let error: return .failed(error)
        }
    }

    func shutdownOutput() {
        _ = Glibc.shutdown(fileDescriptor, Int32(SHUT_WR))
    }

    func close() {
        Syscall.close(fileDescriptor)
    }
}
