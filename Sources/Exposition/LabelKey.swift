/// Label values compared and ordered byte for byte.
///
/// Swift's `String ==` treats canonically equivalent spellings (`"\u{E9}"` and `"e\u{301}"`) as equal and
/// orders by Unicode rules; Prometheus compares label values as bytes. Series identity and output
/// order therefore use this key, never `String` comparison.
struct LabelKey: Hashable, Sendable {
    let values: [String]

    static func == (a: LabelKey, b: LabelKey) -> Bool {
        guard a.values.count == b.values.count else { return false }
        for i in a.values.indices where compareBytes(a.values[i], b.values[i]) != 0 { return false }
        return true
    }

    func hash(into hasher: inout Hasher) {
        for var v in values {
            v.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
            hasher.combine(0xFF as UInt8)  // a byte that never occurs in UTF-8: separates the values
        }
    }

    /// Byte-wise lexicographic order of value tuples.
    static func precedes(_ a: [String], _ b: [String]) -> Bool {
        for i in 0..<min(a.count, b.count) {
            let order = compareBytes(a[i], b[i])
            if order != 0 { return order < 0 }
        }
        return a.count < b.count
    }

    /// The byte-wise order of two strings' UTF-8: negative, zero or positive. Reads native strings (small ones
    /// included) in place; others (bridged) through their UTF-8 view.
    @inline(__always)
    static func compareBytes(_ x: String, _ y: String) -> Int {
        let fast = x.utf8.withContiguousStorageIfAvailable { a in
            y.utf8.withContiguousStorageIfAvailable { b in compareBytes(a, b) }
        }
        if let order = fast ?? nil { return order }
        if x.utf8.elementsEqual(y.utf8) { return 0 }
        return x.utf8.lexicographicallyPrecedes(y.utf8) ? -1 : 1
    }

    @inline(__always)
    static func compareBytes(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Int {
        let n = min(a.count, b.count)
        var i = 0
        while i < n {
            if a[i] != b[i] { return a[i] < b[i] ? -1 : 1 }
            i &+= 1
        }
        return a.count - b.count
    }
}

extension String {
    /// Whether the two strings are the same UTF-8 bytes. Swift's `==` compares canonical equivalence (`café` in NFC
    /// and in NFD are equal); label values, and the names and values matched against them, are told apart by their
    /// bytes, as Prometheus tells label values apart (see ``LabelKey``).
    public func sameBytes(_ other: String) -> Bool { LabelKey.compareBytes(self, other) == 0 }
}
