import CZlib

/// Inflates a gzip or zlib stream that arrives in pieces (a body sent with `Content-Encoding: gzip`, `x-gzip` or
/// `deflate`, read as it passes rather than held whole), handing the output on as it is produced, in pieces of at
/// most `pieceSize` bytes. The header is detected automatically (zlib's windowBits 15 + 32); concatenated gzip
/// members are read one after another, as `gunzip` does.
///
/// Bounded: at most `maxOutput` bytes are produced in all (a decompression bomb costs the CPU of `maxOutput`
/// bytes), through one reused buffer of `pieceSize` bytes, beside zlib's own state (~45 KiB: its 32 KiB window).
/// After an error, ``feed(_:_:)`` throws it again and reads nothing. One stream, one thread at a time.
public final class InflateStream {
    /// Input bytes fed so far.
    public private(set) var fed = 0
    /// Output bytes produced so far.
    public private(set) var produced = 0
    /// The input so far ends a stream (no member is left half-read).
    public private(set) var atEnd = false

    private let maxOutput: Int
    private let pieceSize: Int
    private let stream: UnsafeMutablePointer<z_stream>
    private let piece: UnsafeMutableRawBufferPointer
    private var failure: GzipError?

    /// A stream producing at most `maxOutput` bytes, handed on in pieces of at most `pieceSize` bytes.
    ///
    /// Throws ``GzipError/outOfMemory`` when zlib cannot allocate its state.
    public init(maxOutput: Int, pieceSize: Int = 16_384) throws(GzipError) {
        self.maxOutput = max(0, maxOutput)
        self.pieceSize = max(1, min(pieceSize, Int(UInt32.max)))
        stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let rc = czlib_inflate_init_auto(stream)
        guard rc == Z_OK else {
            stream.deinitialize(count: 1)
            stream.deallocate()
            throw rc == Z_MEM_ERROR ? .outOfMemory : .corruptInput("inflateInit2 returned \(rc)")
        }
        piece = UnsafeMutableRawBufferPointer.allocate(byteCount: self.pieceSize, alignment: 1)
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
        piece.deallocate()
    }

    /// Inflates `input`, the next bytes of the stream, calling `output` with each piece produced (valid only during
    /// the call). Bytes after the end of a member start another one.
    ///
    /// Throws ``GzipError/outputLimitExceeded(limit:)`` before handing on a piece that would take the output past
    /// `maxOutput`, ``GzipError/corruptInput(_:)`` for bytes that are not a gzip or zlib stream (a bad header,
    /// bad data, a CRC or length mismatch), ``GzipError/outOfMemory``.
    public func feed(
        _ input: UnsafeRawBufferPointer, _ output: (UnsafeRawBufferPointer) -> Void
    ) throws(GzipError) {
        if let failure { throw failure }
        fed += input.count
        do {
            try inflate(input, output)
        } catch {
            failure = error
            throw error
        }
    }

    /// The input ended: throws ``GzipError/truncatedInput`` when it ended inside a stream (or before one began).
    public func finish() throws(GzipError) {
        if let failure { throw failure }
        guard atEnd else {
            failure = .truncatedInput
            throw .truncatedInput
        }
    }

    private func inflate(
        _ input: UnsafeRawBufferPointer, _ output: (UnsafeRawBufferPointer) -> Void
    ) throws(GzipError) {
        guard let base = input.baseAddress, !input.isEmpty else { return }
        var offered = 0  // input bytes handed to zlib so far
        var filled = false  // the last piece was filled: zlib may hold more output (a match longer than the room)
        stream.pointee.avail_in = 0
        while true {
            if stream.pointee.avail_in == 0 && !filled {
                guard offered < input.count else { return }
                let chunk = min(input.count - offered, Int(UInt32.max))
                stream.pointee.next_in = UnsafeMutablePointer(
                    mutating: (base + offered).assumingMemoryBound(to: Bytef.self))
                stream.pointee.avail_in = UInt32(chunk)
                offered += chunk
            }
            if atEnd {
                // Bytes after the end of a member: another member (zlib checks its header).
                guard inflateReset(stream) == Z_OK else { throw .corruptInput("inflateReset failed") }
                atEnd = false
            }
            stream.pointee.next_out = piece.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = UInt32(pieceSize)
            let rc = CZlib.inflate(stream, Z_NO_FLUSH)
            let count = pieceSize - Int(stream.pointee.avail_out)
            filled = count == pieceSize
            if count > 0 {
                guard produced + count <= maxOutput else { throw .outputLimitExceeded(limit: maxOutput) }
                produced += count
                output(UnsafeRawBufferPointer(rebasing: piece[0..<count]))
            }
            switch rc {
            case Z_STREAM_END:
                atEnd = true
                filled = false  // everything is out at the end of a member
            case Z_OK, Z_BUF_ERROR:
                // Z_BUF_ERROR: no progress possible, for want of input (taken at the top of the loop, or the
                // call is over) or of room (a new piece at the top of the loop).
                break
            default:
                throw GzipError(inflateStatus: rc, stream)
            }
        }
    }
}
