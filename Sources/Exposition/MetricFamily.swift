import Synchronization

/// A named metric with fixed label names and one series per combination of label values.
///
/// `labels(...)` finds or creates a series and returns its handle; keep the handle, since updates
/// through it touch no lock and no dictionary. Series identity does not depend on the order labels are
/// given in: `labels(["model": "a", "version": "1"])` and `labels(["version": "1", "model": "a"])` return
/// the same series. Label names are written sorted, and series are written sorted by label values.
///
/// Removal: ``remove(_:)`` (exact values), ``remove(labels:)``, ``removeMatching(_:)`` (partial match)
/// and ``removeAll()``. A removed series is gone for good: updates through an old handle are counted as
/// dropped (reason `removed_series`) and never written; ask `labels(...)` again for a fresh series.
///
/// Time-to-live (optional, per family): a series that no update touched for that long is left out of
/// the output, and comes back with its values the next time it is updated (through its handle or a new
/// `labels(...)` call, which returns the same series). The hot path reads no clock: each render notes
/// which series were updated since the previous render, so idleness is measured from the first render
/// after the last update, i.e. a series disappears between one time-to-live and one time-to-live plus
/// one scrape interval after its last update. Expired series are forgotten (memory freed) after
/// ten times the time-to-live, at least an hour; a handle updated after that re-inserts its series if
/// no new one took its place, and is otherwise counted as dropped. The check costs one relaxed atomic
/// load per update.
public final class MetricFamily<Series: FamilySeries>: Sendable, SeriesOwner {
    /// Name, type, help, unit and label names as declared.
    public let descriptor: MetricDescriptor
    let names: FamilyNames
    /// Label names sorted, the order they are rendered and keyed in.
    let sortedLabelNames: [String]
    /// For each sorted position, the declared index of that label.
    let declaredIndex: [Int]
    let ttlNanos: UInt64
    /// How long an expired series stays findable before it is forgotten.
    let purgeNanos: UInt64
    let make: @Sendable (SeriesMeta) -> Series
    let renderSeries: @Sendable (Series, inout ByteWriter, FamilyNames, RenderContext) -> Void
    let storage = Mutex(Storage())
    let droppedRemoved = Atomic<UInt64>(0)
    let droppedInvalid = Atomic<UInt64>(0)

    struct Storage {
        /// Every series, expired ones included until they are purged.
        var series: [LabelKey: Series] = [:]
        /// Written (not expired) series sorted by label values; `nil` after a change, rebuilt at the next render.
        var sorted: [Series]? = []
        /// Number of expired series still in `series`.
        var expiredCount = 0
    }

    init(
        descriptor: MetricDescriptor, timeToLive: Duration?,
        make: @escaping @Sendable (SeriesMeta) -> Series,
        render: @escaping @Sendable (Series, inout ByteWriter, FamilyNames, RenderContext) -> Void
    ) throws(ExpositionError) {
        self.descriptor = descriptor
        self.names = FamilyNames(descriptor)
        let order = descriptor.labelNames.indices.sorted { descriptor.labelNames[$0] < descriptor.labelNames[$1] }
        declaredIndex = order
        sortedLabelNames = order.map { descriptor.labelNames[$0] }
        if let ttl = timeToLive {
            guard ttl > .zero else {
                throw .invalidOption(metric: descriptor.name, reason: "time-to-live must be positive")
            }
            ttlNanos = ttl.saturatingNanoseconds
            purgeNanos = max(
                ttlNanos.multipliedReportingOverflow(by: 10).overflow ? .max : ttlNanos * 10, 3_600_000_000_000)
        } else {
            ttlNanos = 0
            purgeNanos = 0
        }
        self.make = make
        self.renderSeries = render
    }

    // MARK: - Lookup

    /// The series for these label values, in the order the label names were declared.
    public func labels(_ values: String...) throws(ExpositionError) -> Series { try labels(values) }

    /// The series for these label values, in the order the label names were declared.
    public func labels(_ values: [String]) throws(ExpositionError) -> Series {
        guard values.count == declaredIndex.count else {
            throw .labelCountMismatch(metric: descriptor.name, expected: declaredIndex.count, got: values.count)
        }
        return series(forKey: declaredIndex.map { values[$0] })
    }

    /// The series for these label name/value pairs; the order of the pairs does not matter.
    public func labels(_ pairs: [String: String]) throws(ExpositionError) -> Series {
        series(forKey: try key(for: pairs))
    }

    func key(for pairs: [String: String]) throws(ExpositionError) -> [String] {
        guard pairs.count == sortedLabelNames.count, sortedLabelNames.allSatisfy({ pairs[$0] != nil }) else {
            throw .labelNamesMismatch(metric: descriptor.name, expected: sortedLabelNames, got: pairs.keys.sorted())
        }
        return sortedLabelNames.map { pairs[$0]! }
    }

    func series(forKey key: [String]) -> Series {
        storage.withLock { st in
            if let s = st.series[LabelKey(values: key)] {
                let meta = s._meta.meta
                if meta.state.compareExchange(
                    expected: SeriesState.expired, desired: SeriesState.active, ordering: .relaxed
                ).exchanged {
                    st.expiredCount -= 1
                    st.sorted = nil
                }
                return s
            }
            let meta = SeriesMeta(
                labelValues: key, renderedLabels: Escaping.renderLabelPairs(names: sortedLabelNames, values: key),
                mainName: names.main, owner: self, now: Clock.monotonicNanos())
            let s = make(meta)
            st.series[LabelKey(values: key)] = s
            st.sorted = nil
            return s
        }
    }

    /// Number of series currently written (expired ones excluded).
    public var seriesCount: Int { storage.withLock { $0.series.count - $0.expiredCount } }

    // MARK: - Removal

    /// Removes the series with these label values (declared order). Returns whether a written series was
    /// removed (an expired series is removed too, but reported as `false`: it was no longer written).
    @discardableResult
    public func remove(_ values: [String]) throws(ExpositionError) -> Bool {
        guard values.count == declaredIndex.count else {
            throw .labelCountMismatch(metric: descriptor.name, expected: declaredIndex.count, got: values.count)
        }
        return remove(key: declaredIndex.map { values[$0] })
    }

    /// Removes the series with exactly these label pairs. Returns whether one existed.
    @discardableResult
    public func remove(labels pairs: [String: String]) throws(ExpositionError) -> Bool {
        remove(key: try key(for: pairs))
    }

    func remove(key: [String]) -> Bool {
        storage.withLock { st in
            guard let s = st.series.removeValue(forKey: LabelKey(values: key)) else { return false }
            return Self.markRemoved(s, &st)
        }
    }

    /// Removes every series whose labels include all of `partial` (client_golang's `DeletePartialMatch`).
    /// Returns how many were removed. Throws if `partial` names a label the family does not have.
    @discardableResult
    public func removeMatching(_ partial: [String: String]) throws(ExpositionError) -> Int {
        var positions: [(Int, String)] = []
        for (name, value) in partial {
            guard let i = sortedLabelNames.firstIndex(of: name) else {
                throw .labelNamesMismatch(
                    metric: descriptor.name, expected: sortedLabelNames, got: partial.keys.sorted())
            }
            positions.append((i, value))
        }
        return storage.withLock { st in
            let doomed = st.series.keys.filter { key in positions.allSatisfy { key.values[$0.0].sameBytes($0.1) } }
            var written = 0
            for key in doomed {
                if let s = st.series.removeValue(forKey: key), Self.markRemoved(s, &st) { written += 1 }
            }
            return written
        }
    }

    /// Removes every series.
    public func removeAll() {
        storage.withLock { st in
            for s in st.series.values { s._meta.meta.state.store(SeriesState.removed, ordering: .relaxed) }
            st.series.removeAll()
            st.sorted = []
            st.expiredCount = 0
        }
    }

    /// Marks a series taken out of `series` as removed; returns whether it was being written (not expired).
    private static func markRemoved(_ s: Series, _ st: inout Storage) -> Bool {
        let previous = s._meta.meta.state.exchange(SeriesState.removed, ordering: .relaxed)
        st.sorted = nil
        if previous == SeriesState.expired {
            st.expiredCount -= 1
            return false
        }
        return true
    }

    // MARK: - Lifecycle events from series

    func reattach(_ object: AnyObject) {
        guard let s = object as? Series else { return }
        let meta = s._meta.meta
        storage.withLock { st in
            guard meta.state.load(ordering: .relaxed) == SeriesState.expired else { return }
            let key = LabelKey(values: meta.labelValues)
            let current = st.series[key]
            if current === s || current == nil {
                if current === s { st.expiredCount -= 1 }
                st.series[key] = s
                st.sorted = nil
                meta.state.store(SeriesState.active, ordering: .relaxed)
            } else {
                // `labels(...)` created a new series for these values meanwhile; this handle is stale.
                meta.state.store(SeriesState.removed, ordering: .relaxed)
                droppedRemoved.wrappingAdd(1, ordering: .relaxed)
            }
        }
    }

    func countDropped(_ reason: DropReason) {
        switch reason {
        case .removedSeries: droppedRemoved.wrappingAdd(1, ordering: .relaxed)
        case .invalidValue: droppedInvalid.wrappingAdd(1, ordering: .relaxed)
        }
    }

    /// Updates dropped so far, by reason: through removed handles, and invalid values (NaN, negative increments).
    public var droppedUpdates: (removedSeries: UInt64, invalidValue: UInt64) {
        (droppedRemoved.load(ordering: .relaxed), droppedInvalid.load(ordering: .relaxed))
    }

    // MARK: - Rendering

    /// Applies the time-to-live at monotonic time `now` and returns the series to write, sorted.
    func snapshot(now: UInt64) -> [Series] {
        storage.withLock { st in
            if ttlNanos > 0 { sweep(&st, now: now) }
            if let sorted = st.sorted { return sorted }
            let sorted = st.series.values.filter {
                $0._meta.meta.state.load(ordering: .relaxed) != SeriesState.expired
            }.sorted {
                LabelKey.precedes($0._meta.meta.labelValues, $1._meta.meta.labelValues)
            }
            st.sorted = sorted
            return sorted
        }
    }

    /// Notes the series updated since the last sweep, expires those idle for the time-to-live and purges
    /// long-expired ones. Renders may run concurrently with clock readings out of order: idleness never
    /// goes negative and `lastSeen` never moves backwards.
    private func sweep(_ st: inout Storage, now: UInt64) {
        var purged: [LabelKey] = []
        for (key, s) in st.series {
            let meta = s._meta.meta
            let lastSeen = meta.lastSeen.load(ordering: .relaxed)
            let idle = now > lastSeen ? now - lastSeen : 0
            switch meta.state.load(ordering: .relaxed) {
            case SeriesState.active:
                if meta.state.compareExchange(
                    expected: SeriesState.active, desired: SeriesState.idle, ordering: .relaxed
                ).exchanged, now > lastSeen {
                    meta.lastSeen.store(now, ordering: .relaxed)
                }
            case SeriesState.idle where idle >= ttlNanos:
                if meta.state.compareExchange(
                    expected: SeriesState.idle, desired: SeriesState.expired, ordering: .relaxed
                ).exchanged {
                    st.expiredCount += 1
                    st.sorted = nil
                }
            case SeriesState.expired where idle >= purgeNanos:
                purged.append(key)
            default:
                break
            }
        }
        for key in purged { st.series.removeValue(forKey: key) }
        st.expiredCount -= purged.count
    }
}

extension MetricFamily: RenderableFamily {
    func render(into out: inout ByteWriter, context: RenderContext, now: UInt64) {
        let series = snapshot(now: now)
        guard !series.isEmpty else { return }
        out.append(contentsOf: context.format == .openMetrics ? names.metadataOpenMetrics : names.metadataText)
        // The common types get a statically dispatched loop (no closure call per series); the closure
        // serves the rest. `Series.self == T.self` makes the casts exact.
        if Series.self == Counter.self {
            unsafeBitCast(series, to: [Counter].self).withUnsafeBufferPointer { all in
                for c in all { c.render(into: &out, names: names, context: context) }
            }
        } else if Series.self == Gauge.self {
            unsafeBitCast(series, to: [Gauge].self).withUnsafeBufferPointer { all in
                for g in all { g.render(into: &out, names: names, context: context) }
            }
        } else {
            for s in series { renderSeries(s, &out, names, context) }
        }
    }

    var hasDropped: Bool {
        droppedRemoved.load(ordering: .relaxed) != 0 || droppedInvalid.load(ordering: .relaxed) != 0
    }

    var droppedCounts: [(DropReason, UInt64)] {
        [
            (.removedSeries, droppedRemoved.load(ordering: .relaxed)),
            (.invalidValue, droppedInvalid.load(ordering: .relaxed)),
        ]
    }
}

/// A family the registry can write, whatever its series type.
protocol RenderableFamily: AnyObject, Sendable {
    var descriptor: MetricDescriptor { get }
    func render(into out: inout ByteWriter, context: RenderContext, now: UInt64)
    var droppedCounts: [(DropReason, UInt64)] { get }
    /// Whether any update was dropped (checked on every render without allocating).
    var hasDropped: Bool { get }
}

/// Families by series type.
public typealias CounterFamily = MetricFamily<Counter>
/// Families of gauges.
public typealias GaugeFamily = MetricFamily<Gauge>
/// Families of histograms.
public typealias HistogramFamily = MetricFamily<Histogram>
/// Families of summaries.
public typealias SummaryFamily = MetricFamily<Summary>
/// Families of info series.
public typealias InfoFamily = MetricFamily<Info>
/// Families of state sets.
public typealias StateSetFamily = MetricFamily<StateSet>
