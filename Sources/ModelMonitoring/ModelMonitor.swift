import ExporterConfig
import Exposition
import Ingestion
import Synchronization

/// All monitored models, as one registry ``CollectorGroup``: builds each model's collectors from the
/// configuration (again on every reload), finds a model by name for ingestion, and gives the registry one
/// ``CollectorPart`` per model and collector (plus the ingestion accounting and the label join of each
/// model), so that a scrape drops only the part that fails.
///
/// Register it once in the ``Registry`` (`registry.register(monitor)`); its families are those of every
/// collector in its catalog (fixed at creation), so a reload that adds models or changes their collectors
/// needs no re-registration.
public final class ModelMonitor: CollectorGroup {
    /// The model label value under which requests for unconfigured models are counted.
    public static let unknownModel = ExporterConfiguration.unknownModelName

    /// The ingestion families and every family of the catalog's collectors.
    public let descriptors: [MetricDescriptor]
    /// The collectors models may use.
    public let catalog: CollectorCatalog
    let models = Mutex<[String: MonitoredModel]>([:])
    let order = Mutex<[String]>([])
    let unknownModelRequests = AtomicSlots(count: 1)
    /// The part that writes the requests for unconfigured models.
    let unknownPart: CollectorPart
    /// This exporter's instance id (`--instance.id`, valid by ``EventID/isValidInstance(_:)``): a label whose id
    /// names another instance (``EventID/instance(of:)``) is unmatched for `other_instance`. nil: this exporter
    /// generates no ids, so any id of that shape that is not pending names another instance.
    public let instanceID: String?

    /// A monitor with no models yet (see ``apply(_:)``), for the exporter instance `instanceID`.
    public init(catalog: CollectorCatalog = .builtIn, instanceID: String? = nil) {
        precondition(instanceID.map(EventID.isValidInstance) ?? true, "invalid instance id \(instanceID ?? "")")
        self.catalog = catalog
        self.instanceID = instanceID
        descriptors = IngestCounters.schema.descriptors + LabelJoiner.schema.descriptors + catalog.descriptors
        let requests = unknownModelRequests
        let labels = try! IngestCounters.families.rejectedRequests.labels(
            Self.unknownModel, RequestRejectReason.unknownModel.rawValue)
        unknownPart = CollectorPart(collector: "ingest", model: Self.unknownModel, schema: IngestCounters.schema) {
            $0.counter(IngestCounters.families.rejectedRequests, labels, value: Double(requests.load(0)))
        }
    }

    /// Builds and validates every model of `configuration` (collector options, series caps) without
    /// installing anything; throws every problem found. `references` maps a model's `reference` path to
    /// the loaded, checked profile and the SHA-256 of its file.
    public func prepare(
        _ configuration: ExporterConfiguration, references: [String: LoadedReference] = [:]
    )
        throws(ModelSetupErrors) -> PreparedModels
    {
        var problems: [ModelSetupErrors.Problem] = []
        var prepared: [MonitoredModel] = []
        var rebuilt: [String] = []
        var startedEmpty: [String: [String]] = [:]
        let current = models.withLock { $0 }
        for (index, model) in configuration.models.enumerated() {
            let loaded = model.reference.flatMap { references[$0] }
            let hash = loaded?.sha256 ?? ""
            // An unchanged model keeps its collectors, and so its counts.
            if let existing = current[model.name], existing.context.referenceSHA256 == hash {
                let configured = existing.context.configuration
                if configured == model {
                    prepared.append(existing)
                    continue
                }
                // Only fields that no collector reads changed: `capture` (read by the capture routes, rebuilt from the
                // models at the next generation), the token (read per request from the model's context), SLOs (rules
                // and dashboards), `max_series` (a bound checked when the collectors are built: checked again here),
                // `join_ttl` and `max_pending` (the pending store takes them in place, at ``apply(_:)``), the `llm`
                // section's names (served names, adapters, catch-all: read by the proxy's routes, rebuilt from the
                // models at the next generation). The same state under the new configuration: a reload keeps its
                // windows and pending predictions, as a restart would (the state fingerprint leaves them out too).
                var aside = model
                aside.capture = configured.capture
                aside.token = configured.token
                aside.slos = configured.slos
                aside.maxSeries = configured.maxSeries
                aside.joinTTL = configured.joinTTL
                aside.maxPending = configured.maxPending
                if var llm = aside.llm, let old = configured.llm {
                    llm.servedNames = old.servedNames
                    llm.adapters = old.adapters
                    llm.catchAll = old.catchAll
                    aside.llm = llm
                }
                let series = existing.collectors.reduce(0) { $0 + $1.maxSeries }
                if aside == configured, series <= model.maxSeries, let reconfigured = try? existing.reconfigured(model)
                {
                    prepared.append(reconfigured)
                    continue
                }
                // Only collector options changed (the same collectors, in order): each collector whose state keeps
                // its shape under the new options carries it on, and the pending predictions stay (a drift threshold
                // or a fairness bound tuned: before, the model's windows started empty and its pending predictions
                // were evicted).
                aside.collectors = configured.collectors
                // The privileged groups too (AIF360's signed metrics: the fairness collector reads them, its counts keep
                // their shape): the fairness collector is built anew and carries its state; the others stay whole.
                let privilegedChanged =
                    model.sensitiveAttributes.map(\.privileged) != configured.sensitiveAttributes.map(\.privileged)
                if privilegedChanged, aside.sensitiveAttributes.count == configured.sensitiveAttributes.count {
                    for a in aside.sensitiveAttributes.indices {
                        aside.sensitiveAttributes[a].privileged = configured.sensitiveAttributes[a].privileged
                    }
                }
                if aside == configured, model.collectors.map(\.name) == configured.collectors.map(\.name) {
                    let before = problems.count
                    var empty: [String] = []
                    let carried = carryingState(
                        of: existing, into: model, hash: hash, problems: &problems, startedEmpty: &empty,
                        rebuilding: privilegedChanged ? { $0 is FairnessCollector } : { _ in false })
                    if let carried {
                        prepared.append(carried)
                        if !empty.isEmpty { startedEmpty[model.name] = empty }
                        continue
                    }
                    if problems.count > before { continue }
                }
            }
            let context: ModelContext
            do {
                context = try ModelContext(configuration: model, referenceSHA256: hash, reference: loaded?.profile)
            } catch {
                problems.append(
                    .init(
                        model: model.name, "\(error)", at: model.locations.entry,
                        field: model.locations.entry == nil ? "models[\(index)]" : nil))
                continue
            }
            prepared.append(
                makeModel(
                    context, counters: current[model.name]?.counters ?? IngestCounters(model: model.name),
                    joinCounters: current[model.name]?.joiner?.counters ?? JoinCounters(), modelIndex: index,
                    problems: &problems))
            if current[model.name] != nil { rebuilt.append(model.name) }
        }
        if !problems.isEmpty { throw ModelSetupErrors(problems) }
        var result = PreparedModels(models: prepared)
        result.rebuilt = rebuilt
        result.collectorsStartedEmpty = startedEmpty
        return result
    }

    /// `existing` under `configuration`, which differs only in its collectors' options: a collector whose options are
    /// the same is kept, one whose options changed is built anew and carries on its predecessor's state when it can
    /// (``ModelCollector/carryingState(of:)``; it starts empty otherwise, its name appended to `startedEmpty`), with
    /// `existing`'s counters and label join. Nil, with `problems` appended, when the new options are refused. A collector
    /// for which `rebuilding` is true (one that reads a model field that changed) is built anew even when its options
    /// did not change, and carries its state likewise.
    func carryingState(
        of existing: MonitoredModel, into configuration: ModelConfiguration, hash: String,
        problems: inout [ModelSetupErrors.Problem], startedEmpty: inout [String],
        rebuilding: (any ModelCollector) -> Bool = { _ in false }
    ) -> MonitoredModel? {
        let context: ModelContext
        do {
            context = try ModelContext(
                configuration: configuration, referenceSHA256: hash, reference: existing.context.reference)
        } catch {
            problems.append(.init("model \"\(configuration.name)\": \(error)", at: configuration.locations.entry))
            return nil
        }
        let before = problems.count
        let fresh = makeModel(
            context, counters: existing.counters, joinCounters: existing.joiner?.counters ?? JoinCounters(),
            problems: &problems)
        let previous = existing.context.configuration.collectors
        guard problems.count == before, fresh.collectors.count == existing.collectors.count,
            previous.count == configuration.collectors.count
        else { return nil }
        // A collector whose options did not change is kept whole (the `service` collector beside a drift threshold).
        var collectors: [any ModelCollector] = []
        for i in fresh.collectors.indices {
            let (new, old) = (fresh.collectors[i], existing.collectors[i])
            if previous[i] == configuration.collectors[i] && !rebuilding(new) {
                collectors.append(old)
                continue
            }
            // A carried collector must be of the new one's type (a user's `carryingState` answering anything else is
            // not taken).
            let carried = new.carryingState(of: old).flatMap { type(of: $0) == type(of: new) ? $0 : nil }
            if carried == nil { startedEmpty.append(configuration.collectors[i].name) }
            collectors.append(carried ?? new)
        }
        return MonitoredModel(
            context: context, collectors: collectors, counters: existing.counters,
            joinCounters: existing.joiner?.counters ?? JoinCounters(), instanceID: instanceID,
            sharedJoiner: existing.joiner)
    }

    /// Builds a model's collectors from its configuration (appending what is wrong to `problems`). `modelIndex`, the
    /// model's place in its configuration when known, names the field of a problem that has no location (a
    /// configuration built in code): `models[1].collectors[0].options.prediction_buckets`.
    func makeModel(
        _ context: ModelContext, counters: IngestCounters, joinCounters: JoinCounters, modelIndex: Int? = nil,
        problems: inout [ModelSetupErrors.Problem]
    ) -> MonitoredModel {
        let model = context.configuration
        var collectors: [any ModelCollector] = []
        var seriesBudget = model.maxSeries
        // The collector whose series passed max_series: where the problem is reported (it had no line).
        var passedAt: ConfigLocation?
        var passedIn: Int?
        var refused = 0
        for (c, config) in model.collectors.enumerated() {
            // The field of a problem of this collector, when it has no location and the model's index is known.
            func field(_ option: String?) -> String? {
                guard config.location == nil, model.locations.entry == nil, let modelIndex else { return nil }
                return "models[\(modelIndex)].collectors[\(c)]" + (option.map { ".options.\($0)" } ?? "")
            }
            guard let type = catalog.types[config.name] else {
                problems.append(
                    .init(
                        model: model.name, "unknown collector \"\(config.name)\"", at: config.location,
                        field: field(nil)))
                continue
            }
            // Every option problem, not only the first: the option at fault is left out (its default taken) and the
            // collector built again, until it builds or a problem names no option (before, each run of check-config
            // showed the next one).
            var options = config.options
            // The options left out so far: a collector that then says one is missing (required) has said what is
            // wrong with it already (a bad required option read as two problems, the second untrue).
            var leftOut: Set<String> = []
            for attempt in 0..<Self.maxOptionProblems {
                do {
                    let collector = try type.init(
                        model: context,
                        options: CollectorOptions(
                            options, model: model.name, collector: config.name, seriesBudget: seriesBudget))
                    if attempt == 0 {
                        seriesBudget -= collector.maxSeries
                        if seriesBudget < 0 && passedIn == nil { (passedAt, passedIn) = (config.location, c) }
                        collectors.append(collector)
                    }
                    break
                } catch {
                    if attempt == 0 { refused += 1 }
                    if let option = error.option, leftOut.contains(option) { break }
                    let at = config.location(ofOption: error.option)
                    if let path = field(error.option) {
                        problems.append(.init(error.description, at: at, field: path, fieldMessage: error.atField))
                    } else {
                        problems.append(.init(error.description, at: at))
                    }
                    guard let option = error.option, let fewer = Self.removing(option[...], from: options) else {
                        break
                    }
                    options = fewer
                    leftOut.insert(option)
                }
            }
        }
        if seriesBudget < 0 {
            // A collector refused above is not in the count (its own problem says what it needs).
            let others = refused == 0 ? "" : " (not counting the \(refused) refused above)"
            problems.append(
                .init(
                    model: model.name,
                    "its collectors may create up to \(model.maxSeries - seriesBudget) series\(others), more than max_series (\(model.maxSeries))",
                    at: passedAt ?? model.locations.entry,
                    field: passedAt == nil && model.locations.entry == nil
                        ? modelIndex.map { "models[\($0)].max_series" } : nil))
        }
        return MonitoredModel(
            context: context, collectors: collectors, counters: counters, joinCounters: joinCounters,
            instanceID: instanceID)
    }

    /// Most problems reported for one collector's options.
    static let maxOptionProblems = 20

    /// `options` without the option at `path` (a dotted path through nested maps, as ``CollectorOptions`` names
    /// options; a key may hold dots itself, a feature's name), or nil when there is no such option.
    static func removing(_ path: Substring, from options: [String: ConfigValue]) -> [String: ConfigValue]? {
        var out = options
        if out.removeValue(forKey: String(path)) != nil { return out }
        for (key, value) in options where path.hasPrefix(key + ".") {
            guard case .map(let inner) = value, let rest = removing(path.dropFirst(key.count + 1), from: inner) else {
                continue
            }
            out[key] = .map(rest)
            return out
        }
        return nil
    }

    /// Installs prepared models, replacing the previous set (models no longer configured disappear). Returns the
    /// models that disappeared, by name, with the predictions each had waiting for labels (dropped with it).
    @discardableResult
    public func apply(_ prepared: PreparedModels) -> [(name: String, pendingPredictions: Int)] {
        var byName: [String: MonitoredModel] = [:]
        for model in prepared.models { byName[model.name] = model }
        let previous = models.withLock { old in
            defer { old = byName }
            return old
        }
        // A replaced model's pending predictions cannot be joined any more: count them, keep its totals. One that
        // kept its state (``prepare(_:references:)``) keeps its store, under the new capacity and time-to-live.
        var removed: [(name: String, pendingPredictions: Int)] = []
        for (name, old) in previous {
            if byName[name] == nil { removed.append((name, old.joiner?.store.counts.pending ?? 0)) }
            guard let oldJoiner = old.joiner else { continue }
            guard let new = byName[name] else {
                oldJoiner.retire()  // the model is gone: a late prediction is not stored where nothing reads
                continue
            }
            guard new !== old else { continue }
            if new.joiner !== oldJoiner {
                if let joiner = new.joiner { joiner.inherit(from: oldJoiner) } else { oldJoiner.retire() }
            } else {
                let c = new.context.configuration
                if c.maxPending != old.context.configuration.maxPending
                    || c.joinTTL != old.context.configuration.joinTTL
                {
                    oldJoiner.store.reconfigure(
                        capacity: c.maxPending, timeToLive: c.joinTTL.seconds)
                }
            }
        }
        order.withLock { $0 = prepared.models.map(\.name) }
        generation.add(1, ordering: .releasing)
        return removed.sorted { $0.name < $1.name }
    }

    /// Bumped whenever the set of model objects changes (every ``apply(_:)``, a restore): what is derived from the
    /// models (routes of captured traffic, which read each model's `capture` from its context) is rebuilt when it
    /// moves, with one atomic load per request to tell. A capture-only change gives a new model object that shares
    /// the old one's state (`MonitoredModel.reconfigured`), so it moves too.
    public let generation = Atomic<UInt64>(0)

    /// The model named `name`, if configured: byte for byte (the table's `String` keys match canonically equivalent
    /// spellings, `café` in NFD for the configured `café` in NFC).
    public func model(named name: String) -> MonitoredModel? {
        guard let model = models.withLock({ $0[name] }), model.context.name.sameBytes(name) else { return nil }
        return model
    }

    /// The configured model names, in configuration order.
    public var modelNames: [String] { order.withLock { $0 } }

    /// Counts a request for a model that is not configured.
    public func unknownModelRequested() { unknownModelRequests.add(0) }

    /// Every model's parts, in configuration order, then the requests for unconfigured models.
    public func parts() -> [CollectorPart] {
        let (names, byName) = (order.withLock { $0 }, models.withLock { $0 })
        var parts: [CollectorPart] = []
        for name in names { if let model = byName[name] { parts += model.parts } }
        parts.append(unknownPart)
        return parts
    }
}

/// A reference profile as read from its file: the profile (checked against its model) and the file's SHA-256.
public struct LoadedReference: Sendable {
    /// The profile.
    public var profile: ReferenceProfile
    /// SHA-256 (hex) of the profile file, reported in `mlops_model_info{reference_sha256}`.
    public var sha256: String

    /// Pairs a profile with its file's hash.
    public init(profile: ReferenceProfile, sha256: String) {
        self.profile = profile
        self.sha256 = sha256
    }
}

/// Models built and validated by ``ModelMonitor/prepare(_:references:)``, ready to be applied.
public struct PreparedModels: Sendable {
    /// The models, in configuration order.
    public let models: [MonitoredModel]
    /// Models that were configured before and are built anew, their state not carried (a changed feature, version,
    /// class, window, bucket list or reference): their collectors start empty (windows, and their counters from
    /// zero) and their pending predictions are evicted when applied (`reason="reload"`). A reload says so.
    public var rebuilt: [String] = []
    /// Per model whose collectors' options changed: the collectors built anew whose state the new options could not
    /// carry (they start empty; the model's other state stays). A reload says so.
    public var collectorsStartedEmpty: [String: [String]] = [:]
}
