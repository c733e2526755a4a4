import Ingestion

extension Scanner {
    /// The most digits ``shortNumber()`` reads: below 10^15 < 2^53 every such significand is an exact `Double`.
    static var shortNumberDigits: Int { 15 }

    /// The number at the cursor when it is short and plain, the cursor then after it; nil otherwise, the cursor
    /// unmoved (``numberToken()`` reads it, and gives the syntax errors).
    ///
    /// Short and plain: an optional `-`, an integer part without leading zeros, an optional fraction of at least one
    /// digit, no exponent, at most ``shortNumberDigits`` digits in all. Its value is then Clinger's: the significand
    /// (exact) divided by an exact power of ten, one correctly rounded IEEE division: bit for bit what
    /// ``Scanner/number()`` gives (the same division, on its own path, for these numbers), `-0` included; never
    /// infinite or NaN. It ends where ``Scanner/number()`` ends (the first byte that cannot continue the number,
    /// which neither checks further); an `e` or `E` there, an exponent, leaves the number to it.
    ///
    /// The direct v2 reader's tensor values (a call to the general parser costs as much again as the parse).
    @inline(__always)
    mutating func shortNumber() -> Double? {
        var at = pos
        guard at < end else { return nil }
        let negative = base[at] == 0x2D
        if negative { at &+= 1 }
        let digitsStart = at
        // One pass over the digits and the first '.', if any (a second one ends the number).
        var significand = 0
        var point = -1
        while at < end {
            let byte = base[at]
            let digit = byte &- 0x30
            if digit < 10 {
                significand = significand &* 10 &+ Int(digit)
            } else if byte == 0x2E && point < 0 {
                point = at
            } else {
                break
            }
            at &+= 1
        }
        let integerDigits = (point < 0 ? at : point) &- digitsStart
        let fractionDigits = point < 0 ? 0 : at &- point &- 1
        // More digits may have wrapped the significand: such numbers are no short ones anyway.
        guard integerDigits > 0, point < 0 || fractionDigits > 0,
            integerDigits == 1 || base[digitsStart] != 0x30,
            integerDigits &+ fractionDigits <= Self.shortNumberDigits, at >= end || base[at] | 0x20 != 0x65
        else { return nil }
        pos = at
        var value = Double(significand)
        if fractionDigits > 0 { value /= Self.exactPowerOfTen(fractionDigits) }
        return negative ? -value : value
    }

    /// The integer at the cursor when it is digits only (no sign, fraction or exponent), at most
    /// ``shortNumberDigits`` of them without leading zeros, the cursor then after it; nil otherwise, the cursor
    /// unmoved. What ``Scanner/number()`` reads of such a number, as an `Int` (exact: below 10^15): a tensor's shape.
    @inline(__always)
    mutating func shortInteger() -> Int? {
        var at = pos
        var value = 0
        while at < end, case let digit = base[at] &- 0x30, digit < 10 {
            value = value &* 10 &+ Int(digit)
            at &+= 1
        }
        let digits = at &- pos
        guard digits > 0, digits <= Self.shortNumberDigits, digits == 1 || base[pos] != 0x30,
            at >= end || (base[at] != 0x2E && base[at] | 0x20 != 0x65)
        else { return nil }
        pos = at
        return value
    }

    /// 10^`exponent` for `exponent` in 1...15, exact as a `Double` (a constant table once compiled).
    @inline(__always)
    static func exactPowerOfTen(_ exponent: Int) -> Double {
        switch exponent {
        case 1: 1e1
        case 2: 1e2
        case 3: 1e3
        case 4: 1e4
        case 5: 1e5
        case 6: 1e6
        case 7: 1e7
        case 8: 1e8
        case 9: 1e9
        case 10: 1e10
        case 11: 1e11
        case 12: 1e12
        case 13: 1e13
        case 14: 1e14
        default: 1e15
        }
    }
}
