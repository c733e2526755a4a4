/// What a collector emits into at scrape time, through the handles of its ``CollectorSchema``.
///
/// Problems are recorded, not thrown, so that a collector's code stays simple: an emission through a handle
/// of another schema, with a label set of other label names, a wrong number of label values, an invalid
/// value (a negative or non-finite counter, histogram counts that do not match the bounds) makes the
/// registry drop everything this collector emitted in this scrape, and count it (reason `invalid`).
///
/// Each emission appends to its family's list, found by the handle's index: no name lookup.
public struct CollectorSink: Sendable {
    let schema: Int
    let descriptors: [MetricDescriptor]
    var chunks: [[CollectedSeries]]
    /// Per family of the schema, whether its samples are kept (empty: all are).
    let wanted: [Bool]
    /// The first problem found, if any.
    public private(set) var problem: String?

    /// A sink for `schema`'s families, each list sized for `sizes[i]` series (the previous run's, when known).
    /// With `wanted` (one flag per family of the schema), the samples of the other families are checked as
    /// usual, then dropped: a run for a reader of a few families (a status page) keeps only those.
    init(schema: CollectorSchema, sizes: [Int] = [], wanted: [Bool] = []) {
        self.schema = schema.id
        descriptors = schema.descriptors
        chunks = Array(repeating: [], count: schema.descriptors.count)
        self.wanted = wanted.count == chunks.count ? wanted : []
        if sizes.count == chunks.count {
            for i in chunks.indices where sizes[i] > 0 && (self.wanted.isEmpty || self.wanted[i]) {
                chunks[i].reserveCapacity(sizes[i])
            }
        }
    }

    /// Whether this run keeps the samples of `family`. Every sample may be emitted whatever the answer (the
    /// others are dropped); a collector asks to skip the work of computing samples nobody reads in this run.
    @inline(__always)
    public func wants(_ family: FamilyHandle) -> Bool {
        wanted.isEmpty || (family.schema == schema && family.index < wanted.count && wanted[family.index])
    }

    /// ``wants(_:)-(FamilyHandle)`` for a typed handle.
    @inline(__always)
    public func wants<Kind>(_ h: TypedHandle<Kind>) -> Bool { wants(h.family) }

    private mutating func fail(_ message: @autoclosure () -> String) {
        if problem == nil { problem = message() }
    }

    @inline(__always)
    private mutating func add(
        _ family: FamilyHandle, _ labels: LabelSet, _ value: CollectedValue, checkingLabels: Bool = true
    ) {
        guard family.schema == schema, family.index < chunks.count else {
            fail("family \"\(family.descriptor.name)\" was not declared by this collector's schema")
            return
        }
        guard !checkingLabels || labels.namesKey == family.labelNames.key else {
            fail(
                "family \"\(family.descriptor.name)\": label set {\(labels.rendered)} was not built for its labels \(family.descriptor.labelNames)"
            )
            return
        }
        guard wanted.isEmpty || wanted[family.index] else { return }
        chunks[family.index].append(CollectedSeries(labels: labels.bytes, hash: labels.hash, value: value))
    }

    /// Renders `values` for `family`, or records the problem.
    private mutating func labelSet(_ family: FamilyHandle, _ values: [String]) -> LabelSet? {
        do {
            return try LabelSet(names: family.labelNames, values: values, metric: family.descriptor.name)
        } catch {
            fail(error.description)
            return nil
        }
    }

    // MARK: Counters

    /// A counter sample (the value must be finite and non-negative); `created` is the counter's creation time
    /// (Unix seconds), written as `_created` in OpenMetrics when the registry emits those.
    public mutating func counter(_ h: CounterHandle, _ labels: LabelSet = .none, value: Double, created: Double? = nil)
    {
        guard value >= 0 && value.isFinite else {
            fail("counter \"\(h.family.descriptor.name)\": value \(value) is not a finite non-negative number")
            return
        }
        add(h.family, labels, .counter(value, created: created))
    }

    /// A counter sample with label values rendered now (prefer a prebuilt ``LabelSet`` for repeated series).
    public mutating func counter(_ h: CounterHandle, _ values: [String], value: Double, created: Double? = nil) {
        guard let labels = labelSet(h.family, values) else { return }
        counter(h, labels, value: value, created: created)
    }

    // MARK: Gauges

    /// A gauge sample.
    public mutating func gauge(_ h: GaugeHandle, _ labels: LabelSet = .none, value: Double) {
        add(h.family, labels, .gauge(value))
    }

    /// A gauge sample whose value was formatted once (a constant: a reference share, a threshold).
    public mutating func gauge(_ h: GaugeHandle, _ labels: LabelSet = .none, value: FormattedValue) {
        add(h.family, labels, .formatted(value.bytes))
    }

    /// Gauge samples rendered once, labels and values (a column's reference shares, per bin): the scrape copies
    /// the block's bytes.
    public mutating func gauge(_ h: GaugeHandle, constant block: ConstantSeries) {
        guard block.family.schema == h.family.schema, block.family.index == h.family.index else {
            fail(
                "family \"\(h.family.descriptor.name)\": a constant block built for \"\(block.family.descriptor.name)\""
            )
            return
        }
        add(h.family, .none, .lines(block.bytes, hashes: block.hashes), checkingLabels: false)
    }

    /// A gauge sample with label values rendered now.
    public mutating func gauge(_ h: GaugeHandle, _ values: [String], value: Double) {
        guard let labels = labelSet(h.family, values) else { return }
        add(h.family, labels, .gauge(value))
    }

    /// An untyped sample.
    public mutating func unknown(_ h: UnknownHandle, _ labels: LabelSet = .none, value: Double) {
        add(h.family, labels, .unknown(value))
    }

    /// An untyped sample with label values rendered now.
    public mutating func unknown(_ h: UnknownHandle, _ values: [String], value: Double) {
        guard let labels = labelSet(h.family, values) else { return }
        add(h.family, labels, .unknown(value))
    }

    // MARK: Info and state sets

    /// An info sample; its labels are its content.
    public mutating func info(_ h: InfoHandle, _ labels: LabelSet) {
        add(h.family, labels, .info)
    }

    /// An info sample with label values rendered now.
    public mutating func info(_ h: InfoHandle, _ values: [String]) {
        guard let labels = labelSet(h.family, values) else { return }
        add(h.family, labels, .info)
    }

    /// A state set: every state with whether it is on.
    public mutating func stateSet(_ h: StateSetHandle, _ labels: LabelSet = .none, states: [(String, Bool)]) {
        let name = h.family.descriptor.name
        guard Set(states.map { LabelKey(values: [$0.0]) }).count == states.count else {
            fail("state set \"\(name)\": a state is given twice")
            return
        }
        let sorted = states.sorted { LabelKey.precedes([$0.0], [$1.0]) }
        add(
            h.family, labels,
            .stateSet(
                sorted.map { StateValue(label: Escaping.renderLabelPairs(names: [name], values: [$0.0]), on: $0.1) }))
    }

    /// A state set with label values rendered now.
    public mutating func stateSet(_ h: StateSetHandle, _ values: [String], states: [(String, Bool)]) {
        guard let labels = labelSet(h.family, values) else { return }
        stateSet(h, labels, states: states)
    }

    // MARK: Histograms and summaries

    /// A histogram: per-bucket counts (NOT cumulative), one more than the bounds for the `+Inf` bucket, and
    /// the sum of observations. `negativeObserved`: a value below zero was ever observed (kept by the caller once
    /// seen), so that OpenMetrics, whose `_sum` is a counter, leaves `_sum` and `_count` out from then on rather than
    /// showing a sum that goes down, or one that comes and goes with its sign.
    public mutating func histogram(
        _ h: HistogramHandle, _ labels: LabelSet = .none, bounds: HistogramBounds, counts: [UInt64], sum: Double,
        negativeObserved: Bool = false
    ) {
        guard counts.count == bounds.layout.bounds.count + 1 else {
            fail(
                "histogram \"\(h.family.descriptor.name)\": \(bounds.layout.bounds.count) bounds need \(bounds.layout.bounds.count + 1) counts"
            )
            return
        }
        add(
            h.family, labels,
            .histogram(bounds.layout, counts: counts, sum: sum, negativeObserved: negativeObserved))
    }

    /// A histogram with bounds validated and label values rendered now.
    public mutating func histogram(
        _ h: HistogramHandle, _ values: [String], bounds: [Double], counts: [UInt64], sum: Double
    ) {
        guard let labels = labelSet(h.family, values) else { return }
        do {
            histogram(
                h, labels, bounds: try HistogramBounds(bounds, metric: h.family.descriptor.name), counts: counts,
                sum: sum)
        } catch {
            fail(error.description)
        }
    }

    /// A summary: quantile/value pairs (quantiles in (0, 1)), count and sum.
    public mutating func summary(
        _ h: SummaryHandle, _ labels: LabelSet = .none, quantiles: [(Double, Double)], count: UInt64, sum: Double
    ) {
        let name = h.family.descriptor.name
        guard quantiles.allSatisfy({ $0.0 > 0 && $0.0 < 1 }) else {
            fail("summary \"\(name)\": quantiles must lie in (0, 1)")
            return
        }
        guard Set(quantiles.map(\.0)).count == quantiles.count else {
            fail("summary \"\(name)\": a quantile is given twice")
            return
        }
        add(
            h.family, labels,
            .summary(
                quantiles: quantiles.sorted { $0.0 < $1.0 }.map { QuantileValue(quantile: $0.0, value: $0.1) },
                count: count, sum: sum))
    }

    /// A summary with label values rendered now.
    public mutating func summary(
        _ h: SummaryHandle, _ values: [String], quantiles: [(Double, Double)], count: UInt64, sum: Double
    ) {
        guard let labels = labelSet(h.family, values) else { return }
        summary(h, labels, quantiles: quantiles, count: count, sum: sum)
    }
}

/// A sample value formatted once, for a series whose value does not change from one scrape to the next (a
/// reference share, a configured threshold): the scrape copies its bytes instead of formatting the number.
public struct FormattedValue: Sendable {
    /// The value.
    public let value: Double
    let bytes: [UInt8]

    /// Formats `value` as every sample value is formatted (integers plainly, else the shortest round trip).
    public init(_ value: Double) {
        self.value = value
        var out = ByteWriter(capacity: 32)
        out.appendSampleValue(value)
        bytes = Array(out.bytes)
        out.free()
    }
}

/// Gauge series whose labels and values do not change from one scrape to the next (a drift column's reference
/// share per bin), rendered once into sample lines, which a scrape copies as one block.
public struct ConstantSeries: Sendable {
    let family: FamilyHandle
    let bytes: [UInt8]
    let hashes: [UInt64]

    /// Renders `series` for family `h`; throws when a label set does not fit the family or one is given twice.
    public init(_ h: GaugeHandle, _ series: [(LabelSet, FormattedValue)]) throws(ExpositionError) {
        family = h.family
        let name = FamilyNames(h.family.descriptor).main
        var bytes: [UInt8] = []
        var hashes: [UInt64] = []
        var seen = Set<UInt64>()
        for (labels, value) in series {
            guard labels.namesKey == h.family.labelNames.key, seen.insert(labels.hash).inserted else {
                throw .invalidOption(
                    metric: h.family.descriptor.name,
                    reason: "constant series {\(labels.rendered)}: labels of another family, or given twice")
            }
            bytes += name
            if !labels.bytes.isEmpty { bytes += [UInt8(ascii: "{")] + labels.bytes + [UInt8(ascii: "}")] }
            bytes.append(UInt8(ascii: " "))
            bytes += value.bytes
            bytes.append(UInt8(ascii: "\n"))
            hashes.append(labels.hash)
        }
        self.bytes = bytes
        self.hashes = hashes
    }
}

struct StateValue: Sendable {
    /// `name="state"`, rendered.
    let label: [UInt8]
    let on: Bool
}

struct QuantileValue: Sendable {
    let quantile: Double
    let value: Double
}

enum CollectedValue: Sendable {
    case counter(Double, created: Double?)
    case gauge(Double)
    case unknown(Double)
    /// A gauge's value, already formatted.
    case formatted([UInt8])
    /// Whole gauge sample lines rendered once, and the hash of each line's labels.
    case lines([UInt8], hashes: [UInt64])
    case info
    case stateSet([StateValue])
    case histogram(HistogramLayout, counts: [UInt64], sum: Double, negativeObserved: Bool)
    case summary(quantiles: [QuantileValue], count: UInt64, sum: Double)
}

/// One emitted series: its rendered labels, their hash (for duplicate checks) and its value; or a block of
/// constant lines (``CollectedValue/lines(_:hashes:)``), whose `hash` combines those of its lines.
struct CollectedSeries: Sendable {
    let labels: [UInt8]
    let hash: UInt64
    let value: CollectedValue

    init(labels: [UInt8], hash: UInt64, value: CollectedValue) {
        self.labels = labels
        self.value = value
        if case .lines(_, let hashes) = value {
            var sequence = HashSequence()
            for h in hashes { sequence.add(h) }
            self.hash = sequence.value
        } else {
            self.hash = hash
        }
    }

    var isBlock: Bool {
        if case .lines = value { return true }
        return false
    }
}
