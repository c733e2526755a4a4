// MARK: - Media ranges

/// One element of an HTTP `Accept` header (RFC 9110 §12.5.1): a media range, its parameters and its
/// weight.
///
/// Type, subtype and parameter names are lowercased (they are case-insensitive); parameter values are
/// kept as sent, with quoted strings unquoted. The weight (`q`) is not among ``parameters``.
public struct MediaRange: Sendable, Hashable, CustomStringConvertible {
    /// The top-level type, lowercased, or `*`.
    public var type: String
    /// The subtype, lowercased, or `*`.
    public var subtype: String
    /// Parameters other than `q`, names lowercased, in the order sent (a repeated name keeps its first value).
    public var parameters: [String: String]
    /// The weight, 0...1 with at most three decimals; 1 when absent. 0 means "not acceptable".
    public var quality: Double

    /// Creates a media range; names are lowercased.
    public init(type: String, subtype: String, parameters: [String: String] = [:], quality: Double = 1) {
        self.type = type.lowercased()
        self.subtype = subtype.lowercased()
        var lowered: [String: String] = [:]
        for (name, value) in parameters { lowered[name.lowercased()] = value }
        self.parameters = lowered
        self.quality = quality
    }

    /// 2 for `type/subtype`, 1 for `type/*`, 0 for `*/*`: the tie-breaker between equal weights.
    public var specificity: Int {
        if type == "*" { return 0 }
        return subtype == "*" ? 1 : 2
    }

    /// The range as it could appear in a header, parameters sorted by name (for messages and tests).
    public var description: String {
        var s = "\(type)/\(subtype)"
        for name in parameters.keys.sorted() { s += ";\(name)=\(parameters[name]!)" }
        if quality != 1 { s += ";q=\(quality)" }
        return s
    }
}

// MARK: - Negotiation

/// Reads the request headers that decide how a scrape is answered: `Accept` (which exposition format),
/// `Accept-Encoding` (whether to gzip) and `X-Prometheus-Scrape-Timeout-Seconds` (how long the scraper
/// waits).
///
/// Every function is total: a missing, empty or malformed header yields the conservative answer (text
/// 0.0.4, no gzip, no timeout), never an error, as client_golang's `promhttp` does. Malformed list
/// elements are skipped and the rest of the header still counts.
public enum ContentNegotiation {
    /// Parses an `Accept` header value into its media ranges, in header order.
    ///
    /// Elements are separated by commas outside quoted strings; surrounding whitespace is ignored. An
    /// element is skipped when its media range is not `token/token`, `type/*` or `*/*` (a bare `*`,
    /// sent by old Java clients, is read as `*/*`), when a parameter is not `name=token` or
    /// `name="quoted string"`, or when `q` is not an RFC 9110 qvalue (`0`, `1`, `0.` + up to three
    /// digits, `1.` + up to three zeros).
    public static func parseAccept(_ header: String) -> [MediaRange] {
        var ranges: [MediaRange] = []
        for element in HeaderList.elements(Array(header.utf8)) {
            if let range = parseMediaRange(element) { ranges.append(range) }
        }
        return ranges
    }

    /// Chooses the exposition format for an `Accept` header value (`nil` when the header is absent).
    ///
    /// Each format weighs what its most specific matching range says (RFC 9110 §12.5.1), and the heavier one is
    /// served; between equal weights, as client_golang's `expfmt.Negotiate` (with OpenMetrics enabled), the media
    /// ranges are ordered by weight, then by specificity (`type/subtype` before `type/*` before `*/*`), then by
    /// header order, and the first one this exporter can serve decides:
    /// - `text/plain` with `version=0.0.4` or no version, `text/*` and `*/*` → ``ExpositionFormat/text``
    ///   (so curl's `*/*` gets text);
    /// - `application/openmetrics-text` with `version=1.0.0` or no version, and `application/*` →
    ///   ``ExpositionFormat/openMetrics``.
    ///
    /// Ranges with weight 0 are never chosen, and a format is not produced through a wildcard when a more
    /// specific range gives it weight 0 (`*/*, text/plain;q=0` → OpenMetrics).
    ///
    /// `application/openmetrics-text;version=0.0.1` (what Prometheus asked for before OpenMetrics 1.0.0, and with
    /// `scrape_protocols: [OpenMetricsText0.0.1]`) is served OpenMetrics 1.0.0, as client_golang's
    /// `NegotiateIncludingOpenMetrics` serves it (1.0.0 is the successor of the 0.0.1 draft with the same syntax, and
    /// Prometheus picks its parser by media type alone); a range naming 1.0.0 is more specific than one naming 0.0.1,
    /// so 1.0.0 refused (`q=0`) is not brought back by the draft. Before, a 0.0.1 range only counted when nothing
    /// else matched: `openmetrics-text;version=0.0.1, */*;q=0.1` got text. Otherwise the answer is text 0.0.4.
    public static func format(accept: String?) -> ExpositionFormat {
        guard let accept else { return .text }
        return format(ranges: parseAccept(accept))
    }

    /// Chooses the format from every `Accept` field line of a request, read as one comma-separated list.
    public static func format(acceptLines: [String]) -> ExpositionFormat {
        format(ranges: acceptLines.flatMap { parseAccept($0) })
    }

    /// Chooses the format from parsed media ranges; see ``format(accept:)``.
    public static func format(ranges: [MediaRange]) -> ExpositionFormat {
        let ordered = ranges.enumerated().sorted { a, b in
            if a.element.quality != b.element.quality { return a.element.quality > b.element.quality }
            if a.element.specificity != b.element.specificity {
                return a.element.specificity > b.element.specificity
            }
            return a.offset < b.offset
        }.map(\.element)
        let preference: [ExpositionFormat] = [.text, .openMetrics]
        let weights = preference.map { effectiveQuality(of: $0, in: ranges) }
        // Each format weighs what its most specific matching range says (RFC 9110 §12.5.1): the heavier one is
        // served (`application/*;q=0.9, application/openmetrics-text;q=0.1, text/plain;q=0.5` → text); between equal
        // weights, the order above decides.
        let best = weights.compactMap { $0 }.max() ?? 0
        // Every format refused (weight 0) or unmatched: none is chosen through a range (a range of weight 1 chose a
        // format that a more specific range refused: `application/openmetrics-text, …;version=1.0.0;q=0`).
        for range in ordered where range.quality > 0 && best > 0 {
            for (i, format) in preference.enumerated() where matches(range, format) && (weights[i] ?? 1) == best {
                return format
            }
        }
        return .text
    }

    /// Whether to gzip the response, from an `Accept-Encoding` header value (`nil` when absent).
    ///
    /// gzip (or its alias `x-gzip`) is used when its weight is above 0 (an explicit `gzip`/`x-gzip`
    /// element wins over `*`) and not below an explicitly listed `identity`. No header, an empty
    /// header, `identity`, `gzip;q=0` and `*;q=0` mean no gzip. Codings are case-insensitive;
    /// elements with a malformed weight are skipped.
    public static func acceptsGzip(_ acceptEncoding: String?) -> Bool {
        guard let acceptEncoding else { return false }
        return acceptsGzip(acceptEncodingLines: [acceptEncoding])
    }

    /// Whether to gzip the response, from every `Accept-Encoding` field line of a request.
    public static func acceptsGzip(acceptEncodingLines: [String]) -> Bool {
        var gzip: Double?
        var star: Double?
        var identity: Double?
        for line in acceptEncodingLines {
            for element in HeaderList.elements(Array(line.utf8)) {
                guard let (coding, q) = parseCoding(element) else { continue }
                switch coding {
                case "gzip", "x-gzip": gzip = max(gzip ?? 0, q)
                case "*": star = max(star ?? 0, q)
                case "identity": identity = max(identity ?? 0, q)
                default: break
                }
            }
        }
        guard let q = gzip ?? star, q > 0 else { return false }
        return q >= (identity ?? 0)
    }

    /// The scraper's timeout from `X-Prometheus-Scrape-Timeout-Seconds` (Prometheus sends e.g. `10` or
    /// `0.5`), or `nil` when the header is absent or not a positive, finite number of seconds (values
    /// over 10^12 s are ignored as nonsense).
    public static func scrapeTimeout(_ header: String?) -> Duration? {
        guard let header else { return nil }
        let trimmed = HeaderList.trim(Array(header.utf8)[...])
        guard !trimmed.isEmpty, let seconds = Double(String(decoding: trimmed, as: UTF8.self)),
            seconds.isFinite, seconds > 0, seconds <= 1e12
        else { return nil }
        return .seconds(seconds)
    }

    // MARK: Matching

    /// Whether `range` names `format` (wildcards included, versions checked).
    static func matches(_ range: MediaRange, _ format: ExpositionFormat) -> Bool {
        let version = range.parameters["version"]
        if range.type == "*" { return version == nil }
        switch format {
        case .text:
            guard range.type == "text" else { return false }
            if range.subtype == "*" { return version == nil }
            return range.subtype == "plain" && (version == nil || version == "0.0.4")
        case .openMetrics:
            guard range.type == "application" else { return false }
            if range.subtype == "*" { return version == nil }
            return range.subtype == "openmetrics-text" && (version == nil || version == "1.0.0" || version == "0.0.1")
        }
    }

    /// The weight the client gives `format`: that of the most specific matching range (an exact version counts as
    /// more specific than none; the OpenMetrics draft's, which the 1.0.0 output answers for Prometheus 2.x before
    /// 2.5, as less specific than any range but `*/*`: `openmetrics-text;version=0.0.1;q=0, openmetrics-text` turned
    /// OpenMetrics down and got text, RFC 9110 §12.5.1 giving 1.0.0 the unversioned range's q=1), the highest if
    /// several tie; `nil` if none matches.
    static func effectiveQuality(of format: ExpositionFormat, in ranges: [MediaRange]) -> Double? {
        var best: (specificity: Int, quality: Double)?
        for range in ranges where matches(range, format) {
            let version = range.parameters["version"]
            // */* 1, type/* 4, the draft 2 (above */* only: the draft alone still asks for OpenMetrics), type/subtype
            // 7, with an exact version 8.
            let specificity =
                isOpenMetricsDraft(range) ? 2 : range.specificity * 3 + (version == nil ? 1 : 2)
            if best == nil || specificity > best!.specificity
                || (specificity == best!.specificity && range.quality > best!.quality)
            {
                best = (specificity, range.quality)
            }
        }
        return best?.quality
    }

    static func isOpenMetricsDraft(_ range: MediaRange) -> Bool {
        range.type == "application" && range.subtype == "openmetrics-text" && range.parameters["version"] == "0.0.1"
    }

    // MARK: Parsing

    static func parseMediaRange(_ element: ArraySlice<UInt8>) -> MediaRange? {
        let parts = HeaderList.split(element, on: UInt8(ascii: ";"))
        let rangeBytes = HeaderList.trim(parts[0])
        let type: String
        let subtype: String
        if rangeBytes.elementsEqual("*".utf8) {
            (type, subtype) = ("*", "*")
        } else {
            guard let slash = rangeBytes.firstIndex(of: UInt8(ascii: "/")) else { return nil }
            let t = rangeBytes[..<slash]
            let s = rangeBytes[(slash + 1)...]
            guard HeaderList.isToken(t), HeaderList.isToken(s) else { return nil }
            type = HeaderList.lowercased(t)
            subtype = HeaderList.lowercased(s)
            if type == "*" && subtype != "*" { return nil }
        }
        var parameters: [String: String] = [:]
        var quality: Double?
        for part in parts.dropFirst() {
            let trimmed = HeaderList.trim(part)
            if trimmed.isEmpty { continue }  // "text/plain;;q=1" is allowed by the grammar
            guard let (name, value) = HeaderList.parameter(trimmed) else { return nil }
            if name == "q" {
                if quality == nil {
                    guard let q = HeaderList.qvalue(value) else { return nil }
                    quality = q
                }
            } else if parameters[name] == nil {
                parameters[name] = value
            }
        }
        var range = MediaRange(type: type, subtype: subtype, quality: quality ?? 1)
        range.parameters = parameters
        return range
    }

    static func parseCoding(_ element: ArraySlice<UInt8>) -> (String, Double)? {
        let parts = HeaderList.split(element, on: UInt8(ascii: ";"))
        let codingBytes = HeaderList.trim(parts[0])
        guard HeaderList.isToken(codingBytes) else { return nil }
        var quality: Double?
        for part in parts.dropFirst() {
            let trimmed = HeaderList.trim(part)
            if trimmed.isEmpty { continue }
            guard let (name, value) = HeaderList.parameter(trimmed) else { return nil }
            if name == "q" && quality == nil {
                guard let q = HeaderList.qvalue(value) else { return nil }
                quality = q
            }
        }
        return (HeaderList.lowercased(codingBytes), quality ?? 1)
    }
}

// MARK: - Scrape request options

/// What a scrape request asks for, read from its headers by ``ContentNegotiation``.
public struct ScrapeNegotiation: Sendable, Hashable {
    /// The exposition format to answer with.
    public var format: ExpositionFormat
    /// Whether to send the body with `Content-Encoding: gzip`.
    public var gzip: Bool
    /// How long the scraper waits for the response, if it said so.
    public var scrapeTimeout: Duration?

    /// Negotiates from the field lines of a request (pass `headers.values(for: "Accept")` and so on;
    /// an empty array means the header is absent).
    public init(acceptLines: [String], acceptEncodingLines: [String], scrapeTimeout: String?) {
        format = ContentNegotiation.format(acceptLines: acceptLines)
        gzip = ContentNegotiation.acceptsGzip(acceptEncodingLines: acceptEncodingLines)
        self.scrapeTimeout = ContentNegotiation.scrapeTimeout(scrapeTimeout)
    }
}

// MARK: - RFC 9110 list and token helpers

/// Byte-level helpers for comma-separated header lists (RFC 9110 §5.6).
enum HeaderList {
    static func isWhitespace(_ b: UInt8) -> Bool { b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") }

    static func trim(_ s: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var s = s
        while let f = s.first, isWhitespace(f) { s.removeFirst() }
        while let l = s.last, isWhitespace(l) { s.removeLast() }
        return s
    }

    /// tchar: `!#$%&'*+-.^_`|~`, digits and letters.
    static func isTokenChar(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    static func isToken(_ s: ArraySlice<UInt8>) -> Bool { !s.isEmpty && s.allSatisfy(isTokenChar) }

    static func lowercased(_ s: ArraySlice<UInt8>) -> String {
        String(decoding: s.lazy.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    /// Splits on `separator` outside quoted strings (a backslash escapes the next byte inside quotes).
    static func split(_ s: ArraySlice<UInt8>, on separator: UInt8) -> [ArraySlice<UInt8>] {
        var parts: [ArraySlice<UInt8>] = []
        var start = s.startIndex
        var inQuotes = false
        var i = s.startIndex
        while i < s.endIndex {
            let b = s[i]
            if inQuotes {
                if b == UInt8(ascii: "\\") {
                    i += 1
                } else if b == UInt8(ascii: "\"") {
                    inQuotes = false
                }
            } else if b == UInt8(ascii: "\"") {
                inQuotes = true
            } else if b == separator {
                parts.append(s[start..<i])
                start = i + 1
            }
            i += 1
        }
        parts.append(s[start..<s.endIndex])
        return parts
    }

    /// The non-empty elements of a comma-separated list.
    static func elements(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        split(bytes[...], on: UInt8(ascii: ",")).map(trim).filter { !$0.isEmpty }
    }

    /// `name=value` with a token name (lowercased) and a token or quoted-string value (unquoted).
    /// Whitespace around `=` is tolerated.
    static func parameter(_ s: ArraySlice<UInt8>) -> (String, String)? {
        guard let eq = s.firstIndex(of: UInt8(ascii: "=")) else { return nil }
        let name = trim(s[..<eq])
        let rawValue = trim(s[(eq + 1)...])
        guard isToken(name) else { return nil }
        if rawValue.first == UInt8(ascii: "\"") {
            var value: [UInt8] = []
            var i = rawValue.startIndex + 1
            while i < rawValue.endIndex {
                let b = rawValue[i]
                if b == UInt8(ascii: "\\") {
                    i += 1
                    guard i < rawValue.endIndex else { return nil }
                    value.append(rawValue[i])
                } else if b == UInt8(ascii: "\"") {
                    guard i == rawValue.endIndex - 1 else { return nil }  // text after the closing quote
                    return (lowercased(name), String(decoding: value, as: UTF8.self))
                } else {
                    value.append(b)
                }
                i += 1
            }
            return nil  // unterminated quoted string
        }
        guard isToken(rawValue) else { return nil }
        return (lowercased(name), String(decoding: rawValue, as: UTF8.self))
    }

    /// An RFC 9110 qvalue: `0[.ddd]` or `1[.000]`, at most three decimals.
    static func qvalue(_ s: String) -> Double? {
        let b = Array(s.utf8)
        guard let first = b.first, first == UInt8(ascii: "0") || first == UInt8(ascii: "1") else { return nil }
        var thousandths = 0
        if b.count > 1 {
            guard b[1] == UInt8(ascii: "."), b.count <= 5 else { return nil }
            var scale = 100
            for d in b[2...] {
                guard d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") else { return nil }
                thousandths += Int(d - UInt8(ascii: "0")) * scale
                scale /= 10
            }
        }
        if first == UInt8(ascii: "1") {
            guard thousandths == 0 else { return nil }
            return 1
        }
        return Double(thousandths) / 1000
    }
}
