import Yams

/// The `slos` list of a model and the top-level `alerting` section (see docs/slos.md).
extension Reader {
    static let sloFields = [
        "name", "type", "objective", "period", "threshold_seconds", "metric", "target", "window", "runbook_url",
        "description",
    ]

    /// The SLOs of `model`, or (with `fleet`, the configured models) the service-wide SLOs.
    /// `llmRefused`: the model has an `llm` section that was refused (its errors are reported; the LLM SLO types
    /// do not add that the section is missing).
    mutating func slos(
        _ node: Node, _ path: String, model: ModelConfiguration, fleet: [ModelConfiguration]? = nil,
        llmRefused: Bool = false
    ) -> [SLOConfiguration] {
        guard let items = sequence(node, path) else { return [] }
        var out: [SLOConfiguration] = []
        var names = Set<String>()
        for (i, item) in items.enumerated() {
            guard let slo = slo(item, "\(path)[\(i)]", model: model, fleet: fleet, llmRefused: llmRefused) else {
                continue
            }
            if !names.insert(slo.name).inserted {
                fail(
                    item, "\(path)[\(i)].name",
                    "SLO \"\(slo.name)\" is defined twice for this \(fleet == nil ? "model" : "service") (name it)")
                continue
            }
            out.append(slo)
        }
        return out
    }

    mutating func slo(
        _ node: Node, _ path: String, model: ModelConfiguration, fleet: [ModelConfiguration]? = nil,
        llmRefused: Bool = false
    ) -> SLOConfiguration? {
        guard let fields = mapping(node, path, allowed: Self.sloFields) else { return nil }
        let errorsBefore = errors.count
        func value(_ key: String) -> Node? { fields.first { $0.key == key }?.value }
        let types = SLOType.allCases.map(\.rawValue).joined(separator: ", ")
        guard let t = value("type") else {
            fail(node, "\(path).type", "required (\(types))")
            return nil
        }
        guard let typeName = string(t, "\(path).type") else { return nil }
        guard let type = SLOType(rawValue: typeName) else {
            fail(t, "\(path).type", "unknown SLO type \"\(typeName)\" (expected one of: \(types))")
            return nil
        }
        // A service-wide ttft, tpot or goodput SLO would sum over models of which only some serve LLMs (and
        // with buckets and objectives of their own): refused, like the other per-model types.
        if fleet != nil && type != .availability && type != .latency {
            fail(t, "\(path).type", "service-wide SLOs are availability or latency (\(typeName) SLOs are per model)")
            return nil
        }
        var slo = SLOConfiguration(type: type, objective: 99)
        if let n = value("name") { slo.name = name(n, "\(path).name", what: "SLO name") ?? slo.name }
        if let o = value("objective") {
            if let v = number(o, "\(path).objective") {
                // The budget is taken from the ratio as the rules write it (12 decimals): it must stay above 0 and 1.
                let ratio = (v / 100 * 1e12).rounded() / 1e12
                if v > 0.01 && v < 1 {
                    // A ratio written for a percentage: 0.999 would be 0.999 %, whose budget no error ratio can burn
                    // fast enough to page (it was accepted, and a total outage then paged nobody).
                    let (given, meant) = (SLOConfiguration.text(v), SLOConfiguration.text((v * 1e11).rounded() / 1e9))
                    fail(
                        o, "\(path).objective",
                        "is a percentage: \(given) means \(given) % (for \(meant) %, write \(meant))")
                } else if v > 0 && v <= 1 {
                    fail(o, "\(path).objective", "is a percentage, above 1 and below 100 (like 99.9)")
                } else if v > 1 && v < 100 && ratio > 0 && ratio < 1 {
                    slo.objective = v
                } else if v > 1 && v < 100 {
                    // Below 100, but the budget the rules write (12 decimals) is 0 (it said "below 100").
                    fail(
                        o, "\(path).objective",
                        "leaves an error budget of 0 at the rules' 12 decimals: at most 99.9999999999")
                } else {
                    fail(o, "\(path).objective", "must be a percentage above 1 and below 100 (like 99.9)")
                }
            }
        } else {
            fail(node, "\(path).objective", "required: the objective in percent (like 99.9)")
        }
        if let p = value("period"), let s = string(p, "\(path).period") {
            if let period = SLOPeriod(rawValue: s) {
                slo.period = period
            } else {
                fail(p, "\(path).period", "unknown period \"\(s)\" (expected 28d or 30d)")
            }
        }
        // Fields that belong to some types only.
        for (key, owners) in [
            ("threshold_seconds", [SLOType.latency, .ttft, .tpot]), ("metric", [.quality]), ("target", [.quality]),
            ("window", [.quality]),
        ] where !owners.contains(type) {
            let names = owners.map(\.rawValue)
            let which = names.count == 1 ? names[0] : names.dropLast().joined(separator: ", ") + " and " + names.last!
            if let v = value(key) { fail(v, "\(path).\(key)", "only \(which) SLOs have \(key)") }
        }
        // The LLM types read the llm collector's series and the llm section's buckets and objectives (a section
        // that was refused has its own error already).
        let llm = model.llm
        if type.isLLM && llm == nil && !llmRefused {
            fail(t, "\(path).type", "\(typeName) SLOs need the model's llm section (none is configured)")
        }
        switch type {
        case .availability: break
        case .latency:
            if let v = value("threshold_seconds") {
                if let threshold = number(v, "\(path).threshold_seconds") {
                    let missing = (fleet ?? []).filter { !$0.latencyBuckets.contains(threshold) }.map(\.name)
                    if fleet != nil && missing.isEmpty || fleet == nil && model.latencyBuckets.contains(threshold) {
                        slo.thresholdSeconds = threshold
                    } else if fleet != nil {
                        fail(
                            v, "\(path).threshold_seconds",
                            "\(Self.plain(threshold)) is not a bucket of every model's latency_buckets (missing in: \(missing.joined(separator: ", ")))"
                        )
                    } else {
                        let bounds = model.latencyBuckets.map(Self.plain).joined(separator: ", ")
                        fail(
                            v, "\(path).threshold_seconds",
                            "\(Self.plain(threshold)) is not one of the model's latency_buckets (\(bounds))")
                    }
                }
            } else {
                let which =
                    fleet == nil ? "one of the model's latency_buckets" : "a bucket of every model's latency_buckets"
                fail(node, "\(path).threshold_seconds", "required: \(which)")
            }
        case .quality:
            if model.task == .regression || model.task == .textGeneration {
                fail(t, "\(path).type", "quality SLOs need a classification model (accuracy)")
            }
            slo.metric = .accuracy
            if let m = value("metric"), let s = string(m, "\(path).metric") {
                if let metric = QualityMetric(rawValue: s) {
                    slo.metric = metric
                } else {
                    fail(
                        m, "\(path).metric",
                        "unknown quality metric \"\(s)\" (expected one of: \(QualityMetric.allCases.map(\.rawValue).joined(separator: ", ")))"
                    )
                }
            }
            if let v = value("target") {
                if let target = number(v, "\(path).target") {
                    if target > 0 && target < 1 {
                        slo.target = target
                    } else {
                        fail(v, "\(path).target", "must be above 0 and below 1 (like 0.9)")
                    }
                }
            } else {
                fail(node, "\(path).target", "required: the least acceptable accuracy (like 0.9)")
            }
            if let w = value("window") {
                slo.window = duration(w, "\(path).window", range: .seconds(300) ... .seconds(86_400)) ?? slo.window
            }
        case .ttft, .tpot:
            let key = type == .ttft ? "ttft_buckets" : "tpot_buckets"
            if let v = value("threshold_seconds") {
                if let threshold = number(v, "\(path).threshold_seconds"), let llm {
                    let bounds = type == .ttft ? llm.ttftBuckets : llm.tpotBuckets
                    if bounds.contains(threshold) {
                        slo.thresholdSeconds = threshold
                    } else {
                        fail(
                            v, "\(path).threshold_seconds",
                            "\(Self.plain(threshold)) is not one of the model's llm.\(key) (\(bounds.map(Self.plain).joined(separator: ", ")))"
                        )
                    }
                }
            } else {
                fail(node, "\(path).threshold_seconds", "required: one of the model's llm.\(key)")
            }
        case .goodput:
            if let llm, llm.objectives.isEmpty {
                fail(
                    t, "\(path).type",
                    "goodput SLOs need llm.objectives (ttft_seconds, tpot_seconds or duration_seconds; none are set)")
            }
        case .drift:
            if model.features.isEmpty {
                fail(t, "\(path).type", "drift SLOs need the model's features (none are configured)")
            }
        case .fairness:
            if model.sensitiveAttributes.isEmpty {
                fail(t, "\(path).type", "fairness SLOs need sensitive_attributes (none are configured)")
            }
        }
        if let r = value("runbook_url") { slo.runbookURL = url(r, "\(path).runbook_url") }
        if let d = value("description"), let text = string(d, "\(path).description") {
            if ConfigLoader.isTemplateText(text) {
                fail(d, "\(path).description", Self.templateMessage)
            } else {
                slo.description = text
            }
        }
        return errors.count == errorsBefore ? slo : nil
    }

    static func plain(_ value: Double) -> String { SLOConfiguration.text(value) }

    static let alertingFields = [
        "runbook_base_url", "drift_for", "fairness_for", "quality_for", "labels_drop_ratio", "labels_for",
        "reject_ratio", "reject_for", "scrape_for",
    ]

    mutating func alerting(_ node: Node, _ path: String) -> AlertingConfiguration? {
        guard let fields = mapping(node, path, allowed: Self.alertingFields) else { return nil }
        var a = AlertingConfiguration()
        let minute = Duration.seconds(60)
        let day = Duration.seconds(86_400)
        for (key, value) in fields {
            let field = "\(path).\(key)"
            switch key {
            case "runbook_base_url":
                if let u = url(value, field) {
                    a.runbookBaseURL = u.hasSuffix("/") ? String(u.dropLast()) : u
                }
            case "drift_for": a.driftFor = duration(value, field, range: minute...day) ?? a.driftFor
            case "fairness_for": a.fairnessFor = duration(value, field, range: minute...day) ?? a.fairnessFor
            case "quality_for": a.qualityFor = duration(value, field, range: minute...day) ?? a.qualityFor
            case "labels_for": a.labelsFor = duration(value, field, range: minute...day) ?? a.labelsFor
            case "reject_for": a.rejectFor = duration(value, field, range: minute...day) ?? a.rejectFor
            case "scrape_for": a.scrapeFor = duration(value, field, range: minute...day) ?? a.scrapeFor
            case "labels_drop_ratio": a.labelsDropRatio = ratio(value, field) ?? a.labelsDropRatio
            default: a.rejectRatio = ratio(value, field) ?? a.rejectRatio
            }
        }
        return a
    }

    /// A duration in whole seconds within `range` (Prometheus syntax: 30s, 5m, 1h, 1d).
    mutating func duration(
        _ node: Node, _ field: String, range: ClosedRange<Duration>, wholeSeconds: Bool = true
    ) -> Duration? {
        guard let s = string(node, field) else { return nil }
        // A zero duration (`0s`) is a duration, out of the range (its callers take zero apart where they allow it):
        // said so (it was "not a duration").
        let digits = s.prefix { $0.isASCII && $0.isNumber }
        if !digits.isEmpty, digits.allSatisfy({ $0 == "0" }), !range.contains(.zero),
            ["ms", "s", "m", "h", "d", "w", "y"].contains(String(s.dropFirst(digits.count)))
        {
            fail(node, field, "must be between \(Self.spelled(range.lowerBound)) and \(Self.spelled(range.upperBound))")
            return nil
        }
        guard let d = DurationParser.parse(s), !wholeSeconds || d.components.attoseconds == 0 else {
            fail(
                node, field,
                wholeSeconds
                    ? "\"\(s)\" is not a duration in whole seconds (like 30s, 5m, 1h, 1d)"
                    : "\"\(s)\" is not a duration (like 500ms, 15s, 1m)")
            return nil
        }
        guard range.contains(d) else {
            fail(node, field, "must be between \(Self.spelled(range.lowerBound)) and \(Self.spelled(range.upperBound))")
            return nil
        }
        return d
    }

    /// In the largest whole unit (`1d`, `6h`, `5m`, `30s`), or `Nms` for a duration with a fraction of a second.
    static func spelled(_ d: Duration) -> String {
        let (s, a) = d.components
        guard a == 0 else { return "\(s * 1000 + a / 1_000_000_000_000_000)ms" }
        // In the largest whole unit, as the documentation writes limits (5m, 1d).
        for (unit, seconds) in [("d", Int64(86_400)), ("h", 3_600), ("m", 60)] where s > 0 && s % seconds == 0 {
            return "\(s / seconds)\(unit)"
        }
        return "\(s)s"
    }

    /// A number above 0 and below 1.
    mutating func ratio(_ node: Node, _ field: String) -> Double? {
        guard let v = number(node, field) else { return nil }
        guard v > 0 && v < 1 else {
            fail(node, field, "must be above 0 and below 1")
            return nil
        }
        return v
    }

    /// An http(s) URL without whitespace or quotes (it goes into alert annotations).
    mutating func url(_ node: Node, _ field: String) -> String? {
        guard let s = string(node, field) else { return nil }
        let ok =
            (s.hasPrefix("http://") || s.hasPrefix("https://")) && s.count > 8
            && !s.unicodeScalars.contains { $0.properties.isWhitespace || $0 == "\"" || $0 == "\\" || $0.value < 0x20 }
        guard ok else {
            fail(node, field, "\"\(s)\" is not an http:// or https:// URL")
            return nil
        }
        guard !ConfigLoader.isTemplateText(s) else {
            fail(node, field, Self.templateMessage)
            return nil
        }
        return s
    }

    static let templateMessage =
        "must not contain {{ or }} (alert annotations are Go templates: Prometheus would refuse the rule file)"
}

extension ConfigLoader {
    /// Whether `text` holds `{{` or `}}`: in an alert's annotations Prometheus reads it as a Go template, and a rule
    /// file with a template it cannot parse is refused whole (every alert of it lost).
    public static func isTemplateText(_ text: String) -> Bool { text.contains("{{") || text.contains("}}") }
}
