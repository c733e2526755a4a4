import CLibdeflate
import CZlib

/// The C library that produces the deflate stream inside the gzip framing.
///
/// Both produce standard gzip (RFC 1952) that any client decodes; they differ only in speed and
/// ratio. See ``Gzip/defaultBackend`` for the measurement behind the default.
public enum GzipBackend: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// libdeflate: whole-buffer compression only, faster than zlib at every level. Levels 0...12.
    case libdeflate
    /// zlib's `deflate` with gzip framing (windowBits 15 + 16). Levels 0...9.
    case zlib

    /// The compression levels this backend accepts (0 stores without compressing).
    public var validLevels: ClosedRange<Int> {
        switch self {
        case .libdeflate: return 0...12
        case .zlib: return 0...9
        }
    }

    /// The backend's name, as used in configuration (`libdeflate`, `zlib`).
    public var description: String { rawValue }
}

/// One gzip compressor with its C state and output scratch buffer, reused across calls.
///
/// Not thread-safe: use one per thread or caller, or share a pool of them through ``GzipPool``, which
/// is `Sendable`. Each call compresses a whole buffer into one complete gzip member (header,
/// deflate stream, CRC-32 and size trailer); nothing is carried over between calls except
/// allocations.
///
/// The scratch buffer grows to the compression bound of the largest input seen and is kept, so a
/// steady stream of similar bodies allocates only the returned array.
public final class GzipCompressor {
    /// The backend this compressor uses.
    public let backend: GzipBackend
    /// The compression level, within `backend.validLevels`.
    public let level: Int

    private enum Engine {
        case libdeflate(OpaquePointer)
        case zlib(UnsafeMutablePointer<z_stream>)
    }

    private let engine: Engine
    private var zlibNeedsReset = false
    private var scratch: UnsafeMutableRawPointer?
    private var scratchCapacity = 0

    /// Creates a compressor with ``Gzip/defaultLevel`` and ``Gzip/defaultBackend``.
    public convenience init() {
        try! self.init(level: Gzip.defaultLevel, backend: Gzip.defaultBackend)  // the defaults are valid
    }

    /// Allocates the backend's state. Throws ``GzipError/invalidLevel(_:backend:)`` for a level outside
    /// `backend.validLevels`. Like any Swift allocation, running out of memory here traps.
    public init(level: Int, backend: GzipBackend = Gzip.defaultBackend) throws(GzipError) {
        guard backend.validLevels.contains(level) else { throw .invalidLevel(level, backend: backend) }
        self.backend = backend
        self.level = level
        switch backend {
        case .libdeflate:
            guard let c = libdeflate_alloc_compressor(Int32(level)) else {
                fatalError("libdeflate_alloc_compressor(\(level)) failed: out of memory")
            }
            engine = .libdeflate(c)
        case .zlib:
            let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            stream.initialize(to: z_stream())
            let rc = czlib_deflate_init_gzip(stream, Int32(level))
            // Only Z_MEM_ERROR is possible with a validated level.
            guard rc == Z_OK else { fatalError("deflateInit2 failed (\(rc)): out of memory") }
            engine = .zlib(stream)
        }
    }

    deinit {
        switch engine {
        case .libdeflate(let c):
            libdeflate_free_compressor(c)
        case .zlib(let stream):
            deflateEnd(stream)
            stream.deinitialize(count: 1)
            stream.deallocate()
        }
        scratch?.deallocate()
    }

    /// Compresses `input` into a new gzip byte array.
    ///
    /// Compression of a valid buffer cannot fail: the output space is the library's own bound, so a
    /// failure of the C call is a broken invariant and traps.
    public func compress(_ input: [UInt8]) -> [UInt8] {
        input.withUnsafeBytes { compress($0) }
    }

    /// Compresses the bytes in `input` into a new gzip byte array.
    public func compress(_ input: UnsafeRawBufferPointer) -> [UInt8] {
        let size = compressIntoScratch(input)
        guard let scratch else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: scratch, count: size))
    }

    /// Compresses `input` into `output`, replacing its contents but keeping its capacity, so that a
    /// caller that owns a buffer per thread allocates nothing in the steady state.
    public func compress(_ input: [UInt8], into output: inout [UInt8]) {
        let size = input.withUnsafeBytes { compressIntoScratch($0) }
        output.removeAll(keepingCapacity: true)
        if let scratch { output.append(contentsOf: UnsafeRawBufferPointer(start: scratch, count: size)) }
    }

    /// Compresses into `scratch` and returns the number of bytes written there.
    private func compressIntoScratch(_ input: UnsafeRawBufferPointer) -> Int {
        switch engine {
        case .libdeflate(let c):
            let bound = libdeflate_gzip_compress_bound(c, input.count)
            let out = reserveScratch(bound)
            // libdeflate reads nothing when the length is 0, but wants a non-null pointer.
            var empty: UInt8 = 0
            let written = withUnsafeMutablePointer(to: &empty) { emptyPointer in
                libdeflate_gzip_compress(
                    c, input.baseAddress ?? UnsafeRawPointer(emptyPointer), input.count, out, bound)
            }
            guard written > 0 else { fatalError("libdeflate_gzip_compress: output did not fit in its own bound") }
            return written
        case .zlib(let stream):
            if zlibNeedsReset {
                let rc = deflateReset(stream)
                guard rc == Z_OK else { fatalError("deflateReset returned \(rc)") }
            }
            zlibNeedsReset = true
            let bound = Int(deflateBound(stream, UInt(input.count)))
            let out = reserveScratch(bound)
            stream.pointee.next_out = out.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = 0
            var remainingIn = input.count
            var remainingOut = bound
            stream.pointee.next_in = UnsafeMutablePointer(
                mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            while true {
                // zlib counts in UInt32: feed (and offer room) in chunks for inputs over 4 GiB.
                if stream.pointee.avail_in == 0 {
                    let chunk = min(remainingIn, Int(UInt32.max))
                    stream.pointee.avail_in = UInt32(chunk)
                    remainingIn -= chunk
                }
                if stream.pointee.avail_out == 0 {
                    let chunk = min(remainingOut, Int(UInt32.max))
                    stream.pointee.avail_out = UInt32(chunk)
                    remainingOut -= chunk
                }
                let flush = remainingIn == 0 ? Z_FINISH : Z_NO_FLUSH
                let rc = deflate(stream, flush)
                if rc == Z_STREAM_END { break }
                // Z_BUF_ERROR means no progress was possible, which with deflateBound's room cannot
                // happen; anything but Z_OK is a broken invariant.
                guard rc == Z_OK else { fatalError("deflate returned \(rc)") }
            }
            return Int(stream.pointee.total_out)
        }
    }

    /// Ensures `scratch` holds at least `count` bytes (and at least one byte), keeping it afterwards.
    private func reserveScratch(_ count: Int) -> UnsafeMutableRawPointer {
        if let scratch, scratchCapacity >= count { return scratch }
        scratch?.deallocate()
        scratch = nil
        let capacity = max(count, 4096)
        scratch = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        scratchCapacity = capacity
        return scratch!
    }
}
