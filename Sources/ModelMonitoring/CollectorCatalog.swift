import Exposition

/// The model collectors available by name: the built-in ones plus any a user registers. Configurations
/// name collectors from it; ``ModelMonitor`` creates them per model.
public struct CollectorCatalog: Sendable {
    /// The collector types by name.
    public private(set) var types: [String: any ModelCollector.Type] = [:]

    /// An empty catalog.
    public init() {}

    /// The built-in collectors (`service`, `drift`, `quality`, `fairness`, `llm`).
    public static var builtIn: CollectorCatalog {
        var catalog = CollectorCatalog()
        try! catalog.register(ServiceCollector.self)
        try! catalog.register(DriftCollector.self)
        try! catalog.register(QualityCollector.self)
        try! catalog.register(FairnessCollector.self)
        try! catalog.register(LLMCollector.self)
        return catalog
    }

    /// The names configurations may use.
    public var names: Set<String> { Set(types.keys) }

    /// Adds `type`; throws when its name is taken or one of its families clashes with another collector's
    /// family of the same name but a different description.
    public mutating func register(_ type: any ModelCollector.Type) throws(CatalogError) {
        if types[type.name] != nil {
            throw CatalogError(message: "a collector named \"\(type.name)\" is already registered")
        }
        for (otherName, other) in types {
            for mine in type.schema.descriptors {
                if let theirs = other.schema.descriptors.first(where: { $0.name == mine.name }), theirs != mine {
                    throw CatalogError(
                        message:
                            "collector \"\(type.name)\": family \(mine.name) is already described differently by \"\(otherName)\""
                    )
                }
            }
        }
        types[type.name] = type
    }

    /// Every family of every collector, each once, sorted by name.
    public var descriptors: [MetricDescriptor] {
        var byName: [String: MetricDescriptor] = [:]
        for type in types.values { for d in type.schema.descriptors { byName[d.name] = d } }
        return byName.keys.sorted().map { byName[$0]! }
    }
}

/// A collector cannot join a catalog.
public struct CatalogError: Error, Sendable, CustomStringConvertible {
    /// What is wrong.
    public var message: String
    /// The message.
    public var description: String { message }
}
