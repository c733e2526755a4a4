import Exposition

/// What a fixture registry contains, as plain data. The same plan is applied to registries (see
/// `Plan+Apply.swift`) and turned into the expected samples (see `Truth.swift`), so the expectation
/// is computed from the inputs, never read back from the metric objects.

/// Metric types, spelled as OpenMetrics spells them.
enum Kind: String, Sendable {
    case counter, gauge, histogram, summary, info, stateset, unknown
}

/// An exemplar to attach to a counter increment or a histogram observation.
struct ExemplarPlan: Sendable {
    var labels: [(String, String)]
    var value: Double
    var timestamp: Double?

    func make() throws -> Exemplar {
        try Exemplar(labels: Dictionary(uniqueKeysWithValues: labels), value: value, timestamp: timestamp)
    }
}

/// One update through a series handle.
enum Op: Sendable {
    /// `Counter.inc()`.
    case inc
    /// `Counter.inc(by: Int)`.
    case incInt(Int)
    /// `Counter.inc(by: Double)`.
    case incDouble(Double)
    /// `Counter.inc(by:exemplar:)`.
    case incExemplar(Double, ExemplarPlan)
    /// `Gauge.set(_:)`.
    case set(Double)
    /// `Gauge.inc(by:)`.
    case add(Double)
    /// `Gauge.dec(by:)`.
    case sub(Double)
    /// `Histogram.observe(_:)` / `Summary.observe(_:)`.
    case observe(Double)
    /// `Histogram.observe(_:exemplar:)`.
    case observeExemplar(Double, ExemplarPlan)
    /// `StateSet.set(_:_:)`.
    case state(String, Bool)
    /// `StateSet.setOnly(_:)`.
    case only(String)
}

/// One series of a registered family: its label values in declared order and the updates it gets.
struct SeriesPlan: Sendable {
    var labelValues: [String]
    var ops: [Op]
}

/// How the fixture obtains series handles: the unlabelled convenience registration
/// (`registry.counter(...)`), positional `labels([...])`, or `labels([name: value])`.
enum LabelStyle: Sendable {
    case convenience, positional, dictionary
}

/// A family registered on the registry.
struct FamilyPlan: Sendable {
    var kind: Kind
    /// The name handed to the registry (counters may carry `_total`, infos `_info`).
    var apiName: String
    /// The OpenMetrics family name.
    var name: String
    var help: String
    var unit: String = ""
    var labelNames: [String] = []
    /// Histogram bounds as given to the registry (`nil`: the default buckets).
    var buckets: [Double]? = nil
    /// Summary quantiles (`nil`: a summary without quantiles).
    var quantiles: [Double]? = nil
    /// State-set states.
    var states: [String] = []
    var series: [SeriesPlan] = []
    var style: LabelStyle = .positional
}

/// One series emitted by a collector.
enum CollectedPoint: Sendable {
    case counter(Double, created: Double?)
    case gauge(Double)
    case unknown(Double)
    case info
    case stateSet([(String, Bool)])
    /// The fixture sorts the observations into per-bucket counts for the sink itself.
    case histogram(bounds: [Double], observations: [Double])
    case summary(quantiles: [(Double, Double)], count: UInt64, sum: Double)
}

/// A family written by a collector.
struct CollectedFamilyPlan: Sendable {
    var kind: Kind
    /// The OpenMetrics family name (the descriptor's name).
    var name: String
    /// The name the collector emits under (counters may add `_total`, infos `_info`).
    var emitName: String
    var help: String
    var unit: String = ""
    var labelNames: [String] = []
    var series: [(labelValues: [String], point: CollectedPoint)] = []
}

/// Everything one registry gets.
struct RegistryPlan: Sendable {
    var families: [FamilyPlan] = []
    var collected: [CollectedFamilyPlan] = []
    var collectorName = "fixture_collector"
}
