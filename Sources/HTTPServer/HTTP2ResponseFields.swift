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

    /// Adds the fields of `headers` that HTTP/2 allows (``classify(_:)``), names lower-cased; returns whether a `date`
    /// was among them. Field lines a parser received (an upstream's response, ``HTTPHeaders/receivedLines``, already
    /// checked: token names, no CR, LF or NUL) are copied as bytes, so that a value that is not UTF-8 reaches the
    /// client unchanged, as over HTTP/1.1 (decoded, it became U+FFFD).
    mutating func addFields(of headers: HTTPHeaders) -> Bool {
        var hasDate = false
        guard let lines = headers.receivedLines else {
            for field in headers {
                switch Self.classify(field) {
                case .dropped: continue
                case .date: hasDate = true
                case .regular: break
                }
                add(field.name.lowercased(), field.value)
            }
            return hasDate
        }
        lines.withUnsafeBufferPointer { section in
            var reader = ReceivedFieldLines(section)
            while let line = reader.next() {
                let name = section[line.name]
                guard !Self.isDropped(name: name) else { continue }
                if ASCII.equalsIgnoringCase(name, "date".utf8) { hasDate = true }
                let nameStart = storage.count
                for byte in name { storage.append(byte &- 0x41 < 26 ? byte | 0x20 : byte) }
                let valueStart = storage.count
                storage.append(contentsOf: section[line.value])
                ranges.append((nameStart..<valueStart, valueStart..<storage.count))
            }
        }
        return hasDate
    }

    /// Whether a field of this name is not sent over HTTP/2 (connection-specific, or `content-length`, the server's).
    private static func isDropped<Name: Collection<UInt8>>(name: Name) -> Bool {
        for forbidden in [
            "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "content-length",
        ]
        where ASCII.equalsIgnoringCase(name, forbidden.utf8) {
            return true
        }
        return false
    }

    /// Classifies a handler's field: HTTP/1 connection management is meaningless in HTTP/2 and
    /// forbidden there; names must be tokens and values free of CR, LF and NUL.
    static func classify(_ field: HTTPHeaders.Field) -> Disposition {
        let name = field.name.utf8
        if isDropped(name: name) { return .dropped }
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
