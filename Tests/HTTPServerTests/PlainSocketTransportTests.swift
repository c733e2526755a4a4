import Glibc
import Testing

@testable import HTTPServer

/// The plain transport's writes: several small vectors leave as one `send` of their copy, larger ones through `sendmsg`;
/// either way the peer reads the vectors' bytes in order, and a partial write reports what went out.
@Suite struct PlainSocketTransportTests {
    /// A connected pair of non-blocking stream sockets: the writer's transport and the reader's descriptor.
    private func pair(sendBuffer: Int32? = nil) throws -> (PlainSocketTransport, Int32) {
        var fds: [Int32] = [0, 0]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        if var size = sendBuffer {
            _ = setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        return (PlainSocketTransport(fileDescriptor: fds[0]), fds[1])
    }

    /// Writes `parts` as one vector list.
    private func write(_ transport: PlainSocketTransport, _ parts: [[UInt8]]) -> TransportResult {
        func gather(_ index: Int, _ vectors: inout [iovec]) -> TransportResult {
            if index == parts.count {
                return vectors.withUnsafeMutableBufferPointer { transport.write($0) }
            }
            return parts[index].withUnsafeBytes { raw in
                vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress), iov_len: raw.count))
                return gather(index + 1, &vectors)
            }
        }
        var vectors: [iovec] = []
        return gather(0, &vectors)
    }

    /// Everything the reader can read now.
    private func drain(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return out }
            out += buffer[0..<n]
        }
    }

    private func bytes(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed) }
    }

    @Test(arguments: [[1], [120, 1], [250, 163], [4000, 95, 1], [4096, 1], [2048, 2048], [10_000, 5]])
    func theVectorsArriveInOrder(_ sizes: [Int]) throws {
        let (transport, reader) = try pair()
        defer {
            transport.close()
            close(reader)
        }
        let parts = sizes.enumerated().map { bytes($0.element, seed: $0.offset) }
        let total = sizes.reduce(0, +)
        #expect(write(transport, parts) == .bytes(total))
        #expect(drain(reader) == parts.flatMap { $0 })
    }

    @Test func aPartialCoalescedWriteReportsWhatWentOut() throws {
        let (transport, reader) = try pair(sendBuffer: 4096)
        defer {
            transport.close()
            close(reader)
        }
        // Small writes of three vectors (coalesced) until the socket is full: the bytes reported written are exactly
        // those the reader gets, whether the last one went out whole, in part or not at all.
        var sent: [UInt8] = []
        for round in 0..<10_000 {
            let parts = [bytes(700, seed: round), bytes(300, seed: round + 1), bytes(1, seed: round + 2)]
            let all = parts.flatMap { $0 }
            switch write(transport, parts) {
            case .bytes(let n):
                sent += all[0..<n]
                continue
            case .wouldBlock: break
            case let other: Issue.record("unexpected \(other)")
            }
            break
        }
        #expect(!sent.isEmpty)
        #expect(drain(reader) == sent)
    }

    @Test func aClosedPeerFailsTheWriteWithoutASignal() throws {
        let (transport, reader) = try pair()
        defer { transport.close() }
        close(reader)
        #expect(write(transport, [bytes(10, seed: 0), bytes(10, seed: 1)]) == .failed(EPIPE))
        #expect(write(transport, [bytes(10, seed: 0)]) == .failed(EPIPE))
        #expect(write(transport, [bytes(5000, seed: 0), bytes(10, seed: 1)]) == .failed(EPIPE))
    }

    @Test func readsWhatArrivedThenWaitsThenSeesTheEnd() throws {
        let (transport, peer) = try pair()
        defer { transport.close() }
        var buffer = [UInt8](repeating: 0, count: 64)
        func read() -> TransportResult { buffer.withUnsafeMutableBytes { transport.read(into: $0) } }
        #expect(read() == .wouldBlock)
        let sent = bytes(40, seed: 7)
        #expect(sent.withUnsafeBytes { Glibc.write(peer, $0.baseAddress, $0.count) } == 40)
        #expect(read() == .bytes(40))
        #expect(Array(buffer[0..<40]) == sent)
        close(peer)
        #expect(read() == .endOfFile)
    }
}
