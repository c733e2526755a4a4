import Exposition

/// One sample of a text-format exposition: its labels (`__name__` first as written, then the rest) and value.
public struct ExpositionSample: Sendable, Equatable {
    /// The sample name (`x_total`, `x_bucket`…).
    public var name: String
    /// Label names and values, unescaped, in the order written.
    public var labels: [Label]
    /// The value.
    public var value: Double

    /// A label pair.
    public struct Label: Sendable, Hashable {
        /// The label name.
        public var name: String
        /// The label value, unescaped.
        public var value: String

        /// A label.
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// A sample.
    public init(name: String, labels: [Label], value: Double) {
        self.name = name
        self.labels = labels
        self.value = value
    }
}

/// A family's `# TYPE` and `# HELP`, for remote write's metadata.
public struct ExpositionMetadata: Sendable, Equatable {
    /// The family name as on `# TYPE`.
    public var family: String
    /// `counter`, `gauge`, `histogram`, `summary`, `untyped`.
    public var type: String
    /// The `# HELP` text, unescaped (empty when none).
    public var help: String
}

/// Reads the Prometheus text format 0.0.4 (what the exporter renders; samples without timestamps, label values
/// escaped with `\\`, `\"`, `\n`) into samples and family metadata: what a scrape of `/metrics` would store, so that
/// remote write sends exactly the series a scrape would have.
public enum ExpositionText {
    /// The samples and metadata of `text`; lines that are neither samples nor `# HELP` / `# TYPE` are skipped.
    public static func parse(_ text: [UInt8]) -> (samples: [ExpositionSample], metadata: [ExpositionMetadata]) {
        var samples: [ExpositionSample] = []
        var metadata: [ExpositionMetadata] = []
        var help: [String: String] = [:]
        var start = 0
        while start < text.count {
            var end = start
            while end < text.count && text[end] != UInt8(ascii: "\n") { end += 1 }
            let line = text[start..<end]
            start = end + 1
            guard let first = line.first else { continue }
            if first == UInt8(ascii: "#") {
                let words = line.split(separator: UInt8(ascii: " "), maxSplits: 3, omittingEmptySubsequences: false)
                guard words.count >= 4 else { continue }
                let keyword = String(decoding: words[1], as: UTF8.self)
                let family = String(decoding: words[2], as: UTF8.self)
                let rest = String(decoding: words[3], as: UTF8.self)
                if keyword == "HELP" {
                    help[family] = unescapeHelp(rest)
                } else if keyword == "TYPE" {
                    metadata.append(ExpositionMetadata(family: family, type: rest, help: help[family] ?? ""))
                }
                continue
            }
            if let sample = sample(line) { samples.append(sample) }
        }
        return (samples, metadata)
    }

    /// `name{labels} value` or `name value`.
    static func sample(_ line: ArraySlice<UInt8>) -> ExpositionSample? {
        var i = line.startIndex
        while i < line.endIndex && line[i] != UInt8(ascii: "{") && line[i] != UInt8(ascii: " ") { i += 1 }
        let name = String(decoding: line[line.startIndex..<i], as: UTF8.self)
        var labels: [ExpositionSample.Label] = []
        if i < line.endIndex && line[i] == UInt8(ascii: "{") {
            let (pairs, end) = line.withUnsafeBufferPointer {
                TextFormatLabels.parse($0, from: i + 1 - line.startIndex)
            }
            labels = pairs.map { ExpositionSample.Label(name: $0.name, value: $0.value) }
            i = Swift.min(line.startIndex + end + 1, line.endIndex)  // after the `}`
        }
        while i < line.endIndex && line[i] == UInt8(ascii: " ") { i += 1 }
        var valueEnd = i
        while valueEnd < line.endIndex && line[valueEnd] != UInt8(ascii: " ") { valueEnd += 1 }
        guard let value = number(String(decoding: line[i..<valueEnd], as: UTF8.self)) else { return nil }
        return ExpositionSample(name: name, labels: labels, value: value)
    }

    static func number(_ text: String) -> Double? {
        switch text {
        case "+Inf", "Inf": return .infinity
        case "-Inf": return -.infinity
        case "NaN": return .nan
        default: return Double(text)
        }
    }

    /// HELP text escapes `\\` and `\n`.
    static func unescapeHelp(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out = ""
        var escaped = false
        for c in s {
            if escaped {
                out.append(c == "n" ? "\n" : c)
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else {
                out.append(c)
            }
        }
        return out
    }
}
