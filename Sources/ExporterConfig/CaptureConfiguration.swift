/// How a model's traffic is captured without code (`capture:` of a model; docs/proxy.md): the serving protocol its
/// requests and responses speak, the KServe InferenceService whose logger events are this model's, and, for the
/// `custom` protocol, where each field is.
public struct CaptureConfiguration: Sendable, Equatable {
    /// The protocols: `kserve_v1`, `open_inference_v2`, `mlflow`, `custom`.
    public static let protocols = ["kserve_v1", "open_inference_v2", "mlflow", "custom"]
    /// The fields a `custom` mapping may name besides `features` and `attributes`.
    public static let customFields = ["prediction", "score", "probabilities", "id", "version"]

    /// One of ``protocols``.
    public var protocolName: String
    /// The `Ce-Inferenceservicename` of the KServe logger events that belong to this model (default: the model's
    /// name).
    public var inferenceService: String?
    /// For `custom`: field (`prediction`, `score`, `probabilities`, `id`, `version`) → where, as
    /// `request:<JSON pointer>`, `response:<JSON pointer>` or `header:<name>` (pointers RFC 6901, `*` over arrays).
    public var fields: [String: String]
    /// For `custom`: feature name → where.
    public var features: [String: String]
    /// For `custom`: sensitive attribute name → where.
    public var attributes: [String: String]

    /// Creates a capture configuration.
    public init(
        protocolName: String, inferenceService: String? = nil, fields: [String: String] = [:],
        features: [String: String] = [:], attributes: [String: String] = [:]
    ) {
        self.protocolName = protocolName
        self.inferenceService = inferenceService
        self.fields = fields
        self.features = features
        self.attributes = attributes
    }
}

/// The KServe logger receiver's bounds (`cloudevents:` at the top level; docs/proxy.md).
public struct CloudEventsConfiguration: Sendable, Equatable {
    /// Most halves (a request or a response) waiting for their other half (default 10,000); beyond, the oldest is
    /// dropped (counted).
    public var maxPending: Int = 10_000
    /// Most bytes of halves waiting (default 64 MiB); beyond, the oldest is dropped (counted).
    public var maxPendingBytes: Int = 64 << 20
    /// How long a half waits for its other half (default 60 s).
    public var ttl: Duration = .seconds(60)

    /// The defaults.
    public init() {}
}
