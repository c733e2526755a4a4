/// Why a label joined no prediction: the `reason` of `mlops_labels_unmatched_total{model,reason}`.
public enum UnmatchedReason: Int, Sendable, CaseIterable {
    /// Never pending here, already joined, or dropped so long ago that it is forgotten.
    case unknown
    /// Was pending here, and its `join_ttl` passed before the label came.
    case expired
    /// Was pending here, and was dropped because the model held `max_pending` predictions.
    case evicted
    /// Not pending here, and its id (`<instance>~<ULID>`, see ``EventID``) names another exporter instance.
    case otherInstance

    /// The label value: `unknown`, `expired`, `evicted`, `other_instance`.
    public var name: String {
        switch self {
        case .unknown: "unknown"
        case .expired: "expired"
        case .evicted: "evicted"
        case .otherInstance: "other_instance"
        }
    }
}

/// What became of the labels of one request that joined no prediction: counts by ``UnmatchedReason``, and for
/// ``UnmatchedReason/otherInstance`` the instances named by the ids, each with its count. Bounded whatever the
/// request: at most ``maximumListedInstances`` distinct instances are listed (the first met), the labels of any
/// other are only counted in ``unlistedOtherInstances``.
public struct UnmatchedLabels: Sendable, Equatable {
    /// Most distinct instances listed in ``otherInstances``.
    public static let maximumListedInstances = 16

    /// Labels of the request that joined their prediction.
    public internal(set) var joined = 0
    /// Unmatched labels by reason (stored inline: a tally costs no allocation until an instance is listed).
    var unknown = 0, expired = 0, evicted = 0, otherInstance = 0
    /// The instances that hold labels of this request (``UnmatchedReason/otherInstance``), in order of first
    /// appearance, with their label counts; at most ``maximumListedInstances``.
    public private(set) var otherInstances: [Instance] = []
    /// Labels for other instances beyond the listed ones.
    public private(set) var unlistedOtherInstances = 0

    /// An instance that holds some of the request's labels, and how many.
    public struct Instance: Sendable, Equatable {
        /// The instance id (the prefix of the labels' ids).
        public var name: String
        /// Labels of the request whose id names it.
        public var count: Int
    }

    /// No labels yet.
    public init() {}

    /// Unmatched labels for `reason`.
    public subscript(reason: UnmatchedReason) -> Int {
        switch reason {
        case .unknown: unknown
        case .expired: expired
        case .evicted: evicted
        case .otherInstance: otherInstance
        }
    }

    /// Counts one label unmatched for `reason`; `instance` is the other instance named by its id (only for
    /// ``UnmatchedReason/otherInstance``).
    mutating func add(_ reason: UnmatchedReason, instance: Substring?) {
        switch reason {
        case .unknown: unknown += 1
        case .expired: expired += 1
        case .evicted: evicted += 1
        case .otherInstance: otherInstance += 1
        }
        guard let instance else { return }
        if let i = otherInstances.firstIndex(where: { $0.name == instance }) {
            otherInstances[i].count += 1
        } else if otherInstances.count < Self.maximumListedInstances {
            otherInstances.append(Instance(name: String(instance), count: 1))
        } else {
            unlistedOtherInstances += 1
        }
    }
}
