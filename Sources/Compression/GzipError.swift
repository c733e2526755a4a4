/// Why a gzip operation failed.
///
/// Every case carries enough to write a one-line log message or an HTTP 400/413 body; ``description``
/// is that line.
public enum GzipError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The compression level is outside the backend's range (libdeflate 0...12, zlib 0...9).
    case invalidLevel(Int, backend: GzipBackend)
    /// zlib could not allocate its decompression state.
    case outOfMemory
    /// Decompressing would produce more than `limit` bytes (decompression-bomb guard); nothing is
    /// returned.
    case outputLimitExceeded(limit: Int)
    /// The input is not a valid gzip (or zlib) stream; the detail is zlib's message.
    case corruptInput(String)
    /// The input ended before the end of the compressed stream (includes empty input).
    case truncatedInput

    /// A one-line explanation suitable for logs and error responses.
    public var description: String {
        switch self {
        case .invalidLevel(let level, let backend):
            return "gzip: level \(level) is not valid for \(backend) (valid: \(backend.validLevels))"
        case .outOfMemory:
            return "gzip: out of memory"
        case .outputLimitExceeded(let limit):
            return "gzip: decompressed size exceeds the limit of \(limit) bytes"
        case .corruptInput(let detail):
            return "gzip: corrupt input: \(detail)"
        case .truncatedInput:
            return "gzip: truncated input (the compressed stream ends early)"
        }
    }
}
