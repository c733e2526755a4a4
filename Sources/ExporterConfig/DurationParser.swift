/// Prometheus-style durations: `30s`, `5m`, `1h30m`, `1d`, `250ms`, `1w` (units ms, s, m, h, d, w, y).
public enum DurationParser {
    /// The duration `text` spells, or nil.
    public static func parse(_ text: String) -> Duration? {
        var total: Double = 0
        var number = ""
        var unit = ""
        var sawAny = false
        func flush() -> Bool {
            guard let n = Double(number), !unit.isEmpty else { return false }
            let seconds: Double
            switch unit {
            case "ms": seconds = n / 1000
            case "s": seconds = n
            case "m": seconds = n * 60
            case "h": seconds = n * 3600
            case "d": seconds = n * 86400
            case "w": seconds = n * 604_800
            case "y": seconds = n * 31_536_000
            default: return false
            }
            total += seconds
            number = ""
            unit = ""
            sawAny = true
            return true
        }
        for c in text {
            if c.isASCII && c.isNumber {
                if !unit.isEmpty { guard flush() else { return nil } }
                number.append(c)
            } else if c.isASCII && c.isLetter {
                guard !number.isEmpty else { return nil }
                unit.append(c)
            } else {
                return nil
            }
        }
        guard !number.isEmpty || !unit.isEmpty else { return sawAny ? milliseconds(total) : nil }
        guard flush(), total > 0 else { return nil }
        return milliseconds(total)
    }

    /// `seconds` in whole milliseconds; nil beyond what `Int64` milliseconds hold (about 292 million years, or an
    /// infinite sum of a number too long for a Double).
    private static func milliseconds(_ seconds: Double) -> Duration? {
        let ms = (seconds * 1000).rounded()
        // 2^63 is exact as a Double; every Double below it converts to Int64.
        guard ms < 0x1p63 else { return nil }
        return .milliseconds(Int64(ms))
    }
}
