import Yams

/// Collector options: a mapping whose schema belongs to the collector, read as plain ``ConfigValue``s.
extension Reader {
    /// Reads options mapping `node` into `collector`: the values (YAML aliases resolved: the document's
    /// expansion is bounded by ``ExpansionCheck`` before any reading) and where each option is.
    mutating func options(_ node: Node, _ field: String, into collector: inout CollectorConfiguration) {
        guard case .mapping = node else {
            fail(node, field, "expected a mapping")
            return
        }
        var locations: [String: ConfigLocation] = [:]
        if case .map(let values) = value(node, field, option: "", locations: &locations) {
            collector.options = values
        }
        collector.optionLocations = locations
    }

    /// The value of `node` (at `field`); `option` is its path through mappings (`nil` inside a list), under
    /// which the location of each key below is recorded.
    private mutating func value(
        _ node: Node, _ field: String, option: String?, locations: inout [String: ConfigLocation]
    ) -> ConfigValue {
        switch node {
        case .scalar(let s):
            if s.style == .plain {
                if let b = Bool.construct(from: s) { return .bool(b) }
                if let d = Double(s.string) { return .number(d) }
            }
            return .string(s.string)
        case .sequence(let items):
            var list: [ConfigValue] = []
            list.reserveCapacity(items.count)
            for (i, item) in items.enumerated() {
                list.append(value(item, "\(field)[\(i)]", option: nil, locations: &locations))
            }
            return .list(list)
        case .mapping(let pairs):
            var map: [String: ConfigValue] = [:]
            for (k, v) in pairs {
                guard case .scalar(let key) = k else {
                    fail(k, field, "option names must be strings")
                    continue
                }
                let path = option.map { $0.isEmpty ? key.string : "\($0).\(key.string)" }
                if let path, let location = ConfigLocation(k) { locations[path] = location }
                map[key.string] = value(v, "\(field).\(key.string)", option: path, locations: &locations)
            }
            return .map(map)
        case .alias:
            // Yams resolves aliases while parsing; a tree built otherwise may hold one.
            fail(node, field, "unresolved YAML alias")
            return .string("")
        }
    }
}
