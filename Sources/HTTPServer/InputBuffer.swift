/// Bytes read from a connection and not yet consumed by its protocol handler.
///
/// One contiguous array with reader and writer indices: the transport reads straight into the free
/// tail (no intermediate copy), the parser sees the readable region as one `UnsafeBufferPointer`.
/// Consumed bytes are reclaimed by resetting the indices when the buffer empties (the common case)
/// or by compacting before a read that needs room.
struct InputBuffer {
    private var storage: [UInt8]
    private var readerIndex = 0
    private var writerIndex = 0
    private let initialCapacity: Int

    init(capacity: Int = 4096) {
        initialCapacity = capacity
        storage = []
    }

    /// Number of unconsumed bytes.
    var readableCount: Int { writerIndex - readerIndex }

    /// Whether all read bytes have been consumed.
    var isEmpty: Bool { readerIndex == writerIndex }

    /// Calls `body` with at least `minimum` bytes of free space after the readable bytes; `body`
    /// returns how many bytes it wrote there (or a negative value / nil for none).
    mutating func write(minimumSpace minimum: Int, _ body: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        reserve(minimum)
        let writer = writerIndex
        let written = storage.withUnsafeMutableBytes { raw in
            body(UnsafeMutableRawBufferPointer(rebasing: raw[writer...]))
        }
        if written > 0 { writerIndex += written }
        return written
    }

    /// Calls `body` with the readable bytes.
    func withReadableBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        storage.withUnsafeBufferPointer { all in
            body(UnsafeBufferPointer(rebasing: all[readerIndex..<writerIndex]))
        }
    }

    /// Drops `count` bytes from the front of the readable region.
    mutating func consume(_ count: Int) {
        precondition(count <= readableCount)
        readerIndex += count
        if readerIndex == writerIndex {
            readerIndex = 0
            writerIndex = 0
            // Give back memory after an unusually large request once it is consumed. 256 KiB keeps the buffer
            // of a client that POSTs ingestion batches (~70 KB for 100 events of 20 features) from being
            // regrown for every request (page faults cost 8-25% of CPU per event in the ingestion
            // benchmark); worst case 256 KiB x max connections.
            if storage.count > 256 * 1024 { storage = [] }
        }
    }

    /// Drops everything (used when input is discarded during a lingering close).
    mutating func removeAll() {
        consume(readableCount)
    }

    private mutating func reserve(_ minimum: Int) {
        if storage.count - writerIndex >= minimum { return }
        // Compact only when the consumed prefix is at least as large as what is moved, so that a client
        // pipelining large bodies costs O(1) moves per byte, not a move of the whole buffer per read.
        if readerIndex > 0 && readerIndex >= readableCount {
            let readable = readableCount
            let reader = readerIndex
            storage.withUnsafeMutableBytes { raw in
                raw.baseAddress!.copyMemory(from: raw.baseAddress! + reader, byteCount: readable)
            }
            readerIndex = 0
            writerIndex = readable
            if storage.count - writerIndex >= minimum { return }
        }
        var capacity = Swift.max(storage.count, initialCapacity)
        while capacity - writerIndex < minimum { capacity *= 2 }
        storage.append(contentsOf: [UInt8](repeating: 0, count: capacity - storage.count))
    }
}

extension InputBuffer {
    /// Reads what `transport` has into the buffer, with at least `minimumSpace` bytes free first: the outcome, and
    /// whether the bytes read filled that space (then more may be waiting in the socket). Generic, not `any`: an upstream
    /// connection's concrete transport was boxed into an existential for each call (a retain and a release).
    mutating func read<Transport: ConnectionTransport>(
        from transport: Transport, minimumSpace: Int
    ) -> (TransportResult, filled: Bool) {
        var outcome = TransportResult.wouldBlock
        var space = 0
        let count = write(minimumSpace: minimumSpace) { buffer in
            space = buffer.count
            outcome = transport.read(into: buffer)
            if case .bytes(let count) = outcome { return count }
            return 0
        }
        return (outcome, count > 0 && count == space)
    }
}
