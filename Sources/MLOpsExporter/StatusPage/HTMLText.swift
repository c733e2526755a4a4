/// Builds the status pages' HTML as UTF-8 bytes: every string that comes from a user (model, version, feature,
/// class, group, attribute names, label values) goes through ``text(_:)`` (or ``escape(_:)``), which escapes `&`,
/// `<`, `>`, `"` and `'`, so a name such as `<script>` is shown as text and cannot end an attribute. Numbers are
/// written as digits straight into the bytes (a model page holds thousands): no String per number.
struct HTMLText {
    /// The page.
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 16_384) { bytes.reserveCapacity(capacity) }

    /// The page as a String (tests read it so).
    var html: String { String(decoding: bytes, as: UTF8.self) }

    /// Byte ranges of ``bytes`` that change with the clock alone (the time, rates, how long they were measured over):
    /// left out of the weak `ETag`, so that an unchanged model set keeps its validator.
    private(set) var volatile: [Range<Int>] = []

    /// Markup written by the page itself (never user data).
    mutating func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }

    /// Page text that changes with the clock alone (escaped).
    mutating func volatileText(_ s: String) {
        let start = bytes.count
        text(s)
        volatile.append(start..<bytes.count)
    }

    /// `s` as text content or as a quoted attribute's value (the same five characters are escaped for both).
    mutating func text(_ s: String) { Self.appendEscaped(s, to: &bytes) }

    /// A non-negative or negative integer's digits.
    mutating func int(_ v: Int) { Self.appendInt(v, to: &bytes) }

    /// `v` (clamped at 0) with one decimal: `12.3` (an SVG coordinate).
    mutating func oneDecimal(_ v: Double) {
        let t = Int((Swift.max(0, v) * 10).rounded())
        Self.appendInt(t / 10, to: &bytes)
        bytes.append(UInt8(ascii: "."))
        bytes.append(UInt8(ascii: "0") &+ UInt8(t % 10))
    }

    /// `v` as people read it (``Shown``), escaped (`<0.01%` holds a `<`).
    mutating func shown(_ v: Double, _ style: Shown.Style) {
        let start = bytes.count
        Shown.write(v, style, to: &bytes)
        guard bytes[start...].contains(where: Self.needsEscape) else { return }
        let written = String(decoding: bytes[start...], as: UTF8.self)
        bytes.removeSubrange(start...)
        text(written)
    }

    /// A figure that is a `/metrics` sample: `<data value="raw" data-metric="name" data-labels='{json}'>shown</data>`
    /// (the labels as a JSON object, its quotes escaped for the attribute).
    mutating func metric(
        _ name: String, _ labels: [(name: String, value: String)], _ value: Double, shown style: Shown.Style
    ) {
        raw("<data value=\"")
        rawValue(value)
        raw("\" data-metric=\"")
        raw(name)
        raw("\" data-labels=\"{")
        for (i, l) in labels.enumerated() {
            raw(i > 0 ? ",&quot;" : "&quot;")
            Self.appendJSONInAttribute(l.name, to: &bytes)
            raw("&quot;:&quot;")
            Self.appendJSONInAttribute(l.value, to: &bytes)
            raw("&quot;")
        }
        raw("}\">")
        shown(value, style)
        raw("</data>")
    }

    /// A ``figure(_:_:shown:)`` that moves with the clock alone (a rate: a count over the time it was counted in, which
    /// grows while nothing happens): left out of the weak `ETag`, like the time.
    mutating func volatileFigure(_ name: String, _ value: Double, shown style: Shown.Style) {
        let start = bytes.count
        figure(name, value, shown: style)
        volatile.append(start..<bytes.count)
    }

    /// A figure derived from samples (a rate, a ratio, a quantile): `<data value="raw" data-figure="name">`.
    mutating func figure(_ name: String, _ value: Double, shown style: Shown.Style) {
        raw("<data value=\"")
        rawValue(value)
        raw("\" data-figure=\"")
        raw(name)
        raw("\">")
        shown(value, style)
        raw("</data>")
    }

    /// A value as Prometheus's text format writes it (`+Inf`, `-Inf`, `NaN`, shortest round trip otherwise).
    mutating func rawValue(_ v: Double) {
        if v == v.rounded() && abs(v) < 1e15 {
            Self.appendInt(Int(v), to: &bytes)
        } else {
            raw(Self.raw(v))
        }
    }

    /// A value as Prometheus's text format writes it (`+Inf`, `-Inf`, `NaN`, shortest round trip otherwise).
    static func raw(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }

    /// A 64-bit hash of the page without its ``volatile`` ranges, as a weak entity tag `W/"…"`: eight bytes per
    /// step (multiply, then fold the high half down), the tail byte by byte. A model page is ~200 KB: FNV-1a's
    /// multiply per byte took 4% of its render.
    func weakETag() -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        bytes.withUnsafeBufferPointer { bytes in
            let raw = UnsafeRawBufferPointer(bytes)
            var start = 0
            func add(upTo end: Int) {
                var i = start
                while i &+ 8 <= end {
                    hash = (hash ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x9e37_79b9_7f4a_7c15
                    hash ^= hash >> 32
                    i &+= 8
                }
                while i < end {
                    hash = (hash ^ UInt64(bytes[i])) &* 0x100_0000_01b3
                    i &+= 1
                }
            }
            for r in volatile where r.lowerBound >= start {
                add(upTo: min(r.lowerBound, bytes.count))
                start = r.upperBound
            }
            add(upTo: bytes.count)
        }
        let hex = String(hash, radix: 16)
        return "W/\"" + String(repeating: "0", count: 16 - hex.count) + hex + "\""
    }

    /// `s` escaped for text content or a quoted attribute value.
    static func escape(_ s: String) -> String {
        guard s.utf8.contains(where: needsEscape) else { return s }
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count + 32)
        appendEscaped(s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `s` escaped for a quoted attribute value.
    static func attribute(_ s: String) -> String { escape(s) }

    @inline(__always)
    static func needsEscape(_ b: UInt8) -> Bool { b == 38 || b == 60 || b == 62 || b == 34 || b == 39 || b == 0xE2 }

    /// Whether the UTF-8 at `i` is a bidirectional embedding, override or isolate control (U+202A-U+202E,
    /// U+2066-U+2069): one that a name leaves open turns the text after it around (a version `U+202E v9` showed its
    /// count 16 as 61).
    @inline(__always)
    static func isBidiControl(_ b: UnsafeBufferPointer<UInt8>, at i: Int) -> Bool {
        guard i &+ 2 < b.count, b[i] == 0xE2 else { return false }
        return (b[i &+ 1] == 0x80 && (0xAA...0xAE).contains(b[i &+ 2]))
            || (b[i &+ 1] == 0x81 && (0xA6...0xA9).contains(b[i &+ 2]))
    }

    /// Appends `s` with `&`, `<`, `>`, `"` and `'` escaped, and bidirectional controls shown as U+FFFD
    /// (``isBidiControl(_:at:)``): the runs between them copied whole. Byte by byte is right: the five are ASCII,
    /// never part of a multi-byte UTF-8 sequence, and a control's three bytes start with 0xE2, never a continuation.
    static func appendEscaped(_ s: String, to out: inout [UInt8]) {
        var s = s
        s.withUTF8 { b in
            var start = 0
            var i = 0
            while i < b.count {
                let entity: StaticString
                var width = 1
                switch b[i] {
                case UInt8(ascii: "&"): entity = "&amp;"
                case UInt8(ascii: "<"): entity = "&lt;"
                case UInt8(ascii: ">"): entity = "&gt;"
                case UInt8(ascii: "\""): entity = "&quot;"
                case UInt8(ascii: "'"): entity = "&#39;"
                case 0xE2 where isBidiControl(b, at: i):
                    entity = "\u{FFFD}"
                    width = 3
                default:
                    i &+= 1
                    continue
                }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: b[start..<i]))
                out.append(contentsOf: UnsafeBufferPointer(start: entity.utf8Start, count: entity.utf8CodeUnitCount))
                i &+= width
                start = i
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: b[start...]))
        }
    }

    /// Appends the inside of `s`'s JSON string literal (`"`, `\` and control characters escaped as JSON does),
    /// escaped in turn for an HTML attribute: what `escape(jsonStringLiteral(s))` gives without its quotes.
    static func appendJSONInAttribute(_ s: String, to out: inout [UInt8]) {
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out += #"\&quot;"#.utf8
            case UInt8(ascii: "\\"): out += #"\\"#.utf8
            case UInt8(ascii: "\n"): out += #"\n"#.utf8
            case UInt8(ascii: "\r"): out += #"\r"#.utf8
            case UInt8(ascii: "\t"): out += #"\t"#.utf8
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += #"\u00"#.utf8
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 15)])
            case UInt8(ascii: "&"): out += "&amp;".utf8
            case UInt8(ascii: "<"): out += "&lt;".utf8
            case UInt8(ascii: ">"): out += "&gt;".utf8
            case UInt8(ascii: "'"): out += "&#39;".utf8
            default: out.append(b)
            }
        }
    }

    /// Appends `v`'s decimal digits (with `-` when negative).
    static func appendInt(_ v: Int, to out: inout [UInt8]) {
        var magnitude = v.magnitude
        if v < 0 { out.append(UInt8(ascii: "-")) }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for the 20 digits of any Int
        withUnsafeMutableBytes(of: &digits) { buffer in
            var i = buffer.count
            repeat {
                i &-= 1
                buffer[i] = UInt8(ascii: "0") &+ UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            out.append(contentsOf: buffer[i...])
        }
    }

    /// A path segment percent-encoded (RFC 3986 unreserved characters kept).
    static func pathSegment(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%"
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(b >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(b & 15)]))
            }
        }
        return out
    }
}
