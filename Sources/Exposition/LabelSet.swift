/// Label values rendered once, escaped and in label-name order, for a family's series. A collector builds
/// the label sets it emits at every scrape (model, version, feature, bin…) once per model configuration, so
/// that a scrape copies bytes instead of escaping strings.
///
/// # Contract
/// - A label set fits every family whose label names are the same set of names as those it was built for;
///   emitting it through a family with other names is refused as an invalid emission.
/// - Two label sets are the same series when their bytes are equal (label values compare byte for byte).
public struct LabelSet: Sendable {
    /// `a="x",b="y"`, names sorted.
    let bytes: [UInt8]
    /// Identifies the set of label names (``LabelNames/key``).
    let namesKey: UInt64
    /// FNV-1a of ``bytes``, for duplicate checks.
    let hash: UInt64

    /// The empty label set, for families without labels.
    public static let none = LabelSet(bytes: [], namesKey: LabelNames([]).key)

    init(bytes: [UInt8], namesKey: UInt64) {
        self.bytes = bytes
        self.namesKey = namesKey
        hash = FNV64.hash(bytes)
    }

    /// Renders `values` (in the order of `names`); throws when the counts differ.
    init(names: LabelNames, values: [String], metric: String) throws(ExpositionError) {
        guard values.count == names.names.count else {
            throw .labelCountMismatch(metric: metric, expected: names.names.count, got: values.count)
        }
        var out: [UInt8] = []
        for (i, n) in names.order.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: names.names[n].utf8)
            out.append(UInt8(ascii: "="))
            out.append(UInt8(ascii: "\""))
            Escaping.appendLabelValue(values[n], to: &out)
            out.append(UInt8(ascii: "\""))
        }
        self.init(bytes: out, namesKey: names.key)
    }

    /// The rendered pairs, as they appear between braces (for tests and logs).
    public var rendered: String { String(decoding: bytes, as: UTF8.self) }
}

/// A family's label names with their sorted order and a key identifying the set of names.
struct LabelNames: Sendable {
    let names: [String]
    /// Indices of `names` in byte-wise order of the names.
    let order: [Int]
    let key: UInt64

    init(_ names: [String]) {
        self.names = names
        order = names.indices.sorted { names[$0] < names[$1] }  // identifiers: ASCII, so String order is byte order
        var h = FNV64()
        for i in order {
            h.add(names[i].utf8)
            h.add(0xFF)
        }
        key = h.value
    }
}

/// 64-bit FNV-1a.
struct FNV64 {
    var value: UInt64 = 0xcbf2_9ce4_8422_2325

    @inline(__always)
    mutating func add(_ byte: UInt8) {
        value = (value ^ UInt64(byte)) &* 0x100_0000_01b3
    }

    mutating func add(_ bytes: some Sequence<UInt8>) { for b in bytes { add(b) } }

    static func hash(_ bytes: [UInt8]) -> UInt64 {
        var h = FNV64()
        bytes.withUnsafeBufferPointer { for b in $0 { h.add(b) } }
        return h.value
    }
}

/// An order-sensitive combination of hashes (of label sets, or of such combinations): the same sequence always
/// gives the same number, so a duplicate check done once need not be redone while the sequence stays the same.
struct HashSequence {
    private(set) var value: UInt64 = 0x9E37_79B9_7F4A_7C15

    @inline(__always)
    mutating func add(_ hash: UInt64) { value = (value ^ hash) &* 0x100_0000_01b3 &+ 1 }
}
