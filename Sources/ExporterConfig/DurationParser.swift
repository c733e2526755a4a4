/// Prometheus-style durations: `30s`, `5m`, `1h30m`, `1d`, `250ms`, `1w` (units ms, s, m, h, d, w, y, each at most
/// once and from the largest down, as Prometheus' `model.ParseDuration` reads them: `1h1h` and `30m1h` are refused,
/// which were read as 2h and 1h30m); and Go's (``parseGo(_:)``), for the fields exporter-toolkit reads with
/// `time.ParseDuration`.
public enum DurationParser {
    /// The duration `text` spells, more than zero, or nil.
    public static func parse(_ text: String) -> Duration? {
        guard let d = parseAllowingZero(text), d > .zero else { return nil }
        return d
    }

    /// Whether `text` spells a zero duration (`0s`, `0m`, `0h0m`): a duration, where the caller wants one above zero
    /// (its message says so, not that `0s` is no duration).
    public static func isZero(_ text: String) -> Bool { parseAllowingZero(text) == .zero }

    /// The duration `text` spells (zero included), or nil.
    static func parseAllowingZero(_ text: String) -> Duration? {
        var total: Double = 0
        var number = ""
        var unit = ""
        var sawAny = false
        /// The units, largest first: each must come after the one before it.
        let order = ["y", "w", "d", "h", "m", "s", "ms"]
        var previous = -1
        func flush() -> Bool {
            guard let n = Double(number), !unit.isEmpty, let rank = order.firstIndex(of: unit), rank > previous
            else { return false }
            previous = rank
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
        guard flush() else { return nil }
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

    /// A duration in Go's syntax (`time.ParseDuration`): an optional sign, then one or more decimal numbers (a
    /// fraction allowed) each with a unit of `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`; `0` alone. Nil otherwise, or past
    /// about 292 years (Go's own limit).
    public static func parseGo(_ text: String) -> Duration? {
        var rest = Substring(text)
        var negative = false
        if rest.first == "-" || rest.first == "+" {
            negative = rest.first == "-"
            rest = rest.dropFirst()
        }
        if rest == "0" { return .zero }
        guard !rest.isEmpty else { return nil }
        let units: [(String, Double)] = [
            ("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("μs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600),
        ]
        var seconds = 0.0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, number != ".", number.filter({ $0 == "." }).count <= 1,
                let value = Double(number.hasPrefix(".") ? "0" + number : String(number))
            else { return nil }
            rest = rest.dropFirst(number.count)
            // The longest unit that matches (`ms` before `m`).
            guard let (unit, scale) = units.filter({ rest.hasPrefix($0.0) }).max(by: { $0.0.count < $1.0.count })
            else { return nil }
            rest = rest.dropFirst(unit.count)
            seconds += value * scale
        }
        guard seconds.isFinite, seconds < 9.2e9 else { return nil }
        let nanoseconds = Int64((seconds * 1e9).rounded())
        return .nanoseconds(negative ? -nanoseconds : nanoseconds)
    }
}
