import Exposition

/// The exporter's configuration file (`--config FILE`), as typed values: the models it monitors and,
/// for each, its task, versions, classes, features, sensitive attributes, reference profile, window,
/// latency buckets, collectors, ingestion token, label join and SLOs; the service-wide SLOs, the
/// alerting thresholds, the checkpoints, the KServe logger receiver and the reverse proxy. ``ConfigLoader``
/// builds it from YAML and validates it.
public struct ExporterConfiguration: Sendable, Equatable {
    /// The models, in file order; names are unique.
    public var models: [ModelConfiguration]
    /// The file it was read from ("<built-in>" for the demo configuration).
    public var source: String
    /// Thresholds and durations of the generated alerts (`alerting:`).
    public var alerting = AlertingConfiguration()
    /// Service-wide SLOs (`service_slos:`): availability and latency over the requests of all models,
    /// labelled `model="__service__"` (see docs/slos.md).
    public var serviceSLOs: [SLOConfiguration] = []
    /// Checkpoints of the models' state (`storage:`), if configured; see ``StorageConfiguration``.
    public var storage: StorageConfiguration? = nil
    /// The KServe logger receiver's bounds (`cloudevents:`).
    public var cloudEvents = CloudEventsConfiguration()
    /// The reverse proxy in front of a model server (`proxy:`), if configured; nil: no proxy. See
    /// ``ProxyConfiguration``.
    public var proxy: ProxyConfiguration? = nil
    /// The exporter's own remote write (`remote_write:`), if any: docs/fleet.md.
    public var remoteWrite: RemoteWriteConfiguration? = nil

    /// The `model` label of service-wide SLOs' rules, alerts and `mlops_slo_*` series; reserved as a model name.
    public static let serviceModelName = "__service__"

    /// The `model` label under which requests for models that are not configured are counted; reserved as a model
    /// name (a model of that name shared its series with them).
    public static let unknownModelName = "__unknown__"

    /// The `model` label of the proxy's requests that no route matched (`mlops_proxy_requests_total`); reserved as a
    /// model name (a model of that name shared its proxy series with them: a probe).
    public static let unroutedModelName = "__unrouted__"

    /// The pseudo-model that owns the service-wide SLOs: its name is ``serviceModelName``; the rule generator
    /// selects the requests of every model for it.
    public static let serviceModel = ModelConfiguration(name: serviceModelName, task: .regression, latencyBuckets: [])

    /// Creates a configuration.
    public init(models: [ModelConfiguration], source: String) {
        self.models = models
        self.source = source
    }

    /// The model named `name`, if configured.
    public func model(named name: String) -> ModelConfiguration? { models.first { $0.name == name } }

    /// Every SLO with its owner, in file order: each model's `slos`, then the service-wide ones (owned by
    /// ``serviceModel``).
    public var allSLOs: [(model: ModelConfiguration, slo: SLOConfiguration)] {
        models.flatMap { m in m.slos.map { (m, $0) } } + serviceSLOs.map { (Self.serviceModel, $0) }
    }
}

/// What a model predicts; it decides which outputs and quality metrics make sense.
public enum ModelTask: String, Sendable, CaseIterable {
    /// Two classes, one of them the positive class.
    case binaryClassification = "binary_classification"
    /// Three or more classes.
    case multiclassClassification = "multiclass_classification"
    /// A number.
    case regression
    /// Text from a large language model (predictions carry no class or number; with an `llm` section, measured by
    /// the proxy's OpenAI-compatible routes).
    case textGeneration = "text_generation"
}

/// The type of an input feature.
public enum FeatureKind: String, Sendable, CaseIterable {
    /// A number (drift on binned distributions).
    case numeric
    /// One of a finite set of values (others become `__other__`).
    case categorical
}

/// One input feature of a model.
public struct FeatureConfiguration: Sendable, Equatable {
    /// Feature name, as sent in events' `features` object.
    public var name: String
    /// Numeric or categorical.
    public var kind: FeatureKind
    /// For categorical features: the known values (others map to `__other__`); `nil` means "learn them
    /// from the reference profile", which then must be configured.
    public var values: [String]?

    /// Creates a feature.
    public init(name: String, kind: FeatureKind, values: [String]? = nil) {
        self.name = name
        self.kind = kind
        self.values = values
    }
}

/// A sensitive attribute (for fairness) and its groups; events carry it in `attributes`.
public struct SensitiveAttribute: Sendable, Equatable {
    /// Attribute name.
    public var name: String
    /// Known groups; others map to `__other__`.
    public var groups: [String]
    /// The privileged group for AIF360-style signed metrics, if any.
    public var privileged: String?

    /// Creates an attribute.
    public init(name: String, groups: [String], privileged: String? = nil) {
        self.name = name
        self.groups = groups
        self.privileged = privileged
    }
}

/// The sliding window model statistics are computed over: `duration` split into `slices` that rotate.
public struct WindowConfiguration: Sendable, Equatable {
    /// Window length (default one hour).
    public var duration: Duration
    /// Number of slices (default 12, i.e. 5 minutes each for an hour).
    public var slices: Int

    /// Creates a window.
    public init(duration: Duration = .seconds(3600), slices: Int = 12) {
        self.duration = duration
        self.slices = slices
    }
}

/// A collector to run for a model, by registered name, with its options, and where they are in the file
/// (for errors found when the collector is built). Two configurations are equal when their names and
/// options are: the locations take no part, so a model that only moved in the file is unchanged.
public struct CollectorConfiguration: Sendable, Equatable {
    /// The collector's registered name (built-in `service`, `drift`, `quality`, `fairness`, or a user's own).
    public var name: String
    /// Options, as given in the file (a mapping; empty when none), YAML aliases resolved.
    public var options: [String: ConfigValue]
    /// Where the collector's entry is in the file (`nil` when not read from a file).
    public var location: ConfigLocation?
    /// Where each option is in the file, by its path through mappings (`prediction_buckets`,
    /// `features.amount.method`); options inside lists are not listed.
    public var optionLocations: [String: ConfigLocation]

    /// Creates a collector configuration.
    public init(
        name: String, options: [String: ConfigValue] = [:], location: ConfigLocation? = nil,
        optionLocations: [String: ConfigLocation] = [:]
    ) {
        self.name = name
        self.options = options
        self.location = location
        self.optionLocations = optionLocations
    }

    /// Where option `path` (as in ``optionLocations``; `nil` for the collector as a whole) is: its own
    /// location, else that of the closest enclosing option, else the entry's.
    public func location(ofOption path: String?) -> ConfigLocation? {
        var path = path.map { Substring($0) }
        while let current = path, !current.isEmpty {
            if let found = optionLocations[String(current)] { return found }
            path = current.lastIndex(of: ".").map { current[..<$0] }
        }
        return location
    }

    /// Equal names and options (locations are not compared).
    public static func == (lhs: CollectorConfiguration, rhs: CollectorConfiguration) -> Bool {
        lhs.name == rhs.name && lhs.options == rhs.options
    }
}

/// A configuration value whose schema belongs to a plug-in (collector options).
public indirect enum ConfigValue: Sendable, Equatable {
    /// A string (any YAML scalar that is not a number or boolean).
    case string(String)
    /// A number.
    case number(Double)
    /// A boolean.
    case bool(Bool)
    /// A list.
    case list([ConfigValue])
    /// A mapping.
    case map([String: ConfigValue])
}

/// Where a model's entry, its `reference` and its `capture` are in the configuration file, for the problems found
/// after loading (a reference profile that does not fit the model, a capture mapping its schema refuses). Any two are
/// equal: a model that only moved in the file is unchanged (a reload keeps its state).
public struct ModelLocations: Sendable, Equatable {
    /// The model's entry (its list item).
    public var entry: ConfigLocation?
    /// The `reference` value.
    public var reference: ConfigLocation?
    /// The `capture` value.
    public var capture: ConfigLocation?

    /// Creates locations (none known by default).
    public init(entry: ConfigLocation? = nil, reference: ConfigLocation? = nil, capture: ConfigLocation? = nil) {
        self.entry = entry
        self.reference = reference
        self.capture = capture
    }

    /// Always true: locations do not make two configurations differ.
    public static func == (lhs: ModelLocations, rhs: ModelLocations) -> Bool { true }
}

/// One model's configuration.
public struct ModelConfiguration: Sendable, Equatable {
    /// Model name: the `model` label value and the `{model}` of the ingestion URLs.
    public var name: String
    /// What it predicts.
    public var task: ModelTask
    /// Allowed versions; any other version is recorded as `__other__`.
    public var versions: [String]
    /// Classes, for classification tasks; other predictions are recorded as `__other__`.
    public var classes: [String]
    /// The positive class, for binary classification.
    public var positiveClass: String?
    /// Input features.
    public var features: [FeatureConfiguration]
    /// Sensitive attributes.
    public var sensitiveAttributes: [SensitiveAttribute]
    /// Path of the reference profile (resolved against the configuration file's folder), if any.
    public var reference: String?
    /// Statistics window.
    public var window: WindowConfiguration
    /// Upper bounds of the latency histogram buckets, in seconds.
    public var latencyBuckets: [Double]
    /// Collectors to run, in order.
    public var collectors: [CollectorConfiguration]
    /// Bearer token that ingestion requests must present, if set.
    public var token: String?
    /// Most series this model's collectors may create (a guard on cardinality).
    public var maxSeries: Int
    /// How long a prediction with an `id` waits for its label (`join_ttl`, default 24 h).
    public var joinTTL: Duration = .seconds(86_400)
    /// Most predictions waiting for a label at once (`max_pending`, default 100,000); beyond, the oldest
    /// are evicted (and counted).
    public var maxPending: Int = 100_000
    /// Service level objectives (`slos`), in file order; names are unique within the model.
    public var slos: [SLOConfiguration] = []
    /// Capture without code (`capture`): the serving protocol and the KServe logger's service name.
    public var capture: CaptureConfiguration? = nil
    /// A text-generation model behind the proxy's OpenAI-compatible routes (`llm`, docs/llm.md).
    public var llm: LLMConfiguration? = nil
    /// Where the model is written in the configuration file (empty when not read from a file): for problems found
    /// once the file is loaded. Takes no part in equality.
    public var locations = ModelLocations()

    /// client_golang's default buckets, 5 ms to 10 s.
    public static let defaultLatencyBuckets: [Double] = Buckets.defaultSeconds

    /// Creates a model configuration with defaults for everything but name, task and versions. `versions` must list
    /// at least one (e.g. `["default"]`): its default, none, is refused by validation, as a file's model without
    /// `versions` is (`models[0].versions: list at least one version`).
    public init(
        name: String, task: ModelTask, versions: [String] = [], classes: [String] = [], positiveClass: String? = nil,
        features: [FeatureConfiguration] = [], sensitiveAttributes: [SensitiveAttribute] = [],
        reference: String? = nil, window: WindowConfiguration = WindowConfiguration(),
        latencyBuckets: [Double] = ModelConfiguration.defaultLatencyBuckets,
        collectors: [CollectorConfiguration] = [CollectorConfiguration(name: "service")], token: String? = nil,
        maxSeries: Int = 10_000
    ) {
        self.name = name
        self.task = task
        self.versions = versions
        self.classes = classes
        self.positiveClass = positiveClass
        self.features = features
        self.sensitiveAttributes = sensitiveAttributes
        self.reference = reference
        self.window = window
        self.latencyBuckets = latencyBuckets
        self.collectors = collectors
        self.token = token
        self.maxSeries = maxSeries
    }
}
