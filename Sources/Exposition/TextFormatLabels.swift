/// Reading label pairs back from the text format (`a="x",b="y"`, escapes `\\`, `\"`, `\n`): what a snapshot of a
/// collector run and the remote-write producer (which parses a rendered scrape) both need.
public enum TextFormatLabels {
    /// The pairs in `bytes` from `start`, up to a `}` between pairs (not inside a value) or the end, and where they
    /// stopped (the `}`'s index, or `bytes.count`). Values without escapes are decoded in place, without a copy of
    /// their bytes. Malformed input never traps: a truncated pair ends the list.
    public static func parse(
        _ bytes: UnsafeBufferPointer<UInt8>, from start: Int = 0
    ) -> (labels: [(name: String, value: String)], end: Int) {
        var out: [(name: String, value: String)] = []
        var i = start
        while i < bytes.count && bytes[i] != UInt8(ascii: "}") {
            let nameStart = i
            while i < bytes.count && bytes[i] != UInt8(ascii: "=") { i += 1 }
            let name = String(decoding: UnsafeBufferPointer(rebasing: bytes[nameStart..<i]), as: UTF8.self)
            i = Swift.min(i + 2, bytes.count)  // `="`
            let valueStart = i
            var escaped = false
            while i < bytes.count && bytes[i] != UInt8(ascii: "\"") {
                if bytes[i] == UInt8(ascii: "\\") {
                    escaped = true
                    i += 1
                }
                i += 1
            }
            let valueEnd = Swift.min(i, bytes.count)
            let raw = UnsafeBufferPointer(rebasing: bytes[valueStart..<valueEnd])
            out.append((name, escaped ? unescaped(raw) : String(decoding: raw, as: UTF8.self)))
            i = Swift.min(i + 1, bytes.count)  // closing quote
            if i < bytes.count && bytes[i] == UInt8(ascii: ",") { i += 1 }
        }
        return (out, i)
    }

    /// A label value with its escapes undone.
    static func unescaped(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        var value: [UInt8] = []
        value.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\") && i + 1 < bytes.count {
                i += 1
                value.append(bytes[i] == UInt8(ascii: "n") ? UInt8(ascii: "\n") : bytes[i])
            } else {
                value.append(bytes[i])
            }
            i += 1
        }
        return String(decoding: value, as: UTF8.self)
    }
}
