import Exposition

/// Event ids that name the exporter instance holding the prediction: `<instance>~<ULID>`.
///
/// An exporter that generates an id for an event (the reverse proxy, when the client sent no `X-Request-Id`)
/// prefixes it with its instance id (`--instance.id`), so that whoever posts the label later can route it to that
/// replica, and a replica that does not hold it can say which one does.
///
/// The shape, exactly (``instance(of:)`` accepts nothing else):
/// - the instance: 1 to ``maximumInstanceLength`` characters of `[A-Za-z0-9._-]` (``isValidInstance(_:)``);
/// - `~`;
/// - a ULID: 26 characters of Crockford's base 32 in upper case (`0123456789ABCDEFGHJKMNPQRSTVWXYZ`), the first
///   `0`–`7`: 48 bits of milliseconds since the Unix epoch, then 80 random bits, most significant first (so ids
///   of one instance sort by time to the millisecond).
///
/// Pure: no clock or randomness of its own beyond the defaults of ``generate(instance:milliseconds:using:)``.
public enum EventID {
    /// Most characters of an instance id.
    public static let maximumInstanceLength = 64
    /// Characters of a ULID.
    public static let ulidLength = 26

    /// Whether `byte` may appear in an instance id: `[A-Za-z0-9._-]`.
    @inline(__always)
    static func isInstanceByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    /// Whether `byte` is a character of the upper-case Crockford alphabet.
    @inline(__always)
    static func isCrockfordByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        case UInt8(ascii: "A")...UInt8(ascii: "Z"):
            return byte != UInt8(ascii: "I") && byte != UInt8(ascii: "L") && byte != UInt8(ascii: "O")
                && byte != UInt8(ascii: "U")
        default: return false
        }
    }

    /// Whether `instance` is a valid instance id: 1 to ``maximumInstanceLength`` characters of `[A-Za-z0-9._-]`.
    public static func isValidInstance(_ instance: some StringProtocol) -> Bool {
        let utf8 = instance.utf8
        return (1...maximumInstanceLength).contains(utf8.count) && utf8.allSatisfy(isInstanceByte)
    }

    /// What is wrong with `instance` as an instance id, in a sentence; nil when it is valid.
    public static func instanceProblem(_ instance: String) -> String? {
        if isValidInstance(instance) { return nil }
        let count = instance.utf8.count
        if count == 0 { return "instance id is empty (1 to \(maximumInstanceLength) characters of [A-Za-z0-9._-])" }
        if count > maximumInstanceLength {
            return "instance id \"\(instance)\" has \(count) bytes, more than \(maximumInstanceLength)"
        }
        return "instance id \"\(instance)\" may only hold the characters [A-Za-z0-9._-]"
    }

    /// The 26 characters of the ULID of `milliseconds` (48 bits kept) and `random` (80 bits: 16 of `high`, 64 of
    /// `low`).
    public static func ulid(milliseconds: UInt64, randomHigh high: UInt16, randomLow low: UInt64) -> String {
        String(unsafeUninitializedCapacity: ulidLength) { buffer in
            writeULID(milliseconds: milliseconds, randomHigh: high, randomLow: low, to: buffer.baseAddress!)
            return ulidLength
        }
    }

    /// Writes the ULID's 26 characters at `out`: 128 bits, time (48) | high (16) | low (64), as 26 five-bit digits
    /// from the top (the first digit holds the top 3 bits), each looked up in Crockford's alphabet
    /// (no I, L, O, U).
    @inline(__always)
    static func writeULID(
        milliseconds: UInt64, randomHigh high: UInt16, randomLow low: UInt64, to out: UnsafeMutablePointer<UInt8>
    ) {
        let digits = ("0123456789ABCDEFGHJKMNPQRSTVWXYZ" as StaticString).utf8Start
        let upper = (milliseconds & 0xFFFF_FFFF_FFFF) &<< 16 | UInt64(high)
        // Digit 0: bits 127-125; digits 1-12: bits 124-65 (of `upper`); digit 13: bits 64-60 (one of `upper`, four of
        // `low`); digits 14-25: bits 59-0 (of `low`).
        out[0] = digits[Int(truncatingIfNeeded: upper &>> 61)]
        for i in 1...12 { out[i] = digits[Int(truncatingIfNeeded: (upper &>> (61 &- 5 &* i)) & 31)] }
        out[13] = digits[Int(truncatingIfNeeded: (upper & 1) &<< 4 | low &>> 60)]
        for i in 14...25 { out[i] = digits[Int(truncatingIfNeeded: (low &>> (125 &- 5 &* i)) & 31)] }
    }

    /// `<prefix>~<ULID>` for `prefix`, the bytes of a valid instance id (not checked again: for a caller that
    /// checked it once, such as the proxy's request ids), the time `milliseconds` since the Unix epoch and 80
    /// random bits (16 of `high`, 64 of `low`), in one allocation.
    package static func generate(
        prefix: UnsafeBufferPointer<UInt8>, milliseconds: UInt64, randomHigh high: UInt16, randomLow low: UInt64
    ) -> String {
        let count = prefix.count &+ 1 &+ ulidLength
        return String(unsafeUninitializedCapacity: count) { buffer in
            let out = buffer.baseAddress!
            if let start = prefix.baseAddress { out.update(from: start, count: prefix.count) }
            out[prefix.count] = UInt8(ascii: "~")
            writeULID(milliseconds: milliseconds, randomHigh: high, randomLow: low, to: out + (prefix.count &+ 1))
            return count
        }
    }

    /// A new event id, `<instance>~<ULID>`, for the time `milliseconds` since the Unix epoch (default: now) and
    /// 80 bits from `generator`. `instance` must be valid (``isValidInstance(_:)``).
    public static func generate(
        instance: String, milliseconds: UInt64 = UInt64(WallClock.now() * 1000),
        using generator: inout some RandomNumberGenerator
    ) -> String {
        precondition(isValidInstance(instance), "invalid instance id \"\(instance)\"")
        // 16 and 64 uniform bits, read directly (`UInt16.random(in:using:)` costs several times as much).
        let high = UInt16(truncatingIfNeeded: generator.next())
        let low = generator.next()
        // Built in place: one allocation (concatenating the ULID's String costs two more).
        var instance = instance
        return instance.withUTF8 { prefix in
            generate(prefix: prefix, milliseconds: milliseconds, randomHigh: high, randomLow: low)
        }
    }

    /// A new event id, `<instance>~<ULID>`, for now and the system's random numbers.
    public static func generate(instance: String) -> String {
        var generator = SystemRandomNumberGenerator()
        return generate(instance: instance, using: &generator)
    }

    /// The instance prefix of `id` when `id` has exactly the shape of a generated id (`<instance>~<ULID>`, see
    /// ``EventID``), else nil: ids of the users' own (`order~123`, `a~b~<ULID>`) are never taken for an instance's.
    public static func instance(of id: Substring) -> Substring? {
        let utf8 = id.utf8
        let count = utf8.count
        guard count >= ulidLength + 2, count <= maximumInstanceLength + 1 + ulidLength else { return nil }
        let tilde = utf8.index(utf8.endIndex, offsetBy: -(ulidLength + 1))
        guard utf8[tilde] == UInt8(ascii: "~") else { return nil }
        let ulidStart = utf8.index(after: tilde)
        guard utf8[ulidStart] >= UInt8(ascii: "0") && utf8[ulidStart] <= UInt8(ascii: "7") else { return nil }
        guard utf8[ulidStart...].allSatisfy(isCrockfordByte) else { return nil }
        guard utf8[..<tilde].allSatisfy(isInstanceByte) else { return nil }
        return id[..<tilde]
    }
}
