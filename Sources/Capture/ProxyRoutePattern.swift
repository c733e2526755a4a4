#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#elseif canImport(Musl)
    import Musl
#endif

/// One piece of a compiled path pattern: literal bytes (a range of the table's `literals`) or a placeholder.
struct PatternPiece: Sendable {
    enum Kind: UInt8, Sendable {
        case literal, model, version
    }

    var kind: Kind
    /// For a literal: where its bytes start in the table's `literals`, and how many there are.
    var start: Int
    var count: Int
}

/// Where a placeholder's bytes are in the path (empty when the pattern has no such placeholder).
struct PathCaptures {
    var model = 0..<0
    var version = 0..<0
}

/// A route's path pattern and methods, ready to match: plain values only, so that trying a route copies no
/// reference.
struct CompiledRoute: Sendable {
    /// Its range of the table's `pieces`.
    let pieces: Range<Int>
    /// The fewest path bytes it can match: its literal bytes plus one per placeholder.
    let minimumLength: Int
    /// Its methods: bit `i` for the table's method `i`.
    let methods: UInt64
    /// Whether the pattern has `{model}` and `{version}`.
    let hasModel: Bool
    let hasVersion: Bool

    /// Compiles the pattern and methods of `route` (at `field` in errors), appending its literal bytes and pieces to
    /// the table's, and its methods not seen yet to `methodNames` (at most 64 over the table).
    init(
        _ route: ProxyRouteTable.Route, field: String, literals: inout [UInt8], pieces: inout [PatternPiece],
        methodNames: inout [String]
    ) throws(CaptureConfigError) {
        func fail(_ message: String) -> CaptureConfigError {
            CaptureConfigError(field: "\(field).pattern", message: message)
        }
        let first = pieces.count
        var minimumLength = 0
        var found = (model: false, version: false)
        let bytes = Array(route.pattern.utf8)
        guard bytes.first == UInt8(ascii: "/") else { throw fail("must start with /") }
        var i = 0
        while i < bytes.count {
            let open = bytes[i...].firstIndex(of: UInt8(ascii: "{")) ?? bytes.count
            if open > i {
                guard !bytes[i..<open].contains(UInt8(ascii: "}")) else { throw fail("a } without its {") }
                pieces.append(PatternPiece(kind: .literal, start: literals.count, count: open - i))
                literals.append(contentsOf: bytes[i..<open])
                minimumLength += open - i
            } else if pieces.count > first {
                throw fail("two placeholders side by side")
            }
            guard open < bytes.count else { break }
            guard let close = bytes[open...].firstIndex(of: UInt8(ascii: "}")) else { throw fail("a { without its }") }
            let kind: PatternPiece.Kind
            switch String(decoding: bytes[(open + 1)..<close], as: UTF8.self) {
            case "model" where !found.model:
                found.model = true
                kind = .model
            case "version" where !found.version:
                found.version = true
                kind = .version
            case let name:
                throw fail("{\(name)} is not a placeholder, or appears twice ({model}, {version})")
            }
            pieces.append(PatternPiece(kind: kind, start: 0, count: 0))
            minimumLength += 1
            i = close + 1
        }
        guard !route.methods.isEmpty else {
            throw CaptureConfigError(field: "\(field).methods", message: "no method")
        }
        var methods: UInt64 = 0
        for method in route.methods {
            if !methodNames.contains(method) { methodNames.append(method) }
            guard let bit = methodNames.firstIndex(of: method), bit < 64 else {
                throw CaptureConfigError(field: "\(field).methods", message: "more than 64 methods over the routes")
            }
            methods |= 1 << UInt64(bit)
        }
        self.pieces = first..<pieces.count
        self.minimumLength = minimumLength
        self.methods = methods
        self.hasModel = found.model
        self.hasVersion = found.version
    }

    /// Where the placeholders are in `path` if the pattern matches it, else nil: each literal piece must be there
    /// byte for byte, and each placeholder takes one or more bytes up to the next `/`, or up to the first occurrence
    /// of the next literal's first byte, whichever comes first; the pattern must end where the path does.
    func captures(
        in path: UnsafeRawBufferPointer, literals: UnsafeBufferPointer<UInt8>, pieces: UnsafeBufferPointer<PatternPiece>
    ) -> PathCaptures? {
        var captures = PathCaptures()
        var position = 0
        for p in self.pieces {
            let piece = pieces[p]
            if piece.kind == .literal {
                guard path.count - position >= piece.count,
                    memcmp(path.baseAddress! + position, literals.baseAddress! + piece.start, piece.count) == 0
                else { return nil }
                position += piece.count
                continue
            }
            // A placeholder is followed by a literal piece or by the end of the pattern.
            let stop = p + 1 < self.pieces.upperBound ? literals[pieces[p + 1].start] : UInt8(ascii: "/")
            var end = position
            while end < path.count, path[end] != UInt8(ascii: "/"), path[end] != stop { end += 1 }
            guard end > position else { return nil }
            if piece.kind == .model { captures.model = position..<end } else { captures.version = position..<end }
            position = end
        }
        return position == path.count ? captures : nil
    }
}
