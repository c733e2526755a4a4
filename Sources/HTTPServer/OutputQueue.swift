import Glibc

/// A response whose last byte is still queued; reported to the observer once it is written.
struct CompletedResponse {
    var method: String
    var status: Int
    var protocolName: String
    var bytes: Int
    /// Monotonic nanoseconds when the request was fully received.
    var receivedAt: UInt64
}

/// Bytes waiting to be written to a connection, in order, as a list of shared arrays.
///
/// Response bodies are queued as the handler's own array (no copy: arrays are copy-on-write and
/// nobody mutates them again); small bodies are appended to the head buffer instead so that a typical
/// response is one chunk. ``write(to:scratch:completed:)`` gathers up to `scratch.count` chunks into one
/// write (the transport's: one `send` of their copy when small, else `sendmsg`), so head and body
/// leave together (no Nagle/delayed-ACK stall).
struct OutputQueue {
    private struct Chunk {
        var bytes: [UInt8]
        var offset: Int
        var completion: CompletedResponse?
    }

    private var chunks: [Chunk] = []
    private var first = 0
    /// Bytes not yet written.
    private(set) var pendingBytes = 0
    /// Queued responses whose last byte is not yet written.
    private(set) var pendingResponses = 0

    /// Whether everything has been written.
    var isEmpty: Bool { first == chunks.count }

    /// Queues `bytes` (ignored when empty); `completion` marks the last chunk of a response. The completion is moved
    /// into the queue (consumed), not copied.
    mutating func append(_ bytes: [UInt8], completion: consuming CompletedResponse? = nil) {
        if bytes.isEmpty {
            guard completion != nil else { return }
            pendingResponses += 1
            // Nothing to write for this piece: the response ends with the last queued chunk when one waits that ends
            // no response (a streamed response's head with its body copied in): the completion goes on it, called as
            // that chunk's last byte is written, as it was for an empty marker behind it (whose append, finish and
            // removal cost ~150 instructions a proxied request). Else on an empty marker.
            let last = chunks.count - 1
            if last >= first, chunks[last].completion == nil, !chunks[last].bytes.isEmpty {
                // The chunk rebuilt around its bytes (moved out): assigning the completion alone went through
                // Optional's generic assign-with-take witness (~125 instructions).
                var bytes: [UInt8] = []
                swap(&bytes, &chunks[last].bytes)
                chunks[last] = Chunk(bytes: bytes, offset: chunks[last].offset, completion: consume completion)
            } else {
                chunks.append(Chunk(bytes: [], offset: 0, completion: consume completion))
            }
            return
        }
        let endsResponse = completion != nil
        chunks.append(Chunk(bytes: bytes, offset: 0, completion: consume completion))
        pendingBytes += bytes.count
        if endsResponse { pendingResponses += 1 }
    }

    /// Queues a copy of `bytes` (ignored when empty): appended to the last queued chunk when that one has the spare
    /// capacity and ends no response (a request head reserved for its body: no allocation), else as a new chunk.
    mutating func appendCopy(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        pendingBytes += bytes.count
        let last = chunks.count - 1
        if last >= first, chunks[last].completion == nil, !chunks[last].bytes.isEmpty,
            chunks[last].bytes.capacity - chunks[last].bytes.count >= bytes.count
        {
            chunks[last].bytes.append(contentsOf: bytes)
            return
        }
        chunks.append(Chunk(bytes: [UInt8](bytes), offset: 0, completion: nil))
    }

    /// Queues `bytes` (ignored when empty) as one chunk of the chunked transfer coding: its size line, the bytes,
    /// CRLF, copied together into the last queued chunk when it has the room (as ``appendCopy(_:)``), else into one
    /// new array: one allocation at most per piece, none while earlier output waits with room to spare.
    mutating func appendChunkFramed(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        var line: (UInt64, UInt64, UInt64) = (0, 0, 0)
        let lineCount = withUnsafeMutableBytes(of: &line) { ChunkedEncoding.writeSizeLine(bytes.count, into: $0) }
        let total = lineCount + bytes.count + 2
        pendingBytes += total
        let last = chunks.count - 1
        if !(last >= first && chunks[last].completion == nil && !chunks[last].bytes.isEmpty
            && chunks[last].bytes.capacity - chunks[last].bytes.count >= total)
        {
            var fresh: [UInt8] = []
            fresh.reserveCapacity(total)
            chunks.append(Chunk(bytes: fresh, offset: 0, completion: nil))
        }
        let i = chunks.count - 1
        withUnsafeBytes(of: &line) { chunks[i].bytes.append(contentsOf: $0.prefix(lineCount)) }
        chunks[i].bytes.append(contentsOf: bytes)
        chunks[i].bytes.append(UInt8(ascii: "\r"))
        chunks[i].bytes.append(UInt8(ascii: "\n"))
    }

    /// Drops all queued output (the connection is being closed).
    mutating func removeAll() {
        chunks.removeAll()
        first = 0
        pendingBytes = 0
        pendingResponses = 0
    }

    /// Bytes the last ``write(to:scratch:completed:)`` handed to the kernel, whatever it returned: a
    /// `.wouldBlock` may follow a partial write or no write at all, and only progress counts as activity.
    private(set) var lastWriteBytes = 0

    /// Writes as much as the transport accepts. Returns `.bytes(total)` when everything was written,
    /// `.wouldBlock` when output remains (wait for writability), or `.failed`. Calls `completed` for
    /// each response whose last byte went out. `arrays`: where the arrays of the chunks written go for reuse
    /// (``ByteArrayPool``), nil: released.
    mutating func write<Transport: ConnectionTransport>(
        to transport: Transport, scratch: UnsafeMutableBufferPointer<iovec>,
        arrays: ByteArrayPool? = nil, completed: (CompletedResponse) -> Void
    ) -> TransportResult {
        var total = 0
        defer { lastWriteBytes = total }
        while true {
            popEmptyMarkers(completed)
            if isEmpty {
                compact()
                return .bytes(total)
            }
            let end = Swift.min(chunks.count, first + scratch.count)
            var requested = 0
            let result = gather(first, end, scratch, 0) { count in
                for index in 0..<count { requested += scratch[index].iov_len }
                return transport.write(UnsafeMutableBufferPointer(rebasing: scratch[0..<count]))
            }
            switch result {
            case .bytes(let written):
                total += written
                advance(by: written, arrays, completed)
                // A short write means the socket buffer is full: wait for EPOLLOUT instead of retrying.
                if written < requested { return .wouldBlock }
            case .wouldBlock, .endOfFile:
                return .wouldBlock
            case .failed:
                return result
            }
        }
    }

    /// Fills `scratch[count...]` with chunks `index..<end`, nesting `withUnsafeBytes` so that every
    /// pointer stays valid during the system call, then calls `body` with the vector count.
    private func gather(
        _ index: Int, _ end: Int, _ scratch: UnsafeMutableBufferPointer<iovec>, _ count: Int,
        _ body: (Int) -> TransportResult
    ) -> TransportResult {
        if index == end { return body(count) }
        // The chunk is read in place through the array's buffer (borrowed): a copy of it retained its array and
        // its completion's strings, and released them after.
        return chunks.withUnsafeBufferPointer { chunks in
            if chunks[index].bytes.isEmpty { return gather(index + 1, end, scratch, count, body) }
            let offset = chunks[index].offset
            return chunks[index].bytes.withUnsafeBytes { raw in
                scratch[count] = iovec(
                    iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress! + offset), iov_len: raw.count - offset)
                return gather(index + 1, end, scratch, count + 1, body)
            }
        }
    }

    /// Consumes `written` bytes from the front.
    private mutating func advance(
        by written: Int, _ arrays: ByteArrayPool?, _ completed: (CompletedResponse) -> Void
    ) {
        var remaining = written
        pendingBytes -= written
        while remaining > 0 {
            let available = chunks[first].bytes.count - chunks[first].offset
            if remaining < available {
                chunks[first].offset += remaining
                return
            }
            remaining -= available
            finishFirst(completed, arrays: arrays)
            popEmptyMarkers(completed)
        }
    }

    private mutating func popEmptyMarkers(_ completed: (CompletedResponse) -> Void) {
        while first < chunks.count, chunks[first].bytes.isEmpty {
            finishFirst(completed)
        }
    }

    /// The least capacity of a written chunk's array given for reuse: the framing constants (``ChunkedEncoding/crlf``,
    /// ``ChunkedEncoding/lastChunk``, shared by every response) are not worth a place.
    static let minimumRecycledCapacity = 64

    private mutating func finishFirst(_ completed: (CompletedResponse) -> Void, arrays: ByteArrayPool? = nil) {
        // The chunk is moved out (its array released here, or kept by `arrays`), its completion moved on to
        // `completed`: copying the completion out and then destroying it with the chunk cost a retain and a release of
        // each of its strings.
        var finished = Chunk(bytes: [], offset: 0, completion: nil)
        swap(&finished, &chunks[first])
        first += 1
        if let arrays, finished.bytes.capacity >= Self.minimumRecycledCapacity { arrays.give(&finished.bytes) }
        guard let completion = finished.completion.take() else { return }
        pendingResponses -= 1
        completed(completion)
    }

    private mutating func compact() {
        if first > 0 {
            if chunks.count <= 64 {
                // The chunks are written and emptied (``finishFirst``): removed one by one from the end, capacity
                // kept. `removeAll(keepingCapacity:)` went through the generic `replaceSubrange` and the runtime's
                // per-element destroy (~190 instructions per call, twice per proxied request).
                while !chunks.isEmpty { chunks.removeLast() }
            } else {
                chunks = []
            }
            first = 0
        }
    }
}
