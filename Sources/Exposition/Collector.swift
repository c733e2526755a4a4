import Synchronization

/// Metrics computed when a scrape asks for them (process statistics, model drift scores), rather than
/// updated as events happen.
///
/// # Contract
/// - ``schema`` declares every family the collector writes, with their handles; it is read once, at
///   registration, where the registry checks it against every other family for name clashes.
/// - ``collect(into:)`` emits the current samples through the sink, with the schema's handles. It may run on
///   any thread, concurrently with updates elsewhere, but never concurrently with itself.
/// - A collector that throws, emits something invalid (see ``CollectorSink``; the same series twice) or is
///   still running when the scrape's deadline passes is left out of that scrape and counted in
///   `<prefix>_collector_skipped_total{collector,model,reason}`; the rest of the scrape still succeeds.
public protocol Collector: Sendable {
    /// Identifies the collector in the registry's self metrics (the `collector` label).
    var name: String { get }
    /// The families this collector writes.
    var schema: CollectorSchema { get }
    /// Emits the current samples.
    func collect(into sink: inout CollectorSink) throws
}

extension Collector {
    /// The families this collector writes (its schema's).
    public var descriptors: [MetricDescriptor] { schema.descriptors }
}

/// Collectors that come and go together, each run and checked on its own: one ``CollectorPart`` per
/// (model, plug-in), so that a failure drops only that part's families for that scrape.
///
/// # Contract
/// - ``descriptors`` lists every family any part may ever write; the registry reserves them at
///   registration, so parts may change (a configuration reload) without registering again.
/// - ``parts()`` is asked at every render and returns the parts to run now, in output order. Return the
///   same part objects from one render to the next while they stand for the same thing: a part keeps its
///   skip counts and its run state.
public protocol CollectorGroup: Sendable {
    /// Every family the parts may write.
    var descriptors: [MetricDescriptor] { get }
    /// The parts to run in this render.
    func parts() -> [CollectorPart]
}

/// One independently checked unit of collection: a collector, for a model (or none), with its schema.
public final class CollectorPart: Sendable {
    /// The `collector` label of the registry's self metrics.
    public let collector: String
    /// The `model` label of the registry's self metrics (empty for collectors of no model).
    public let model: String
    /// The families this part writes.
    public let schema: CollectorSchema
    let body: @Sendable (inout CollectorSink) throws -> Void

    /// The run under way, if any; renders that overlap join it.
    let current = Mutex<Registry.CollectorRun?>(nil)
    /// What the last run left for the next (runs of one part never overlap).
    let memory = Mutex(RunMemory())
    /// Renders that found a run keeping other families under way and waited for it to end (tests read it).
    let waitsForOtherRuns = Atomic<Int>(0)
    /// The family flags computed for the last ``FamilySelection`` a run of this part was asked for.
    let selectionFlags = Mutex<(selection: FamilySelection, flags: [Bool]?)?>(nil)
    /// `collector="…",model="…"`, rendered once for the registry's self metrics.
    let identity: LabelSet
    /// Skips by reason.
    let skipError = Atomic<UInt64>(0)
    let skipInvalid = Atomic<UInt64>(0)
    let skipDeadline = Atomic<UInt64>(0)
    let skipStillRunning = Atomic<UInt64>(0)
    /// Bits of the last run's duration in seconds (NaN before the first).
    let lastDuration = Atomic<UInt64>(Double.nan.bitPattern)

    /// The most series a run may emit (a model collector's declared `maxSeries`, which the model's `max_series`
    /// budget was checked against); a run that emits more is skipped as `invalid`. Nil: no bound.
    public let maxSeries: Int?

    /// A part that runs `collect`, emitting at most `maxSeries` series (nil: unbounded).
    public init(
        collector: String, model: String = "", schema: CollectorSchema, maxSeries: Int? = nil,
        collect: @escaping @Sendable (inout CollectorSink) throws -> Void
    ) {
        self.collector = collector
        self.model = model
        self.schema = schema
        self.maxSeries = maxSeries
        body = collect
        identity = try! LabelSet(names: Self.identityNames, values: [collector, model], metric: "collector part")
    }

    static let identityNames = LabelNames(["collector", "model"])

    /// Runs the part once outside any scrape and returns what a scrape would refuse in its output (an invalid value,
    /// a label set of other names…) or the error it threw; nil when a scrape would keep it. For state read from
    /// outside (a checkpoint), before it is served: a value no scrape can show would silence the part for good.
    public func check() -> String? {
        var sink = CollectorSink(schema: schema)
        do {
            try body(&sink)
        } catch {
            return "\(error)"
        }
        return sink.problem
    }

    /// Per family of the schema, from the last run: the combined hash of the label sets found free of duplicates,
    /// and how many series it emitted (to size the next run's lists at once).
    struct RunMemory {
        var verified: [UInt64] = []
        var sizes: [Int] = []
    }

    /// A part that runs a ``Collector``.
    public convenience init(_ collector: some Collector, model: String = "") {
        self.init(collector: collector.name, model: model, schema: collector.schema) {
            try collector.collect(into: &$0)
        }
    }

    func counted(_ failure: CollectorFailure) {
        switch failure {
        case .threw: skipError.add(1, ordering: .relaxed)
        case .invalid: skipInvalid.add(1, ordering: .relaxed)
        case .deadline: skipDeadline.add(1, ordering: .relaxed)
        case .stillRunning: skipStillRunning.add(1, ordering: .relaxed)
        }
    }

    /// The `reason` label of each of ``skipCounts``.
    static let reasons = ["deadline", "error", "invalid", "still_running"]

    /// Skips so far, in ``reasons`` order.
    var skipCounts: [UInt64] {
        [
            skipDeadline.load(ordering: .relaxed), skipError.load(ordering: .relaxed),
            skipInvalid.load(ordering: .relaxed), skipStillRunning.load(ordering: .relaxed),
        ]
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
