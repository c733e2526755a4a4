/// Metrics computed when a scrape asks for them (process statistics, model drift scores), rather than
/// updated as events happen.
///
/// # Contract
/// - ``descriptors`` lists every family the collector writes; it is read once, at registration, where
///   the registry checks it against every other family for name clashes.
/// - ``collect(into:)`` emits the current samples through the sink, for described families only, with
///   as many label values as the descriptor has label names (in declared order). It may run on any
///   thread, concurrently with updates elsewhere, but never concurrently with itself.
/// - A collector that throws, emits something invalid (an undescribed family, a wrong label count, the
///   same series twice) or is still running when the scrape's deadline passes is skipped for that
///   scrape and counted in `<prefix>_collector_skipped_total{collector,reason}`; the rest of the scrape
///   still succeeds.
public protocol Collector: Sendable {
    /// Identifies the collector in the registry's self metrics (the `collector` label).
    var name: String { get }
    /// The families this collector writes.
    var descriptors: [MetricDescriptor] { get }
    /// Emits the current samples.
    func collect(into sink: inout CollectorSink) throws
}

/// What a collector emits into, one sample set at a time. Problems are recorded, not thrown, so that a
/// collector's code stays simple; a collector with any problem is skipped as a whole.
public struct CollectorSink: Sendable {
    let descriptors: [String: MetricDescriptor]
    var families: [String: [CollectedSeries]] = [:]
    /// The first problem found, if any.
    public private(set) var problem: String?

    init(descriptors: [MetricDescriptor]) {
        var d: [String: MetricDescriptor] = [:]
        for descriptor in descriptors { d[descriptor.name] = descriptor }
        self.descriptors = d
    }

    private mutating func add(_ name: String, _ type: MetricType, _ labelValues: [String], _ value: CollectedValue) {
        guard problem == nil else { return }
        var base = name
        if type == .counter, base.hasSuffix("_total") { base.removeLast(6) }
        if type == .info, base.hasSuffix("_info") { base.removeLast(5) }
        guard let d = descriptors[base] else {
            problem = "family \"\(base)\" was not described"
            return
        }
        guard d.type == type else {
            problem = "family \"\(base)\" is described as \(d.type.rawValue), emitted as \(type.rawValue)"
            return
        }
        guard labelValues.count == d.labelNames.count else {
            problem = "family \"\(base)\": expected \(d.labelNames.count) label values, got \(labelValues.count)"
            return
        }
        families[base, default: []].append(CollectedSeries(labelValues: labelValues, value: value))
    }

    /// A counter sample (the value must be finite and non-negative).
    public mutating func counter(_ name: String, _ labelValues: [String] = [], value: Double, created: Double? = nil) {
        guard value >= 0 && value.isFinite else {
            problem = problem ?? "counter \"\(name)\": value \(value) is not a finite non-negative number"
            return
        }
        add(name, .counter, labelValues, .counter(value, created: created))
    }

    /// A gauge sample.
    public mutating func gauge(_ name: String, _ labelValues: [String] = [], value: Double) {
        add(name, .gauge, labelValues, .gauge(value))
    }

    /// An untyped sample.
    public mutating func unknown(_ name: String, _ labelValues: [String] = [], value: Double) {
        add(name, .unknown, labelValues, .gauge(value))
    }

    /// An info sample; its labels are its content.
    public mutating func info(_ name: String, _ labelValues: [String]) {
        add(name, .info, labelValues, .info)
    }

    /// A state set: every state with whether it is on.
    public mutating func stateSet(_ name: String, _ labelValues: [String] = [], states: [(String, Bool)]) {
        guard Set(states.map { LabelKey(values: [$0.0]) }).count == states.count else {
            problem = problem ?? "state set \"\(name)\": a state is given twice"
            return
        }
        add(
            name, .stateset, labelValues,
            .stateSet(states.sorted { LabelKey.precedes([$0.0], [$1.0]) }.map { StateValue(name: $0.0, on: $0.1) }))
    }

    /// A histogram: finite upper bounds (strictly increasing), per-bucket counts (NOT cumulative), one
    /// more than the bounds for the `+Inf` bucket, and the sum of observations.
    public mutating func histogram(
        _ name: String, _ labelValues: [String] = [], bounds: [Double], counts: [UInt64], sum: Double
    ) {
        do {
            let b = try Buckets.validate(bounds, metric: name)
            guard counts.count == b.count + 1 else {
                problem = problem ?? "histogram \"\(name)\": \(b.count) bounds need \(b.count + 1) counts"
                return
            }
            add(name, .histogram, labelValues, .histogram(bounds: b, counts: counts, sum: sum))
        } catch {
            problem = problem ?? error.description
        }
    }

    /// A summary: quantile/value pairs (quantiles in (0, 1)), count and sum.
    public mutating func summary(
        _ name: String, _ labelValues: [String] = [], quantiles: [(Double, Double)], count: UInt64, sum: Double
    ) {
        guard quantiles.allSatisfy({ $0.0 > 0 && $0.0 < 1 }) else {
            problem = problem ?? "summary \"\(name)\": quantiles must lie in (0, 1)"
            return
        }
        guard Set(quantiles.map(\.0)).count == quantiles.count else {
            problem = problem ?? "summary \"\(name)\": a quantile is given twice"
            return
        }
        add(
            name, .summary, labelValues,
            .summary(
                quantiles: quantiles.sorted { $0.0 < $1.0 }.map { QuantileValue(quantile: $0.0, value: $0.1) },
                count: count, sum: sum))
    }
}

struct StateValue: Sendable {
    let name: String
    let on: Bool
}

struct QuantileValue: Sendable {
    let quantile: Double
    let value: Double
}

enum CollectedValue: Sendable {
    case counter(Double, created: Double?)
    case gauge(Double)
    case info
    case stateSet([StateValue])
    case histogram(bounds: [Double], counts: [UInt64], sum: Double)
    case summary(quantiles: [QuantileValue], count: UInt64, sum: Double)
}

struct CollectedSeries: Sendable {
    let labelValues: [String]
    let value: CollectedValue
}

/// One collected family, ready to write: label names sorted, series sorted by label values.
struct CollectedFamily: Sendable {
    let names: FamilyNames
    let sortedLabelNames: [String]
    let series: [(labels: [UInt8], value: CollectedValue)]

    /// Orders and renders labels; fails on a duplicate series.
    init(descriptor: MetricDescriptor, series raw: [CollectedSeries]) throws(CollectorFailure) {
        names = FamilyNames(descriptor)
        let order = descriptor.labelNames.indices.sorted { descriptor.labelNames[$0] < descriptor.labelNames[$1] }
        sortedLabelNames = order.map { descriptor.labelNames[$0] }
        // Label values in sorted-name order (the emitted arrays as they are when the names already are sorted).
        let keys =
            order.elementsEqual(order.indices)
            ? raw.map(\.labelValues) : raw.map { s in order.map { s.labelValues[$0] } }
        // Series order by a permutation of indices (moving the series themselves, each an array of Strings and a
        // value, cost more than the comparisons), skipped when the collector emitted them in order already.
        var permutation = Array(keys.indices)
        if keys.indices.dropFirst().contains(where: { !LabelKey.precedes(keys[$0 - 1], keys[$0]) }) {
            permutation.sort { LabelKey.precedes(keys[$0], keys[$1]) }
            for i in permutation.indices.dropFirst()
            where LabelKey(values: keys[permutation[i]]) == LabelKey(values: keys[permutation[i - 1]]) {
                throw CollectorFailure.invalid(
                    "family \"\(descriptor.name)\": series \(keys[permutation[i]]) emitted twice")
            }
        }
        let labelNames = sortedLabelNames
        series = permutation.map { (Escaping.renderLabelPairs(names: labelNames, values: keys[$0]), raw[$0].value) }
    }

    func render(into out: inout ByteWriter, context: RenderContext) {
        guard !series.isEmpty else { return }
        out.append(contentsOf: context.format == .openMetrics ? names.metadataOpenMetrics : names.metadataText)
        let om = context.format == .openMetrics
        for (labels, value) in series {
            switch value {
            case .counter(let v, let created):
                out.appendSeries(names.main, labels)
                out.appendSampleValue(v)
                out.append(UInt8(ascii: "\n"))
                if let created, om, context.emitCreated {
                    out.appendSeries(names.created, labels)
                    out.appendSampleValue(created)
                    out.append(UInt8(ascii: "\n"))
                }
            case .gauge(let v):
                out.appendSeries(names.main, labels)
                out.appendSampleValue(v)
                out.append(UInt8(ascii: "\n"))
            case .info:
                out.appendSeries(names.main, labels)
                out.append(UInt8(ascii: "1"), UInt8(ascii: "\n"))
            case .stateSet(let states):
                for state in states {
                    out.appendSeries(
                        names.main, labels,
                        Escaping.renderLabelPairs(names: [names.descriptor.name], values: [state.name]))
                    out.append(state.on ? UInt8(ascii: "1") : UInt8(ascii: "0"))
                    out.append(UInt8(ascii: "\n"))
                }
            case .histogram(let bounds, let counts, let sum):
                var running: UInt64 = 0
                for i in counts.indices {
                    running &+= counts[i]
                    let le =
                        i < bounds.count
                        ? (om ? FloatFormat.openMetricsString(bounds[i]) : FloatFormat.goString(bounds[i])) : "+Inf"
                    out.appendSeries(names.main, labels, Array("le=\"\(le)\"".utf8))
                    out.appendInteger(running)
                    out.append(UInt8(ascii: "\n"))
                }
                out.appendSumAndCount(
                    names, labels, sum: sum, count: running, negativeBounds: bounds.contains { $0 < 0 },
                    format: context.format)
            case .summary(let quantiles, let count, let sum):
                for q in quantiles where !om || OpenMetricsRules.allowsQuantile(q.value) {
                    out.appendSeries(names.main, labels, Array("quantile=\"\(FloatFormat.goString(q.quantile))\"".utf8))
                    out.appendSampleValue(q.value)
                    out.append(UInt8(ascii: "\n"))
                }
                out.appendSumAndCount(
                    names, labels, sum: sum, count: count, negativeBounds: false, format: context.format)
            }
        }
    }
}

/// Why a collector was skipped for one scrape (the `reason` label).
enum CollectorFailure: Error {
    case threw(String)
    case invalid(String)
    case deadline
    case stillRunning

    var reason: String {
        switch self {
        case .threw: return "error"
        case .invalid: return "invalid"
        case .deadline: return "deadline"
        case .stillRunning: return "still_running"
        }
    }
}
