/// The samples that collector parts emitted in one run, as values rather than bytes: what a status page or a
/// test reads instead of parsing a scrape. Built by ``Registry/snapshot(of:timeout:families:)`` from the same runs a
/// scrape uses, so its numbers are the ones `/metrics` shows at that moment.
///
/// Families are keyed by their sample name in the text format 0.0.4: a counter by `x_total`, an info by
/// `x_info`, a gauge, unknown or state set by `x`, a histogram or summary by its base name `x` (its buckets are
/// in ``Sample/histogram``, its quantiles in ``Sample/quantiles``). Samples keep emission order.
public struct MetricSnapshot: Sendable {
    /// One sample: its labels and value.
    public struct Sample: Sendable {
        /// Label names and values, unescaped, in the order they were rendered.
        public let labels: [(name: String, value: String)]
        /// The value (a histogram's or summary's: its count; an info's: 1).
        public let value: Double
        /// A histogram's buckets, if this is one.
        public let histogram: HistogramValue?
        /// A summary's quantiles, if this is one.
        public let quantiles: [(quantile: Double, value: Double)]

        /// The value of label `name`, if present.
        public func label(_ name: String) -> String? {
            for l in labels where l.name == name { return l.value }
            return nil
        }
    }

    /// A histogram's buckets: per bucket (the last is `+Inf`), its own count, not cumulative.
    public struct HistogramValue: Sendable {
        /// Upper bounds, without `+Inf`.
        public let bounds: [Double]
        /// One count per bound, then the `+Inf` bucket's.
        public let counts: [UInt64]
        /// The sum of the observations.
        public let sum: Double

        /// Observations in all buckets.
        public var count: UInt64 { counts.reduce(0, &+) }
    }

    /// One family's samples.
    public struct Family: Sendable {
        /// The family's name, type, help and labels.
        public let descriptor: MetricDescriptor
        /// Its samples, in emission order.
        public var samples: [Sample]
    }

    /// Families by sample name (see the type's documentation).
    public private(set) var families: [String: Family] = [:]
    /// Parts left out of the run (error, invalid, deadline, still running), as `collector/model`.
    public internal(set) var skipped: [String] = []

    /// An empty snapshot.
    public init() {}

    /// The samples of family `name` (empty when no part emitted it).
    public func samples(_ name: String) -> [Sample] { families[name]?.samples ?? [] }

    /// The samples of `name` whose labels include every pair of `matching`.
    public func samples(_ name: String, matching: [String: String]) -> [Sample] {
        samples(name).filter { s in matching.allSatisfy { s.label($0.key) == $0.value } }
    }

    /// The value of the first sample of `name` matching `labels`, if any.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples(name, matching: labels).first?.value
    }

    /// The sum of the values of `name` matching `labels` (0 when none).
    public func sum(_ name: String, _ labels: [String: String] = [:]) -> Double {
        samples(name, matching: labels).reduce(0) { $0 + $1.value }
    }

    /// The samples split by the value of label `name` (samples without it are left out): one snapshot per value,
    /// each with the families that have samples for it. One pass, for callers that look up one value's samples
    /// many times (a status page's card per model).
    public func partitioned(by name: String) -> [String: MetricSnapshot] {
        var out: [String: MetricSnapshot] = [:]
        for (key, family) in families {
            var groups: [String: [Sample]] = [:]
            for sample in family.samples {
                guard let value = sample.label(name) else { continue }
                groups[value, default: []].append(sample)
            }
            for (value, samples) in groups {
                out[value, default: MetricSnapshot()].families[key] = Family(
                    descriptor: family.descriptor, samples: samples)
            }
        }
        return out
    }

    mutating func add(_ descriptor: MetricDescriptor, _ series: [CollectedSeries]) {
        let key = Self.sampleName(descriptor)
        var family = families.removeValue(forKey: key) ?? Family(descriptor: descriptor, samples: [])
        for s in series {
            switch s.value {
            case .counter(let v, _), .gauge(let v), .unknown(let v):
                family.samples.append(Sample(labels: Self.labels(s.labels), value: v, histogram: nil, quantiles: []))
            case .formatted(let bytes):
                let v = Double(String(decoding: bytes, as: UTF8.self)) ?? .nan
                family.samples.append(Sample(labels: Self.labels(s.labels), value: v, histogram: nil, quantiles: []))
            case .lines(let bytes, _):
                family.samples += Self.sampleLines(bytes)
            case .info:
                family.samples.append(Sample(labels: Self.labels(s.labels), value: 1, histogram: nil, quantiles: []))
            case .stateSet(let states):
                for state in states {
                    family.samples.append(
                        Sample(
                            labels: Self.labels(s.labels) + Self.labels(state.label), value: state.on ? 1 : 0,
                            histogram: nil, quantiles: []))
                }
            case .histogram(let layout, let counts, let sum, _):
                let h = HistogramValue(bounds: layout.bounds, counts: counts, sum: sum)
                family.samples.append(
                    Sample(labels: Self.labels(s.labels), value: Double(h.count), histogram: h, quantiles: []))
            case .summary(let quantiles, let count, _):
                family.samples.append(
                    Sample(
                        labels: Self.labels(s.labels), value: Double(count), histogram: nil,
                        quantiles: quantiles.map { ($0.quantile, $0.value) }))
            }
        }
        families[key] = family
    }

    static func sampleName(_ d: MetricDescriptor) -> String {
        switch d.type {
        case .counter: return d.name + "_total"
        case .info: return d.name + "_info"
        default: return d.name
        }
    }

    /// Rendered label pairs (`a="x",b="y"`, text-format escapes `\\`, `\"`, `\n`) as names and values.
    static func labels(_ bytes: [UInt8]) -> [(name: String, value: String)] {
        bytes.withUnsafeBufferPointer { TextFormatLabels.parse($0).labels }
    }

    /// Whole sample lines (`name{labels} value\n`) of a constant block.
    static func sampleLines(_ bytes: [UInt8]) -> [Sample] {
        var out: [Sample] = []
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
            let line = bytes[start..<end]
            start = end + 1
            guard let space = line.lastIndex(of: UInt8(ascii: " ")) else { continue }
            let value = Double(String(decoding: line[(space + 1)...], as: UTF8.self)) ?? .nan
            var labels: [(name: String, value: String)] = []
            if let open = line[..<space].firstIndex(of: UInt8(ascii: "{")) {
                // The line's indices are the block's: the pairs are read in place, up to their `}`.
                labels = bytes.withUnsafeBufferPointer { TextFormatLabels.parse($0, from: open + 1).labels }
            }
            out.append(Sample(labels: labels, value: value, histogram: nil, quantiles: []))
        }
        return out
    }
}

extension Registry {
    /// Runs `parts` (joining a run that a scrape has under way, as overlapping scrapes do) and returns what
    /// they emitted as values: every family, or only those `families` selects (the parts' runs keep only those:
    /// see ``FamilySelection``). A part left out (it threw, emitted something invalid, or missed `timeout`) is
    /// counted in the registry's skip metrics as in a scrape, and named in ``MetricSnapshot/skipped``.
    public func snapshot(
        of parts: [CollectorPart], timeout: Duration = .seconds(10), families: FamilySelection? = nil
    ) -> MetricSnapshot {
        var report = RenderReport()
        let wanted = families.map { selection in parts.map { $0.wanted(by: selection) } } ?? []
        let outputs = runParts(parts, wanted: wanted, timeout: timeout, report: &report)
        var snapshot = MetricSnapshot()
        for (k, (part, output)) in zip(parts, outputs).enumerated() {
            guard let output else {
                snapshot.skipped.append("\(part.collector)/\(part.model)")
                continue
            }
            let flags = wanted.isEmpty ? nil : wanted[k]
            for (i, chunk) in output.chunks.enumerated() where !chunk.isEmpty {
                // A joined full run holds the families not selected too (no flags: the selection has them all).
                if let flags, !flags[i] { continue }
                snapshot.add(part.schema.descriptors[i], chunk)
            }
        }
        return snapshot
    }
}
