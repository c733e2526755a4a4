import CZlib

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension Gzip {
    /// Decompresses a gzip (or zlib) stream, such as a request body sent with `Content-Encoding: gzip`,
    /// refusing to produce more than `maxOutputSize` bytes.
    ///
    /// The header is detected automatically (zlib's windowBits 15 + 32). Concatenated gzip members
    /// (what `cat a.gz b.gz` produces) are decompressed one after another, as `gunzip` does.
    ///
    /// Throws:
    /// - ``GzipError/outputLimitExceeded(limit:)`` as soon as the output would exceed `maxOutputSize`
    ///   (a decompression bomb costs at most `maxOutputSize + 1` bytes of output buffer: it grows by `realloc`, in
    ///   place or by remapping its pages, never holding an old and a new copy at once; an output that fits is
    ///   copied into the returned array once, so it is held twice only while it is handed over);
    /// - ``GzipError/corruptInput(_:)`` for a bad header, bad data, a CRC or length mismatch, or
    ///   bytes after the last member that do not start another member;
    /// - ``GzipError/truncatedInput`` when the input (possibly empty) ends inside a stream.
    public static func gunzip(_ input: [UInt8], maxOutputSize: Int) throws(GzipError) -> [UInt8] {
        try input.withUnsafeBytes { raw in
            Result { () throws(GzipError) in try gunzip(raw, maxOutputSize: maxOutputSize) }
        }.get()
    }

    /// Decompresses the gzip (or zlib) stream in `input`; see ``gunzip(_:maxOutputSize:)-([UInt8],_)``.
    public static func gunzip(_ input: UnsafeRawBufferPointer, maxOutputSize: Int) throws(GzipError) -> [UInt8] {
        let limit = max(0, maxOutputSize)
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        var output = OutputBuffer(hardCapacity: limit == Int.max ? limit : limit + 1)
        defer {
            inflateEnd(stream)
            stream.deinitialize(count: 1)
            stream.deallocate()
        }
        let rc = czlib_inflate_init_auto(stream)
        guard rc == Z_OK else {
            throw rc == Z_MEM_ERROR ? .outOfMemory : .corruptInput("inflateInit2 returned \(rc)")
        }
        guard let base = input.baseAddress, !input.isEmpty else { throw .truncatedInput }
        guard output.grow(toAtLeast: min(max(4096, input.count &* 4), 1 << 24)) else { throw .outOfMemory }

        var consumed = 0  // input bytes handed to zlib so far
        stream.pointee.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = 0
        while true {
            if stream.pointee.avail_in == 0 && consumed < input.count {
                let chunk = min(input.count - consumed, Int(UInt32.max))
                stream.pointee.avail_in = UInt32(chunk)
                consumed += chunk
            }
            if output.free == 0 {
                guard output.capacity < output.hardCapacity else { throw .outputLimitExceeded(limit: limit) }
                guard output.grow(toAtLeast: output.capacity &* 2) else { throw .outOfMemory }
            }
            let offered = min(output.free, Int(UInt32.max))
            stream.pointee.next_out = output.base! + output.count
            stream.pointee.avail_out = UInt32(offered)
            let rc = inflate(stream, Z_NO_FLUSH)
            output.count += offered - Int(stream.pointee.avail_out)
            let inputLeft = Int(stream.pointee.avail_in) + (input.count - consumed)
            switch rc {
            case Z_STREAM_END:
                if output.count > limit { throw .outputLimitExceeded(limit: limit) }
                guard inputLeft > 0 else { return output.take() }
                // Another gzip member may follow; anything else is trailing garbage.
                let next = stream.pointee.next_in!
                guard inputLeft >= 2, next[0] == 0x1f, next[1] == 0x8b else {
                    throw .corruptInput("\(inputLeft) unexpected bytes after the end of the gzip stream")
                }
                guard inflateReset(stream) == Z_OK else { throw .corruptInput("inflateReset failed") }
            case Z_OK:
                if output.count > limit { throw .outputLimitExceeded(limit: limit) }
                if inputLeft == 0 && stream.pointee.avail_out > 0 { throw .truncatedInput }
            case Z_BUF_ERROR:
                // No progress: either out of room (handled at the top of the loop) or out of input.
                if stream.pointee.avail_out > 0 && inputLeft == 0 { throw .truncatedInput }
            default:
                throw GzipError(inflateStatus: rc, stream)
            }
        }
    }
}

extension GzipError {
    /// The error of zlib's `inflate` returning `rc` (none of Z_OK, Z_STREAM_END, Z_BUF_ERROR) on `stream`.
    init(inflateStatus rc: Int32, _ stream: UnsafeMutablePointer<z_stream>) {
        switch rc {
        case Z_NEED_DICT: self = .corruptInput("zlib stream needs a preset dictionary")
        case Z_MEM_ERROR: self = .outOfMemory
        default: self = .corruptInput(stream.pointee.msg.map { String(cString: $0) } ?? "inflate returned \(rc)")
        }
    }
}

/// A growable `malloc`'d byte buffer that is not zero-filled, handed over as an array at the end.
private struct OutputBuffer: ~Copyable {
    var base: UnsafeMutablePointer<UInt8>?
    var capacity = 0
    var count = 0
    let hardCapacity: Int

    init(hardCapacity: Int) {
        self.hardCapacity = hardCapacity
    }

    var free: Int { capacity - count }

    /// Grows the buffer to at least `wanted` bytes (at most `hardCapacity`) by `realloc`: a large block grows in
    /// place or is moved by remapping its pages (glibc's `mremap`), so the old and the new buffer are never both
    /// held (allocating anew and copying held 1.5 times the limit when a bomb passed it). False when out of memory.
    mutating func grow(toAtLeast wanted: Int) -> Bool {
        let newCapacity = min(max(wanted, 1), hardCapacity)
        guard newCapacity > capacity else { return true }
        guard let grown = realloc(base, newCapacity) else { return false }
        base = grown.assumingMemoryBound(to: UInt8.self)
        capacity = newCapacity
        return true
    }

    /// The bytes written, as an array (the buffer, shrunk to them first, is freed with the buffer).
    mutating func take() -> [UInt8] {
        guard let base, count > 0 else { return [] }
        if capacity > count, let shrunk = realloc(base, count) {
            self.base = shrunk.assumingMemoryBound(to: UInt8.self)
            capacity = count
        }
        return [UInt8](UnsafeBufferPointer(start: self.base, count: count))
    }

    deinit {
        #if canImport(Glibc)
            Glibc.free(base)
        #elseif canImport(Darwin)
            Darwin.free(base)
        #endif
    }
}
