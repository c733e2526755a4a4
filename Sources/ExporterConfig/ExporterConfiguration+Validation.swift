import Yams

/// A configuration built in code is checked by the very reader that checks a configuration file: its typed
/// values are written as the YAML node tree a file with the same content would have, and that tree is read by
/// ``ConfigLoader``'s reader. There is one set of checks, so the two paths cannot drift apart.
extension ExporterConfiguration {
    /// This configuration checked exactly as ``ConfigLoader/load(file:knownCollectors:referencesMustExist:)``
    /// checks a file with the same content, with defaults filled the same way (a quality SLO without a metric
    /// gets `accuracy`, a runbook base URL loses its trailing `/`).
    ///
    /// Errors have the messages and field paths a file would get (`models[0].classes: binary classification
    /// needs exactly 2 classes`), under ``source`` and without a line (there is none). Relative `reference`
    /// paths are taken as given (relative to the working directory). Zero models is valid: a plain metrics
    /// server. Collector options are checked when the collectors are built (`Exporter` does both, and
    /// `Exporter.checkConfiguration(_:collectors:)` too).
    /// - Parameters:
    ///   - knownCollectors: the collector names that exist in this process (built-in plus user-registered).
    ///   - referencesMustExist: whether each model's `reference` file must be readable now.
    public func validated(
        knownCollectors: Set<String> = ConfigLoader.builtInCollectors, referencesMustExist: Bool = true
    ) throws(ConfigErrors) -> ExporterConfiguration {
        var reader = Reader(file: source, baseDirectory: "", knownCollectors: knownCollectors)
        reader.referencesMustExist = referencesMustExist
        var checked = reader.configuration(ConfigurationNodes.document(self))
        if !reader.errors.isEmpty { throw ConfigErrors(reader.errors) }
        // Valid: the reader kept every model and collector, in order. Keep where they were read from, if anywhere.
        for (m, model) in models.enumerated() {
            // The model's fields' places too (a reference that does not fit its model was named without them when a
            // loaded file was handed to the exporter to build).
            checked.models[m].locations = model.locations
            for (c, collector) in model.collectors.enumerated() {
                checked.models[m].collectors[c].location = collector.location
                checked.models[m].collectors[c].optionLocations = collector.optionLocations
            }
        }
        checked.source = source
        return checked
    }
}

/// The YAML node tree of a configuration, field for field as docs/configuration.md spells the file.
enum ConfigurationNodes {
    static func document(_ configuration: ExporterConfiguration) -> Node {
        var fields: [(Node, Node)] = [
            ("models", Node(configuration.models.map(model))), ("alerting", alerting(configuration.alerting)),
        ]
        if !configuration.serviceSLOs.isEmpty {
            fields.append(("service_slos", Node(configuration.serviceSLOs.map(slo))))
        }
        if let storage = configuration.storage {
            let storageFields: [(Node, Node)] = [
                ("path", Node(storage.path)), ("checkpoint_interval", duration(storage.checkpointInterval)),
                ("lock_wait", duration(storage.lockWait)),
            ]
            fields.append(("storage", Node(storageFields)))
        }
        let cloudEvents: [(Node, Node)] = [
            ("max_pending", number(configuration.cloudEvents.maxPending)),
            ("max_pending_bytes", number(configuration.cloudEvents.maxPendingBytes)),
            ("ttl", duration(configuration.cloudEvents.ttl)),
        ]
        fields.append(("cloudevents", Node(cloudEvents)))
        if let proxy = configuration.proxy { fields.append(("proxy", Self.proxy(proxy))) }
        if let r = configuration.remoteWrite {
            func map(_ m: [String: String]) -> Node {
                Node(m.sorted { $0.key < $1.key }.map { (Node($0.key), Node($0.value)) })
            }
            let remote: [(Node, Node)] = [
                ("url", Node(r.url.description)), ("interval", duration(r.interval)), ("timeout", duration(r.timeout)),
                ("max_pending_requests", number(r.maxPendingRequests)), ("min_backoff", duration(r.minBackoff)),
                ("max_backoff", duration(r.maxBackoff)), ("external_labels", map(r.externalLabels)),
                ("headers", map(r.headers)),
            ]
            fields.append(("remote_write", Node(remote)))
        }
        return Node(fields)
    }

    static func proxy(_ p: ProxyConfiguration) -> Node {
        let capture: [(Node, Node)] = [
            ("max_body_bytes", number(p.capture.maxBodyBytes)), ("sample_rate", number(p.capture.sampleRate)),
        ]
        var fields: [(Node, Node)] = [
            ("listen", strings(p.listenAddresses)), ("upstream", Node(p.upstream.description)),
            ("max_connections", number(p.maxConnections)), ("max_waiting", number(p.maxWaiting)),
            ("connect_timeout", duration(p.connectTimeout)), ("response_timeout", duration(p.responseTimeout)),
            ("read_timeout", duration(p.readTimeout)), ("idle_timeout", duration(p.idleTimeout)),
            ("request_id_header", Node(p.requestIDHeader)),
            ("error_statuses", Node(p.errorStatuses.map { Node($0.description) })), ("capture", Node(capture)),
            ("routes", Node(p.routes.map(proxyRoute))),
        ]
        if p.injectIncludeUsage { fields.append(("inject_include_usage", Node("true", .implicit, .plain))) }
        return Node(fields)
    }

    static func proxyRoute(_ r: ProxyConfiguration.Route) -> Node {
        var fields: [(Node, Node)] = [("path", Node(r.path)), ("methods", strings(r.methods))]
        for (key, value) in [
            ("model", r.model), ("model_header", r.modelHeader), ("model_pointer", r.modelPointer),
            ("version", r.version),
            ("version_header", r.versionHeader), ("version_pointer", r.versionPointer),
        ] {
            if let value { fields.append((Node(key), Node(value))) }
        }
        if r.protocol != .modelServer { fields.append(("protocol", Node(r.protocol.rawValue))) }
        if let c = r.captureProtocol { fields.append(("capture_protocol", Node(c))) }
        return Node(fields)
    }

    static func model(_ m: ModelConfiguration) -> Node {
        var fields: [(Node, Node)] = [
            ("name", Node(m.name)), ("task", Node(m.task.rawValue)), ("versions", strings(m.versions)),
        ]
        if !m.classes.isEmpty { fields.append(("classes", strings(m.classes))) }
        if let p = m.positiveClass { fields.append(("positive_class", Node(p))) }
        if !m.features.isEmpty { fields.append(("features", Node(m.features.map(feature)))) }
        if !m.sensitiveAttributes.isEmpty {
            fields.append(("sensitive_attributes", Node(m.sensitiveAttributes.map(attribute))))
        }
        if let r = m.reference { fields.append(("reference", Node(r))) }
        let window: [(Node, Node)] = [("duration", duration(m.window.duration)), ("slices", number(m.window.slices))]
        fields.append(("window", Node(window)))
        fields.append(("latency_buckets", Node(m.latencyBuckets.map { number($0) })))
        fields.append(("collectors", Node(m.collectors.map(collector))))
        if let t = m.token { fields.append(("token", Node(t))) }
        fields.append(("max_series", number(m.maxSeries)))
        fields.append(("join_ttl", duration(m.joinTTL)))
        fields.append(("max_pending", number(m.maxPending)))
        if !m.slos.isEmpty { fields.append(("slos", Node(m.slos.map(slo)))) }
        if let c = m.capture { fields.append(("capture", capture(c))) }
        if let l = m.llm { fields.append(("llm", llm(l))) }
        return Node(fields)
    }

    static func llm(_ l: LLMConfiguration) -> Node {
        var fields: [(Node, Node)] = []
        if !l.servedNames.isEmpty { fields.append(("served_names", strings(l.servedNames))) }
        if !l.adapters.isEmpty {
            let entries: [(Node, Node)] = l.adapters.map { (Node($0.name), Node($0.version)) }
            fields.append(("adapters", Node(entries)))
        }
        if l.catchAll { fields.append(("catch_all", Node("true", .implicit, .plain))) }
        for (key, bounds) in [
            ("ttft_buckets", l.ttftBuckets), ("itl_buckets", l.itlBuckets), ("tpot_buckets", l.tpotBuckets),
            ("duration_buckets", l.durationBuckets),
        ] {
            fields.append((Node(key), Node(bounds.map { number($0) })))
        }
        let o = l.objectives
        if !o.isEmpty {
            var objectives: [(Node, Node)] = []
            if let v = o.ttftSeconds { objectives.append(("ttft_seconds", number(v))) }
            if let v = o.tpotSeconds { objectives.append(("tpot_seconds", number(v))) }
            if let v = o.durationSeconds { objectives.append(("duration_seconds", number(v))) }
            fields.append(("objectives", Node(objectives)))
        }
        return Node(fields)
    }

    static func capture(_ c: CaptureConfiguration) -> Node {
        var fields: [(Node, Node)] = [("protocol", Node(c.protocolName))]
        if let s = c.inferenceService { fields.append(("inference_service", Node(s))) }
        for (key, map) in [("fields", c.fields), ("features", c.features), ("attributes", c.attributes)]
        where !map.isEmpty {
            let entries: [(Node, Node)] = map.keys.sorted().map { (Node($0), Node(map[$0]!)) }
            fields.append((Node(key), Node(entries)))
        }
        return Node(fields)
    }

    static func feature(_ f: FeatureConfiguration) -> Node {
        var fields: [(Node, Node)] = [("name", Node(f.name)), ("type", Node(f.kind.rawValue))]
        if let values = f.values { fields.append(("values", strings(values))) }
        return Node(fields)
    }

    static func attribute(_ a: SensitiveAttribute) -> Node {
        var fields: [(Node, Node)] = [("name", Node(a.name)), ("groups", strings(a.groups))]
        if let p = a.privileged { fields.append(("privileged", Node(p))) }
        return Node(fields)
    }

    static func collector(_ c: CollectorConfiguration) -> Node {
        guard !c.options.isEmpty else { return Node(c.name) }
        let fields: [(Node, Node)] = [("name", Node(c.name)), ("options", value(.map(c.options)))]
        return Node(fields)
    }

    /// An option value as the options reader reads it back: strings quoted, numbers and booleans plain.
    static func value(_ v: ConfigValue) -> Node {
        switch v {
        case .string(let s): Node(s, .implicit, .doubleQuoted)
        case .number(let d): Node("\(d)", .implicit, .plain)
        case .bool(let b): Node(b ? "true" : "false", .implicit, .plain)
        case .list(let items): Node(items.map(value))
        case .map(let pairs):
            Node(pairs.sorted { $0.key < $1.key }.map { (Node($0.key), value($0.value)) } as [(Node, Node)])
        }
    }

    static func slo(_ s: SLOConfiguration) -> Node {
        var fields: [(Node, Node)] = [
            ("name", Node(s.name)), ("type", Node(s.type.rawValue)), ("objective", number(s.objective)),
            ("period", Node(s.period.rawValue)),
        ]
        if let t = s.thresholdSeconds { fields.append(("threshold_seconds", number(t))) }
        if let m = s.metric { fields.append(("metric", Node(m.rawValue))) }
        if let t = s.target { fields.append(("target", number(t))) }
        // The window belongs to quality SLOs; another type's is checked only when it was changed.
        if s.type == .quality || s.window != SLOConfiguration(type: s.type, objective: s.objective).window {
            fields.append(("window", duration(s.window)))
        }
        if let u = s.runbookURL { fields.append(("runbook_url", Node(u))) }
        if let d = s.description { fields.append(("description", Node(d))) }
        return Node(fields)
    }

    static func alerting(_ a: AlertingConfiguration) -> Node {
        let fields: [(Node, Node)] = [
            ("runbook_base_url", Node(a.runbookBaseURL)), ("drift_for", duration(a.driftFor)),
            ("fairness_for", duration(a.fairnessFor)), ("quality_for", duration(a.qualityFor)),
            ("labels_drop_ratio", number(a.labelsDropRatio)), ("labels_for", duration(a.labelsFor)),
            ("reject_ratio", number(a.rejectRatio)), ("reject_for", duration(a.rejectFor)),
            ("scrape_for", duration(a.scrapeFor)),
        ]
        return Node(fields)
    }

    static func strings(_ values: [String]) -> Node { Node(values.map { Node($0) }) }

    static func number(_ value: Int) -> Node { Node(String(value), .implicit, .plain) }

    /// Shortest round-trip text: the reader parses back the same `Double`.
    static func number(_ value: Double) -> Node { Node("\(value)", .implicit, .plain) }

    /// Whole seconds as `Ns`, else whole milliseconds as `Nms` (the file's finest unit).
    static func duration(_ d: Duration) -> Node {
        let (seconds, attoseconds) = d.components
        if attoseconds == 0 { return Node("\(seconds)s") }
        return Node("\(seconds * 1000 + attoseconds / 1_000_000_000_000_000)ms")
    }
}
