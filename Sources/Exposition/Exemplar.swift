/// An OpenMetrics exemplar: a few labels (typically a trace id) and the observed value that points to
/// an example of what a counter or histogram bucket counted.
///
/// Validated when built: label names legal, label names and values together at most 128 code points
/// (OpenMetrics 1.0), value finite. The rendered text is kept, so attaching an exemplar to an
/// observation copies no strings. Exemplars are written only in OpenMetrics output.
public struct Exemplar: Sendable, Equatable {
    /// ` # {trace_id="abc"} 0.5 1520879607.789` with its leading space.
    let rendered: [UInt8]
    /// The observed value.
    public let value: Double

    /// Builds an exemplar; label pairs are rendered sorted by name.
    public init(labels: [String: String], value: Double, timestamp: Double? = nil) throws(ExpositionError) {
        var characters = 0
        for (name, labelValue) in labels {
            if let problem = Names.identifierProblem(name) {
                throw .invalidExemplar(reason: "label name \"\(name)\": \(problem)")
            }
            characters += name.unicodeScalars.count + labelValue.unicodeScalars.count
        }
        if characters > 128 {
            throw .invalidExemplar(reason: "labels have \(characters) characters, at most 128 are allowed")
        }
        guard value.isFinite else { throw .invalidExemplar(reason: "value must be finite") }
        if let t = timestamp, !t.isFinite { throw .invalidExemplar(reason: "timestamp must be finite") }
        let names = labels.keys.sorted()
        var out = ByteWriter(capacity: 512)
        defer { out.free() }
        out.append(contentsOf: Array(" # {".utf8))
        out.append(contentsOf: Escaping.renderLabelPairs(names: names, values: names.map { labels[$0]! }))
        out.append(UInt8(ascii: "}"), UInt8(ascii: " "))
        out.appendSampleValue(value)
        if let t = timestamp {
            out.append(UInt8(ascii: " "))
            out.appendSampleValue(t)
        }
        self.rendered = Array(out.bytes)
        self.value = value
    }
}
