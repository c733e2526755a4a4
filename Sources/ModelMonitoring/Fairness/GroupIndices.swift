/// A prediction's group per sensitive attribute (indices into ``ModelContext/groupLabels``), held inline for up to
/// four attributes with indices below 65,535 (no heap allocation: a pending prediction is a flat value, and a
/// checkpoint reads a million of them without chasing a pointer each), in an array beyond.
public struct GroupIndices: RandomAccessCollection, Sendable, Hashable, ExpressibleByArrayLiteral,
    CustomStringConvertible
{
    /// Up to four 16-bit indices, the first in the low bits.
    var packed: UInt64 = 0
    var inlineCount: UInt8 = 0
    /// The indices, when they do not fit inline.
    var spilled: [Int]? = nil

    /// The indices of `values`, in order.
    public init(_ values: some Collection<Int>) {
        if values.count <= 4 && values.allSatisfy({ $0 >= 0 && $0 < 0xFFFF }) {
            for (i, v) in values.enumerated() { packed |= UInt64(v) << (16 * UInt64(i)) }
            inlineCount = UInt8(values.count)
        } else {
            spilled = Array(values)
        }
    }

    /// `count` indices, each read by `next` (inline when they fit: no array in between).
    static func read(count: Int, _ next: (Int) throws(StateError) -> Int) throws(StateError) -> GroupIndices {
        var g = GroupIndices([Int]())
        if count <= 4 {
            for i in 0..<count {
                let v = try next(i)
                if v >= 0xFFFF || v < 0 {
                    var all = Array(g)
                    all.append(v)
                    for j in (i + 1)..<count { all.append(try next(j)) }
                    return GroupIndices(all)
                }
                g.packed |= UInt64(v) << (16 * UInt64(i))
                g.inlineCount += 1
            }
            return g
        }
        var all: [Int] = []
        for i in 0..<count { all.append(try next(i)) }
        return GroupIndices(all)
    }

    /// The indices listed.
    public init(arrayLiteral elements: Int...) { self.init(elements) }

    /// 0.
    public var startIndex: Int { 0 }
    /// The number of attributes.
    public var endIndex: Int { spilled?.count ?? Int(inlineCount) }

    /// The group index of attribute `i`.
    @inline(__always)
    public subscript(i: Int) -> Int {
        if let spilled { return spilled[i] }
        precondition(i >= 0 && i < Int(inlineCount), "group index out of range")
        return Int((packed >> (16 * UInt64(i))) & 0xFFFF)
    }

    /// E.g. `[0, 2]`.
    public var description: String { Array(self).description }

    /// Equal indices (whatever their storage).
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.elementsEqual(rhs) }

    /// Hashes the indices.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        for g in self { hasher.combine(g) }
    }
}
