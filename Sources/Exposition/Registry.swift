import Dispatch
import Synchronization

/// The set of metric families and collectors that one `/metrics` endpoint exposes, and the renderer
/// that writes them in either exposition format.
///
/// # Contract
/// - Registering a name that is already taken (by a family or a collector, including any sample name
///   such as `foo_total` or `foo_bucket` that a family writes) throws ``ExpositionError/alreadyRegistered(name:reason:)``,
///   whose reason says whether the type, label names or help differ. There is no silent get-or-create.
/// - Output is deterministic: families sorted by name, label names sorted; a registered family's series
///   by label values, a collected family's series in part order, then in each part's emission order. The
///   same state always renders to the same bytes.
/// - Collectors (and each part of a ``CollectorGroup``) run concurrently at render time, bounded by the
///   render's timeout; one that fails or is late is left out and counted, and the rest of the output is
///   still written.
/// - Self metrics, under ``Options/selfMetricsPrefix``, computed at render time:
///   `<prefix>_collector_skipped_total{collector,model,reason}`,
///   `<prefix>_collector_duration_seconds{collector,model}` and `<prefix>_updates_dropped_total{metric,reason}`.
public final class Registry: Sendable {
    /// Registry-wide options.
    public struct Options: Sendable {
        /// Write OpenMetrics `_created` samples for counters, histograms and summaries (off by default:
        /// they double the number of series Prometheus stores).
        public var emitCreated: Bool
        /// Prefix of the registry's own metrics; `nil` turns them off.
        public var selfMetricsPrefix: String?

        /// Creates options.
        public init(emitCreated: Bool = false, selfMetricsPrefix: String? = "mlops_exporter") {
            self.emitCreated = emitCreated
            self.selfMetricsPrefix = selfMetricsPrefix
        }
    }

    /// Identifies a registered collector, for ``Registry/unregister(_:)-(CollectorRegistration)``.
    public struct CollectorRegistration: Sendable, Hashable {
        let id: Int
    }

    /// A registered collector or collector group: its reserved families and where its parts come from.
    final class RegisteredCollector: Sendable {
        let id: Int
        let descriptors: [MetricDescriptor]
        let fixed: CollectorPart?
        let group: (any CollectorGroup)?

        init(id: Int, descriptors: [MetricDescriptor], fixed: CollectorPart?, group: (any CollectorGroup)?) {
            self.id = id
            self.descriptors = descriptors
            self.fixed = fixed
            self.group = group
        }

        var parts: [CollectorPart] { fixed.map { [$0] } ?? group?.parts() ?? [] }
    }

    struct State {
        /// Registered families sorted by name.
        var families: [any RenderableFamily] = []
        var collectors: [RegisteredCollector] = []
        /// Every family collectors may write (the registry's own computed ones included), sorted by name.
        var collected: [CollectedFamily] = []
        /// Per schema id: the index in ``collected`` of each of its families (-1: not reserved).
        var slots: [Int: [Int]] = [:]
        /// Changes with ``collected``, so that a render does not store maps computed for an older list.
        var collectedGeneration = 0
        /// Every reserved sample name → the descriptor of the family that owns it.
        var reserved: [String: MetricDescriptor] = [:]
        var nextCollectorID = 0

        /// Recomputes ``collected`` after a collector came or went.
        mutating func collectorsChanged(selfMetrics: SelfMetrics?) {
            var all = collectors.flatMap(\.descriptors)
            if let selfMetrics { all += selfMetrics.schema.descriptors }
            collected = all.sorted { $0.name < $1.name }.map(CollectedFamily.init)
            slots = [:]
            collectedGeneration += 1
        }
    }

    /// The options this registry was created with.
    public let options: Options
    let state = Mutex(State())
    let selfMetrics: SelfMetrics?
    /// Size of the previous render, to size the next one's buffer at once.
    let lastRenderSize = Atomic<Int>(0)
    /// Collector problems already reported in a ``RenderReport/firstSkips`` (bounded).
    let reportedProblems = Mutex<Set<RenderReport.SkippedCollector>>([])
    /// Per collected family: the combined hash of its parts' label-set sequences last found free of duplicate
    /// series across parts (see `merge` in `Registry+Render.swift`).
    let crossVerified = Mutex<[UInt64]>([])

    /// The registry's own families, computed at render time: skips and durations from the parts run, dropped
    /// updates from every registered family.
    struct SelfMetrics: Sendable {
        let schema: CollectorSchema
        let skipped: CounterHandle
        let duration: GaugeHandle
        let dropped: CounterHandle

        init(prefix: String) throws(ExpositionError) {
            var s = CollectorSchema()
            skipped = try s.counter(
                prefix + "_collector_skipped_total",
                help:
                    "Scrapes in which a collector was left out, by collector, model and reason (error, invalid, deadline, still_running).",
                labels: ["collector", "model", "reason"])
            duration = try s.gauge(
                prefix + "_collector_duration_seconds", help: "Duration of each collector's last run, per model.",
                unit: "seconds", labels: ["collector", "model"])
            dropped = try s.counter(
                prefix + "_updates_dropped_total",
                help: "Metric updates dropped: through a removed series' handle, or with an invalid value.",
                labels: ["metric", "reason"])
            schema = s
        }
    }

    /// Creates an empty registry (plus its self metrics, unless turned off). A self-metrics prefix that
    /// is not a valid metric name is a programming error and traps.
    public init(options: Options = Options()) {
        self.options = options
        guard let prefix = options.selfMetricsPrefix else {
            selfMetrics = nil
            return
        }
        do {
            let metrics = try SelfMetrics(prefix: prefix)
            selfMetrics = metrics
            try reserve(metrics.schema.descriptors)
            state.withLock { $0.collectorsChanged(selfMetrics: metrics) }
        } catch {
            preconditionFailure("invalid self-metrics prefix \"\(prefix)\": \(error)")
        }
    }

    // MARK: - Registration

    func add(_ family: some RenderableFamily) throws(ExpositionError) {
        try state.withLock { st throws(ExpositionError) in
            try Self.checkFree([family.descriptor], in: st)
            for name in family.descriptor.reservedNames { st.reserved[name] = family.descriptor }
            let index = st.families.firstIndex { $0.descriptor.name > family.descriptor.name } ?? st.families.count
            st.families.insert(family, at: index)
        }
    }

    func reserve(_ descriptors: [MetricDescriptor]) throws(ExpositionError) {
        try state.withLock { st throws(ExpositionError) in
            try Self.checkFree(descriptors, in: st)
            for d in descriptors { for name in d.reservedNames { st.reserved[name] = d } }
        }
    }

    static func checkFree(_ descriptors: [MetricDescriptor], in st: State) throws(ExpositionError) {
        var mine = Set<String>()
        for d in descriptors {
            for name in d.reservedNames {
                if let other = st.reserved[name] {
                    throw .alreadyRegistered(
                        name: d.name, reason: conflictReason(new: d, existing: other, sample: name))
                }
                if !mine.insert(name).inserted {
                    throw .alreadyRegistered(
                        name: d.name, reason: "described twice, or clashes with a sibling's \"\(name)\"")
                }
            }
        }
    }

    static func conflictReason(new: MetricDescriptor, existing: MetricDescriptor, sample: String) -> String {
        guard new.name == existing.name else {
            return "its sample name \"\(sample)\" is already used by \(existing.type.rawValue) \"\(existing.name)\""
        }
        if new.type != existing.type { return "already registered as a \(existing.type.rawValue)" }
        if new.labelNames != existing.labelNames {
            return "already registered with label names \(existing.labelNames)"
        }
        if new.help != existing.help { return "already registered with a different help text" }
        if new.unit != existing.unit { return "already registered with unit \"\(existing.unit)\"" }
        return "already registered"
    }

    /// Registers a family of counters. See ``MetricFamily`` for labels, removal and time-to-live.
    public func counterFamily(
        _ name: String, help: String, unit: String = "", labelNames: [String], timeToLive: Duration? = nil
    ) throws(ExpositionError) -> CounterFamily {
        let f = try CounterFamily.counters(
            MetricDescriptor(name: name, type: .counter, help: help, unit: unit, labelNames: labelNames),
            timeToLive: timeToLive)
        try add(f)
        return f
    }

    /// Registers an unlabelled counter and returns its handle.
    public func counter(_ name: String, help: String, unit: String = "") throws(ExpositionError) -> Counter {
        try counterFamily(name, help: help, unit: unit, labelNames: []).labels([])
    }

    /// Registers a family of gauges.
    public func gaugeFamily(
        _ name: String, help: String, unit: String = "", labelNames: [String], timeToLive: Duration? = nil
    ) throws(ExpositionError) -> GaugeFamily {
        let f = try GaugeFamily.gauges(
            MetricDescriptor(name: name, type: .gauge, help: help, unit: unit, labelNames: labelNames),
            timeToLive: timeToLive)
        try add(f)
        return f
    }

    /// Registers an unlabelled gauge and returns its handle.
    public func gauge(_ name: String, help: String, unit: String = "") throws(ExpositionError) -> Gauge {
        try gaugeFamily(name, help: help, unit: unit, labelNames: []).labels([])
    }

    /// Registers a family of histograms with the given bucket upper bounds (`+Inf` is added).
    public func histogramFamily(
        _ name: String, help: String, unit: String = "", labelNames: [String],
        buckets: [Double] = Buckets.defaultSeconds, timeToLive: Duration? = nil
    ) throws(ExpositionError) -> HistogramFamily {
        let d = try MetricDescriptor(name: name, type: .histogram, help: help, unit: unit, labelNames: labelNames)
        let layout = HistogramLayout(bounds: try Buckets.validate(buckets, metric: d.name))
        let f = try HistogramFamily(
            descriptor: d, timeToLive: timeToLive, make: { Histogram(meta: $0, layout: layout) },
            render: { $0.render(into: &$1, names: $2, context: $3) })
        try add(f)
        return f
    }

    /// Registers an unlabelled histogram and returns its handle.
    public func histogram(
        _ name: String, help: String, unit: String = "", buckets: [Double] = Buckets.defaultSeconds
    ) throws(ExpositionError) -> Histogram {
        try histogramFamily(name, help: help, unit: unit, labelNames: [], buckets: buckets).labels([])
    }

    /// Registers a family of summaries; `quantiles` adds quantiles over a sliding window.
    public func summaryFamily(
        _ name: String, help: String, unit: String = "", labelNames: [String], quantiles: SummaryQuantiles? = nil,
        timeToLive: Duration? = nil
    ) throws(ExpositionError) -> SummaryFamily {
        let d = try MetricDescriptor(name: name, type: .summary, help: help, unit: unit, labelNames: labelNames)
        let options = try quantiles?.validated(metric: d.name)
        let labels = (options?.quantiles ?? []).map { Array("quantile=\"\(FloatFormat.goString($0))\"".utf8) }
        let f = try SummaryFamily(
            descriptor: d, timeToLive: timeToLive,
            make: { Summary(meta: $0, options: options, quantileLabels: labels) },
            render: { $0.render(into: &$1, names: $2, context: $3) })
        try add(f)
        return f
    }

    /// Registers an unlabelled summary and returns its handle.
    public func summary(
        _ name: String, help: String, unit: String = "", quantiles: SummaryQuantiles? = nil
    ) throws(ExpositionError) -> Summary {
        try summaryFamily(name, help: help, unit: unit, labelNames: [], quantiles: quantiles).labels([])
    }

    /// Registers a family of info series (name given with or without `_info`).
    public func infoFamily(_ name: String, help: String, labelNames: [String]) throws(ExpositionError) -> InfoFamily {
        let f = try InfoFamily(
            descriptor: MetricDescriptor(name: name, type: .info, help: help, labelNames: labelNames), timeToLive: nil,
            make: { Info(meta: $0) }, render: { $0.render(into: &$1, names: $2, context: $3) })
        try add(f)
        return f
    }

    /// Registers an info family with one series carrying `labels`.
    @discardableResult
    public func info(_ name: String, help: String, labels: [String: String]) throws(ExpositionError) -> Info {
        try infoFamily(name, help: help, labelNames: labels.keys.sorted()).labels(labels)
    }

    /// Registers a family of state sets over fixed `states`.
    public func stateSetFamily(
        _ name: String, help: String, labelNames: [String], states: [String], timeToLive: Duration? = nil
    ) throws(ExpositionError) -> StateSetFamily {
        let d = try MetricDescriptor(name: name, type: .stateset, help: help, labelNames: labelNames)
        let layout = try StateSetLayout(name: d.name, states: states)
        let f = try StateSetFamily(
            descriptor: d, timeToLive: timeToLive, make: { StateSet(meta: $0, states: layout) },
            render: { $0.render(into: &$1, names: $2, context: $3) })
        try add(f)
        return f
    }

    /// Registers an unlabelled state set and returns its handle.
    public func stateSet(_ name: String, help: String, states: [String]) throws(ExpositionError) -> StateSet {
        try stateSetFamily(name, help: help, labelNames: [], states: states).labels([])
    }

    /// Registers a collector after checking its descriptors against everything registered.
    @discardableResult
    public func register(_ collector: some Collector) throws(ExpositionError) -> CollectorRegistration {
        try register(descriptors: collector.schema.descriptors, fixed: CollectorPart(collector), group: nil)
    }

    /// Registers a group of collector parts after checking every family they may write against everything
    /// registered.
    @discardableResult
    public func register(_ group: some CollectorGroup) throws(ExpositionError) -> CollectorRegistration {
        try register(descriptors: group.descriptors, fixed: nil, group: group)
    }

    private func register(
        descriptors: [MetricDescriptor], fixed: CollectorPart?, group: (any CollectorGroup)?
    ) throws(ExpositionError) -> CollectorRegistration {
        try state.withLock { [selfMetrics] st throws(ExpositionError) in
            try Self.checkFree(descriptors, in: st)
            for d in descriptors { for name in d.reservedNames { st.reserved[name] = d } }
            let id = st.nextCollectorID
            st.nextCollectorID += 1
            st.collectors.append(RegisteredCollector(id: id, descriptors: descriptors, fixed: fixed, group: group))
            st.collectorsChanged(selfMetrics: selfMetrics)
            return CollectorRegistration(id: id)
        }
    }

    /// Removes a collector or group; its names become free. Returns whether it was registered.
    @discardableResult
    public func unregister(_ registration: CollectorRegistration) -> Bool {
        state.withLock { [selfMetrics] st in
            guard let i = st.collectors.firstIndex(where: { $0.id == registration.id }) else { return false }
            for d in st.collectors[i].descriptors { for name in d.reservedNames { st.reserved[name] = nil } }
            st.collectors.remove(at: i)
            st.collectorsChanged(selfMetrics: selfMetrics)
            return true
        }
    }

    /// Removes the family registered under `name` (for counters, with or without `_total`). Handles to
    /// its series keep working but are no longer written. Returns whether such a family existed.
    @discardableResult
    public func unregister(family name: String) -> Bool {
        state.withLock { st in
            var base = name
            if let d = st.reserved[name], d.name != name {
                // Only the names a family is registered under: its own, or a counter's `_total` / an info's `_info`.
                guard (d.type == .counter && name == d.name + "_total") || (d.type == .info && name == d.name + "_info")
                else { return false }
                base = d.name
            }
            guard let i = st.families.firstIndex(where: { $0.descriptor.name == base }) else { return false }
            for n in st.families[i].descriptor.reservedNames { st.reserved[n] = nil }
            st.families.remove(at: i)
            return true
        }
    }

    /// What is registered at one moment, for ``unregister(since:)``.
    public struct RegistrationMark: Sendable {
        let familyNames: Set<String>
        let nextCollectorID: Int
    }

    /// The families and collectors registered now: a point to roll back to.
    public func registrationMark() -> RegistrationMark {
        state.withLock { st in
            RegistrationMark(
                familyNames: Set(st.families.map(\.descriptor.name)), nextCollectorID: st.nextCollectorID)
        }
    }

    /// Removes every family and collector registered after `mark` was taken (a builder that registers several
    /// things and then fails undoes its part, leaving the registry as it found it). Returns how many were removed.
    @discardableResult
    public func unregister(since mark: RegistrationMark) -> Int {
        state.withLock { [selfMetrics] st in
            let families = st.families.filter { !mark.familyNames.contains($0.descriptor.name) }
            let collectors = st.collectors.filter { $0.id >= mark.nextCollectorID }
            for d in families.map(\.descriptor) + collectors.flatMap(\.descriptors) {
                for n in d.reservedNames { st.reserved[n] = nil }
            }
            st.families.removeAll { !mark.familyNames.contains($0.descriptor.name) }
            if !collectors.isEmpty {
                st.collectors.removeAll { $0.id >= mark.nextCollectorID }
                st.collectorsChanged(selfMetrics: selfMetrics)
            }
            return families.count + collectors.count
        }
    }

    /// Removes what was registered between `start` and `end` (marks taken in that order), leaving what was registered
    /// before and after: a builder whose product fails later takes back its own part only. Returns how many were
    /// removed.
    @discardableResult
    public func unregister(between start: RegistrationMark, and end: RegistrationMark) -> Int {
        state.withLock { [selfMetrics] st in
            func between(_ name: String) -> Bool {
                !start.familyNames.contains(name) && end.familyNames.contains(name)
            }
            func betweenID(_ id: Int) -> Bool { id >= start.nextCollectorID && id < end.nextCollectorID }
            let families = st.families.filter { between($0.descriptor.name) }
            let collectors = st.collectors.filter { betweenID($0.id) }
            for d in families.map(\.descriptor) + collectors.flatMap(\.descriptors) {
                for n in d.reservedNames { st.reserved[n] = nil }
            }
            st.families.removeAll { between($0.descriptor.name) }
            if !collectors.isEmpty {
                st.collectors.removeAll { betweenID($0.id) }
                st.collectorsChanged(selfMetrics: selfMetrics)
            }
            return families.count + collectors.count
        }
    }

    /// Descriptors of every registered family and collector family, sorted by name.
    public var descriptors: [MetricDescriptor] {
        state.withLock { st in
            (st.families.map(\.descriptor) + st.collected.map(\.descriptor)).sorted { $0.name < $1.name }
        }
    }
}

extension MetricFamily where Series == Counter {
    static func counters(_ d: MetricDescriptor, timeToLive: Duration?) throws(ExpositionError) -> CounterFamily {
        try CounterFamily(
            descriptor: d, timeToLive: timeToLive, make: { Counter(meta: $0) },
            render: { $0.render(into: &$1, names: $2, context: $3) })
    }
}

extension MetricFamily where Series == Gauge {
    static func gauges(_ d: MetricDescriptor, timeToLive: Duration?) throws(ExpositionError) -> GaugeFamily {
        try GaugeFamily(
            descriptor: d, timeToLive: timeToLive, make: { Gauge(meta: $0) },
            render: { $0.render(into: &$1, names: $2, context: $3) })
    }
}
