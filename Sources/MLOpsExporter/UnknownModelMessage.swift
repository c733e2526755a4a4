import Ingestion

/// The one-line reason of a 404 for a model that is not configured, as the ingestion API and the status page say it:
/// the name asked for (bytes outside printable ASCII escaped, at most ``maxNameBytes`` of it) and the configured
/// names (at most ``maxListed`` of them). A decoded status path (`/models/a%0d%0aX: 1`) put a line break in the
/// reason, and 400 configured names of 105 characters made each 404 to a 40-byte request 43 KB.
enum UnknownModelMessage {
    static let maxNameBytes = 256
    static let maxListed = 20

    static func text(_ name: Substring, known: [String]) -> String {
        let listed: String
        if known.isEmpty {
            listed = "(no models are configured)"
        } else if known.count <= maxListed {
            listed = "(configured: \(known.map(shown).joined(separator: ", ")))"
        } else {
            listed =
                "(configured: \(known.prefix(maxListed).map(shown).joined(separator: ", ")) and \(known.count - maxListed) more)"
        }
        return "unknown model \"\(shown(name))\" \(listed)"
    }

    /// `name` cut to its first ``maxNameBytes`` bytes of whole scalars (`…` then, as `String.utf8Prefix` cuts), with
    /// `\`, `"` and everything outside printable ASCII escaped (`\n`, `\u{2028}`: unlike `jsonStringLiteral`, which
    /// leaves line separators and bidirectional overrides as they are).
    static func shown<S: StringProtocol>(_ name: S) -> String {
        let whole = String(name)
        let kept = whole.utf8Prefix(maxBytes: maxNameBytes)
        var out = ""
        for scalar in kept.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case " "..."~": out.unicodeScalars.append(scalar)
            default: out += "\\u{\(String(scalar.value, radix: 16))}"
            }
        }
        return kept.endIndex == whole.endIndex ? out : out + "…"
    }
}
