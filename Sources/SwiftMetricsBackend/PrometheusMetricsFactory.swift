import CoreMetrics
import Exposition
import Synchronization

/// A swift-metrics backend: every metric created through swift-metrics (by Hummingbird, Vapor or your
/// own code) becomes a series of a family in one ``Exposition/Registry``, exported with everything else.
///
/// Bootstrap it once, early: `MetricsSystem.bootstrap(try PrometheusMetricsFactory(registry: registry))`.
///
/// # Mapping
/// | swift-metrics | exported as |
/// | --- | --- |
/// | `Counter`, `FloatingPointCounter` | counter `<name>_total` |
/// | `Meter`, `Gauge` (`Recorder(aggregate: false)`) | gauge `<name>` (last value; `Meter` also increments) |
/// | `Recorder` (`aggregate: true`) | histogram `<name>`, buckets from ``Configuration`` |
/// | `Timer` | histogram `<name>_seconds` (unit `seconds`), nanoseconds converted to seconds |
///
/// The label becomes the family name: every character outside `[a-zA-Z0-9_]` is replaced by `_` and
/// leading underscores are dropped (`http.server.requests` → `http_server_requests`); a counter label
/// may end in `_total` or not; a timer gets `_seconds` unless it already ends so. Dimension keys become
/// label names (sanitised the same way) and their values the label values; their order does not matter.
///
/// # Families are fixed by their first metric
/// The first metric created with a label fixes its family's type and label names. A later one with the
/// same family name but another type or other dimension keys, or whose name is invalid (empty, starting
/// with a digit, reserved label name such as `le`), or taken in the registry by a family not created
/// here, does not crash and does not vanish silently: it gets a no-op handler and is counted in
/// `<prefix>_swift_metrics_dropped_total{reason}` (see ``DropReason``; `<prefix>` is the registry's
/// self-metrics prefix, `mlops_exporter` by default or when self metrics are off). The factory logs
/// nothing.
///
/// # Bounds
/// The factory makes at most ``Configuration/maxFamilies`` families (10,000 by default; beyond, `max_families`), and
/// a family holds at most ``Configuration/maxSeriesPerFamily`` series (10,000 by default); a metric that
/// would add one more gets a no-op handler, counted `max_series`. The factory keeps one handler per series
/// until `destroy()`.
///
/// # Cost
/// Handlers are created rarely (under a lock) and used on hot paths: each holds its series handle, so
/// an update is the ``Exposition`` series update (lock-free) with no lookup. Metrics with the same label
/// and dimensions share one handler; a counter's `reset()` sets its series back to 0.
///
/// `destroy()` on a metric removes its series; a new metric with the same label and dimensions starts
/// from zero. Updates through a destroyed metric are counted by the registry as dropped
/// (`<prefix>_updates_dropped_total{reason="removed_series"}`). `Timer.preferDisplayUnit` is ignored:
/// Prometheus durations are in seconds.
///
/// Use one factory per registry: a second one cannot register its dropped-metric counter and throws.
public final class PrometheusMetricsFactory: MetricsFactory {
    /// Histogram buckets for timers and aggregating recorders: a default list for each, and lists per
    /// swift-metrics label (the label exactly as given to swift-metrics, before sanitising).
    public struct Configuration: Sendable {
        /// Bucket upper bounds, in seconds, of every timer without an entry in ``timerBuckets``.
        public var defaultTimerBuckets: [Double]
        /// Bucket upper bounds, in seconds, by timer label.
        public var timerBuckets: [String: [Double]]
        /// Bucket upper bounds of every aggregating recorder without an entry in ``recorderBuckets``.
        public var defaultRecorderBuckets: [Double]
        /// Bucket upper bounds by recorder label.
        public var recorderBuckets: [String: [Double]]
        /// The most series one family holds (distinct dimension values under one label). A metric that would
        /// add one more gets a no-op handler, counted `max_series`: a dimension fed from client input (a
        /// method token, a path) cannot grow the registry without bound. Default 10,000.
        public var maxSeriesPerFamily: Int
        /// The most families the factory creates (distinct metric labels, as sanitised). A metric that would add one
        /// more gets a no-op handler, counted `max_families`: a label built from input (a name per customer) cannot
        /// grow the registry without bound either. Default 10,000.
        public var maxFamilies: Int

        /// Creates a configuration; the defaults are ``Exposition/Buckets/defaultSeconds`` (5 ms to 10 s).
        public init(
            defaultTimerBuckets: [Double] = Buckets.defaultSeconds, timerBuckets: [String: [Double]] = [:],
            defaultRecorderBuckets: [Double] = Buckets.defaultSeconds, recorderBuckets: [String: [Double]] = [:],
            maxSeriesPerFamily: Int = 10_000, maxFamilies: Int = 10_000
        ) {
            self.maxSeriesPerFamily = maxSeriesPerFamily
            self.maxFamilies = maxFamilies
            self.defaultTimerBuckets = defaultTimerBuckets
            self.timerBuckets = timerBuckets
            self.defaultRecorderBuckets = defaultRecorderBuckets
            self.recorderBuckets = recorderBuckets
        }
    }

    /// Why a metric got a no-op handler; the `reason` label of the dropped counter.
    public enum DropReason: String, Sendable, CaseIterable {
        /// The label or a dimension key is not usable as a name once sanitised (empty, starts with a digit,
        /// duplicate, or reserved such as `le` for histograms).
        case invalidName = "invalid_name"
        /// The family exists with another type (a counter label reused by a meter, a timer by a recorder…).
        case typeConflict = "type_conflict"
        /// The family exists with other label names (other dimension keys).
        case labelNamesMismatch = "label_names_mismatch"
        /// The name is taken in the registry by a family or collector that this factory did not create.
        case alreadyRegistered = "already_registered"
        /// The family already holds ``Configuration/maxSeriesPerFamily`` series.
        case maxSeries = "max_series"
        /// The factory already made ``Configuration/maxFamilies`` families.
        case maxFamilies = "max_families"
    }

    /// The registry every metric is exported through.
    public let registry: Registry
    /// The bucket configuration.
    public let configuration: Configuration
    private let dropped: [DropReason: Exposition.Counter]
    private let families = Mutex<[String: FamilyEntry]>([:])

    /// Creates the backend over `registry` and registers its dropped counter there (all reasons at 0).
    ///
    /// Throws ``Exposition/ExpositionError/invalidOption(metric:reason:)`` for a `maxSeriesPerFamily` below 1,
    /// ``Exposition/ExpositionError/invalidBuckets(metric:reason:)`` (naming the label) for an
    /// invalid bucket list, and ``Exposition/ExpositionError/alreadyRegistered(name:reason:)`` when the
    /// registry already has a swift-metrics backend.
    public init(registry: Registry, configuration: Configuration = Configuration()) throws(ExpositionError) {
        guard configuration.maxFamilies >= 1 else {
            throw .invalidOption(metric: "swift-metrics", reason: "maxFamilies must be at least 1")
        }
        guard configuration.maxSeriesPerFamily >= 1 else {
            throw .invalidOption(metric: "swift-metrics", reason: "maxSeriesPerFamily must be at least 1")
        }
        try Self.validateBuckets(configuration.defaultTimerBuckets, for: "default timer buckets")
        try Self.validateBuckets(configuration.defaultRecorderBuckets, for: "default recorder buckets")
        for (label, buckets) in configuration.timerBuckets { try Self.validateBuckets(buckets, for: label) }
        for (label, buckets) in configuration.recorderBuckets { try Self.validateBuckets(buckets, for: label) }
        let prefix = registry.options.selfMetricsPrefix ?? "mlops_exporter"
        let family = try registry.counterFamily(
            prefix + "_swift_metrics_dropped",
            help: "swift-metrics metrics given a no-op handler, by reason "
                + "(invalid_name, type_conflict, label_names_mismatch, already_registered, max_series, max_families).",
            labelNames: ["reason"])
        var dropped: [DropReason: Exposition.Counter] = [:]
        for reason in DropReason.allCases { dropped[reason] = try family.labels(reason.rawValue) }
        self.registry = registry
        self.configuration = configuration
        self.dropped = dropped
    }

    /// The Exposition registry has no public bucket check: registering in a throwaway registry is one.
    private static func validateBuckets(_ buckets: [Double], for label: String) throws(ExpositionError) {
        do {
            _ = try Registry(options: .init(selfMetricsPrefix: nil)).histogramFamily(
                "bucket_check", help: "", labelNames: [], buckets: buckets)
        } catch {
            if case .invalidBuckets(_, let reason) = error { throw .invalidBuckets(metric: label, reason: reason) }
            throw error
        }
    }

    // MARK: - MetricsFactory

    /// Returns the handler of counter `<label>_total`, or a no-op handler (counted) on a conflict.
    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        counterHandler(label: label, dimensions: dimensions) ?? NOOPMetricsHandler.instance
    }

    /// Returns the handler of counter `<label>_total` (fractional increments), or a no-op handler.
    public func makeFloatingPointCounter(
        label: String, dimensions: [(String, String)]
    ) -> any FloatingPointCounterHandler {
        counterHandler(label: label, dimensions: dimensions) ?? NOOPMetricsHandler.instance
    }

    /// Returns the handler of gauge `<label>`, or a no-op handler.
    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        gaugeHandler(label: label, dimensions: dimensions) ?? NOOPMetricsHandler.instance
    }

    /// Returns the handler of histogram `<label>` (`aggregate`) or gauge `<label>`, or a no-op handler.
    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else {
            return gaugeHandler(label: label, dimensions: dimensions) ?? NOOPMetricsHandler.instance
        }
        let buckets = configuration.recorderBuckets[label] ?? configuration.defaultRecorderBuckets
        let handler = bind(HistogramSeriesHandler.self, kind: .histogram, label: label, dimensions: dimensions) {
            (registry, name, help, labelNames) throws(ExpositionError) in
            try registry.histogramFamily(name, help: help, labelNames: labelNames, buckets: buckets)
        }
        return handler ?? NOOPMetricsHandler.instance
    }

    /// Returns the handler of histogram `<label>_seconds`, or a no-op handler.
    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let buckets = configuration.timerBuckets[label] ?? configuration.defaultTimerBuckets
        let handler = bind(HistogramSeriesHandler.self, kind: .timer, label: label, dimensions: dimensions) {
            (registry, name, help, labelNames) throws(ExpositionError) in
            try registry.histogramFamily(
                name, help: help, unit: "seconds", labelNames: labelNames, buckets: buckets)
        }
        return handler ?? NOOPMetricsHandler.instance
    }

    /// Removes the counter's series.
    public func destroyCounter(_ handler: any CounterHandler) { destroy(handler) }

    /// Removes the floating-point counter's series.
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { destroy(handler) }

    /// Removes the meter's series.
    public func destroyMeter(_ handler: any MeterHandler) { destroy(handler) }

    /// Removes the recorder's series.
    public func destroyRecorder(_ handler: any RecorderHandler) { destroy(handler) }

    /// Removes the timer's series.
    public func destroyTimer(_ handler: any TimerHandler) { destroy(handler) }

    // MARK: - Families and handlers

    private func counterHandler(label: String, dimensions: [(String, String)]) -> CounterSeriesHandler? {
        bind(CounterSeriesHandler.self, kind: .counter, label: label, dimensions: dimensions) {
            (registry, name, help, labelNames) throws(ExpositionError) in
            try registry.counterFamily(name, help: help, labelNames: labelNames)
        }
    }

    private func gaugeHandler(label: String, dimensions: [(String, String)]) -> GaugeSeriesHandler? {
        bind(GaugeSeriesHandler.self, kind: .gauge, label: label, dimensions: dimensions) {
            (registry, name, help, labelNames) throws(ExpositionError) in
            try registry.gaugeFamily(name, help: help, labelNames: labelNames)
        }
    }

    /// Finds or creates the family and the handler of one series; `nil` (and counted) on a conflict.
    private func bind<H: SeriesHandler>(
        _: H.Type, kind: FamilyKind, label: String, dimensions: [(String, String)],
        register: (Registry, String, String, [String]) throws(ExpositionError) -> MetricFamily<H.Series>
    ) -> H? {
        guard let name = SwiftMetricsNames.familyName(label, kind: kind),
            let labels = SwiftMetricsNames.labels(dimensions)
        else { return refuse(.invalidName) }
        let labelNames = labels.keys.sorted()
        let address = SeriesAddress(family: name, key: labelNames.map { labels[$0]! }, labels: labels)
        var refusal = DropReason.invalidName
        let handler = families.withLock { families -> H? in
            let family: MetricFamily<H.Series>
            if let entry = families[name] {
                guard entry.kind == kind, let existing = entry.family as? MetricFamily<H.Series> else {
                    refusal = .typeConflict
                    return nil
                }
                guard entry.labelNames == labelNames else {
                    refusal = .labelNamesMismatch
                    return nil
                }
                if let handler = entry.handlers[address.key] as? H { return handler }
                guard entry.handlers.count < configuration.maxSeriesPerFamily else {
                    refusal = .maxSeries
                    return nil
                }
                family = existing
            } else {
                guard families.count < configuration.maxFamilies else {
                    refusal = .maxFamilies
                    return nil
                }
                do throws(ExpositionError) {
                    family = try register(registry, name, "swift-metrics \(kind.rawValue) \"\(label)\".", labelNames)
                } catch {
                    if case .alreadyRegistered = error { refusal = .alreadyRegistered }
                    return nil
                }
                families[name] = FamilyEntry(kind: kind, labelNames: labelNames, family: family)
            }
            // Cannot throw: the label names were just checked against the family's.
            guard let handler = try? H(family: family, address: address) else {
                refusal = .labelNamesMismatch
                return nil
            }
            families[name]?.handlers[address.key] = handler
            return handler
        }
        return handler ?? refuse(refusal)
    }

    private func refuse<H>(_ reason: DropReason) -> H? {
        dropped[reason]?.inc()
        return nil
    }

    /// Removes the series of a handler this factory made and forgets the handler (a no-op handler, or
    /// one already destroyed, is ignored).
    private func destroy(_ handler: AnyObject) {
        guard let handler = handler as? any SeriesHandler else { return }
        let address = handler.address
        families.withLock { families in
            guard let current = families[address.family]?.handlers[address.key], current === handler else { return }
            families[address.family]?.handlers[address.key] = nil
            handler.removeSeries()
        }
    }
}

/// What a swift-metrics metric is exported as; two metrics share a family only if their kinds match.
enum FamilyKind: String, Sendable {
    case counter, gauge, histogram, timer
}

/// A family created by the factory, with the handler of each of its series.
struct FamilyEntry {
    let kind: FamilyKind
    /// Sorted.
    let labelNames: [String]
    /// A `MetricFamily` of the kind's series type.
    let family: AnyObject
    /// By label values in the order of `labelNames`.
    var handlers: [[String]: any SeriesHandler] = [:]
}

/// Where a handler's series lives.
struct SeriesAddress: Sendable {
    /// The family name.
    let family: String
    /// Label values in sorted label-name order.
    let key: [String]
    let labels: [String: String]
}
