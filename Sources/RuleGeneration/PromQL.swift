import ExporterConfig

/// Small helpers to write PromQL and YAML text.
enum PromQL {
    /// `value` rounded to 12 decimal places, so that 1 - 0.999 prints as 0.001.
    static func rounded(_ value: Double) -> Double { (value * 1e12).rounded() / 1e12 }

    /// Shortest round-trip text of `value`, without a trailing `.0` (`14.4`, `6`, `0.001`).
    static func number(_ value: Double) -> String { SLOConfiguration.text(value) }

    /// A PromQL (Go) double-quoted string literal (the same escapes as a YAML double-quoted scalar).
    static func string(_ value: String) -> String { YAMLWriter.quoted(value) }

    /// A selector `name{k="v",...}` from matchers given as (label, operator, value).
    static func selector(_ name: String, _ matchers: [(String, String, String)]) -> String {
        name + "{" + matchers.map { "\($0.0)\($0.1)\(string($0.2))" }.joined(separator: ",") + "}"
    }

    /// A Prometheus duration for whole seconds, in the largest unit that divides it (`1d`, `6h`, `30m`, `45s`).
    static func duration(seconds: Int64) -> String {
        for (unit, size) in [("d", Int64(86_400)), ("h", 3600), ("m", 60)] where seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }

    /// ``duration(seconds:)`` of a `Duration` (sub-second parts dropped).
    static func duration(_ d: Duration) -> String { duration(seconds: d.components.seconds) }

    /// The `le` matcher that selects bucket `bound` whether the exporter was scraped as text 0.0.4 (`le="1"`)
    /// or OpenMetrics (`le="1.0"`), which Prometheus 3 also normalises to.
    static func leMatcher(_ bound: Double) -> (String, String, String) {
        let text = goString(bound)
        let openMetrics = text.contains(".") || text.contains("e") ? text : text + ".0"
        if text == openMetrics { return ("le", "=", text) }
        return ("le", "=~", text.replacingDots() + "|" + openMetrics.replacingDots())
    }

    /// Go's `strconv.FormatFloat(v, 'g', -1, 64)` for positive finite values, as the exporter writes `le`.
    static func goString(_ value: Double) -> String {
        let swift = "\(value)"  // shortest round-trip digits: "0.25", "1.0", "1e-05", "1e+16"
        var mantissa = swift
        var exponent = 0
        if let e = swift.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = String(swift[..<e])
            exponent = Int(swift[swift.index(after: e)...].replacing("+", with: "")) ?? 0
        }
        // Digits and decimal point position of the mantissa.
        let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        var digits = String(parts[0]) + (parts.count > 1 ? String(parts[1]) : "")
        var point = parts[0].count + exponent
        while digits.hasPrefix("0") && digits.count > 1 {
            digits.removeFirst()
            point -= 1
        }
        while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
        let exp = point - 1
        if exp < -4 || exp >= 6 {
            var s = String(digits.prefix(1))
            if digits.count > 1 { s += "." + digits.dropFirst() }
            s += exp < 0 ? "e-" : "e+"
            s += abs(exp) < 10 ? "0\(abs(exp))" : "\(abs(exp))"
            return s
        }
        if point <= 0 { return "0." + String(repeating: "0", count: -point) + digits }
        if point >= digits.count { return digits + String(repeating: "0", count: point - digits.count) }
        return String(digits.prefix(point)) + "." + String(digits.dropFirst(point))
    }
}

extension String {
    /// The text with each `.` escaped for a regular expression (`\.`; ``PromQL/string(_:)`` then doubles
    /// the backslash inside the PromQL string literal).
    fileprivate func replacingDots() -> String { replacing(".", with: "\\.") }
}

/// Writes YAML text: block scalars for expressions, double-quoted strings for everything else.
struct YAMLWriter {
    var text = ""

    /// A YAML double-quoted scalar, which is also a valid PromQL (Go) string literal.
    static func quoted(_ value: String) -> String {
        var out = "\""
        for c in value.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if c.value < 0x20 {
                    out += "\\x" + (c.value < 0x10 ? "0" : "") + String(c.value, radix: 16)
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        return out + "\""
    }

    mutating func line(_ indent: Int, _ content: String) {
        text += String(repeating: " ", count: indent) + content + "\n"
    }

    /// `key: |-` and the lines of `value`, indented two more than `indent`.
    mutating func block(_ indent: Int, _ key: String, _ value: String) {
        line(indent, "\(key): |-")
        for l in value.split(separator: "\n", omittingEmptySubsequences: false) {
            if l.isEmpty { text += "\n" } else { line(indent + 2, String(l)) }
        }
    }

    /// `key:` and a mapping of quoted values (nothing when `pairs` is empty).
    mutating func map(_ indent: Int, _ key: String, _ pairs: [(String, String)]) {
        guard !pairs.isEmpty else { return }
        line(indent, "\(key):")
        for (k, v) in pairs { line(indent + 2, "\(k): \(Self.quoted(v))") }
    }
}
