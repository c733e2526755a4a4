import Ingestion

/// `count` values of a list, read in order without collecting their node indices: an array's elements, a v2
/// tensor's data leaves (nested arrays entered, row-major), or one scalar.
struct ValueRun {
    var first: Int
    var count: Int
    /// Whether nested arrays after a value are entered (a tensor's data) rather than being values themselves.
    var leaves: Bool

    /// The elements of the array at `node`.
    static func elements(of node: Int, _ tape: JSONTape) -> ValueRun {
        ValueRun(first: node + 1, count: tape.nodes[node].count, leaves: false)
    }

    /// The single value at `node`.
    static func single(_ node: Int) -> ValueRun { ValueRun(first: node, count: 1, leaves: false) }
}

extension JSONTape {
    /// The value after `node` in a run: its next sibling, or for leaves the next non-array node (the first leaf of
    /// the following nested arrays).
    @inline(__always)
    func after(_ node: Int, leaves: Bool) -> Int {
        var j = nodes[node].next
        if leaves {
            while j < nodes.count && nodes[j].kind == .array { j += 1 }
        }
        return j
    }

    /// Whether the string node at `node` is `name`, as `String` compares them (canonical equivalence): by bytes,
    /// falling back to `String` when the bytes differ and either side is not ASCII, or the node has escapes.
    func string(_ node: Int, is name: String) -> Bool {
        guard !nodes[node].flag else { return string(node) == name }
        let bytes = rawBytes(node)
        func compare(_ want: UnsafeBufferPointer<UInt8>) -> (Bool, Bool) {
            if want.count == bytes.count && (want.isEmpty || bytes.elementsEqual(want)) { return (true, true) }
            return (false, isASCII(want) && isASCII(bytes))
        }
        // The name's bytes where they are (no copy of the String, no retain), else a contiguous copy.
        let equal: Bool
        let ascii: Bool
        if let result = name.utf8.withContiguousStorageIfAvailable(compare) {
            (equal, ascii) = result
        } else {
            var copy = name
            (equal, ascii) = copy.withUTF8(compare)
        }
        if equal { return true }
        return ascii ? false : string(node) == name
    }

    /// Whether the string nodes `a` and `b` have the same text as `String` compares them.
    func string(_ a: Int, equals b: Int) -> Bool {
        if !nodes[a].flag && !nodes[b].flag {
            let x = rawBytes(a)
            let y = rawBytes(b)
            if x.elementsEqual(y) { return true }
            if isASCII(x) && isASCII(y) { return false }
        }
        return string(a) == string(b)
    }
}

@inline(__always)
func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    for b in bytes where b >= 0x80 { return false }
    return true
}
