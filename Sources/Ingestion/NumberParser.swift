/// A number that does not follow the RFC 8259 grammar.
struct NumberSyntaxError: Error {
    var offset: Int
    var message: String
}

/// Parsing of JSON numbers (RFC 8259 grammar) into correctly rounded `Double`s.
///
/// Numbers whose significand has at most 19 digits are converted without allocating: exactly with one IEEE
/// multiplication or division when the significand fits in 2^53 and the decimal exponent is small (Clinger's fast
/// path), otherwise with the Eisel-Lemire algorithm (128-bit products with a table of powers of five). The rest
/// (more than 19 significant digits, subnormals, rare ambiguous cases) go through the standard library's
/// `Double(String)`. All paths are correctly rounded, so the result always equals `Double(text)`.
public enum JSONNumber {
    /// The value of `text` if it is exactly one JSON number (no surrounding whitespace), else nil.
    ///
    /// Rejects what RFC 8259 rejects: leading zeros, a leading `+` or `.`, a trailing `.`, `NaN`, `Infinity`,
    /// hexadecimal. Numbers too large for a `Double` parse to ±infinity, like `Double(String)`.
    public static func parse(_ text: some StringProtocol) -> Double? {
        var utf8 = Array(text.utf8)
        return utf8.withUnsafeMutableBufferPointer { buffer -> Double? in
            guard let base = buffer.baseAddress, !buffer.isEmpty else { return nil }
            switch NumberParser.scan(UnsafePointer(base), 0, buffer.count) {
            case .success(let (next, value, _)): return next == buffer.count ? value : nil
            case .failure: return nil
            }
        }
    }

    /// ``parse(_:)`` of UTF-8 bytes, without copying them (for readers of other formats, such as CSV cells).
    public static func parse(bytes: UnsafeBufferPointer<UInt8>) -> Double? {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return nil }
        switch NumberParser.scan(base, 0, bytes.count) {
        case .success(let (next, value, _)): return next == bytes.count ? value : nil
        case .failure: return nil
        }
    }
}

enum NumberParser {
    /// Exact powers of ten representable in a Double.
    static let powersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
        1e19, 1e20, 1e21, 1e22,
    ]

    /// Scans a number starting at `start` (< `end`); returns the offset after it, its value and whether it is an
    /// integer (no fraction, no exponent). The byte after the number is not checked.
    ///
    /// The common case (at most 19 digits, no exponent, no leading zeros) takes one tight loop per digit run and
    /// Clinger's fast path (or Eisel-Lemire above 2^53); everything else is scanned again by
    /// ``scanGeneral(_:_:_:)``, which also produces the syntax errors.
    @inline(__always)
    static func scan(
        _ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int
    )
        -> Result<(Int, Double, Bool), NumberSyntaxError>
    {
        var pos = start
        let negative = base[pos] == 0x2D
        if negative { pos &+= 1 }
        let digitsStart = pos
        var mantissa: UInt64 = 0
        while pos < end {
            let d = base[pos] &- 0x30
            if d >= 10 { break }
            mantissa = mantissa &* 10 &+ UInt64(d)
            pos &+= 1
        }
        let integerDigits = pos &- digitsStart
        var fractionDigits = 0
        var isInteger = true
        if pos < end && base[pos] == 0x2E {
            isInteger = false
            pos &+= 1
            let fractionStart = pos
            while pos < end {
                let d = base[pos] &- 0x30
                if d >= 10 { break }
                mantissa = mantissa &* 10 &+ UInt64(d)
                pos &+= 1
            }
            fractionDigits = pos &- fractionStart
        }
        // At most 19 digits in all: `mantissa` is exact (< 10^19 < 2^64), and so is the decimal exponent.
        guard integerDigits > 0, integerDigits &+ fractionDigits <= 19, isInteger || fractionDigits > 0,
            integerDigits == 1 || base[digitsStart] != 0x30, pos >= end || (base[pos] | 0x20) != 0x65
        else { return scanGeneral(base, start, end) }
        if mantissa == 0 { return .success((pos, negative ? -0.0 : 0.0, isInteger)) }
        if mantissa <= 1 << 53 {
            // Clinger: both operands exact, so one correctly rounded IEEE division gives the answer.
            var value = Double(mantissa)
            if fractionDigits > 0 { value /= powersOfTen[fractionDigits] }
            return .success((pos, negative ? -value : value, isInteger))
        }
        if let value = eiselLemire(mantissa, -fractionDigits) {
            return .success((pos, negative ? -value : value, isInteger))
        }
        return scanGeneral(base, start, end)
    }

    /// ``scan(_:_:_:)`` for any number: more than 19 digits, exponents, and the syntax errors.
    @inline(never)
    static func scanGeneral(
        _ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int
    )
        -> Result<(Int, Double, Bool), NumberSyntaxError>
    {
        var pos = start
        var negative = false
        if base[pos] == 0x2D {
            negative = true
            pos += 1
        }
        guard pos < end, base[pos] &- 0x30 < 10 else {
            return .failure(NumberSyntaxError(offset: pos, message: "invalid number: expected a digit"))
        }
        var mantissa: UInt64 = 0
        var significant = 0  // digits accumulated into mantissa, leading zeros excluded
        var dropped = 0  // integer digits beyond 19 significant ones
        var exponent = 0
        if base[pos] == 0x30 {
            pos += 1
            if pos < end && base[pos] &- 0x30 < 10 {
                return .failure(NumberSyntaxError(offset: start, message: "invalid number: leading zeros"))
            }
        } else {
            while pos < end {
                let d = base[pos] &- 0x30
                if d >= 10 { break }
                if significant < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(d)
                    significant += 1
                } else {
                    dropped += 1
                }
                pos += 1
            }
        }
        var isInteger = true
        if pos < end && base[pos] == 0x2E {
            isInteger = false
            pos += 1
            guard pos < end, base[pos] &- 0x30 < 10 else {
                return .failure(NumberSyntaxError(offset: pos, message: "invalid number: expected a digit after '.'"))
            }
            while pos < end {
                let d = base[pos] &- 0x30
                if d >= 10 { break }
                if significant < 19 {
                    if mantissa != 0 || d != 0 { significant += 1 }
                    mantissa = mantissa &* 10 &+ UInt64(d)
                    exponent -= 1
                } else if d != 0 {
                    dropped += 1
                }
                pos += 1
            }
        }
        if pos < end && (base[pos] | 0x20) == 0x65 {
            isInteger = false
            pos += 1
            var expNegative = false
            if pos < end && (base[pos] == 0x2D || base[pos] == 0x2B) {
                expNegative = base[pos] == 0x2D
                pos += 1
            }
            guard pos < end, base[pos] &- 0x30 < 10 else {
                return .failure(NumberSyntaxError(offset: pos, message: "invalid number: expected a digit in exponent"))
            }
            var e = 0
            while pos < end {
                let d = base[pos] &- 0x30
                if d >= 10 { break }
                if e < 1_000_000 { e = e * 10 + Int(d) }
                pos += 1
            }
            exponent += expNegative ? -e : e
        }
        if dropped == 0 {
            if mantissa == 0 { return .success((pos, negative ? -0.0 : 0.0, isInteger)) }
            if mantissa <= 1 << 53 {
                var value = Double(mantissa)
                var fast = false
                if exponent >= 0 && exponent <= 22 {
                    value *= powersOfTen[exponent]
                    fast = true
                } else if exponent < 0 && exponent >= -22 {
                    value /= powersOfTen[-exponent]
                    fast = true
                } else if exponent > 22 && exponent <= 22 + 15 {
                    // Move part of the exponent into the (exact) integer significand if it stays below 2^53.
                    let shifted = Double(mantissa) * powersOfTen[exponent - 22]
                    if shifted <= 9_007_199_254_740_992 {
                        value = shifted * powersOfTen[22]
                        fast = true
                    }
                }
                if fast { return .success((pos, negative ? -value : value, isInteger)) }
            }
            if let value = eiselLemire(mantissa, exponent) {
                return .success((pos, negative ? -value : value, isInteger))
            }
        }
        let text = String(decoding: UnsafeBufferPointer(start: base + start, count: pos - start), as: UTF8.self)
        return .success((pos, Double(text) ?? .nan, isInteger))
    }

    /// The correctly rounded `w * 10^q` for `w != 0` (Eisel-Lemire, as in Lemire's "Number Parsing at a Gigabyte
    /// per Second"), or nil when the fast algorithm cannot decide (subnormal results, out-of-range exponents and
    /// rare ambiguous products); the caller then falls back to `Double(String)`.
    @inline(__always)
    static func eiselLemire(_ w: UInt64, _ q: Int) -> Double? {
        guard q >= -342 && q <= 308 else { return nil }
        let lz = w.leadingZeroBitCount
        let normalized = w << lz
        let index = 2 * (q + 342)
        var product = normalized.multipliedFullWidth(by: powersOfFive[index])
        if product.high & 0x1FF == 0x1FF {
            // The 64-bit product may be too coarse for 55 bits of precision: add the next word's contribution.
            let second = normalized.multipliedFullWidth(by: powersOfFive[index + 1])
            let (low, carry) = product.low.addingReportingOverflow(second.high)
            product.low = low
            if carry { product.high &+= 1 }
        }
        if product.low == .max && (q < -27 || q > 55) { return nil }
        let upperBit = Int(product.high >> 63)
        let shift = upperBit + 64 - 52 - 3
        var mantissa = product.high >> shift
        // floor(log2(10^q)) + 63, as an integer expression valid for q in (-400, 350).
        var power2 = (((152_170 + 65_536) * q) >> 16) + 63 + upperBit - lz + 1023
        if power2 <= 0 { return nil }  // subnormal: leave it to the slow path
        if product.low <= 1 && q >= -4 && q <= 23 && mantissa & 3 == 1 && (mantissa << shift) == product.high {
            // Exactly halfway between two doubles: round to even (down).
            mantissa &= ~1
        }
        mantissa += mantissa & 1
        mantissa >>= 1
        if mantissa >= 2 << 52 {
            mantissa = 1 << 52
            power2 += 1
        }
        mantissa &= ~(1 << 52)
        if power2 >= 0x7FF { return .infinity }
        return Double(bitPattern: UInt64(power2) << 52 | mantissa)
    }
}
