import Capture
import ExporterConfig
import Exposition
import ModelMonitoring

/// What the proxy needs to attribute a request, built once per configuration and model generation: the route
/// table, and per configured model its monitored model, its capture decoder (nil without `capture:`) and its
/// counters. Immutable; replaced as a whole (``PublishedReference``).
final class ProxyRouting: Sendable {
    /// A class, immutable: passed along every proxied request (routing, the tap's context, the record) as one
    /// reference instead of a copy of all its fields.
    final class Entry: Sendable {
        /// Its place in ``ProxyRouting/entries`` (and ``ProxyRouting/contexts``).
        let index: Int
        let model: MonitoredModel
        let decoder: CaptureDecoder?
        /// ``decoder``'s protocol, nil without one: what is asked of the decoder per exchange (whether there is one, a
        /// custom mapping's), read without it. Testing the optional decoder itself copied the whole decoder to read
        /// its case (a `memcpy` call per test, three per captured exchange).
        let decoderProtocol: CaptureProtocol?
        let counters: ProxyModelCounters
        /// The version of a request that names none (neither its route nor its response): the model's only
        /// version when it declares one; else nil (recorded as `default`, which is `__other__` unless declared).
        let impliedVersion: String?
        /// The model's `llm` collector (a text-generation model with an `llm` section), where OpenAI routes record.
        let llm: LLMCollector?
        /// A text-generation model's numeric features `prompt_tokens` and `completion_tokens` (positions), when it
        /// declares them: its OpenAI requests are then recorded as predictions with those lengths, for drift.
        let lengthFeatures: (prompt: Int?, completion: Int?)
        /// The routing's ``ProxyConfiguration/errorStatuses`` (a request is judged by those it started under).
        let errorStatuses: [ProxyConfiguration.StatusPattern]

        init(
            index: Int, model: MonitoredModel, decoder: CaptureDecoder?, counters: ProxyModelCounters,
            impliedVersion: String?, llm: LLMCollector?, lengthFeatures: (prompt: Int?, completion: Int?),
            errorStatuses: [ProxyConfiguration.StatusPattern]
        ) {
            self.index = index
            self.model = model
            self.decoder = decoder
            self.decoderProtocol = decoder?.protocol
            self.counters = counters
            self.impliedVersion = impliedVersion
            self.llm = llm
            self.lengthFeatures = lengthFeatures
            self.errorStatuses = errorStatuses
        }

        /// Whether a response with `status` counts as a model error.
        func isErrorStatus(_ status: Int) -> Bool { ProxyConfiguration.isErrorStatus(status, in: errorStatuses) }
    }

    /// Who a request is for.
    enum Attribution {
        /// A configured model (and the version the request names), by route `route`.
        case model(Entry, version: String?, route: Int)
        /// Route `route`'s model is the request body's (an OpenAI route's `model`, or another's `model_pointer`);
        /// the version the request names.
        case body(route: Int, version: String?)
        /// No route, or a model that is not configured. A case, not an optional attribution: destroying an optional
        /// of this enum went through the runtime's generic value witness (~125 instructions a request).
        case unrouted
    }

    /// What an OpenAI request body's `model` may name: a served name or an adapter of a model with an `llm` section.
    struct LLMName {
        let name: [UInt8]
        let entry: Entry
        /// The adapter's version (nil for a served name).
        let version: String?
    }

    /// Per route and model (`route * entries.count + model index`): the entry a request of that route for that model
    /// takes when the route decodes with another protocol than the model's (``ProxyConfiguration/Route/captureProtocol``,
    /// or a KServe path's implied one): the model's entry but for its decoder, made here once. Empty when no route
    /// does (requests then take the model's entry, as always).
    let routeEntries: [Entry?]

    /// The ``ModelMonitor/generation`` it was built for.
    let generation: UInt64
    let settings: ProxyConfiguration
    let table: ProxyRouteTable?
    /// By the table's model index.
    let entries: [Entry?]
    let unrouted: ProxyModelCounters
    /// The context of an unrouted request, and per entry (by ``Entry/index``) those of a request that names no
    /// version, without and with capture: made once here, not per request.
    let unroutedContext: ProxyRecorder.Context
    let contexts: [(plain: ProxyRecorder.Context, capturing: ProxyRecorder.Context)?]
    /// Per route: whether it is an OpenAI route (its requests are measured by the LLM metrics).
    let openAIRoutes: [Bool]
    /// Per route: where a model server route's `model_pointer` and `version_pointer` find the model and the version
    /// in the request body.
    let bodyModels: [BodyName?]
    let bodyVersions: [BodyName?]
    /// The entries by model name, for a model named by a request body.
    private let entriesByName: [String: Entry]
    /// Every served name and adapter of the models with an `llm` section.
    let llmNames: [LLMName]
    /// The catch-all model (`llm.catch_all`), where unknown names go as version `__other__`.
    let llmCatchAll: Entry?

    init(
        generation: UInt64, settings: ProxyConfiguration, monitor: ModelMonitor, metrics: ProxyMetrics,
        logMistake: (String) -> Void
    ) {
        self.generation = generation
        self.settings = settings
        unrouted = metrics.counters(ProxyMetrics.unrouted)
        let names = monitor.modelNames
        var entries: [Entry?] = []
        for name in names {
            guard let model = monitor.model(named: name) else {
                entries.append(nil)
                continue
            }
            var decoder: CaptureDecoder? = nil
            if let capture = model.context.configuration.capture {
                // Checked when the configuration was loaded: a mapping that does not build never gets here.
                decoder = try? CaptureRoutes.decoder(capture, model: model)
            }
            entries.append(
                Entry(
                    index: entries.count, model: model, decoder: decoder, counters: metrics.counters(name),
                    impliedVersion: Self.impliedVersion(model.context.configuration),
                    llm: model.collectors.lazy.compactMap { $0 as? LLMCollector }.first,
                    lengthFeatures: Self.lengthFeatures(model.context.configuration),
                    errorStatuses: settings.errorStatuses))
        }
        self.entries = entries
        let variants = Self.routeEntries(settings.routes, entries)
        routeEntries = variants.byRoute
        unroutedContext = ProxyRecorder.Context(entry: nil, counters: unrouted, version: nil, capture: false)
        contexts = (entries + variants.made).map { entry in
            entry.map { entry in
                (
                    ProxyRecorder.Context(entry: entry, counters: entry.counters, version: nil, capture: false),
                    ProxyRecorder.Context(entry: entry, counters: entry.counters, version: nil, capture: true)
                )
            }
        }
        var llmNames: [LLMName] = []
        var catchAll: Entry?
        for case let entry? in entries {
            guard let llm = entry.model.context.configuration.llm, entry.llm != nil else { continue }
            for name in llm.servedNames.isEmpty ? [entry.model.context.name] : llm.servedNames {
                llmNames.append(LLMName(name: Array(name.utf8), entry: entry, version: nil))
            }
            for adapter in llm.adapters {
                llmNames.append(LLMName(name: Array(adapter.name.utf8), entry: entry, version: adapter.version))
            }
            if llm.catchAll && catchAll == nil { catchAll = entry }
        }
        self.llmNames = llmNames
        llmCatchAll = catchAll
        openAIRoutes = settings.routes.map { $0.protocol == .openAI }
        // Checked when the configuration was loaded: a pointer that does not parse never gets here.
        bodyModels = settings.routes.map { route in route.modelPointer.flatMap { try? BodyName(pointer: $0) } }
        bodyVersions = settings.routes.map { route in route.versionPointer.flatMap { try? BodyName(pointer: $0) } }
        entriesByName = Dictionary(
            entries.compactMap { $0.map { ($0.model.context.name, $0) } }, uniquingKeysWith: { first, _ in first })
        do {
            table = try ProxyRouteTable(routes: settings.routes.map(Self.route), modelNames: names)
        } catch {
            logMistake("proxy routes: \(error)")
            table = nil
        }
    }

    /// ``routeEntries``, and the entries made for it (their ``Entry/index`` after the models').
    private static func routeEntries(
        _ routes: [ProxyConfiguration.Route], _ entries: [Entry?]
    ) -> (byRoute: [Entry?], made: [Entry?]) {
        var byRoute = [Entry?](repeating: nil, count: routes.count * entries.count)
        var made: [Entry?] = []
        // One entry per model and protocol, whatever the number of routes that take it.
        var madeFor: [String: Entry] = [:]
        for (r, route) in routes.enumerated() where route.protocol == .modelServer {
            for case let entry? in entries {
                guard let decoder = entry.decoder else { continue }
                let kserve: Set<CaptureProtocol> = [.kserveV1, .openInferenceV2]
                let wanted: CaptureProtocol? =
                    if let named = route.captureProtocol {
                        CaptureProtocol(rawValue: named)
                    } else if kserve.contains(decoder.protocol) {
                        route.impliedCaptureProtocol.flatMap(CaptureProtocol.init(rawValue:))
                    } else {
                        nil
                    }
                guard let wanted, wanted != decoder.protocol,
                    let other = try? CaptureDecoder(protocol: wanted, schema: decoder.schema, outputs: decoder.outputs)
                else { continue }
                let key = "\(entry.index) \(wanted.rawValue)"
                let variant =
                    madeFor[key]
                    ?? Entry(
                        index: entries.count + made.count, model: entry.model, decoder: other, counters: entry.counters,
                        impliedVersion: entry.impliedVersion, llm: entry.llm, lengthFeatures: entry.lengthFeatures,
                        errorStatuses: entry.errorStatuses)
                if madeFor[key] == nil {
                    madeFor[key] = variant
                    made.append(variant)
                }
                byRoute[r * entries.count + entry.index] = variant
            }
        }
        return (made.isEmpty ? [] : byRoute, made)
    }

    /// The version of a request that names none: the model's only version; or, for an LLM with adapters, the only
    /// version no adapter is recorded as (the base model's: `versions: [base, sql]` with `adapters: {sql-lora: sql}`
    /// records its served names as `base`; before, as `default`, counted `__other__` since undeclared). Nil: `default`.
    static func impliedVersion(_ configuration: ModelConfiguration) -> String? {
        let versions = configuration.versions
        if versions.count == 1 { return versions[0] }
        guard let adapters = configuration.llm?.adapters, !adapters.isEmpty else { return nil }
        let base = versions.filter { version in !adapters.contains { $0.version == version } }
        return base.count == 1 ? base[0] : nil
    }

    /// The positions of a text-generation model's numeric `prompt_tokens` and `completion_tokens` features.
    static func lengthFeatures(_ m: ModelConfiguration) -> (prompt: Int?, completion: Int?) {
        guard m.task == .textGeneration else { return (nil, nil) }
        func position(_ name: String) -> Int? {
            m.features.firstIndex { $0.name == name && $0.kind == .numeric }
        }
        return (position("prompt_tokens"), position("completion_tokens"))
    }

    /// A configuration route in the table's terms.
    static func route(_ route: ProxyConfiguration.Route) -> ProxyRouteTable.Route {
        let hasModel = route.path.contains("{model}")
        let hasVersion = route.path.contains("{version}")
        let model: ProxyRouteTable.Route.Source =
            if hasModel {
                .path
            } else if let fixed = route.model {
                .fixed(fixed)
            } else if let header = route.modelHeader {
                .header(header)
            } else {
                .body  // `model_pointer`, or an OpenAI route (the loader allows no other without a model source)
            }
        let version: ProxyRouteTable.Route.Source? =
            if hasVersion {
                .path
            } else if let fixed = route.version {
                .fixed(fixed)
            } else if let header = route.versionHeader {
                .header(header)
            } else {
                nil
            }
        return ProxyRouteTable.Route(pattern: route.path, methods: route.methods, model: model, version: version)
    }

    /// Who `request` is for (``Attribution/unrouted``: no route, or a model that is not configured).
    func attribute(method: String, path: String, header: (String) -> String?) -> Attribution {
        guard let table, let match = table.match(method: method, path: path, header: header) else { return .unrouted }
        switch match.model {
        case .configured(let index):
            guard index < entries.count, let entry = entries[index] else { return .unrouted }
            if !routeEntries.isEmpty, let variant = routeEntries[match.route &* entries.count &+ index] {
                return .model(variant, version: match.version, route: match.route)
            }
            return .model(entry, version: match.version, route: match.route)
        case .body: return .body(route: match.route, version: match.version)
        case .unknown: return .unrouted
        }
    }

    /// The configured model named `name` (a request body's, by a route's `model_pointer`), byte for byte: the table's
    /// `String` keys also match a canonically equivalent spelling (`café` in NFD for the configured NFC), which the
    /// ingestion API refuses as another model.
    func entry(named name: String) -> Entry? {
        guard let entry = entriesByName[name], entry.model.name.sameBytes(name) else { return nil }
        return entry
    }

    /// The model and version an OpenAI request body's `model` names: a served name, an adapter (its version), else
    /// the catch-all with version `__other__`; nil when none (or no name). A scan of the names, no allocation.
    func llmTarget(_ name: String?) -> (entry: Entry, version: String?)? {
        if var name {
            let found = name.withUTF8 { bytes -> LLMName? in
                for candidate in llmNames where candidate.name.count == bytes.count {
                    if candidate.name.withUnsafeBufferPointer({ $0.elementsEqual(bytes) }) { return candidate }
                }
                return nil
            }
            if let found { return (found.entry, found.version) }
        }
        return llmCatchAll.map { ($0, ModelContext.other) }
    }
}
