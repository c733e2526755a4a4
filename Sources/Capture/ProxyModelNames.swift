#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#elseif canImport(Musl)
    import Musl
#endif

/// The configured model names, for finding a name's position from its bytes: a scan when there are at most
/// ``linearLimit`` names, else a binary search over the names sorted by their bytes once, at build time.
struct ModelNameIndex: Sendable {
    /// Up to this many names, a lookup compares them in turn.
    static let linearLimit = 8

    /// The names' bytes, back to back, in sorted order.
    let bytes: [UInt8]
    /// Each name in sorted order.
    let entries: [Entry]

    /// Where a name's bytes are in ``bytes``, and its position in the configured list.
    struct Entry {
        var start: Int
        var count: Int
        var index: Int
    }

    /// Indexes `names`; throws when one is listed twice.
    init(_ names: [String]) throws(CaptureConfigError) {
        let sorted = names.enumerated().map { (bytes: Array($0.element.utf8), index: $0.offset) }
            .sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }
        var bytes: [UInt8] = []
        var entries: [Entry] = []
        for (i, name) in sorted.enumerated() {
            if i > 0 && sorted[i - 1].bytes == name.bytes {
                throw CaptureConfigError(field: "models", message: "model \"\(names[name.index])\" is listed twice")
            }
            entries.append(Entry(start: bytes.count, count: name.bytes.count, index: name.index))
            bytes.append(contentsOf: name.bytes)
        }
        self.bytes = bytes
        self.entries = entries
    }

    /// The model `name` (bytes of the request) is: configured, by position, or unknown.
    func model(_ name: UnsafeRawBufferPointer) -> ProxyRouteMatch.Model {
        if let index = index(of: name) { return .configured(index) }
        return .unknown(String(decoding: name, as: UTF8.self))
    }

    /// The model `name` is: configured, by position, or unknown.
    func model(_ name: String) -> ProxyRouteMatch.Model {
        var name = name
        return name.withUTF8 { model(UnsafeRawBufferPointer($0)) }
    }

    /// The configured position of `name`, or nil.
    func index(of name: UnsafeRawBufferPointer) -> Int? {
        guard !entries.isEmpty else { return nil }
        return bytes.withUnsafeBytes { bytes in
            entries.withUnsafeBufferPointer { entries in
                /// The order of `entry` against `name`: bytes, then length.
                func order(_ entry: Entry) -> Int32 {
                    let common = min(entry.count, name.count)
                    if common > 0 {
                        let bytesOrder = memcmp(bytes.baseAddress! + entry.start, name.baseAddress!, common)
                        if bytesOrder != 0 { return bytesOrder }
                    }
                    return entry.count == name.count ? 0 : (entry.count < name.count ? -1 : 1)
                }
                if entries.count <= Self.linearLimit {
                    return entries.first { $0.count == name.count && order($0) == 0 }?.index
                }
                var low = 0
                var high = entries.count
                while low < high {
                    let middle = (low + high) / 2
                    let o = order(entries[middle])
                    if o == 0 { return entries[middle].index }
                    if o < 0 { low = middle + 1 } else { high = middle }
                }
                return nil
            }
        }
    }
}
