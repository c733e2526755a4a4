/// Appends a model's state to a byte buffer in the checkpoint encoding: little-endian fixed-width numbers,
/// LEB128 varints, length-prefixed strings and sections, and slot arrays as runs (see ``slots(_:)``).
///
/// The encoding is private to mlops-exporter's checkpoints (docs/storage.md): a reader needs the collector
/// that wrote it, built from the same configuration, to know what the numbers mean.
public struct StateWriter: Sendable {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8]

    /// An empty writer with room for `capacity` bytes.
    public init(capacity: Int = 4096) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// One byte.
    @inline(__always)
    public mutating func byte(_ value: UInt8) { bytes.append(value) }

    /// An unsigned LEB128 varint (1 byte below 128, at most 10).
    @inline(__always)
    public mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    /// A signed integer, zigzag-encoded as a varint.
    @inline(__always)
    public mutating func signed(_ value: Int64) { varint(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }

    /// A count or index (non-negative) as a varint.
    @inline(__always)
    public mutating func count(_ value: Int) { varint(UInt64(max(0, value))) }

    /// Eight little-endian bytes.
    @inline(__always)
    public mutating func fixed64(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A Double's bit pattern, eight bytes.
    @inline(__always)
    public mutating func double(_ value: Double) { fixed64(value.bitPattern) }

    /// A UTF-8 string, length first.
    public mutating func string(_ value: String) {
        count(value.utf8.count)
        bytes.append(contentsOf: value.utf8)
    }

    /// A section: what `body` writes, preceded by its length (a varint padded to five bytes, patched once the body
    /// is written, so nothing is copied), so that a reader can skip it whole.
    public mutating func section(_ body: (inout StateWriter) -> Void) {
        let at = bytes.count
        bytes.append(contentsOf: [0x80, 0x80, 0x80, 0x80, 0x00])
        body(&self)
        let length = UInt64(bytes.count - at - 5)
        precondition(length < 1 << 35, "a checkpoint section over 32 GiB")
        for i in 0..<5 {
            bytes[at + i] = UInt8(truncatingIfNeeded: length >> (7 * UInt64(i))) & 0x7f | (i < 4 ? 0x80 : 0)
        }
    }

    /// Slots `start..<start + count` of `slots`: their count, then runs. A token `t` with the low bit set is a
    /// run of `t >> 1` zero slots; with the low bit clear, one slot of value `t >> 1` (values below 2⁶³); the
    /// token 1 (a run of no zeros) escapes a value of 2⁶³ or more, which follows as eight bytes (Double slots with
    /// the sign bit). Counts are small numbers and windows are mostly zeros, so this is a few bytes per non-zero
    /// count; slots are read one by one with relaxed atomic loads while recording goes on.
    public mutating func slots(_ slots: AtomicSlots, start: Int = 0, count n: Int? = nil) {
        let n = n ?? slots.count - start
        count(n)
        var i = 0
        while i < n {
            let v = slots.load(start &+ i)
            if v == 0 {
                var run = 1
                while i &+ run < n && slots.load(start &+ i &+ run) == 0 { run &+= 1 }
                varint(UInt64(run) << 1 | 1)
                i &+= run
            } else if v < 1 << 63 {
                varint(v << 1)
                i &+= 1
            } else {
                byte(1)
                fixed64(v)
                i &+= 1
            }
        }
    }
}

/// Reads what a ``StateWriter`` wrote; every read checks the bounds and throws ``StateError`` rather than trap.
public struct StateReader: Sendable {
    let bytes: [UInt8]
    /// The read position.
    public private(set) var position: Int
    let end: Int
    /// When the state was written (Unix time), when known: a checkpoint's creation time, handed to the readers of its
    /// sections. A window restored at a `now` before it (a clock that ran ahead, or set back since) moves back by that
    /// difference, the same for every window of the checkpoint (``SliceRing/restore(from:now:)``).
    public var savedAt: Double?

    /// A reader of `bytes[range]` (all of them by default).
    public init(_ bytes: [UInt8], range: Range<Int>? = nil) {
        self.bytes = bytes
        position = range?.lowerBound ?? 0
        end = range?.upperBound ?? bytes.count
    }

    /// Whether everything was read.
    public var isAtEnd: Bool { position == end }

    /// One byte.
    public mutating func byte() throws(StateError) -> UInt8 {
        guard position < end else { throw .truncated }
        defer { position += 1 }
        return bytes[position]
    }

    /// A varint.
    @inline(__always)
    public mutating func varint() throws(StateError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end else { throw .truncated }
            let b = bytes[position]
            position &+= 1
            if shift == 63 && b > 1 { throw .malformed("varint overflows 64 bits") }
            result |= UInt64(b & 0x7f) << shift
            if b < 0x80 { return result }
            shift += 7
            if shift > 63 { throw .malformed("varint longer than 10 bytes") }
        }
    }

    /// A zigzag-encoded signed integer.
    public mutating func signed() throws(StateError) -> Int64 {
        let v = try varint()
        return Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1)
    }

    /// A count, at most `limit`.
    public mutating func count(max limit: Int) throws(StateError) -> Int {
        let v = try varint()
        guard v <= UInt64(limit) else { throw .malformed("count \(v) over its bound \(limit)") }
        return Int(v)
    }

    /// Eight little-endian bytes.
    public mutating func fixed64() throws(StateError) -> UInt64 {
        guard end - position >= 8 else { throw .truncated }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
        position += 8
        return v
    }

    /// A Double.
    public mutating func double() throws(StateError) -> Double { Double(bitPattern: try fixed64()) }

    /// A string of at most `limit` bytes.
    public mutating func string(max limit: Int = 4096) throws(StateError) -> String {
        let n = try count(max: limit)
        guard end - position >= n else { throw .truncated }
        defer { position += n }
        return String(decoding: bytes[position..<position + n], as: UTF8.self)
    }

    /// The next section, as a reader of its bytes (this reader moves past it). A length that runs past the end
    /// throws ``StateError/truncated``, as for strings: the bytes were cut short.
    public mutating func section() throws(StateError) -> StateReader {
        let length = try varint()
        guard length <= UInt64(end - position) else { throw .truncated }
        let n = Int(length)
        defer { position += n }
        var section = StateReader(bytes, range: position..<position + n)
        section.savedAt = savedAt
        return section
    }

    /// Reads slots written by ``StateWriter/slots(_:start:count:)`` into the first of `slots`, for a layout that only
    /// grows at its end: a checkpoint of an older layout has fewer (the rest stay as they are, zero in fresh
    /// counters); more than `slots` has throws ``StateError/mismatch(_:)``.
    public mutating func slotsPrefix(into slots: AtomicSlots) throws(StateError) {
        var copy = self
        let n = try copy.count(max: Int(Int32.max))
        guard n <= slots.count else { throw .mismatch("\(n) slots saved, at most \(slots.count) expected") }
        try self.slots(into: slots, start: 0, count: n)
    }

    /// Reads slots written by ``StateWriter/slots(_:start:count:)`` into `slots[start..<start + count]`; throws
    /// when the written count differs from `count` (the collector's layout changed).
    public mutating func slots(into slots: AtomicSlots, start: Int = 0, count expected: Int? = nil) throws(StateError) {
        let expected = expected ?? slots.count - start
        let n = try count(max: Int(Int32.max))
        guard n == expected else { throw .mismatch("\(n) slots saved, \(expected) expected") }
        var i = 0
        while i < n {
            let t = try varint()
            if t == 1 {
                slots.store(start &+ i, try fixed64())
                i &+= 1
            } else if t & 1 == 1 {
                let run = Int(t >> 1)
                guard run <= n - i else { throw .malformed("run of zeros past the slots") }
                for j in 0..<run { slots.store(start &+ i &+ j, 0) }
                i &+= run
            } else {
                slots.store(start &+ i, t >> 1)
                i &+= 1
            }
        }
    }
}

/// Why saved state could not be read back.
public enum StateError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The bytes end in the middle of a value.
    case truncated
    /// A value is out of its bounds or shape.
    case malformed(String)
    /// The state was written by a collector with another layout (another configuration).
    case mismatch(String)

    /// One line.
    public var description: String {
        switch self {
        case .truncated: "truncated"
        case .malformed(let what): "malformed: \(what)"
        case .mismatch(let what): "does not match the configuration: \(what)"
        }
    }
}

extension StateWriter {
    /// A writer that appends to `buffer`'s storage after emptying it (keeps its capacity: a checkpoint reuses the
    /// previous one's memory).
    public init(reusing buffer: inout [UInt8]) {
        bytes = []
        swap(&bytes, &buffer)
        bytes.removeAll(keepingCapacity: true)
    }

    /// Hands the bytes over, leaving the writer empty.
    public mutating func take() -> [UInt8] {
        defer { bytes = [] }
        return bytes
    }
}
