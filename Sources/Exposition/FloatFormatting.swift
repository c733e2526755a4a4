/// Number formatting for the exposition formats, written straight into byte buffers.
///
/// - Sample values: integral values below 2^53 as plain integers (`42`), everything else in Swift's
///   shortest round-trip form (`0.1`, `1e-05`, `1e+16`), with `+Inf`, `-Inf` and `NaN` spelled as
///   both formats require. Both Go's `ParseFloat` and the OpenMetrics grammar accept all of these.
/// - `le` and `quantile` label values: Go's `strconv.FormatFloat(v, 'g', -1, 64)` in text 0.0.4
///   (`1`, `1e+06`, as client_golang writes them) and the OpenMetrics canonical form in OpenMetrics
///   (the same, plus `.0` when there is neither a point nor an exponent: `1.0`, `100000.0`).

/// The Swift runtime's shortest round-trip formatter (SwiftDtoa), the one behind `Double.description`,
/// called directly so that no `String` is allocated per sample. Writes at most 32 bytes, returns the length.
/// The buffer must be pre-filled with ASCII `0`: the formatter leaves leading and padding zeros
/// unwritten (as the standard library's own caller does). A unit test compares it with `description`.
@_silgen_name("swift_float64ToString")
func _swiftFloat64ToString(
    _ buffer: UnsafeMutablePointer<UInt8>, _ bufferLength: UInt, _ value: Float64, _ debug: Bool
) -> UInt64

enum FloatFormat {
    static let twoTo53: Double = 9_007_199_254_740_992
    static let nanBytes: [UInt8] = Array("NaN".utf8)
    static let plusInfBytes: [UInt8] = Array("+Inf".utf8)
    static let minusInfBytes: [UInt8] = Array("-Inf".utf8)

    /// Shortest round-trip decimal digits of a finite, non-zero `abs(value)`: `value = 0.DIGITS × 10^point`.
    static func decimalDigits(_ value: Double) -> (digits: [UInt8], point: Int) {
        let text = Array(abs(value).description.utf8)[...]
        var mantissa = text[...]
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
            mantissa = text[..<e]
            var sign = 1
            var i = e + 1
            if i < text.endIndex, text[i] == UInt8(ascii: "-") || text[i] == UInt8(ascii: "+") {
                if text[i] == UInt8(ascii: "-") { sign = -1 }
                i += 1
            }
            while i < text.endIndex {
                exponent = exponent * 10 + Int(text[i] - UInt8(ascii: "0"))
                i += 1
            }
            exponent *= sign
        }
        var digits: [UInt8] = []
        var integerDigits = 0
        var seenPoint = false
        for c in mantissa {
            if c == UInt8(ascii: ".") {
                seenPoint = true
                continue
            }
            digits.append(c)
            if !seenPoint { integerDigits += 1 }
        }
        var point = integerDigits + exponent
        while let first = digits.first, first == UInt8(ascii: "0") {
            digits.removeFirst()
            point -= 1
        }
        while let last = digits.last, last == UInt8(ascii: "0") { digits.removeLast() }
        return (digits, point)
    }

    /// Go's `strconv.FormatFloat(value, 'g', -1, 64)`, with `+Inf`, `-Inf`, `NaN`.
    static func goString(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Inf" : "+Inf" }
        if value == 0 { return value.sign == .minus ? "-0" : "0" }
        let (digits, point) = decimalDigits(value)
        var s = value < 0 ? "-" : ""
        let d = String(decoding: digits, as: UTF8.self)
        let exp = point - 1
        if exp < -4 || exp >= 6 {
            // %e with the shortest digits: d[.ddd]e±XX (at least two exponent digits).
            s += String(d.prefix(1))
            if digits.count > 1 { s += "." + String(d.dropFirst()) }
            s += exp < 0 ? "e-" : "e+"
            let magnitude = abs(exp)
            if magnitude < 10 { s += "0" }
            s += String(magnitude)
        } else if point <= 0 {
            s += "0." + String(repeating: "0", count: -point) + d
        } else if point >= digits.count {
            s += d + String(repeating: "0", count: point - digits.count)
        } else {
            s += String(d.prefix(point)) + "." + String(d.dropFirst(point))
        }
        return s
    }

    /// OpenMetrics canonical form for `le` and `quantile`: Go's form, plus `.0` where it has no point or exponent.
    static func openMetricsString(_ value: Double) -> String {
        let s = goString(value)
        if !value.isFinite { return s }
        if s.contains(".") || s.contains("e") { return s }
        return s + ".0"
    }
}
