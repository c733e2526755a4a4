import Synchronization

/// Lifecycle of a series handle, kept in one atomic byte so that the hot path pays one relaxed load.
enum SeriesState {
    /// In its family; not updated since the last time-to-live sweep.
    static let idle: UInt8 = 0
    /// In its family and updated since the last sweep (the steady state).
    static let active: UInt8 = 1
    /// Dropped by the time-to-live sweep; the next update puts it back with its values.
    static let expired: UInt8 = 2
    /// Removed on purpose; updates through old handles are counted and otherwise ignored.
    static let removed: UInt8 = 3
}

/// Receives the rare events of a series' lifecycle (the family that owns it).
protocol SeriesOwner: AnyObject, Sendable {
    func reattach(_ series: AnyObject)
    func countDropped(_ reason: DropReason)
}

/// Why an update did not reach the exposition; counted per family.
enum DropReason: Int, CaseIterable {
    case removedSeries, invalidValue

    var label: String {
        switch self {
        case .removedSeries: return "removed_series"
        case .invalidValue: return "invalid_value"
        }
    }
}

/// What every series shares: its label values, their rendered bytes and its lifecycle state.
final class SeriesMeta: Sendable {
    /// Label values in the family's rendering order (label names sorted).
    let labelValues: [String]
    /// `a="x",b="y"`, escaped, without braces; empty for an unlabelled series.
    let renderedLabels: [UInt8]
    /// `name{a="x",b="y"} ` for the family's main sample name (counters, gauges, infos: their only line).
    let mainPrefix: [UInt8]
    /// Wall-clock creation time, for OpenMetrics `_created`.
    let created: Double
    let state = Atomic<UInt8>(SeriesState.active)
    /// Monotonic time of the last sweep that saw this series active; written under the family lock.
    let lastSeen = Atomic<UInt64>(0)
    weak let owner: (any SeriesOwner)?

    init(labelValues: [String], renderedLabels: [UInt8], mainName: [UInt8], owner: (any SeriesOwner)?, now: UInt64) {
        self.labelValues = labelValues
        self.renderedLabels = renderedLabels
        var prefix = mainName
        if !renderedLabels.isEmpty {
            prefix.append(UInt8(ascii: "{"))
            prefix.append(contentsOf: renderedLabels)
            prefix.append(UInt8(ascii: "}"))
        }
        prefix.append(UInt8(ascii: " "))
        self.mainPrefix = prefix
        self.created = Clock.unixSeconds()
        self.owner = owner
        self.lastSeen.store(now, ordering: .relaxed)
    }

    /// Marks the series as updated. One relaxed load in the steady state.
    @inline(__always)
    func touch(_ series: AnyObject) {
        let s = state.load(ordering: .relaxed)
        if s != SeriesState.active { touchSlow(s, series) }
    }

    @inline(never)
    func touchSlow(_ s: UInt8, _ series: AnyObject) {
        switch s {
        case SeriesState.idle:
            // A sweep may expire the series between the load and this exchange: then act on the new state.
            let (exchanged, current) = state.compareExchange(
                expected: SeriesState.idle, desired: SeriesState.active, ordering: .relaxed)
            if !exchanged && current != SeriesState.active { touchSlow(current, series) }
        case SeriesState.expired:
            owner?.reattach(series)
        default:
            owner?.countDropped(.removedSeries)
        }
    }

    func rejected() { owner?.countDropped(.invalidValue) }
}

/// A series type that can live in a ``MetricFamily``.
public protocol FamilySeries: AnyObject, Sendable {
    /// Internal per-series data; not part of the public contract.
    var _meta: SeriesMetaBox { get }
}

/// Opaque holder of a series' internal data (public only because protocol requirements must be).
public struct SeriesMetaBox: Sendable {
    let meta: SeriesMeta
}

/// Per-family rendering constants shared by all of its series.
struct FamilyNames: Sendable {
    let descriptor: MetricDescriptor
    /// Counter: `x_total`; gauge/unknown/stateset: `x`; info: `x_info`; histogram: `x_bucket`; summary: `x`.
    let main: [UInt8]
    let sum: [UInt8]
    let count: [UInt8]
    let created: [UInt8]
    /// `# HELP` and `# TYPE` lines in text 0.0.4.
    let metadataText: [UInt8]
    /// `# TYPE`, `# UNIT` and `# HELP` lines in OpenMetrics.
    let metadataOpenMetrics: [UInt8]

    init(_ d: MetricDescriptor) {
        descriptor = d
        switch d.type {
        case .counter: main = Array((d.name + "_total").utf8)
        case .histogram: main = Array((d.name + "_bucket").utf8)
        case .info: main = Array((d.name + "_info").utf8)
        default: main = Array(d.name.utf8)
        }
        sum = Array((d.name + "_sum").utf8)
        count = Array((d.name + "_count").utf8)
        created = Array((d.name + "_created").utf8)
        metadataText = Metadata.render(d, format: .text)
        metadataOpenMetrics = Metadata.render(d, format: .openMetrics)
    }
}

/// How one render call writes: the format and its options.
struct RenderContext {
    let format: ExpositionFormat
    let emitCreated: Bool
}

/// The comment lines that precede a family's samples.
enum Metadata {
    static func render(_ d: MetricDescriptor, format: ExpositionFormat) -> [UInt8] {
        var out: [UInt8] = []
        switch format {
        case .text:
            // Text 0.0.4 names a counter family by its sample name, and has no info or state set type.
            let name: String
            switch d.type {
            case .counter: name = d.name + "_total"
            case .info: name = d.name + "_info"
            default: name = d.name
            }
            if !d.help.isEmpty {
                out.append(contentsOf: "# HELP \(name) ".utf8)
                Escaping.appendHelp(d.help, format: .text, to: &out)
                out.append(UInt8(ascii: "\n"))
            }
            out.append(contentsOf: "# TYPE \(name) \(d.type.textName)\n".utf8)
        case .openMetrics:
            out.append(contentsOf: "# TYPE \(d.name) \(d.type.openMetricsName)\n".utf8)
            if !d.unit.isEmpty { out.append(contentsOf: "# UNIT \(d.name) \(d.unit)\n".utf8) }
            if !d.help.isEmpty {
                out.append(contentsOf: "# HELP \(d.name) ".utf8)
                Escaping.appendHelp(d.help, format: .openMetrics, to: &out)
                out.append(UInt8(ascii: "\n"))
            }
        }
        return out
    }
}
