import Exposition
import Yams

/// A text-generation model's `llm` section (``LLMConfiguration``) and the checks across models (served names unique,
/// one catch-all).
extension Reader {
    static let llmFields = [
        "served_names", "adapters", "catch_all", "ttft_buckets", "itl_buckets", "tpot_buckets", "duration_buckets",
        "objectives",
    ]

    /// `llm: {served_names, adapters, catch_all, ttft_buckets, itl_buckets, tpot_buckets, duration_buckets,
    /// objectives}` of `model` (a `text_generation` model).
    mutating func llm(_ node: Node, _ path: String, model: ModelConfiguration) -> LLMConfiguration? {
        guard let fields = mapping(node, path, allowed: Self.llmFields) else { return nil }
        let errorsBefore = errors.count
        if model.task != .textGeneration {
            fail(node, path, "only text_generation models have an llm section (this one is \(model.task.rawValue))")
        }
        var c = LLMConfiguration()
        for (key, value) in fields {
            let field = "\(path).\(key)"
            switch key {
            case "served_names":
                if let names = strings(value, field) {
                    if names.isEmpty {
                        fail(value, field, "list at least one name (leave it out for the model's name)")
                    }
                    for (i, name) in names.enumerated() { servedNameCheck(name, value, "\(field)[\(i)]") }
                    c.servedNames = names
                }
            case "adapters":
                c.adapters = adapters(value, field, model: model) ?? []
            case "catch_all":
                c.catchAll = bool(value, field) ?? false
            case "ttft_buckets": c.ttftBuckets = buckets(value, field) ?? c.ttftBuckets
            case "itl_buckets": c.itlBuckets = buckets(value, field) ?? c.itlBuckets
            case "tpot_buckets": c.tpotBuckets = buckets(value, field) ?? c.tpotBuckets
            case "duration_buckets": c.durationBuckets = buckets(value, field) ?? c.durationBuckets
            default:
                c.objectives = objectives(value, field) ?? c.objectives
            }
        }
        if c.servedNames.count + c.adapters.count > LLMConfiguration.maxNames {
            fail(
                node, path,
                "\(c.servedNames.count + c.adapters.count) served names and adapters, more than \(LLMConfiguration.maxNames)"
            )
        }
        for adapter in c.adapters where (c.servedNames.isEmpty ? [model.name] : c.servedNames).contains(adapter.name) {
            fail(node, "\(path).adapters", "\"\(adapter.name)\" is both a served name and an adapter")
        }
        return errors.count == errorsBefore ? c : nil
    }

    private mutating func servedNameCheck(_ name: String, _ node: Node, _ field: String) {
        if name.utf8.count > LLMConfiguration.maxNameBytes {
            fail(node, field, "longer than \(LLMConfiguration.maxNameBytes) bytes")
        }
    }

    /// `adapters: {<adapter name>: <version>}`.
    private mutating func adapters(
        _ node: Node, _ path: String, model: ModelConfiguration
    ) -> [LLMConfiguration
        .Adapter]?
    {
        guard case .mapping(let m) = node else {
            fail(node, path, "expected a mapping of adapter names to versions (like {sql-lora: sql})")
            return nil
        }
        var out: [LLMConfiguration.Adapter] = []
        for (k, v) in m {
            guard let name = k.string, !name.isEmpty else {
                fail(k, path, "adapter names are non-empty strings")
                continue
            }
            servedNameCheck(name, k, "\(path).\(name)")
            guard let version = string(v, "\(path).\(name)") else { continue }
            guard model.versions.contains(where: { $0.sameBytes(version) }) else {
                fail(
                    v, "\(path).\(name)",
                    "\"\(version)\" is not a version of model \"\(model.name)\" (its versions: \(model.versions.joined(separator: ", ")))"
                )
                continue
            }
            out.append(LLMConfiguration.Adapter(name: name, version: version))
        }
        return out
    }

    /// `objectives: {ttft_seconds, tpot_seconds, duration_seconds}`.
    private mutating func objectives(_ node: Node, _ path: String) -> LLMConfiguration.Objectives? {
        guard let fields = mapping(node, path, allowed: ["ttft_seconds", "tpot_seconds", "duration_seconds"]) else {
            return nil
        }
        var o = LLMConfiguration.Objectives()
        for (key, value) in fields {
            guard let seconds = number(value, "\(path).\(key)") else { continue }
            guard seconds > 0 else {
                fail(value, "\(path).\(key)", "must be positive (seconds)")
                continue
            }
            switch key {
            case "ttft_seconds": o.ttftSeconds = seconds
            case "tpot_seconds": o.tpotSeconds = seconds
            default: o.durationSeconds = seconds
            }
        }
        if fields.isEmpty { fail(node, path, "set at least one of ttft_seconds, tpot_seconds, duration_seconds") }
        return o
    }

    /// Across models: every served name and adapter names one model; at most one catch-all.
    mutating func checkLLMNames(_ models: [ModelConfiguration], items: [Node]) {
        var owners: [String: String] = [:]
        var catchAll: String?
        for model in models {
            guard let llm = model.llm else { continue }
            let node = items.first { Self.member($0, "name")?.string == model.name }
            let llmNode = node.flatMap { Self.member($0, "llm") }
            let names = (llm.servedNames.isEmpty ? [model.name] : llm.servedNames) + llm.adapters.map(\.name)
            for name in names {
                if let owner = owners[name], owner != model.name {
                    fail(
                        llmNode ?? node, "models.\(model.name).llm",
                        "\"\(name)\" is already a name of model \"\(owner)\"")
                }
                owners[name] = model.name
            }
            if llm.catchAll {
                if let first = catchAll {
                    fail(
                        llmNode.flatMap { Self.member($0, "catch_all") } ?? llmNode,
                        "models.\(model.name).llm.catch_all",
                        "model \"\(first)\" is the catch-all already (at most one)")
                }
                catchAll = catchAll ?? model.name
            }
        }
    }
}
