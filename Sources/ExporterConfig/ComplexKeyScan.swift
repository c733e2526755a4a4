/// A scan of a configuration file's text, before YAML composes it, for mapping keys that can hold an alias: an alias
/// (`*name: …`), a sequence or mapping with one inside (`[*a]: …`, `{a: *b}: …`), or an explicit key (`? …`).
///
/// The configuration's keys are names; such keys serve no field, and they are the one place where an alias costs
/// work beyond the text's size: the YAML library checks a mapping's keys for duplicates by hashing them, and a key
/// that is an alias of an alias-built list (a 13 KB file, three levels of a thousand aliases) is hashed expanded:
/// minutes of CPU for each such key, while a reload waited, and every later reload and the stop behind it. The values'
/// expansion is bounded after composing (``ExpansionCheck``); the keys must be refused before.
///
/// The scan knows YAML's token boundaries well enough for that: quoted scalars (either quote, over lines), comments,
/// block scalars (`|`, `>`: their more indented lines are text), and where a token starts. It may refuse a valid
/// file only where a plain value holds ` *word:` (an alias-like word before a colon), which no field takes.
struct ComplexKeyScan {
    /// Where the first such key starts (1-based line and column, in bytes) and what it is, or nil.
    static func firstComplexKey(in text: String) -> (line: Int, column: Int, what: String)? {
        var bytes = Array(text.utf8)
        bytes.append(UInt8(ascii: "\n"))
        var i = 0
        var line = 1
        var lineStart = 0
        /// The indentation of the line holding a block scalar's indicator while its text lines are skipped.
        var blockParent: Int? = nil
        func isBlank(_ b: UInt8) -> Bool { b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") }
        func isAnchorByte(_ b: UInt8) -> Bool {
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
                || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "_")
                || b == UInt8(ascii: "-")
                || b >= 0x80
        }
        /// Whether a value indicator follows position `j`, after blanks: a colon followed by a blank or the line's end
        /// (or anything, inside a flow collection, as the YAML library reads it). `[::1]:8080` in a plain value is none.
        func colonAfter(_ j: Int, inFlow: Bool) -> Bool {
            var k = j
            while k < bytes.count && isBlank(bytes[k]) { k += 1 }
            guard k < bytes.count && bytes[k] == UInt8(ascii: ":") else { return false }
            let next = k + 1 < bytes.count ? bytes[k + 1] : UInt8(ascii: "\n")
            return inFlow || isBlank(next) || next == UInt8(ascii: "\n") || next == UInt8(ascii: "\r")
        }
        /// Nesting of flow collections (`[`, `{` where a token starts).
        var flow = 0
        /// How many of the open flow collections, from the outermost, hold an alias (those opened after the last alias
        /// do not; a collection key without one costs no more than its text: the loader then says which field it is in).
        /// A count, not a flag per level: a file of 2 MiB nests a million levels before YAML's own limit is applied.
        var withAlias = 0
        while i < bytes.count {
            // At a line's start: its indentation; the lines of a block scalar are skipped whole.
            if i == lineStart {
                var k = i
                while k < bytes.count && bytes[k] == UInt8(ascii: " ") { k += 1 }
                let indent = k - i
                let blank = k >= bytes.count || bytes[k] == UInt8(ascii: "\n") || bytes[k] == UInt8(ascii: "\r")
                if let parent = blockParent {
                    if blank || indent > parent {
                        while i < bytes.count && bytes[i] != UInt8(ascii: "\n") { i += 1 }
                        i += 1
                        line += 1
                        lineStart = i
                        continue
                    }
                    blockParent = nil
                }
            }
            let b = bytes[i]
            let previous: UInt8 = i > lineStart ? bytes[i - 1] : UInt8(ascii: " ")
            let tokenStart =
                isBlank(previous) || previous == UInt8(ascii: "[") || previous == UInt8(ascii: "{")
                || previous == UInt8(ascii: ",")
            switch b {
            case UInt8(ascii: "\n"):
                line += 1
                lineStart = i + 1
            case UInt8(ascii: "#") where isBlank(previous):
                while i + 1 < bytes.count && bytes[i + 1] != UInt8(ascii: "\n") { i += 1 }
            case UInt8(ascii: "'") where tokenStart, UInt8(ascii: "\"") where tokenStart:
                // A quoted scalar, to its closing quote (`''` inside single quotes, `\"` inside double ones).
                var k = i + 1
                while k < bytes.count {
                    if bytes[k] == UInt8(ascii: "\n") {
                        line += 1
                        lineStart = k + 1
                    } else if b == UInt8(ascii: "\"") && bytes[k] == UInt8(ascii: "\\") {
                        k += 1
                    } else if bytes[k] == b {
                        if b == UInt8(ascii: "'") && k + 1 < bytes.count && bytes[k + 1] == b {
                            k += 1
                        } else {
                            break
                        }
                    }
                    k += 1
                }
                i = k
            case UInt8(ascii: "*") where tokenStart:
                var k = i + 1
                while k < bytes.count && isAnchorByte(bytes[k]) { k += 1 }
                if k > i + 1 && colonAfter(k, inFlow: flow > 0) { return (line, i - lineStart + 1, "an alias") }
                if k > i + 1 { withAlias = flow }
            case UInt8(ascii: "[") where tokenStart, UInt8(ascii: "{") where tokenStart:
                flow += 1
            case UInt8(ascii: "]") where flow > 0, UInt8(ascii: "}") where flow > 0:
                let heldAlias = withAlias >= flow
                flow -= 1
                withAlias = min(withAlias, flow)
                if heldAlias && colonAfter(i + 1, inFlow: flow > 0) {
                    return (line, i - lineStart + 1, "a sequence or mapping holding an alias")
                }
            case UInt8(ascii: "?") where tokenStart && (isBlank(bytes[i + 1]) || bytes[i + 1] == UInt8(ascii: "\n")):
                return (line, i - lineStart + 1, "an explicit key (`?`)")
            case UInt8(ascii: "|") where tokenStart && flow == 0, UInt8(ascii: ">") where tokenStart && flow == 0:
                // A block scalar when only its indicators (and a comment) follow on the line.
                var k = i + 1
                while k < bytes.count
                    && (bytes[k] == UInt8(ascii: "+") || bytes[k] == UInt8(ascii: "-")
                        || (bytes[k] >= UInt8(ascii: "0") && bytes[k] <= UInt8(ascii: "9")))
                {
                    k += 1
                }
                while k < bytes.count && isBlank(bytes[k]) { k += 1 }
                if k < bytes.count
                    && (bytes[k] == UInt8(ascii: "\n") || bytes[k] == UInt8(ascii: "\r")
                        || bytes[k] == UInt8(ascii: "#"))
                {
                    // The parent's indentation: its key's column, after the line's `- ` entries; the last entry's
                    // dash when the scalar is the entry itself (`- |`: its text may be indented by only one more).
                    var indent = lineStart
                    var lastDash: Int? = nil
                    while indent < i
                        && (bytes[indent] == UInt8(ascii: " ")
                            || (bytes[indent] == UInt8(ascii: "-") && isBlank(bytes[indent + 1])))
                    {
                        if bytes[indent] == UInt8(ascii: "-") { lastDash = indent }
                        indent += 1
                    }
                    blockParent = (indent == i ? lastDash ?? indent : indent) - lineStart
                    while i + 1 < bytes.count && bytes[i + 1] != UInt8(ascii: "\n") { i += 1 }
                }
            default: break
            }
            i += 1
        }
        return nil
    }
}
