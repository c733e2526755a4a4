import Glibc

/// The `Date: <IMF-fixdate>\r\n` header line, rendered at most once per second.
///
/// Formatting a date per response is needlessly expensive; the value only changes once a second, so
/// each event loop keeps its own copy (no sharing, no locks) and re-renders it when `time()` (a vDSO
/// call, no system call) moves to a new second.
struct DateCache {
    private var renderedSecond: time_t = -1
    private var line: [UInt8] = []

    /// The line for the current second, re-rendered when the second changes.
    private mutating func currentLine() -> [UInt8] {
        let now = time(nil)
        if now != renderedSecond {
            renderedSecond = now
            line = Self.render(now)
        }
        return line
    }

    /// Appends `Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n` for the current second.
    mutating func appendHeaderLine<Sink: ByteSink>(to sink: inout Sink) {
        sink.write(currentLine())
    }

    /// Appends the field value alone (`Sun, 06 Nov 1994 08:49:37 GMT`), for HTTP/2 `date` fields.
    mutating func appendValue(to buffer: inout [UInt8]) {
        let line = currentLine()
        buffer.append(contentsOf: line[6..<(line.count - 2)])
    }

    /// Renders the header line for `seconds` since the epoch (RFC 9110 §5.6.7 IMF-fixdate, always GMT).
    static func render(_ seconds: time_t) -> [UInt8] {
        var seconds = seconds
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        var out: [UInt8] = []
        out.reserveCapacity(37)
        func twoDigits(_ value: Int32) {
            out.append(UInt8(ascii: "0") + UInt8(value / 10))
            out.append(UInt8(ascii: "0") + UInt8(value % 10))
        }
        out.append(contentsOf: "Date: ".utf8)
        out.append(contentsOf: days[Int(parts.tm_wday)].utf8)
        out.append(contentsOf: ", ".utf8)
        twoDigits(parts.tm_mday)
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: months[Int(parts.tm_mon)].utf8)
        out.append(UInt8(ascii: " "))
        let year = parts.tm_year + 1900
        twoDigits(year / 100)
        twoDigits(year % 100)
        out.append(UInt8(ascii: " "))
        twoDigits(parts.tm_hour)
        out.append(UInt8(ascii: ":"))
        twoDigits(parts.tm_min)
        out.append(UInt8(ascii: ":"))
        twoDigits(parts.tm_sec)
        out.append(contentsOf: " GMT\r\n".utf8)
        return out
    }
}
