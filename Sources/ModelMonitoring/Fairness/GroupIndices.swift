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

    /// The indices of `values`, in order (one pass: `values` may be a lazy map doing lookups).
    public init(_ values: some Sequence<Int>) {
        for v in values { append(v) }
    }

    /// `count` indices, each read by `next`.
    static func read(count: Int, _ next: (Int) throws(StateError) -> Int) throws(StateError) -> GroupIndices {
        var g = GroupIndices()
        for i in 0..<count { g.append(try next(i)) }
        return g
    }

    /// No indices.
    init() {}

    /// Appends an index: inline while four fit below 65,535, else everything moves to the array.
    mutating func append(_ v: Int) {
        if spilled == nil && inlineCount < 4 && v >= 0 && v < 0xFFFF {
            packed |= UInt64(v) << (16 * UInt64(inlineCount))
            inlineCount += 1
        } else if spilled == nil {
            spilled = Array(self) + [v]
        } else {
            spilled!.append(v)
        }
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
