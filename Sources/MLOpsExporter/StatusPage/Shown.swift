/// How the status pages show numbers: three significant digits, units, percentages. Written as bytes into a page
/// (``HTMLText/shown(_:_:)``); the String forms are for text put together elsewhere (reasons, bases).
enum Shown {
    /// How a figure is shown.
    enum Style {
        /// ``Shown/number(_:)``.
        case number
        /// ``Shown/count(_:)``.
        case count
        /// ``Shown/percent(_:)``.
        case percent
        /// ``Shown/seconds(_:)``.
        case seconds
        /// ``Shown/rate(_:)``.
        case rate
    }

    static func write(_ v: Double, _ style: Style, to out: inout [UInt8]) {
        switch style {
        case .number: number(v, to: &out)
        case .count: count(v, to: &out)
        case .percent: percent(v, to: &out)
        case .seconds: seconds(v, to: &out)
        case .rate: rate(v, to: &out)
        }
    }

    /// `v` with about three significant digits (`0.0123`, `1.23`, `123`, `12.3k`, `1.23M`; `1.2e-4` below a
    /// thousandth and `4.56e12` from 10^12 on, where `G` would need more than three digits).
    static func number(_ v: Double) -> String { string { number(v, to: &$0) } }
    /// A count: an integer below ten thousand, else as ``number(_:)``.
    static func count(_ v: Double) -> String { string { count(v, to: &$0) } }
    /// A ratio in percent (`12.3%`).
    static func percent(_ v: Double) -> String { string { percent(v, to: &$0) } }
    /// Seconds, in the most readable unit (`850 µs`, `12.3 ms`, `1.25 s`, `4.2 min`, `3.1 h`, `2.5 d`).
    static func seconds(_ v: Double) -> String { string { seconds(v, to: &$0) } }
    /// A rate per second.
    static func rate(_ v: Double) -> String { string { rate(v, to: &$0) } }

    static func number(_ v: Double, to out: inout [UInt8]) {
        guard v.isFinite else {
            out += (v.isNaN ? "n/a" : (v > 0 ? "∞" : "-∞")).utf8
            return
        }
        let a = abs(v)
        if a == 0 {
            out.append(UInt8(ascii: "0"))
        } else if a >= 1e12 || a < 0.001 {
            exponent(v, to: &out)
        } else if a >= 1e9 {
            fixed(v / 1e9, significant: 3, to: &out)
            out.append(UInt8(ascii: "G"))
        } else if a >= 1e6 {
            fixed(v / 1e6, significant: 3, to: &out)
            out.append(UInt8(ascii: "M"))
        } else if a >= 1e4 {
            fixed(v / 1e3, significant: 3, to: &out)
            out.append(UInt8(ascii: "k"))
        } else if a >= 1000 {
            HTMLText.appendInt(Int(v.rounded()), to: &out)
        } else {
            fixed(v, significant: 3, to: &out)
        }
    }

    static func count(_ v: Double, to out: inout [UInt8]) {
        if v.isFinite && abs(v) < 1e4 && v == v.rounded() {
            HTMLText.appendInt(Int(v), to: &out)
        } else {
            number(v, to: &out)
        }
    }

    static func percent(_ v: Double, to out: inout [UInt8]) {
        guard v.isFinite else { return number(v, to: &out) }
        let p = v * 100
        if p != 0 && abs(p) < 0.01 {
            out += "<0.01%".utf8
            return
        }
        if abs(p) >= 1e15 {
            number(p, to: &out)
        } else {
            fixed(p, significant: p >= 100 ? 4 : 3, to: &out)
        }
        out.append(UInt8(ascii: "%"))
    }

    static func seconds(_ v: Double, to out: inout [UInt8]) {
        guard v.isFinite else { return number(v, to: &out) }
        let a = abs(v)
        let (value, unit): (Double, StaticString) =
            a == 0
            ? (0, "s")
            : a < 1e-3
                ? (v * 1e6, "µs")
                : a < 1
                    ? (v * 1e3, "ms")
                    : a < 120 ? (v, "s") : a < 7200 ? (v / 60, "min") : a < 172_800 ? (v / 3600, "h") : (v / 86400, "d")
        number(value, to: &out)
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: UnsafeBufferPointer(start: unit.utf8Start, count: unit.utf8CodeUnitCount))
    }

    static func rate(_ v: Double, to out: inout [UInt8]) {
        number(v, to: &out)
        out += "/s".utf8
    }

    /// `v` rounded to `significant` digits (leading zeros after the point do not count), trailing zeros of the
    /// fraction dropped. `|v|` below 10^15.
    static func fixed(_ v: Double, significant: Int, to out: inout [UInt8]) {
        let a = abs(v)
        var digitsBefore = 1
        var t = a
        while t >= 10 {
            t /= 10
            digitsBefore += 1
        }
        var decimals = max(0, significant - digitsBefore)
        if a < 1 {
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
        if v < 0 && n != 0 { out.append(UInt8(ascii: "-")) }
        HTMLText.appendInt(Int(n / s), to: &out)
        guard decimals > 0 else { return }
        // The fraction's digits, `decimals` of them with leading zeros, without its trailing zeros.
        var fraction = n % s
        var kept = decimals
        while kept > 0 && fraction % 10 == 0 {
            fraction /= 10
            kept -= 1
        }
        guard kept > 0 else { return }
        out.append(UInt8(ascii: "."))
        for _ in 0..<kept { out.append(UInt8(ascii: "0")) }
        var i = out.count
        while fraction > 0 {
            i -= 1
            out[i] = UInt8(ascii: "0") &+ UInt8(fraction % 10)
            fraction /= 10
        }
    }

    /// `v` as a mantissa of three significant digits and a power of ten (`1.2e-4`, `4.56e18`).
    static func exponent(_ v: Double, to out: inout [UInt8]) {
        var e = 0
        var m = abs(v)
        while m < 1 {
            m *= 10
            e -= 1
        }
        while m >= 10 {
            m /= 10
            e += 1
        }
        if v < 0 { out.append(UInt8(ascii: "-")) }
        fixed(m, significant: 3, to: &out)
        out.append(UInt8(ascii: "e"))
        HTMLText.appendInt(e, to: &out)
    }

    private static func string(_ body: (inout [UInt8]) -> Void) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(24)
        body(&out)
        return String(decoding: out, as: UTF8.self)
    }
}
