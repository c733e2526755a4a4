/// A direct-mapped cache of 256 Strings keyed by their UTF-8 bytes (at most ``maximumLength``), packed into two
/// words: no hashing of a `String`, no allocation on a hit. A class over manually allocated entries, so that a hit
/// costs no uniqueness check or bounds check. Used by one decoding call at a time (it lives in a ``DecoderCache``,
/// which servers pool across requests).
final class StringCache {
    static let maximumLength = 16
    private static let slotBits = 8

    private struct Entry {
        var length: Int
        var low: UInt64
        var high: UInt64
        var value: String
    }

    private let entries: UnsafeMutablePointer<Entry>

    init() {
        entries = .allocate(capacity: 1 << StringCache.slotBits)
        entries.initialize(repeating: Entry(length: -1, low: 0, high: 0, value: ""), count: 1 << StringCache.slotBits)
    }

    deinit {
        entries.deinitialize(count: 1 << StringCache.slotBits)
        entries.deallocate()
    }

    /// The String of `bytes`: validated UTF-8 of at most ``maximumLength`` bytes.
    @inline(__always)
    func string(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        let n = bytes.count
        guard let base = bytes.baseAddress, n > 0 else { return "" }
        // The bytes as two words that determine them for a given length (the loads overlap, never go past n).
        let raw = UnsafeRawPointer(base)
        var low: UInt64 = 0
        var high: UInt64 = 0
        if n >= 8 {
            low = raw.loadUnaligned(as: UInt64.self)
            high = raw.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
        } else if n >= 4 {
            low = UInt64(raw.loadUnaligned(as: UInt32.self))
            high = UInt64(raw.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self))
        } else {
            for i in 0..<n { low |= UInt64(base[i]) << (i &* 8) }
        }
        let mixed = (low &* 0x9E37_79B9_7F4A_7C15) ^ ((high &+ UInt64(n)) &* 0xC2B2_AE3D_27D4_EB4F)
        let entry = entries + Int(truncatingIfNeeded: mixed >> (64 - StringCache.slotBits))
        if entry.pointee.length == n && entry.pointee.low == low && entry.pointee.high == high {
            return entry.pointee.value
        }
        let value = makeUTF8String(bytes)
        entry.pointee = Entry(length: n, low: low, high: high, value: value)
        return value
    }
}
