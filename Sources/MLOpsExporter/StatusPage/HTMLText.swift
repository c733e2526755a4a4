import Ingestion

/// Builds the status pages' HTML: every string that comes from a user (model, version, feature, class, group,
/// attribute names, label values) goes through ``text(_:)`` or ``attribute(_:)``, which escape `&`, `<`, `>`,
/// `"` and `'`, so a name such as `<script>` is shown as text and cannot end an attribute.
struct HTMLText {
    private(set) var html = ""

    init(capacity: Int = 16_384) { html.reserveCapacity(capacity) }

    /// Byte ranges of ``html`` that change with the clock alone (the time, how long a rate was measured over):
    /// left out of the weak `ETag`, so that an unchanged model set keeps its validator.
    private(set) var volatile: [Range<Int>] = []

    /// Markup written by the page itself (never user data).
    mutating func raw(_ s: String) { html += s }

    /// Page text that changes with the clock alone (escaped).
    mutating func volatileText(_ s: String) {
        let start = html.utf8.count
        html += Self.escape(s)
        volatile.append(start..<html.utf8.count)
    }

    /// A 64-bit hash of the page without its ``volatile`` ranges, as a weak entity tag `W/"…"`: eight bytes per
    /// step (multiply, then fold the high half down), the tail byte by byte. A model page is ~200 KB: FNV-1a's
    /// multiply per byte took 4% of its render.
    func weakETag() -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var text = html
        text.withUTF8 { bytes in
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

    /// `s` as text content.
    mutating func text(_ s: String) { html += Self.escape(s) }

    /// `s` escaped for a quoted attribute value.
    static func attribute(_ s: String) -> String { escape(s) }

    static func escape(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 == 38 || $0 == 60 || $0 == 62 || $0 == 34 || $0 == 39 }) else { return s }
        // Byte by byte: the five are ASCII, never part of a multi-byte UTF-8 sequence.
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count + 32)
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "&"): out += "&amp;".utf8
            case UInt8(ascii: "<"): out += "&lt;".utf8
            case UInt8(ascii: ">"): out += "&gt;".utf8
            case UInt8(ascii: "\""): out += "&quot;".utf8
            case UInt8(ascii: "'"): out += "&#39;".utf8
            default: out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
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

    /// A figure that is a `/metrics` sample: `<data value="raw" data-metric="name" data-labels='{json}'>shown</data>`.
    mutating func metric(_ name: String, _ labels: [(name: String, value: String)], _ value: Double, shown: String) {
        var json = "{"
        for (i, l) in labels.enumerated() {
            if i > 0 { json += "," }
            json += jsonStringLiteral(l.name) + ":" + jsonStringLiteral(l.value)
        }
        json += "}"
        html += "<data value=\"\(Self.raw(value))\" data-metric=\"\(name)\" data-labels=\"\(Self.escape(json))\">"
        html += Self.escape(shown)
        html += "</data>"
    }

    /// A figure derived from samples (a rate, a ratio, a quantile): `<data value="raw" data-figure="name">`.
    mutating func figure(_ name: String, _ value: Double, shown: String) {
        html += "<data value=\"\(Self.raw(value))\" data-figure=\"\(name)\">\(Self.escape(shown))</data>"
    }

    /// A value as Prometheus's text format writes it (`+Inf`, `-Inf`, `NaN`, shortest round trip otherwise).
    static func raw(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }
}

/// How the status pages show numbers: three significant digits, units, percentages.
enum Shown {
    /// `v` with about three significant digits (`0.0123`, `1.23`, `123`, `12.3k`, `1.23M`).
    static func number(_ v: Double) -> String {
        guard v.isFinite else { return v.isNaN ? "n/a" : (v > 0 ? "∞" : "-∞") }
        let a = abs(v)
        if a == 0 { return "0" }
        if a >= 1e9 { return fixed(v / 1e9, significant: 3) + "G" }
        if a >= 1e6 { return fixed(v / 1e6, significant: 3) + "M" }
        if a >= 1e4 { return fixed(v / 1e3, significant: 3) + "k" }
        if a >= 1000 { return String(Int64(v.rounded())) }
        if a < 0.001 { return exponent(v) }
        return fixed(v, significant: 3)
    }

    /// A count: an integer below ten thousand, else as ``number(_:)``.
    static func count(_ v: Double) -> String {
        v.isFinite && abs(v) < 1e4 && v == v.rounded() ? String(Int64(v)) : number(v)
    }

    /// A ratio in percent (`12.3%`).
    static func percent(_ v: Double) -> String {
        guard v.isFinite else { return number(v) }
        let p = v * 100
        if p != 0 && abs(p) < 0.01 { return "<0.01%" }
        return fixed(p, significant: p >= 100 ? 4 : 3) + "%"
    }

    /// Seconds, in the most readable unit (`850 µs`, `12.3 ms`, `1.25 s`, `4.2 min`, `3.1 h`, `2.5 d`).
    static func seconds(_ v: Double) -> String {
        guard v.isFinite else { return number(v) }
        let a = abs(v)
        if a == 0 { return "0 s" }
        if a < 1e-3 { return number(v * 1e6) + " µs" }
        if a < 1 { return number(v * 1e3) + " ms" }
        if a < 120 { return number(v) + " s" }
        if a < 7200 { return number(v / 60) + " min" }
        if a < 172_800 { return number(v / 3600) + " h" }
        return number(v / 86400) + " d"
    }

    /// A rate per second.
    static func rate(_ v: Double) -> String { number(v) + "/s" }

    static func fixed(_ v: Double, significant: Int) -> String {
        let a = abs(v)
        var digitsBefore = 1
        var t = a
        while t >= 10 {
            t /= 10
            digitsBefore += 1
        }
        var decimals = max(0, significant - digitsBefore)
        if a < 1 {
            // Leading zeros after the point do not count.
            var u = a
            decimals = significant - 1
            while u < 1 && u > 0 {
                u *= 10
                decimals += 1
            }
        }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let n = Int64((a * scale).rounded())
        let s = Int64(scale)
        var text = String(n / s)
        if decimals > 0 {
            var fraction = String(n % s)
            while fraction.count < decimals { fraction = "0" + fraction }
            while fraction.hasSuffix("0") { fraction.removeLast() }
            if !fraction.isEmpty { text += "." + fraction }
        }
        return (v < 0 && n != 0 ? "-" : "") + text
    }

    static func exponent(_ v: Double) -> String {
        var e = 0
        var m = abs(v)
        while m < 1 {
            m *= 10
            e -= 1
        }
        return (v < 0 ? "-" : "") + fixed(m, significant: 3) + "e" + String(e)
    }
}
