import Synchronization

/// The families a collector writes, declared once, each declaration returning a typed handle through which
/// the collector emits at scrape time.
///
/// # Contract
/// - Declaring validates the family (name, labels, unit) and refuses a second family of the same name; the
///   registry checks the whole schema against every other family when the collector is registered.
/// - A handle is valid only with a sink of the schema that declared it (or a copy of that schema). Emitting
///   through a handle costs an array index: no name lookup, no dictionary.
/// - Build the schema once (a `static let` of the collector type, or a stored property) and keep the
///   handles beside it; every collector of the same type can share one schema.
public struct CollectorSchema: Sendable {
    /// The families declared, in declaration order.
    public private(set) var descriptors: [MetricDescriptor] = []
    /// Identifies this schema (and its copies) in handles and in the registry's per-schema caches.
    let id: Int
    var names: Set<String> = []

    private static let nextID = Atomic<Int>(0)

    /// An empty schema.
    public init() {
        id = Self.nextID.add(1, ordering: .relaxed).newValue
    }

    /// A new schema and the handles `declare` returns, for a `static let` of a collector type:
    ///
    ///     static let (schema, requests) = try! CollectorSchema.build { s in
    ///         try s.counter("app_requests_total", help: "Requests.", labels: ["model"])
    ///     }
    public static func build<Handles>(
        _ declare: (inout CollectorSchema) throws -> Handles
    ) rethrows -> (CollectorSchema, Handles) {
        var schema = CollectorSchema()
        let handles = try declare(&schema)
        return (schema, handles)
    }

    /// Declares `descriptor` and returns its handle.
    public mutating func declare(_ descriptor: MetricDescriptor) throws(ExpositionError) -> FamilyHandle {
        guard names.insert(descriptor.name).inserted else {
            throw .alreadyRegistered(name: descriptor.name, reason: "declared twice in one collector schema")
        }
        descriptors.append(descriptor)
        return FamilyHandle(schema: id, index: descriptors.count - 1, descriptor: descriptor)
    }

    /// Declares a counter family (name with or without `_total`).
    public mutating func counter(
        _ name: String, help: String, unit: String = "", labels: [String] = []
    ) throws(ExpositionError) -> CounterHandle {
        CounterHandle(
            unchecked: try declare(
                MetricDescriptor(name: name, type: .counter, help: help, unit: unit, labelNames: labels)))
    }

    /// Declares a gauge family.
    public mutating func gauge(
        _ name: String, help: String, unit: String = "", labels: [String] = []
    ) throws(ExpositionError) -> GaugeHandle {
        GaugeHandle(
            unchecked: try declare(
                MetricDescriptor(name: name, type: .gauge, help: help, unit: unit, labelNames: labels)))
    }

    /// Declares an untyped family (written like a gauge, typed `unknown`).
    public mutating func unknown(
        _ name: String, help: String, unit: String = "", labels: [String] = []
    ) throws(ExpositionError) -> UnknownHandle {
        UnknownHandle(
            unchecked: try declare(
                MetricDescriptor(name: name, type: .unknown, help: help, unit: unit, labelNames: labels)))
    }

    /// Declares a histogram family (bucket bounds are given per series, as ``HistogramBounds``).
    public mutating func histogram(
        _ name: String, help: String, unit: String = "", labels: [String] = []
    ) throws(ExpositionError) -> HistogramHandle {
        HistogramHandle(
            unchecked: try declare(
                MetricDescriptor(name: name, type: .histogram, help: help, unit: unit, labelNames: labels)))
    }

    /// Declares a summary family.
    public mutating func summary(
        _ name: String, help: String, unit: String = "", labels: [String] = []
    ) throws(ExpositionError) -> SummaryHandle {
        SummaryHandle(
            unchecked: try declare(
                MetricDescriptor(name: name, type: .summary, help: help, unit: unit, labelNames: labels)))
    }

    /// Declares an info family (name with or without `_info`); its labels are its content.
    public mutating func info(_ name: String, help: String, labels: [String]) throws(ExpositionError) -> InfoHandle {
        InfoHandle(unchecked: try declare(MetricDescriptor(name: name, type: .info, help: help, labelNames: labels)))
    }

    /// Declares a state set family.
    public mutating func stateSet(
        _ name: String, help: String, labels: [String] = []
    ) throws(ExpositionError) -> StateSetHandle {
        StateSetHandle(
            unchecked: try declare(MetricDescriptor(name: name, type: .stateset, help: help, labelNames: labels)))
    }
}

/// One declared family of a ``CollectorSchema``: where its samples go in a sink, and how its label sets are
/// rendered. The typed handles (``CounterHandle``, ``GaugeHandle``…) wrap it.
public struct FamilyHandle: Sendable {
    let schema: Int
    let index: Int
    /// What was declared.
    public let descriptor: MetricDescriptor
    let labelNames: LabelNames

    init(schema: Int, index: Int, descriptor: MetricDescriptor) {
        self.schema = schema
        self.index = index
        self.descriptor = descriptor
        labelNames = LabelNames(descriptor.labelNames)
    }

    /// The family's label values rendered once, to emit the same series at every scrape without escaping
    /// them again. Values are given in the declared label order. Throws when their number is wrong.
    public func labels(_ values: [String]) throws(ExpositionError) -> LabelSet {
        try LabelSet(names: labelNames, values: values, metric: descriptor.name)
    }

    /// ``labels(_:)`` with the values as arguments.
    public func labels(_ values: String...) throws(ExpositionError) -> LabelSet { try labels(values) }
}

/// The type of samples a ``TypedHandle`` accepts: one marker per metric type (``CounterKind``, ``GaugeKind``…).
public protocol FamilyKind: Sendable {
    /// The metric type.
    static var type: MetricType { get }
}

/// Marks counters. See ``CounterHandle``.
public enum CounterKind: FamilyKind {
    /// `counter`.
    public static var type: MetricType { .counter }
}
/// Marks gauges. See ``GaugeHandle``.
public enum GaugeKind: FamilyKind {
    /// `gauge`.
    public static var type: MetricType { .gauge }
}
/// Marks untyped families. See ``UnknownHandle``.
public enum UnknownKind: FamilyKind {
    /// `unknown`.
    public static var type: MetricType { .unknown }
}
/// Marks histograms. See ``HistogramHandle``.
public enum HistogramKind: FamilyKind {
    /// `histogram`.
    public static var type: MetricType { .histogram }
}
/// Marks summaries. See ``SummaryHandle``.
public enum SummaryKind: FamilyKind {
    /// `summary`.
    public static var type: MetricType { .summary }
}
/// Marks infos. See ``InfoHandle``.
public enum InfoKind: FamilyKind {
    /// `info`.
    public static var type: MetricType { .info }
}
/// Marks state sets. See ``StateSetHandle``.
public enum StateSetKind: FamilyKind {
    /// `stateset`.
    public static var type: MetricType { .stateset }
}

/// A family of a ``CollectorSchema`` that accepts samples of one type only: a ``CollectorSink`` method takes the
/// handle of its type (`sink.counter` a ``CounterHandle``), so a sample of the wrong type does not compile. Made
/// by the schema's declarations, or from a ``FamilyHandle`` of that type by ``init(_:)``.
public struct TypedHandle<Kind: FamilyKind>: Sendable {
    /// The untyped handle.
    public let family: FamilyHandle

    /// For the schema's declarations, whose family is of `Kind` by construction.
    init(unchecked family: FamilyHandle) { self.family = family }

    /// The typed handle of `family`, nil when it is not of this type.
    public init?(_ family: FamilyHandle) {
        guard family.descriptor.type == Kind.type else { return nil }
        self.family = family
    }

    /// See ``FamilyHandle/labels(_:)-([String])``.
    public func labels(_ values: [String]) throws(ExpositionError) -> LabelSet { try family.labels(values) }
    /// See ``FamilyHandle/labels(_:)-([String])``.
    public func labels(_ values: String...) throws(ExpositionError) -> LabelSet { try family.labels(values) }
    /// The declared family.
    public var descriptor: MetricDescriptor { family.descriptor }
}

/// A counter family of a ``CollectorSchema``.
public typealias CounterHandle = TypedHandle<CounterKind>
/// A gauge family of a ``CollectorSchema``.
public typealias GaugeHandle = TypedHandle<GaugeKind>
/// An untyped (`unknown`) family of a ``CollectorSchema``.
public typealias UnknownHandle = TypedHandle<UnknownKind>
/// A histogram family of a ``CollectorSchema``.
public typealias HistogramHandle = TypedHandle<HistogramKind>
/// A summary family of a ``CollectorSchema``.
public typealias SummaryHandle = TypedHandle<SummaryKind>
/// An info family of a ``CollectorSchema``.
public typealias InfoHandle = TypedHandle<InfoKind>
/// A state set family of a ``CollectorSchema``.
public typealias StateSetHandle = TypedHandle<StateSetKind>

/// Validated histogram bucket bounds with their `le` labels rendered in both formats; build once (per model
/// configuration) and pass to ``CollectorSink/histogram(_:_:bounds:counts:sum:)`` at every scrape.
public struct HistogramBounds: Sendable {
    let layout: HistogramLayout

    /// Validates `bounds` (finite, strictly increasing; `+Inf` is implied and may be given last).
    public init(_ bounds: [Double], metric: String = "histogram") throws(ExpositionError) {
        layout = HistogramLayout(bounds: try Buckets.validate(bounds, metric: metric))
    }

    /// The finite upper bounds.
    public var bounds: [Double] { layout.bounds }
}
