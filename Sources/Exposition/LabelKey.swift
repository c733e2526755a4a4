/// Label values compared and ordered byte for byte.
///
/// Swift's `String ==` treats canonically equivalent spellings (`"\u{E9}"` and `"e\u{301}"`) as equal and
/// orders by Unicode rules; Prometheus compares label values as bytes. Series identity and output
/// order therefore use this key, never `String` comparison.
struct LabelKey: Hashable, Sendable {
    let values: [String]

    static func == (a: LabelKey, b: LabelKey) -> Bool {
        a.values.count == b.values.count && zip(a.values, b.values).allSatisfy { $0.utf8.elementsEqual($1.utf8) }
    }

    func hash(into hasher: inout Hasher) {
        for var v in values {
            v.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
            hasher.combine(0xFF as UInt8)  // a byte that never occurs in UTF-8: separates the values
        }
    }

    /// Byte-wise lexicographic order of value tuples.
    static func precedes(_ a: [String], _ b: [String]) -> Bool {
        for (x, y) in zip(a, b) {
            if x.utf8.elementsEqual(y.utf8) { continue }
            return x.utf8.lexicographicallyPrecedes(y.utf8)
        }
        return a.count < b.count
    }
}

extension String {
    /// Byte-wise equality (see ``LabelKey``).
    func sameBytes(_ other: String) -> Bool { utf8.elementsEqual(other.utf8) }
}
