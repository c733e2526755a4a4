/// The 64-bit FNV-1a hash of bytes: the key of pending prediction ids and the slot hash of the name tables.
/// Not seeded: the tables it serves are small and bounded, and the pending-id store needs the same key for the same
/// id in every process.
package enum FNV1a {
    /// FNV-1a over `bytes`.
    @inlinable
    package static func hash<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    /// ``hash(_:)`` with its high bits folded into the low ones, as a table index (mask it to the table size).
    @inlinable
    package static func slotHash<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> Int {
        let h = hash(bytes)
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }
}
