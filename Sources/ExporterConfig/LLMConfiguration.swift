/// A text-generation model served behind the proxy's OpenAI-compatible routes (`models[].llm`, docs/llm.md): which
/// names a request body's `model` gives it, its histogram buckets, and its goodput objectives.
public struct LLMConfiguration: Sendable, Equatable {
    /// The request body's `model` values that are this model (default: the model's own name). Unique over all
    /// models; each at most ``maxNameBytes`` bytes.
    public var servedNames: [String]
    /// LoRA adapters: a request body's `model` equal to ``Adapter/name`` is this model, recorded as version
    /// ``Adapter/version`` (one of the model's `versions`).
    public var adapters: [Adapter]
    /// Requests naming a model that no configured model serves are recorded under this model as version
    /// `__other__` (at most one model is the catch-all; without one they count as unrouted).
    public var catchAll: Bool
    /// Upper bounds of `mlops_llm_time_to_first_token_seconds` (default ``defaultTTFTBuckets``).
    public var ttftBuckets: [Double]
    /// Upper bounds of `mlops_llm_inter_token_latency_seconds` (default ``defaultITLBuckets``).
    public var itlBuckets: [Double]
    /// Upper bounds of `mlops_llm_time_per_output_token_seconds` (default ``defaultITLBuckets``).
    public var tpotBuckets: [Double]
    /// Upper bounds of `mlops_llm_request_duration_seconds` (default ``defaultDurationBuckets``).
    public var durationBuckets: [Double]
    /// Goodput objectives: a request is good when it succeeded and met every one set here.
    public var objectives: Objectives

    /// The longest served name or adapter name, in bytes.
    public static let maxNameBytes = 256
    /// The most served names and adapters of one model, together.
    public static let maxNames = 64

    /// 10 ms to 60 s (vLLM's time-to-first-token buckets from 10 ms).
    public static let defaultTTFTBuckets: [Double] = [
        0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 60,
    ]
    /// 1 ms to 5 s, for gaps between tokens and time per output token.
    public static let defaultITLBuckets: [Double] = [
        0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
        0.75, 1, 2.5, 5,
    ]
    /// 50 ms to 10 min.
    public static let defaultDurationBuckets: [Double] = [
        0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 45, 60, 120, 300, 600,
    ]

    /// One LoRA adapter.
    public struct Adapter: Sendable, Equatable {
        /// The request body's `model` value.
        public var name: String
        /// The version it is recorded as.
        public var version: String

        /// Creates an adapter.
        public init(name: String, version: String) {
            self.name = name
            self.version = version
        }
    }

    /// Goodput objectives (`objectives`), each optional; seconds, positive and finite.
    public struct Objectives: Sendable, Equatable {
        /// Longest time to first token (streamed requests with content).
        public var ttftSeconds: Double?
        /// Longest time per output token (requests with at least two output tokens).
        public var tpotSeconds: Double?
        /// Longest request duration.
        public var durationSeconds: Double?

        /// Creates objectives.
        public init(ttftSeconds: Double? = nil, tpotSeconds: Double? = nil, durationSeconds: Double? = nil) {
            self.ttftSeconds = ttftSeconds
            self.tpotSeconds = tpotSeconds
            self.durationSeconds = durationSeconds
        }

        /// Whether none is set.
        public var isEmpty: Bool { ttftSeconds == nil && tpotSeconds == nil && durationSeconds == nil }

        /// The `objective` label values of the objectives set, in this order: `ttft`, `tpot`, `duration`.
        public var names: [String] {
            (ttftSeconds == nil ? [] : ["ttft"]) + (tpotSeconds == nil ? [] : ["tpot"])
                + (durationSeconds == nil ? [] : ["duration"])
        }
    }

    /// Creates an LLM section; `servedNames` empty means the model's own name.
    public init(
        servedNames: [String] = [], adapters: [Adapter] = [], catchAll: Bool = false,
        ttftBuckets: [Double] = LLMConfiguration.defaultTTFTBuckets,
        itlBuckets: [Double] = LLMConfiguration.defaultITLBuckets,
        tpotBuckets: [Double] = LLMConfiguration.defaultITLBuckets,
        durationBuckets: [Double] = LLMConfiguration.defaultDurationBuckets, objectives: Objectives = Objectives()
    ) {
        self.servedNames = servedNames
        self.adapters = adapters
        self.catchAll = catchAll
        self.ttftBuckets = ttftBuckets
        self.itlBuckets = itlBuckets
        self.tpotBuckets = tpotBuckets
        self.durationBuckets = durationBuckets
        self.objectives = objectives
    }
}
