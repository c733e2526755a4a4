import ExporterConfig
import Exposition
import Ingestion

/// One model as its collectors see it: the configuration, the decoding schema, and the finite label sets
/// (versions, classes) with their `__other__` slot, resolved to indices so that recording an event needs
/// no dictionary lookup.
///
/// Built once per configuration load; immutable.
public struct ModelContext: Sendable {
    /// The label value for anything outside a configured finite set.
    public static let other = "__other__"

    /// The model's configuration.
    public let configuration: ModelConfiguration
    /// The schema events are decoded and validated against.
    public let schema: Schema
    /// The configured versions followed by `__other__`: the `version` label values, by version index.
    public let versionLabels: [String]
    /// The configured versions' UTF-8 bytes, for ``versionIndex(_:)``.
    private let versionBytes: [[UInt8]]
    /// For classification, the configured classes followed by `__other__`; empty for regression.
    public let classLabels: [String]
    /// SHA-256 (hex) of the reference profile file, or empty when none is configured.
    public let referenceSHA256: String
    /// SHA-256 (hex) of everything in the configuration that shapes the model's saved state (computed once): a
    /// checkpoint's state is restored only into a model with the same fingerprint. Task, versions, classes and positive
    /// class, features (name, kind, values), sensitive attributes and groups, window, latency buckets, collectors with
    /// their options, the reference profile's hash, and the `llm` section's buckets and objectives; not the token,
    /// `max_series`, SLOs, `join_ttl`, `max_pending`, `capture` or the `llm` section's names (changing them keeps the
    /// state).
    public let stateFingerprint: String
    /// ``stateFingerprint`` but for the collectors' options (their names and order kept): when only options changed
    /// (a threshold, a method), a checkpoint's pending predictions and the state of each collector whose options did
    /// not change (``collectorFingerprints``) are restored.
    public let layoutFingerprint: String
    /// Per collector (in configuration order), SHA-256 (hex) of its name and options.
    public let collectorFingerprints: [String]
    /// The reference profile, when the model has one (`reference:`), already checked against the model.
    public let reference: ReferenceProfile?
    /// Per sensitive attribute (in configuration order), its groups followed by `__other__`: the `group`
    /// label values, by group index.
    public let groupLabels: [[String]]
    /// Per sensitive attribute, the index of the privileged group, if configured.
    public let privilegedGroups: [Int?]
    /// For binary classification, the index of the positive class in ``classLabels``.
    public let positiveClassIndex: Int?
    let groupIndexes: [NameIndex]

    /// The model name (the `model` label value).
    public var name: String { configuration.name }

    /// Builds the context; throws when the schema cannot be built (duplicate names).
    public init(
        configuration: ModelConfiguration, referenceSHA256: String = "", reference: ReferenceProfile? = nil
    ) throws(SchemaError) {
        self.configuration = configuration
        let isRegression = configuration.task == .regression
        schema = try Schema(
            task: isRegression ? .regression : .classification,
            classes: configuration.classes,
            features: configuration.features.map {
                FeatureSpec($0.name, $0.kind == .numeric ? .numeric : .categorical)
            },
            attributeNames: configuration.sensitiveAttributes.map(\.name),
            positiveClass: configuration.positiveClass.flatMap { configuration.classes.firstIndex(of: $0) })
        versionLabels = configuration.versions + [ModelContext.other]
        versionBytes = configuration.versions.map { Array($0.utf8) }
        // A text-generation model's predictions are text: no classes, not even __other__.
        classLabels =
            isRegression || configuration.task == .textGeneration ? [] : configuration.classes + [ModelContext.other]
        self.referenceSHA256 = referenceSHA256
        stateFingerprint = Self.fingerprint(of: configuration, referenceSHA256: referenceSHA256)
        layoutFingerprint = Self.fingerprint(of: configuration, referenceSHA256: referenceSHA256, options: false)
        collectorFingerprints = Self.collectorFingerprints(of: configuration)
        self.reference = reference
        groupLabels = configuration.sensitiveAttributes.map { $0.groups + [ModelContext.other] }
        privilegedGroups = configuration.sensitiveAttributes.map { a in
            a.privileged.flatMap { p in a.groups.firstIndex { $0.sameBytes(p) } }
        }
        positiveClassIndex = configuration.positiveClass.flatMap { p in
            configuration.classes.firstIndex { $0.sameBytes(p) }
        }
        var indexes: [NameIndex] = []
        for attribute in configuration.sensitiveAttributes { indexes.append(try NameIndex(attribute.groups)) }
        groupIndexes = indexes
    }

    /// The group index of attribute `attribute`'s value (`__other__`, the last, when absent or unknown).
    @inline(__always)
    public func groupIndex(attribute: Int, value: String?) -> Int {
        guard let value, let i = groupIndexes[attribute].index(of: value) else { return groupIndexes[attribute].count }
        return i
    }

    /// The index in ``versionLabels`` of `version` (the last one, `__other__`, when it is not configured), byte for
    /// byte: `vé` in NFD is not the configured `vé` in NFC (it would be counted under a label value it does not have).
    @inline(__always)
    public func versionIndex(_ version: String) -> Int {
        var version = version
        // Per request: the bytes in place (a small string's on the stack), against each version's, length first.
        return version.withUTF8 { given in
            versionBytes.withUnsafeBufferPointer { versions in
                for i in 0..<versions.count where versions[i].count == given.count {
                    if versions[i].withUnsafeBufferPointer({ $0.elementsEqual(given) }) { return i }
                }
                return versions.count
            }
        }
    }

    /// The index in ``classLabels`` of a decoded class index (`nil`: not a configured class, so `__other__`).
    @inline(__always)
    public func classIndex(_ decoded: Int?) -> Int { decoded ?? configuration.classes.count }
}
