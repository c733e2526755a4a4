/// An incremental parser of a `text/event-stream` body (the WHATWG HTML "server-sent events" syntax), fed the
/// pieces as they are read: lines end with LF, CR LF or CR (also when a CR and its LF arrive in different pieces);
/// `data:` lines of one event are joined with LF; `event:` sets the event's type; comments (`:` first) and other
/// fields are skipped; an empty line dispatches the event (an event without data is not dispatched). One leading
/// space after the colon is dropped.
///
/// Bounded: an event whose data grows past ``maxEventBytes`` is dropped whole (reported as ``Event/oversized`` when
/// it ends); a line is never held longer than that either. Memory: the data and type buffers, reused for every event.
public struct ServerSentEventParser {
    /// What the parser hands over.
    public enum Event {
        /// An event: its type (`event:`; empty when none) and its data.
        case data(type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer)
        /// An event that was longer than ``ServerSentEventParser/maxEventBytes`` (dropped).
        case oversized
    }

    /// The most data bytes one event may have (1 MiB).
    public let maxEventBytes: Int

    /// The current line (only the part not yet handed to a field: a line's bytes are kept until its end).
    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var type: [UInt8] = []
    private var hasData = false
    private var oversized = false
    /// The last byte of the previous piece was a CR: an LF first in this one belongs to it.
    private var afterCR = false
    /// The current line grew past any event's length: only its first bytes are kept, to tell its field when it ends
    /// (a `data` line drops its event; a comment or another field is skipped, its event kept).
    private var lineOverflowed = false
    /// How many bytes of a UTF-8 BOM the stream started with so far (3: the start is past). One leading BOM is
    /// skipped, as the WHATWG event-stream parser does (it made the first line's field `\u{FEFF}data`: the first event
    /// was lost, uncounted), also when it comes split across reads.
    private var bomMatched = 0
    private static let bom: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// A parser whose events are at most `maxEventBytes` long.
    public init(maxEventBytes: Int = 1 << 20) {
        self.maxEventBytes = maxEventBytes
    }

    /// Parses `bytes`, calling `handle` for each event completed in it.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ handle: (Event) -> Void) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        var i = 0
        let n = bytes.count
        while bomMatched < 3 && i < n {
            if base[i] == Self.bom[bomMatched] {
                bomMatched += 1
                i += 1
            } else {
                // No BOM: the bytes that looked like its start are the first line's.
                Self.bom[0..<bomMatched].withUnsafeBufferPointer { appendLine($0) }
                bomMatched = 3
            }
        }
        if afterCR {
            afterCR = false
            if n > 0 && base[0] == 0x0A { i = 1 }
        }
        while i < n {
            // The end of the line: the next CR or LF.
            var j = i
            while j < n && base[j] != 0x0A && base[j] != 0x0D { j += 1 }
            if j == n {
                appendLine(UnsafeBufferPointer(start: base + i, count: n - i))
                return
            }
            let lineBytes = UnsafeBufferPointer(start: base + i, count: j - i)
            if line.isEmpty {
                lineEnded(lineBytes, handle)
            } else {
                appendLine(lineBytes)
                let held = line
                line.removeAll(keepingCapacity: true)
                held.withUnsafeBufferPointer { lineEnded($0, handle) }
            }
            if base[j] == 0x0D {
                if j + 1 < n {
                    if base[j + 1] == 0x0A { j += 1 }
                } else {
                    afterCR = true
                }
            }
            i = j + 1
        }
    }

    private mutating func appendLine(_ bytes: UnsafeBufferPointer<UInt8>) {
        if lineOverflowed || line.count + bytes.count > maxEventBytes + 16 {
            // A line longer than any event may be: keep only its field name's room (judged at its end).
            lineOverflowed = true
            if line.count < 16 { line.append(contentsOf: bytes.prefix(16 - line.count)) }
            return
        }
        line.append(contentsOf: bytes)
    }

    private mutating func lineEnded(_ bytes: UnsafeBufferPointer<UInt8>, _ handle: (Event) -> Void) {
        if lineOverflowed {
            lineOverflowed = false
            // `bytes` is the line's first bytes: a `data` line was too long for its event, which is dropped.
            let name = bytes.prefix { $0 != 0x3A }
            if bytes.first != 0x3A && Self.equals(UnsafeBufferPointer(rebasing: name), "data") {
                oversized = true
                hasData = true
            }
            return
        }
        if bytes.isEmpty {
            dispatch(handle)
            return
        }
        if bytes[0] == 0x3A { return }  // a comment
        var colon = 0
        while colon < bytes.count && bytes[colon] != 0x3A { colon += 1 }
        let name = UnsafeBufferPointer(rebasing: bytes[0..<colon])
        var valueStart = Swift.min(colon + 1, bytes.count)
        if valueStart < bytes.count && bytes[valueStart] == 0x20 { valueStart += 1 }
        let value = UnsafeBufferPointer(rebasing: bytes[valueStart...])
        if Self.equals(name, "data") {
            if oversized { return }
            if hasData { data.append(0x0A) }
            hasData = true
            if data.count + value.count > maxEventBytes {
                oversized = true
                data.removeAll(keepingCapacity: true)
                return
            }
            data.append(contentsOf: value)
        } else if Self.equals(name, "event") {
            type.removeAll(keepingCapacity: true)
            type.append(contentsOf: value.prefix(256))
        } else if Self.equals(name, "error") {
            // Not a field of the standard (which ignores it), but how llama.cpp's server reports an error in a
            // stream (`error: {...}`, then the body ends): read as an event of type `error` with that data (it was
            // dropped, and the failed request counted ok).
            type.removeAll(keepingCapacity: true)
            type.append(contentsOf: "error".utf8)
            if !oversized {
                if hasData { data.append(0x0A) }
                hasData = true
                data.append(contentsOf: value.prefix(Swift.max(0, maxEventBytes - data.count)))
            }
        }
    }

    private mutating func dispatch(_ handle: (Event) -> Void) {
        defer {
            data.removeAll(keepingCapacity: true)
            type.removeAll(keepingCapacity: true)
            hasData = false
            oversized = false
        }
        guard hasData else { return }
        if oversized {
            handle(.oversized)
            return
        }
        data.withUnsafeBytes { d in
            type.withUnsafeBytes { t in handle(.data(type: t, data: d)) }
        }
    }

    /// Whether `bytes` begin with `text`.
    @inline(__always)
    static func startsWith(_ bytes: UnsafeBufferPointer<UInt8>, _ text: StaticString) -> Bool {
        guard bytes.count >= text.utf8CodeUnitCount else { return false }
        let p = text.utf8Start
        for k in 0..<text.utf8CodeUnitCount where bytes[k] != p[k] { return false }
        return true
    }

    @inline(__always)
    static func equals(_ bytes: UnsafeBufferPointer<UInt8>, _ text: StaticString) -> Bool {
        guard bytes.count == text.utf8CodeUnitCount else { return false }
        let p = text.utf8Start
        for k in 0..<bytes.count where bytes[k] != p[k] { return false }
        return true
    }
}
