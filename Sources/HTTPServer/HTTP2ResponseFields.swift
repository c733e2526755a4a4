import CNghttp2

/// The header block of one HTTP/2 response, collected as lower-case name/value pairs in one byte
/// buffer, then exposed as the `nghttp2_nv` array that `nghttp2_submit_response` copies.
struct HTTP2ResponseFields {
    /// What becomes of a handler-supplied field in an HTTP/2 response.
    enum Disposition {
        /// Sent as is (name lower-cased).
        case regular
        /// A `Date` field: sent, and the server adds none of its own.
        case date
        /// Connection-specific (RFC 9113 §8.2.2), server-managed (`content-length`) or invalid: not sent.
        case dropped
    }

    private var storage: [UInt8] = []
    private var ranges: [(name: Range<Int>, value: Range<Int>)] = []

    /// Bytes of names and values, for the response size reported to the observer.
    var byteCount: Int { storage.count }

    /// Appends one field.
    mutating func add(_ name: String, _ value: String) {
        add(name) { $0.append(contentsOf: value.utf8) }
    }

    /// Adds a field whose value `writeValue` appends to the buffer (no intermediate String).
    mutating func add(_ name: String, value writeValue: (inout [UInt8]) -> Void) {
        let nameStart = storage.count
        storage.append(contentsOf: name.utf8)
        let valueStart = storage.count
        writeValue(&storage)
        ranges.append((nameStart..<valueStart, valueStart..<storage.count))
    }

    /// Classifies a handler's field: HTTP/1 connection management is meaningless in HTTP/2 and
    /// forbidden there; names must be tokens and values free of CR, LF and NUL.
    static func classify(_ field: HTTPHeaders.Field) -> Disposition {
        let name = field.name.utf8
        for forbidden in [
            "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "content-length",
        ]
        where ASCII.equalsIgnoringCase(name, forbidden.utf8) {
            return .dropped
        }
        guard HTTPHeaders.isSendable(name: name, value: field.value) else { return .dropped }
        return ASCII.equalsIgnoringCase(name, "date".utf8) ? .date : .regular
    }

    /// Calls `body` with `nghttp2_nv` entries pointing into the buffer, valid only during the call.
    mutating func withNameValues<R>(_ body: (UnsafeMutableBufferPointer<nghttp2_nv>) -> R) -> R {
        let ranges = self.ranges
        return storage.withUnsafeMutableBufferPointer { bytes in
            var entries = ranges.map { range in
                nghttp2_nv(
                    name: bytes.baseAddress! + range.name.lowerBound,
                    value: bytes.baseAddress! + range.value.lowerBound, namelen: range.name.count,
                    valuelen: range.value.count, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return entries.withUnsafeMutableBufferPointer { body($0) }
        }
    }
}
