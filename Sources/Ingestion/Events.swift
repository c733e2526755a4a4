/// The value of one declared feature in an event.
public enum FeatureValue: Sendable, Equatable {
    /// Absent from the event, or JSON `null`.
    case missing
    /// A numeric feature's value (always finite). Given in process for a categorical feature, it is taken as the
    /// category it names (`3` → `"3"`, `2.5` → `"2.5"`), as the JSON decoder reads a number there.
    case number(Double)
    /// A categorical feature's value: the string, a number's JSON text, or `"true"`/`"false"`.
    case category(String)
}

extension FeatureValue {
    /// A `.number`'s value, nil for any other case. Read on a value in place (an array's or a buffer's element)
    /// without copying it, which a `switch` over the element does (with the copy's destruction after: a call).
    @inlinable @inline(__always)
    public var numberValue: Double? {
        if case .number(let x) = self { return x }
        return nil
    }
}

/// A prediction or a label: a number for regression, a class label for classification.
public enum Outcome: Sendable, Equatable {
    /// A regression value (always finite).
    case number(Double)
    /// A class label: a JSON string, an integral number's integer text (or the configured class spelled as an equal
    /// number), or `"true"`/`"false"`.
    case label(String)
}

/// Whether the model served the prediction successfully.
public enum PredictionStatus: Sendable, Equatable {
    /// `"ok"`, or no `status` key.
    case ok
    /// `"error"`; see ``PredictionEvent/errorKind``.
    case error
}

/// One decoded prediction event, in schema order.
///
/// The decoder reuses a single instance for a whole batch and hands it to the visitor after each valid event,
/// so the visitor must copy out what it keeps (copying is cheap: the arrays are copy-on-write).
public struct PredictionEvent: Sendable, Equatable {
    /// The event's `id` (a JSON string, or an integer's JSON text), used to join delayed labels.
    public var id: String?
    /// The event's `timestamp` in Unix seconds.
    public var timestamp: Double?
    /// The model version (required).
    public var version: String
    /// One value per ``Schema/features`` entry, in schema order.
    public var features: [FeatureValue]
    /// How many keys of `features` are not declared in the schema (their values are ignored).
    public var unknownFeatureCount: Int
    /// The prediction (required): ``Outcome/number(_:)`` for regression, ``Outcome/label(_:)`` for
    /// classification.
    public var prediction: Outcome
    /// For classification, the index of the predicted label in ``Schema/classes``; nil if not listed.
    public var predictionClass: Int?
    /// The event's `score`.
    public var score: Double?
    /// Empty when the event has no `probabilities`; otherwise one value in [0, 1] per ``Schema/classes`` entry.
    public var probabilities: [Double]
    /// The event's `latency_seconds` (finite, >= 0).
    public var latencySeconds: Double?
    /// The event's `status`.
    public var status: PredictionStatus
    /// The event's `error_kind`, as given (it is kept whatever the status).
    public var errorKind: String?
    /// One value per ``Schema/attributeNames`` entry, in schema order: strings as is, numbers as a categorical
    /// feature's (an integral one as an integer, `1.0` → `1`), booleans as `"true"`/`"false"`, nil when absent or null.
    public var attributes: [String?]
    /// Inline ground truth, of the same type as ``prediction``.
    public var label: Outcome?
    /// For classification, the index of ``label`` in ``Schema/classes``; nil if not listed or no label.
    public var labelClass: Int?

    /// An empty event shaped for `schema` (all features missing, no prediction yet).
    public init(schema: Schema) {
        self.init(
            features: Array(repeating: .missing, count: schema.features.count),
            attributeCount: schema.attributeNames.count)
    }

    /// An event with `features` (one per feature of its schema, in its order), `attributeCount` absent attributes and
    /// nothing else yet: how a decoder that holds the features already hands them over without an array of missing
    /// values first (and without a copy of the schema).
    package init(features: [FeatureValue], attributeCount: Int) {
        id = nil
        timestamp = nil
        version = ""
        self.features = features
        unknownFeatureCount = 0
        prediction = .number(0)
        predictionClass = nil
        score = nil
        probabilities = []
        latencySeconds = nil
        status = .ok
        errorKind = nil
        attributes = Array(repeating: nil, count: attributeCount)
        label = nil
        labelClass = nil
    }
}

/// One decoded label event: delayed ground truth for the prediction with the same `id`.
public struct LabelEvent: Sendable, Equatable {
    /// The `id` of the prediction this label belongs to (required; a string or an integer's JSON text).
    public var id: String
    /// The ground truth (required), typed like predictions of the schema's task.
    public var label: Outcome
    /// For classification, the index of ``label`` in ``Schema/classes``; nil if not listed.
    public var labelClass: Int?
    /// The event's `timestamp` in Unix seconds.
    public var timestamp: Double?

    /// Creates a label event.
    public init(id: String, label: Outcome, labelClass: Int? = nil, timestamp: Double? = nil) {
        self.id = id
        self.label = label
        self.labelClass = labelClass
        self.timestamp = timestamp
    }
}

/// How a request body is framed.
public enum BodyFormat: Sendable, Equatable {
    /// `application/json`: one JSON array of event objects. A syntax error anywhere rejects the whole body.
    case json
    /// `application/x-ndjson`: one event object per line (LF or CRLF); blank lines are skipped. A syntax error
    /// rejects only its line.
    case ndjson
}

/// Why an event (or a body) was rejected: a small fixed set, suitable as a Prometheus `reason` label value.
public enum RejectReason: String, Sendable, CaseIterable {
    /// Not valid JSON (an NDJSON line, or a whole JSON-array body), or an event that gives a key twice (an event
    /// field, a feature, an attribute, a class of `probabilities`: JSON decoders keep the last, losing the first).
    case invalidJSON = "invalid_json"
    /// An element of the batch is valid JSON but not an object.
    case notAnObject = "not_an_object"
    /// A label event without `id`.
    case missingID = "missing_id"
    /// A prediction event without `version`.
    case missingVersion = "missing_version"
    /// A prediction event without `prediction`.
    case missingPrediction = "missing_prediction"
    /// A label event without `label`.
    case missingLabel = "missing_label"
    /// A known field with a JSON type it cannot have.
    case wrongType = "wrong_type"
    /// A number that is out of range: too large for a Double, a negative latency, or a number the exporter sums
    /// (a regression prediction or label, a latency) beyond ±1e140 (``SummedValueLimit``).
    case invalidNumber = "invalid_number"
    /// A `status` other than `"ok"` or `"error"`.
    case invalidStatus = "invalid_status"
    /// Probabilities for a regression model, for unknown classes, not covering every class, or outside [0, 1].
    case invalidProbabilities = "invalid_probabilities"
    /// More events than the endpoint accepts in one body (the whole body is rejected).
    case tooManyEvents = "too_many_events"
}

/// Why one event of a batch was rejected.
public struct EventError: Sendable, Equatable, CustomStringConvertible {
    /// The 0-based position of the event in the batch (for NDJSON, among non-blank lines).
    public var index: Int
    /// For NDJSON, the 1-based line number.
    public var line: Int?
    /// The byte offset in the body where the problem was found (JSON syntax errors) or the event starts.
    public var offset: Int
    /// The reason label.
    public var reason: RejectReason
    /// A human-readable explanation.
    public var message: String

    /// Creates an event error.
    public init(index: Int, line: Int?, offset: Int, reason: RejectReason, message: String) {
        self.index = index
        self.line = line
        self.offset = offset
        self.reason = reason
        self.message = message
    }

    /// The message prefixed with the event's position, e.g. `event 3 (line 4): missing 'version'`.
    public var description: String {
        if let line { return "event \(index) (line \(line)): \(message)" }
        return "event \(index): \(message)"
    }
}

/// The outcome of decoding one body that could be split into events.
public struct DecodeReport: Sendable, Equatable {
    /// How many ``EventError``s are kept in ``errors``; further rejections are only counted.
    public static let maxRecordedErrors = 20

    /// Events handed to the visitor.
    public var accepted = 0
    /// Events rejected (not handed to the visitor).
    public var rejected = 0
    /// The sum of ``PredictionEvent/unknownFeatureCount`` over accepted events.
    public var unknownFeatures = 0
    /// The body's first key of a `features` object that is no feature of the model (of any event).
    public var firstUnknownFeature: String?
    /// Keys of accepted events that are no event field (skipped: a misspelt `probabilites` loses the
    /// probabilities), and the body's first such key, of any event.
    public var unknownKeys = 0
    /// See ``unknownKeys``.
    public var firstUnknownKey: String?
    /// The first ``maxRecordedErrors`` rejections, in body order.
    public var errors: [EventError] = []
    /// The number of rejected events per ``RejectReason`` raw value (only reasons that occurred).
    public var rejectedByReason: [String: Int] = [:]
    /// Accepted events recorded otherwise than sent (filled by the model that records them, not the decoder).
    public var notices = IngestNotices()

    /// An empty report.
    public init() {}

    mutating func record(_ error: EventError) {
        rejected += 1
        rejectedByReason[error.reason.rawValue, default: 0] += 1
        if errors.count < DecodeReport.maxRecordedErrors { errors.append(error) }
    }
}

/// A body that is rejected as a whole.
public enum BodyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A JSON-array body that is not valid JSON, or not an array (HTTP 400).
    case malformed(offset: Int, message: String)
    /// More than `limit` events (HTTP 413). For JSON, `count` is a lower bound: counting stops at `limit + 1`.
    case tooManyEvents(count: Int, limit: Int)

    /// The reason label: `invalid_json` or `too_many_events`.
    public var reason: RejectReason {
        switch self {
        case .malformed: .invalidJSON
        case .tooManyEvents: .tooManyEvents
        }
    }

    /// E.g. `malformed JSON at byte offset 17: expected ',' or ']' in array, found '}'`.
    public var description: String {
        switch self {
        case .malformed(let offset, let message): "malformed JSON at byte offset \(offset): \(message)"
        case .tooManyEvents(let count, let limit): "too many events: \(count) > \(limit)"
        }
    }
}
