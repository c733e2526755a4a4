extension String {
    /// The longest prefix of whole Unicode scalars whose UTF-8 form has at most `maxBytes` bytes (the whole string
    /// when it fits): where a value kept or repeated from a client's input is cut to a bound.
    public func utf8Prefix(maxBytes: Int) -> Substring {
        let utf8 = self.utf8
        guard utf8.count > maxBytes else { return self[...] }
        var end = utf8.index(utf8.startIndex, offsetBy: Swift.max(0, maxBytes))
        // Back to the start of the scalar the cut falls in (continuation bytes are 0b10xxxxxx).
        while end > utf8.startIndex, utf8[end] & 0xC0 == 0x80 { end = utf8.index(before: end) }
        return self[..<end]
    }

    /// The string whole when its UTF-8 form has at most `maxBytes` bytes, else its first Unicode scalars within
    /// `maxBytes - 3` bytes followed by `…` (3 bytes): how an answer repeats a client's value within a bound.
    public func shortened(toUTF8Bytes maxBytes: Int) -> String {
        utf8.count <= maxBytes ? self : utf8Prefix(maxBytes: maxBytes - 3) + "…"
    }
}
