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
        // A number that ends within the eight bytes from here (a tensor value's usual 3-7 characters) is read from one
        // word; any other, or fewer than eight bytes left, by the byte loop below.
        if end &- at >= 8,
            let (value, length) = Self.shortNumber(word: UnsafeRawPointer(base + at).loadUnaligned(as: UInt64.self))
        {
            pos = at &+ length
            return negative ? -value : value
        }
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

    /// The short plain number (after its sign) at the start of `word`, eight bytes little-endian (the first in the
    /// low byte), and its length, when it ends within them: the byte after it is in the word. Nil otherwise, and for
    /// what is no short plain number (``shortNumber()``'s rules: digits, an optional '.' then at least one digit, no
    /// leading zero, no exponent after it); the byte loop then decides.
    ///
    /// The bytes are classified eight at once (a digit: the byte xor '0' below 10; computed with each byte's high bit
    /// set first, so that no borrow crosses into the next byte, and a byte of 0x80 or more ruled out), the '.' taken
    /// out by shifting the fraction's bytes down by one, and the digits (at most 7) summed by three multiplications
    /// (the eight-digit SWAR conversion, digits left-padded with zeros). Its value is then the byte loop's:
    /// the same significand divided by the same exact power of ten.
    @inline(__always)
    static func shortNumber(word: UInt64) -> (Double, Int)? {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let digits = word ^ (0x30 &* ones)
        // A byte's high bit set when it is no digit.
        let nonDigits = (((digits | highs) &- (0x0A &* ones)) | digits) & highs
        guard nonDigits != 0 else { return nil }  // eight digits or more: the byte loop
        let first = nonDigits.trailingZeroBitCount &>> 3
        guard first > 0 else { return nil }  // no integer part
        var length = first
        var fractionDigits = 0
        if (word &>> UInt64(first &* 8)) & 0xFF == 0x2E {
            // The '.': the number ends at the next byte that is no digit (a second '.' ends it too).
            guard first < 6 else { return nil }  // no room for a fraction digit and the byte after it
            let after = nonDigits & (~0 &<< UInt64((first &+ 1) &* 8))
            guard after != 0 else { return nil }
            length = after.trailingZeroBitCount &>> 3
            fractionDigits = length &- first &- 1
            guard fractionDigits > 0 else { return nil }
        }
        // No leading zero (a lone "0" is one), no exponent after it.
        guard first == 1 || word & 0xFF != 0x30 else { return nil }
        guard (word &>> UInt64(length &* 8)) & 0xFF | 0x20 != 0x65 else { return nil }
        // The digits without the '.', first in the low byte, then left-padded with zero digits to eight.
        var packed = digits
        let count = first &+ fractionDigits
        if fractionDigits > 0 {
            let low = (UInt64(1) &<< UInt64(first &* 8)) &- 1
            packed = (packed & low) | ((packed &>> 8) & ~low)
        }
        packed = (packed & ((UInt64(1) &<< UInt64(count &* 8)) &- 1)) &<< UInt64((8 &- count) &* 8)
        packed = packed &* 10 &+ (packed &>> 8)
        packed =
            ((packed & 0x0000_00FF_0000_00FF) &* 0x000F_4240_0000_0064
                &+ ((packed &>> 16) & 0x0000_00FF_0000_00FF) &* 0x0000_2710_0000_0001) &>> 32
        var value = Double(UInt32(truncatingIfNeeded: packed))
        if fractionDigits > 0 { value /= exactPowerOfTen(fractionDigits) }
        return (value, length)
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
