/// A whole JSON document validated by the ``Scanner`` and laid out as a flat list of nodes (a "tape"), for
/// decoders that need random access (the capture decoders read a request and its response by path).
///
/// Node 0 is the root. A container's node is followed by its children: an array's elements, an object's members as
/// a key node (a string) then the value's nodes. ``Node/next`` is the index just past a node's subtree, so siblings
/// are found without walking into children. Strings and number text are not copied: nodes keep byte offsets into
/// the parsed buffer, which must outlive the tape (`package` API for the modules of this package only).
package struct JSONTape {
    /// The JSON type of a node.
    package enum Kind: UInt8, Sendable {
        case null, bool, number, string, array, object

        /// By raw value, inlined where tapes are read (the synthesized `==` is a call through the `Equatable` witness
        /// in the other modules of the package: some 50 per captured v2 exchange).
        @inlinable package static func == (lhs: Kind, rhs: Kind) -> Bool { lhs.rawValue == rhs.rawValue }
    }

    /// One value (or one object key).
    package struct Node {
        package var kind: Kind
        /// A boolean's value, a number's "no fraction or exponent", a string's "has escapes".
        package var flag: Bool
        /// The bytes of a string (between the quotes) or of a number's text; the value's first byte otherwise.
        package var start: Int
        package var end: Int
        /// A number's value.
        package var number: Double
        /// An array's element count or an object's member count.
        package var count: Int
        /// The index of the node after this subtree.
        package var next: Int
    }

    /// The nodes, root first.
    package private(set) var nodes: [Node] = []
    private let base: UnsafePointer<UInt8>
    /// The deepest level whose containers get nodes for their children (the root is level 1); deeper containers
    /// are validated and kept as one node each.
    private let expandedDepth: Int
    /// Most elements or members of the root.
    private let maxRootCount: Int
    /// Most nodes of the tape.
    private let maxNodes: Int
    /// Set as the read stops at ``maxNodes`` or ``maxRootCount`` (``JSONTapeError/overLimit``).
    private var overLimit = false

    /// Validates `bytes` as one JSON document (RFC 8259, nesting at most ``maximumDepth`` levels) and builds its
    /// tape; throws the offset and reason of the first syntax error.
    package init(parsing bytes: UnsafeBufferPointer<UInt8>) throws(JSONTapeError) {
        try self.init(bytes, expandedDepth: .max, maxRootCount: .max, maxNodes: .max, reserve: bytes.count / 4)
    }

    /// ``init(parsing:)`` that refuses, as it reads, a document of more than `maxNodes` values and object keys
    /// (``JSONTapeError/overLimit``): a tape costs ~48 bytes per value, ~24 per byte of a dense array's text, so
    /// a reader that knows how many values it can use bounds its memory by that, not by the body's size.
    ///
    /// `nonFinite`: `NaN` is read as `null`, `Infinity` and `-Infinity` as numbers of those values
    /// (``Scanner/allowsNonFinite``): model-server traffic written by Python's `json.dumps` or Triton.
    package init(
        parsing bytes: UnsafeBufferPointer<UInt8>, maxNodes: Int, nonFinite: Bool = false
    ) throws(JSONTapeError) {
        try self.init(
            bytes, expandedDepth: .max, maxRootCount: .max, maxNodes: maxNodes,
            reserve: min(bytes.count / 4, maxNodes), nonFinite: nonFinite)
    }

    /// Validates `bytes` as ``init(parsing:)`` does, but lays out only the root and its direct children: a
    /// container inside the root is one node (``Node/count`` 0, its bytes `start..<end`, nothing inside it
    /// reachable). The tape's size is then the root's member count, not the document's value count: for a document
    /// whose nested values are only handed on as bytes (a CloudEvent's `data`), which as a full tape would cost ~48
    /// bytes of nodes per element (a dense array `[0,0,…]`: 24 bytes per byte of text). A root with more than
    /// `maxCount` elements or members is refused as it is read (`more than N members`), so the tape never holds
    /// more than 2 × `maxCount` + 1 nodes.
    package init(
        parsingTopLevel bytes: UnsafeBufferPointer<UInt8>, maxCount: Int = .max, nonFinite: Bool = false
    ) throws(JSONTapeError) {
        try self.init(
            bytes, expandedDepth: 1, maxRootCount: maxCount, maxNodes: .max, reserve: 16, nonFinite: nonFinite)
    }

    private init(
        _ bytes: UnsafeBufferPointer<UInt8>, expandedDepth: Int, maxRootCount: Int, maxNodes: Int, reserve: Int,
        nonFinite: Bool = false
    ) throws(JSONTapeError) {
        var scanner = Scanner(bytes)
        scanner.allowsNonFinite = nonFinite
        base = scanner.base
        self.expandedDepth = expandedDepth
        self.maxRootCount = maxRootCount
        self.maxNodes = maxNodes
        nodes.reserveCapacity(max(16, reserve))
        do throws(SyntaxError) {
            try value(&scanner, depth: 1)
            guard scanner.peek() == nil else { throw scanner.error("unexpected data after the JSON value") }
        } catch {
            throw JSONTapeError(
                offset: error.offset, message: error.message, overLimit: overLimit)
        }
    }

    private mutating func value(_ s: inout Scanner, depth: Int) throws(SyntaxError) {
        // A member's key and its value: at most one node past the bound before this refuses.
        guard nodes.count < maxNodes else {
            overLimit = true
            throw s.error("more than \(maxNodes) values")
        }
        s.skipWhitespace()
        guard s.pos < s.end else { throw s.error("expected a value, found end of input") }
        let at = nodes.count
        let first = s.base[s.pos]
        if s.allowsNonFinite && (first == 0x4E || first == 0x49 || first == 0x2D), case let start = s.pos,
            let value = s.nonFiniteLiteral()
        {
            // NaN is a missing value (null), as model servers' own JSON encoders write it; ±Infinity a number.
            nodes.append(
                Node(
                    kind: value.isNaN ? .null : .number, flag: false, start: start, end: s.pos, number: value,
                    count: 0, next: at + 1))
            return
        }
        switch first {
        case 0x22:
            let t = try s.string()
            nodes.append(
                Node(kind: .string, flag: t.hasEscapes, start: t.start, end: t.end, number: 0, count: 0, next: at + 1))
        case 0x2D, 0x30...0x39:
            let n = try s.number()
            nodes.append(
                Node(
                    kind: .number, flag: n.isInteger, start: n.start, end: n.end, number: n.value, count: 0,
                    next: at + 1))
        case 0x74, 0x66, 0x6E:
            let start = s.pos
            let b = try s.literal()
            nodes.append(
                Node(
                    kind: b == nil ? .null : .bool, flag: b ?? false, start: start, end: s.pos, number: 0, count: 0,
                    next: at + 1))
        case 0x7B, 0x5B:
            guard depth <= maximumDepth else { throw s.error("nesting deeper than \(maximumDepth) levels") }
            let isObject = first == 0x7B
            guard depth <= expandedDepth else {
                let start = s.pos
                try s.skipValue(depth: depth)
                nodes.append(
                    Node(
                        kind: isObject ? .object : .array, flag: false, start: start, end: s.pos, number: 0,
                        count: 0, next: at + 1))
                return
            }
            nodes.append(
                Node(
                    kind: isObject ? .object : .array, flag: false, start: s.pos, end: s.pos, number: 0, count: 0,
                    next: 0))
            s.pos += 1
            var count = 0
            if isObject {
                if !s.objectIsEmpty() {
                    repeat {
                        guard depth > 1 || count < maxRootCount else {
                            overLimit = true
                            throw s.error("more than \(maxRootCount) members")
                        }
                        let key = try s.key()
                        nodes.append(
                            Node(
                                kind: .string, flag: key.hasEscapes, start: key.start, end: key.end, number: 0,
                                count: 0, next: nodes.count + 1))
                        try value(&s, depth: depth + 1)
                        count += 1
                    } while try s.objectContinues()
                }
            } else {
                s.skipWhitespace()
                if s.pos < s.end && s.base[s.pos] == 0x5D {
                    s.pos += 1
                } else {
                    repeat {
                        guard depth > 1 || count < maxRootCount else {
                            overLimit = true
                            throw s.error("more than \(maxRootCount) elements")
                        }
                        try value(&s, depth: depth + 1)
                        count += 1
                    } while try s.arrayContinues()
                }
            }
            nodes[at].count = count
            nodes[at].end = s.pos
            nodes[at].next = nodes.count
        default:
            throw s.error("expected a value, found \(s.describe(first))")
        }
    }

    /// The first child of a container (the first element, or the first member's key).
    @inline(__always) package func firstChild(_ index: Int) -> Int { index + 1 }

    /// The element indices of the array at `index` (empty for other kinds).
    package func elements(_ index: Int) -> [Int] {
        let node = nodes[index]
        guard node.kind == .array else { return [] }
        var result: [Int] = []
        result.reserveCapacity(node.count)
        var i = index + 1
        for _ in 0..<node.count {
            result.append(i)
            i = nodes[i].next
        }
        return result
    }

    /// The members of the object at `index` as (key node, value node) pairs (empty for other kinds).
    package func members(_ index: Int) -> [(key: Int, value: Int)] {
        let node = nodes[index]
        guard node.kind == .object else { return [] }
        var result: [(key: Int, value: Int)] = []
        result.reserveCapacity(node.count)
        var i = index + 1
        for _ in 0..<node.count {
            result.append((i, i + 1))
            i = nodes[i + 1].next
        }
        return result
    }

    /// The value of the last member of the object at `index` whose key is `key` (JSON's "last one wins"); nil when
    /// absent or when `index` is not an object.
    package func member(_ index: Int, _ key: String) -> Int? {
        let node = nodes[index]
        guard node.kind == .object else { return nil }
        // The key's bytes where they are (a literal's, a native string's): no copy of the String, no retain.
        if let found = key.utf8.withContiguousStorageIfAvailable({ lastMember(index, node.count, $0) }) {
            return found
        }
        var wanted = key
        return wanted.withUTF8 { lastMember(index, node.count, $0) }
    }

    /// The value of the last of the `count` members of the object at `index` whose key is `want`.
    private func lastMember(_ index: Int, _ count: Int, _ want: UnsafeBufferPointer<UInt8>) -> Int? {
        var found: Int?
        var i = index + 1
        for _ in 0..<count {
            let k = nodes[i]
            if k.flag {
                if string(i).utf8.elementsEqual(want) { found = i + 1 }
            } else if k.end - k.start == want.count,
                want.isEmpty || bytesEqual(base + k.start, want.baseAddress!, want.count)
            {
                found = i + 1
            }
            i = nodes[i + 1].next
        }
        return found
    }

    /// The bytes of the string (or key) node at `index` as written between the quotes, or of a number's text: the
    /// decoded text when the node's ``Node/flag`` says a string has no escapes. Valid while the parsed buffer is.
    @inline(__always)
    package func rawBytes(_ index: Int) -> UnsafeBufferPointer<UInt8> {
        let node = nodes[index]
        return UnsafeBufferPointer(start: base + node.start, count: node.end - node.start)
    }

    /// The decoded text of the string (or key) node at `index`.
    package func string(_ index: Int) -> String {
        let node = nodes[index]
        let token = StringToken(start: node.start, end: node.end, hasEscapes: node.flag)
        let scanner = Scanner(UnsafeBufferPointer(start: base, count: node.end))
        var scratch: [UInt8] = []
        return scanner.makeString(token, scratch: &scratch)
    }

    /// The JSON text of the number node at `index`, as written (e.g. `1`, `1.0`, `2e3`).
    package func numberText(_ index: Int) -> String {
        let node = nodes[index]
        return makeUTF8String(UnsafeBufferPointer(start: base + node.start, count: node.end - node.start))
    }
}

/// A document that is not valid JSON: the byte offset and reason of the first error.
package struct JSONTapeError: Error, Sendable, Equatable {
    package var offset: Int
    package var message: String
    /// The document is valid so far but passes a bound of the tape: more values than its `maxNodes`, or more root
    /// members or elements than its `maxCount` (not a syntax error).
    package var overLimit = false
}
