/// Escaping rules of the two text formats.
///
/// Label values (both formats): `\` → `\\`, `"` → `\"`, line feed → `\n`.
/// HELP text: text 0.0.4 escapes `\` and line feed only; OpenMetrics also escapes `"`.
enum Escaping {
    static func appendLabelValue(_ value: String, to out: inout [UInt8]) {
        for c in value.utf8 {
            switch c {
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\n"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            default: out.append(c)
            }
        }
    }

    static func appendHelp(_ help: String, format: ExpositionFormat, to out: inout [UInt8]) {
        for c in help.utf8 {
            switch c {
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\n"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\"") where format == .openMetrics:
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            default: out.append(c)
            }
        }
    }

    /// Renders `a="x",b="y"` (no braces) for parallel name and value lists.
    static func renderLabelPairs(names: [String], values: [String]) -> [UInt8] {
        var out: [UInt8] = []
        for (i, name) in names.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: name.utf8)
            out.append(contentsOf: [UInt8(ascii: "="), UInt8(ascii: "\"")])
            appendLabelValue(values[i], to: &out)
            out.append(UInt8(ascii: "\""))
        }
        return out
    }
}
