import ExporterConfig
import Exposition
import Ingestion

/// A per-model plug-in: created for each model that lists it under `collectors`, it sees every accepted
/// event of that model and emits its families at scrape time.
///
/// # Contract
/// - ``name`` is how configurations refer to it; ``schema`` declares the families it writes, the same for
///   every model (the model is a label, conventionally the first, `model`), with the handles it emits through.
///   Both are static so that the exporter can check every family of every registered collector once, at
///   start. Build the label sets that repeat at every scrape (model, version, class, feature, bin) in
///   ``init(model:options:)``, once.
/// - ``init(model:options:)`` validates `options` (throwing ``ModelCollectorError`` naming the option) and
///   pre-allocates everything recording needs; ``maxSeries`` is the most series it can ever emit for this
///   model (a histogram is one series), checked against the model's `max_series` before the collector is used,
///   and at every scrape: a run that emits more is left out of that scrape as `invalid`.
/// - ``record(prediction:receivedAt:)`` and ``record(label:receivedAt:)`` are called for every accepted
///   event, concurrently from many threads: they must be thread-safe and cheap (atomics on slots resolved
///   from the context's indices; no locks, no dictionary lookups, no allocation).
/// - ``collect(into:)`` emits the current samples through the schema's handles; it runs at scrape time,
///   concurrently with recording. Label values must come from finite, configured sets (never an event id).
///   Each (model, collector) is run and checked on its own: a throw, an invalid emission, more series than
///   ``maxSeries`` or a missed deadline drops only this collector's families for this model in that scrape.
public protocol ModelCollector: AnyObject, Sendable {
    /// The name used in configurations (`collectors: [service]`).
    static var name: String { get }
    /// Every family this collector may write, with their handles.
    static var schema: CollectorSchema { get }
    /// Creates the collector for one model.
    init(model: ModelContext, options: CollectorOptions) throws(ModelCollectorError)
    /// The most series this collector emits for its model.
    var maxSeries: Int { get }
    /// Records one accepted prediction event; `receivedAt` is the Unix time of its batch's arrival.
    func record(prediction: PredictionEvent, receivedAt: Double)
    /// Records one accepted label event (ground truth arriving after its prediction), as received.
    func record(label: LabelEvent, receivedAt: Double)
    /// Whether this collector reads labels as received, through ``record(label:receivedAt:)`` (a collector that
    /// needs outcomes gets them joined and need not say so). Labels sent over HTTP to a model none of whose
    /// collectors uses labels or needs outcomes are refused (409, `labels_not_used`): they would change nothing.
    static var usesLabels: Bool { get }
    /// Whether this collector wants joined outcomes: when any collector of a model does, the model keeps
    /// predictions with an `id` in its bounded pending store until their label arrives.
    static var needsOutcomes: Bool { get }
    /// Records a prediction joined with its label; `receivedAt` is the label's arrival. Same threading rules
    /// as ``record(prediction:receivedAt:)``.
    func record(outcome: JoinedOutcome, receivedAt: Double)
    /// Emits the current samples.
    func collect(into sink: inout CollectorSink)
    /// This collector, just built for a model's new options, carrying on `previous`'s state (the same collector of the
    /// model as it ran: its windows and totals, shared, not copied) when the new options leave that state's shape as it
    /// was (a threshold, a bound, a minimum sample changed); nil when they do not, or the collector cannot tell.
    /// A configuration reload whose only change is collector options keeps what each such collector accumulated
    /// (before, every option change started the model's windows empty). Called before the collector records anything.
    func carryingState(of previous: any ModelCollector) -> (any ModelCollector)?
}

extension ModelCollector {
    /// Collectors that ignore delayed labels need not implement this.
    public func record(label: LabelEvent, receivedAt: Double) {}
    /// By default collectors do not read labels as received.
    public static var usesLabels: Bool { false }
    /// By default collectors do not need joined outcomes.
    public static var needsOutcomes: Bool { false }
    /// Collectors that do not need outcomes need not implement this.
    public func record(outcome: JoinedOutcome, receivedAt: Double) {}
    /// By default a collector's state does not carry over a change of its options.
    public func carryingState(of previous: any ModelCollector) -> (any ModelCollector)? { nil }
}

extension CollectorSchema {
    /// Declares a gauge family of a built-in collector (name, help and labels are literals: valid), labelled per
    /// model and version unless told otherwise.
    mutating func gauge(_ name: String, _ help: String, _ labels: [String] = ["model", "version"]) -> GaugeHandle {
        try! gauge(name, help: help, labels: labels)
    }

    /// Declares a counter family of a built-in collector.
    mutating func counter(_ name: String, _ help: String, _ labels: [String] = ["model", "version"]) -> CounterHandle {
        try! counter(name, help: help, labels: labels)
    }
}

/// A collector cannot be set up for a model: a bad option, or more series than the model allows.
public struct ModelCollectorError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The model.
    public var model: String
    /// The collector's name.
    public var collector: String
    /// The option at fault, if any.
    public var option: String?
    /// What is wrong.
    public var message: String

    /// Creates the error.
    public init(model: String, collector: String, option: String? = nil, message: String) {
        self.model = model
        self.collector = collector
        self.option = option
        self.message = message
    }

    /// E.g. `model "fraud": collector "service": option prediction_buckets: bounds must increase strictly`.
    public var description: String {
        var s = "model \"\(model)\": collector \"\(collector)\": "
        if let option { s += "option \(option): " }
        return s + message
    }
}

/// A collector's options from the configuration file, with typed accessors that throw errors naming the
/// option. Unknown options are an error (``checkAllowed(_:)``), so typos do not pass silently.
public struct CollectorOptions: Sendable {
    /// The raw options.
    public let values: [String: ConfigValue]
    /// For errors: the model and the collector.
    public let model: String
    /// For errors: the collector's name.
    public let collector: String

    /// For errors: the path of these options inside the collector's (`features.amount.`), or empty.
    public let path: String

    /// The series this collector may still create for its model: the model's `max_series` less what the
    /// collectors before it may create. A collector whose memory grows with its series calls
    /// ``requireSeries(_:)`` before allocating, so that a configuration over the limit is refused before it
    /// costs memory (the exporter checks ``ModelCollector/maxSeries`` afterwards anyway).
    public let seriesBudget: Int

    /// Wraps `values` for `collector` of `model`.
    public init(
        _ values: [String: ConfigValue], model: String, collector: String, path: String = "", seriesBudget: Int = .max
    ) {
        self.values = values
        self.model = model
        self.collector = collector
        self.path = path
        self.seriesBudget = seriesBudget
    }

    /// Throws when `count` series would not fit in ``seriesBudget``.
    public func requireSeries(_ count: Int) throws(ModelCollectorError) {
        guard count > seriesBudget else { return }
        throw error(
            nil,
            "may create up to \(count) series, more than the \(max(0, seriesBudget)) left of the model's max_series (raise max_series, or monitor fewer classes, features or groups)"
        )
    }

    /// An error about `option`.
    public func error(_ option: String?, _ message: String) -> ModelCollectorError {
        ModelCollectorError(
            model: model, collector: collector,
            option: option.map { path + $0 } ?? (path.isEmpty ? nil : String(path.dropLast())),
            message: message)
    }

    /// Throws when an option outside `allowed` is present.
    public func checkAllowed(_ allowed: Set<String>) throws(ModelCollectorError) {
        for key in values.keys.sorted() where !allowed.contains(key) {
            throw error(
                key, "unknown option (known: \(allowed.isEmpty ? "none" : allowed.sorted().joined(separator: ", ")))")
        }
    }

    /// A list of numbers, or nil when absent.
    public func numbers(_ key: String) throws(ModelCollectorError) -> [Double]? {
        guard let value = values[key] else { return nil }
        guard case .list(let items) = value else { throw error(key, "expected a list of numbers") }
        var out: [Double] = []
        for item in items {
            guard case .number(let n) = item else { throw error(key, "expected a list of numbers") }
            out.append(n)
        }
        return out
    }

    /// A list of strings, or nil when absent.
    public func strings(_ key: String) throws(ModelCollectorError) -> [String]? {
        guard let value = values[key] else { return nil }
        guard case .list(let items) = value else { throw error(key, "expected a list of strings") }
        var out: [String] = []
        for item in items {
            switch item {
            case .string(let s): out.append(s)
            case .number(let n) where n == n.rounded() && abs(n) < 1e15: out.append(String(Int64(n)))
            case .bool(let b): out.append(b ? "true" : "false")
            default: throw error(key, "expected a list of strings")
            }
        }
        return out
    }

    /// A number, or nil when absent.
    public func number(_ key: String) throws(ModelCollectorError) -> Double? {
        guard let value = values[key] else { return nil }
        guard case .number(let n) = value else { throw error(key, "expected a number") }
        return n
    }

    /// A string (numbers and booleans as written), or nil when absent.
    public func string(_ key: String) throws(ModelCollectorError) -> String? {
        guard let value = values[key] else { return nil }
        switch value {
        case .string(let s): return s
        case .number(let n) where n == n.rounded() && abs(n) < 1e15: return String(Int64(n))
        case .number(let n): return String(n)
        case .bool(let b): return b ? "true" : "false"
        default: throw error(key, "expected a string")
        }
    }

    /// A boolean, or nil when absent.
    public func bool(_ key: String) throws(ModelCollectorError) -> Bool? {
        guard let value = values[key] else { return nil }
        guard case .bool(let b) = value else { throw error(key, "expected true or false") }
        return b
    }

    /// A mapping as nested options (errors name `key.subkey`), or nil when absent.
    public func map(_ key: String) throws(ModelCollectorError) -> CollectorOptions? {
        guard let value = values[key] else { return nil }
        guard case .map(let m) = value else { throw error(key, "expected a mapping") }
        return CollectorOptions(m, model: model, collector: collector, path: path + key + ".")
    }

    /// An integer in `range`, or nil when absent.
    public func integer(_ key: String, in range: ClosedRange<Int>) throws(ModelCollectorError) -> Int? {
        guard let value = values[key] else { return nil }
        guard case .number(let n) = value, n == n.rounded(), let i = Int(exactly: n), range.contains(i) else {
            throw error(key, "expected an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return i
    }
}
