/// The reverse proxy in front of a model server (`proxy:` at the top level; docs/proxy.md, issue 16): where it
/// listens, the upstream it forwards to, the upstream pool's bounds and timeouts, the request-id header, which
/// statuses count as model errors, how much of each body is captured, and the routes that tell which model (and
/// version) a request is for. Absent from the file: no proxy. Every value here has passed the file's checks when it
/// comes from ``ConfigLoader`` or ``ExporterConfiguration/validated(knownCollectors:referencesMustExist:)``.
public struct ProxyConfiguration: Sendable, Equatable {
    /// The default listen addresses: `[":9748"]` (the exporter's own default is `:9747`).
    public static let defaultListenAddresses = [":9748"]
    /// The most routes a configuration may have: 64 (each proxied request is matched against them in order).
    public static let maxRoutes = 64
    /// The largest `capture.max_body_bytes`: 64 MiB.
    public static let maxCaptureBodyBytes = 64 << 20
    /// The routes used when `routes` is absent, in this order: Open Inference Protocol v2 with and without a version,
    /// then KServe v1, the model (and version) taken from the path.
    public static let defaultRoutes = [
        Route(path: "/v2/models/{model}/versions/{version}/infer"),
        Route(path: "/v2/models/{model}/infer"),
        Route(path: "/v1/models/{model}:predict"),
        Route(path: "/v1/chat/completions", protocol: .openAI),
        Route(path: "/v1/completions", protocol: .openAI),
        Route(path: "/v1/embeddings", protocol: .openAI),
        Route(path: "/v1/responses", protocol: .openAI),
    ]

    /// Addresses to listen on, in the syntax of the exporter's `--web.listen-address` (`host:port`, `[v6]:port`,
    /// `:port` for all interfaces, port 0 for any free port); none twice.
    public var listenAddresses: [String] = defaultListenAddresses
    /// Where requests are forwarded.
    public var upstream: Upstream
    /// The most upstream connections, busy and idle, over all event loops (default 64; 1...10,000).
    public var maxConnections = 64
    /// The most requests waiting for an upstream connection (default 1,024; 0...100,000); beyond, a request is
    /// answered 503.
    public var maxWaiting = 1024
    /// Longest wait for an upstream connection to be established (default 5 s).
    public var connectTimeout: Duration = .seconds(5)
    /// Longest wait from a request's last byte sent upstream to the response head (default 60 s).
    public var responseTimeout: Duration = .seconds(60)
    /// Longest gap between two reads of an upstream response body (default 60 s).
    public var readTimeout: Duration = .seconds(60)
    /// How long a pooled idle connection is kept (default 4 s; keep it under the upstream's own keep-alive timeout,
    /// uvicorn's is 5 s).
    public var idleTimeout: Duration = .seconds(4)
    /// The header that carries a request's id (the event id for delayed labels), as spelled in the file (header names
    /// compare case-insensitively); an HTTP token (default `X-Request-Id`).
    public var requestIDHeader = "X-Request-Id"
    /// The response statuses that count as model errors (default `5xx`); none twice.
    public var errorStatuses: [StatusPattern] = [.statusClass(5)]
    /// How much of the traffic is captured for features and predictions.
    public var capture = CaptureLimits()
    /// The routes, matched in order, the first that matches wins (default ``defaultRoutes``); 1 to ``maxRoutes``.
    public var routes: [Route] = defaultRoutes
    /// On OpenAI routes, add `"stream_options": {"include_usage": true}` to a streamed request that does not ask for
    /// usage (default false: request bodies are never changed), so that the server reports token counts instead of
    /// the proxy estimating them. Such a request's body is held whole (at most `capture.max_body_bytes`) before it
    /// is forwarded, and its client also receives the server's usage chunk (docs/llm.md).
    public var injectIncludeUsage = false

    /// The bounds allowed for the timeouts: 1 ms to 1 day, in whole milliseconds.
    public static let timeoutRange: ClosedRange<Duration> = .milliseconds(1) ... .seconds(86_400)

    /// A proxy to `upstream` with the defaults.
    public init(upstream: Upstream) {
        self.upstream = upstream
    }

    /// Whether a response with `status` counts as a model error (some entry of ``errorStatuses`` matches it).
    public func isErrorStatus(_ status: Int) -> Bool {
        Self.isErrorStatus(status, in: errorStatuses)
    }

    /// Whether some entry of `patterns` (an ``errorStatuses`` list) matches `status`.
    public static func isErrorStatus(_ status: Int, in patterns: [StatusPattern]) -> Bool {
        patterns.contains { $0.matches(status) }
    }
}

extension ProxyConfiguration {
    /// The model server (`upstream: http://host:port[/base-path]`). Only plain HTTP/1.1 for now: `https` is refused.
    public struct Upstream: Sendable, Equatable, CustomStringConvertible {
        /// A DNS name (as written), a numeric IPv4 address, or a numeric IPv6 address without its brackets.
        public var host: String
        /// The TCP port, 1...65535 (80 when the URL has none).
        public var port: Int
        /// Prefixed to every forwarded request's path: empty, or `/` followed by path characters and not ending in
        /// `/` (a URL's trailing `/` is dropped, so `http://h:1/` and `http://h:1` are the same upstream).
        public var basePath: String

        /// Creates an upstream.
        public init(host: String, port: Int, basePath: String = "") {
            self.host = host
            self.port = port
            self.basePath = basePath
        }

        /// `host:port`, with brackets around an IPv6 host: what a connection is for.
        public var authority: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

        /// The URL, as the file would spell it: `http://host:port/base-path`.
        public var description: String { "http://\(authority)\(basePath)" }
    }

    /// One entry of `error_statuses`.
    public enum StatusPattern: Sendable, Equatable, CustomStringConvertible {
        /// `Nxx`: every status from N00 to N99 (N is 1...5).
        case statusClass(Int)
        /// An exact status, 100...599.
        case code(Int)

        /// Whether `status` is matched.
        public func matches(_ status: Int) -> Bool {
            switch self {
            case .statusClass(let n): status / 100 == n
            case .code(let c): status == c
            }
        }

        /// `5xx` or `503`, as the file spells it.
        public var description: String {
            switch self {
            case .statusClass(let n): "\(n)xx"
            case .code(let c): "\(c)"
            }
        }
    }

    /// `capture:` of the proxy: how much of the traffic is decoded for features and predictions (latency and status
    /// are recorded for every request).
    public struct CaptureLimits: Sendable, Equatable {
        /// The most bytes of one body (request or response) copied for decoding (default 1 MiB, 0 ... 64 MiB); an
        /// exchange with a bigger body is proxied untouched and counted as `too_large`.
        public var maxBodyBytes = 1 << 20
        /// The share of requests whose bodies are decoded, 0.0 ... 1.0 (default 1.0: all).
        public var sampleRate = 1.0

        /// The defaults.
        public init() {}

        /// Creates capture limits.
        public init(maxBodyBytes: Int, sampleRate: Double) {
            self.maxBodyBytes = maxBodyBytes
            self.sampleRate = sampleRate
        }
    }

    /// One route: the requests it matches (path pattern and methods) and where their model and version come from.
    ///
    /// `path` is literal text with at most one `{model}` and one `{version}` placeholder, starting with `/`. It is
    /// compared with the request path as sent (without the query, not percent-decoded). A placeholder matches one or
    /// more bytes that are not `/`; when the pattern goes on with literal text, it ends at the first occurrence of
    /// that text's first byte (so `/v1/models/{model}:predict` matches `/v1/models/credit:predict` with model
    /// `credit`). Two placeholders are always separated by literal text.
    ///
    /// The model comes from exactly one of `{model}` in the path, ``model``, ``modelHeader`` or ``modelPointer`` (an
    /// OpenAI route may name none: the body's `model`); the version from at most one of `{version}` in the path,
    /// ``version``, ``versionHeader`` or ``versionPointer`` (none: the request names no version).
    public struct Route: Sendable, Equatable {
        /// The path pattern.
        public var path: String
        /// The methods it matches (default `POST`); HTTP tokens, compared case-sensitively.
        public var methods: [String]
        /// A configured model's name: every request of this route is for that model.
        public var model: String?
        /// The request header that names the model.
        public var modelHeader: String?
        /// An RFC 6901 pointer into the request's JSON body to the model's name (a string, or a number's text), for
        /// a model server route.
        public var modelPointer: String?
        /// A version name: every request of this route is for that version (with a fixed ``model``, one of its
        /// versions).
        public var version: String?
        /// The request header that names the version.
        public var versionHeader: String?
        /// An RFC 6901 pointer into the request's JSON body to the version's name (a string, or a number's text),
        /// for a model server route.
        public var versionPointer: String?
        /// What the requests are (`protocol`): ``RouteProtocol/modelServer`` (default) or ``RouteProtocol/openAI``,
        /// whose requests the LLM metrics measure and whose model, unless the route names it, is the request body's
        /// `model` (docs/llm.md).
        public var `protocol`: RouteProtocol
        /// The capture protocol the route's exchanges are decoded with (`capture_protocol`: `kserve_v1`,
        /// `open_inference_v2` or `mlflow`), whatever the model's `capture.protocol`; nil: the model's, except that
        /// a KServe path implies its protocol for a model captured with either (``impliedCaptureProtocol``).
        public var captureProtocol: String?

        /// The capture protocols a route may name.
        public static let captureProtocols = CaptureConfiguration.protocols.filter { $0 != "custom" }

        /// The protocol a KServe route's path implies (KServe serves one model under both): `/v1/models/…:predict`
        /// is `kserve_v1`, `/v2/models/…/infer` `open_inference_v2`; nil for other paths.
        public var impliedCaptureProtocol: String? {
            if path.hasPrefix("/v1/models/") && path.hasSuffix(":predict") { return "kserve_v1" }
            if path.hasPrefix("/v2/models/") && path.hasSuffix("/infer") { return "open_inference_v2" }
            return nil
        }

        /// What a route's requests are.
        public enum RouteProtocol: String, Sendable, Equatable, CaseIterable {
            /// A model server's inference requests (captured per the model's `capture` section).
            case modelServer = "model_server"
            /// An OpenAI-compatible API (chat completions, completions, embeddings, responses).
            case openAI = "openai"
        }

        /// Creates a route.
        public init(
            path: String, methods: [String] = ["POST"], model: String? = nil, modelHeader: String? = nil,
            modelPointer: String? = nil, version: String? = nil, versionHeader: String? = nil,
            versionPointer: String? = nil, protocol: RouteProtocol = .modelServer
        ) {
            self.protocol = `protocol`
            self.path = path
            self.methods = methods
            self.model = model
            self.modelHeader = modelHeader
            self.modelPointer = modelPointer
            self.version = version
            self.versionHeader = versionHeader
            self.versionPointer = versionPointer
        }
    }
}
