import Glibc

@testable import HTTPServer

/// A transport with no socket: the harness puts input straight into the connection's buffer, and writes
/// are taken whole and dropped.
final class MemoryTransport: ConnectionTransport {
    /// No descriptor: the harness calls the protocol handler itself and never lets the connection poll.
    let fileDescriptor: Int32 = -1
    var wantsWritable: Bool { false }
    /// Bytes the server wrote.
    private(set) var written = 0

    func read(into buffer: UnsafeMutableRawBufferPointer) -> TransportResult {
        .wouldBlock
    }

    func write(_ vectors: UnsafeMutableBufferPointer<iovec>) -> TransportResult {
        let count = vectors.reduce(0) { $0 + $1.iov_len }
        written += count
        return count == 0 ? .wouldBlock : .bytes(count)
    }

    func shutdownOutput() {}

    func close() {}
}
