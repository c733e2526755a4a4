import Profiling

/// What `mlops-exporter batch` is asked to score.
public struct BatchRequest: Sendable, Equatable {
    /// The configuration file (YAML), read as `serve` reads it.
    public var configPath: String
    /// The model's name in it.
    public var model: String
    /// The predictions: CSV with a header row, or NDJSON prediction events.
    public var input: String
    /// The input's format; nil: from the extension (`.csv`; `.ndjson`, `.jsonl`).
    public var inputFormat: InputFormat?
    /// Labels joined to the predictions by `id` (CSV `id,label` or NDJSON label events), if any.
    public var labels: String?
    /// A reference profile to use instead of the model's configured `reference`.
    public var reference: String?
    /// The version of CSV rows without a `version` column; nil: the model's first configured version.
    public var defaultVersion: String?
    /// CSV columns to skip although they are not the model's.
    public var ignoreColumns: [String]

    /// Creates a request.
    public init(
        configPath: String, model: String, input: String, inputFormat: InputFormat? = nil, labels: String? = nil,
        reference: String? = nil, defaultVersion: String? = nil, ignoreColumns: [String] = []
    ) {
        self.configPath = configPath
        self.model = model
        self.input = input
        self.inputFormat = inputFormat
        self.labels = labels
        self.reference = reference
        self.defaultVersion = defaultVersion
        self.ignoreColumns = ignoreColumns
    }
}
