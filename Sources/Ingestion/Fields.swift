/// One JSON value read by ``Scanner/scalar(depth:)``; objects and arrays are skipped and only reported.
enum Token {
    case string(StringToken)
    case number(NumberToken)
    case bool(Bool)
    case null
    case object
    case array

    var typeName: String {
        switch self {
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        case .object: "an object"
        case .array: "an array"
        }
    }
}

extension Scanner {
    /// Reads any value at nesting level `depth` (the event object is level 1); objects and arrays are validated and
    /// skipped.
    @inline(__always)
    mutating func scalar(depth: Int) throws(SyntaxError) -> Token {
        skipWhitespace()
        guard pos < end else { throw error("expected a value, found end of input") }
        switch base[pos] {
        case 0x22: return .string(try string())
        case 0x2D, 0x30...0x39, 0x4E, 0x49:
            // `NaN` (a missing value, as the profile, the capture and pandas read it), `Infinity` and `-Infinity`, as
            // Python's `json` writes them (``allowsNonFinite``).
            let b = base[pos]
            if b == 0x4E || b == 0x49 || b == 0x2D && pos + 1 < end && base[pos + 1] == 0x49 {
                let start = pos
                guard let value = nonFiniteLiteral() else { throw error("expected a value, found \(describe(b))") }
                return value.isNaN
                    ? .null : .number(NumberToken(start: start, end: pos, value: value, isInteger: false))
            }
            return .number(try number())
        case 0x74, 0x66, 0x6E:
            if let value = try literal() { return .bool(value) }
            return .null
        case 0x7B:
            try skipValue(depth: depth)
            return .object
        case 0x5B:
            try skipValue(depth: depth)
            return .array
        default:
            throw error("expected a value, found \(describe(base[pos]))")
        }
    }
}

/// The known keys of prediction and label events.
enum Field: Int {
    case id, timestamp, version, features, prediction, score, probabilities, latencySeconds, status, errorKind
    case attributes, label

    /// The keys as a name table, in the order of the cases (index = raw value).
    static let table = try! NameTable(PredictionEventFields.names, list: "fields")
}

/// The top-level keys of a prediction event (`POST /api/v1/models/{model}/predictions`), for readers of events other
/// than this decoder (`mlops-exporter profile` refuses any other key in an event line, as a typo's value would be
/// lost).
public enum PredictionEventFields {
    /// `id`, `timestamp`, `version`, `features`, `prediction`, `score`, `probabilities`, `latency_seconds`, `status`,
    /// `error_kind`, `attributes`, `label`: the decoder's fields, in the order of its `Field` cases.
    public static let names = [
        "id", "timestamp", "version", "features", "prediction", "score", "probabilities", "latency_seconds",
        "status", "error_kind", "attributes", "label",
    ]
}

/// Per-batch decoding state: the schema and caches reused across events.
struct FieldReader {
    let schema: Schema
    let isClassification: Bool
    var scratch: [UInt8] = []
    /// The last long version's bytes and String, so that a batch of one version builds the String once (short ones
    /// come from ``strings``).
    var versionBytes: [UInt8] = []
    var versionString = ""
    /// Recently built Strings of short escape-free values (categorical values, attributes, labels, error kinds):
    /// a batch repeats a few distinct values, so most are found here instead of being validated and built again.
    let strings: StringCache
    /// For each field index (and `Field.table.count` for the start of an event), 4 bits holding the index of the key
    /// that followed it in the previous event: events of a batch usually list their keys in the same order.
    var fieldSuccessors: UInt64
    /// ``Field/table``, read once per batch.
    let fieldTable = Field.table
    /// Whether the current event had a `features` key (else its features are all set missing at its end).
    var featuresSeen = false
    /// Whether the current event had `probabilities` as an object or array (else they are emptied at its end).
    var probabilitiesSeen = false
    /// Keys of the current event that are no event field (skipped; counted for the event when it is accepted).
    var unknownKeysInEvent = 0
    /// The first such key of the body, to name in the answer.
    var firstUnknownKey: String?
    /// The first key of a `features` object of the body that is no feature of the model (a misspelt `amout`), to name
    /// in the answer.
    var firstUnknownFeature: String?
    /// The version of an event that names none (the batch command's `--model-version`); nil: such an event is
    /// rejected `missing_version`, as the ingestion API has it.
    var defaultVersion: String?
    /// The current event's mark, and for each feature, attribute and class the mark of the last event whose
    /// `features`, `attributes` or `probabilities` object gave it: a key given twice in one event is found by one
    /// comparison (no set to clear per event).
    var eventMark: UInt32 = 0
    var featureMarks: [UInt32] = []
    var attributeMarks: [UInt32] = []
    var classMarks: [UInt32] = []

    /// Starts an event: a new ``eventMark`` (the marks start over when it wraps).
    @inline(__always)
    mutating func markNewEvent() {
        eventMark &+= 1
        if eventMark == 0 {
            for i in featureMarks.indices { featureMarks[i] = 0 }
            for i in attributeMarks.indices { attributeMarks[i] = 0 }
            for i in classMarks.indices { classMarks[i] = 0 }
            eventMark = 1
        }
    }

    /// Whether `marks[index]` holds `mark` (given in this event already); sets it.
    @inline(__always)
    static func givenTwice(_ marks: inout [UInt32], _ index: Int, mark: UInt32) -> Bool {
        if marks[index] == mark { return true }
        marks[index] = mark
        return false
    }

    init(schema: Schema, cache: DecoderCache?) {
        self.schema = schema
        isClassification = schema.task == .classification
        strings = cache?.strings ?? StringCache()
        fieldSuccessors = cache?.fieldSuccessors ?? DecoderCache.initialFieldSuccessors
        featureMarks = Array(repeating: 0, count: schema.features.count)
        attributeMarks = Array(repeating: 0, count: schema.attributeNames.count)
        classMarks = Array(repeating: 0, count: schema.classes.count)
    }

    /// The String of a string token, from ``strings`` when it is short and escape-free.
    @inline(__always)
    mutating func string(_ token: StringToken, _ s: Scanner) -> String {
        if token.hasEscapes || token.count > StringCache.maximumLength { return s.makeString(token, scratch: &scratch) }
        return strings.string(s.raw(token))
    }

    /// Counts a key that is no event field, keeping the body's first for the answer (its value is skipped).
    @inline(never)
    mutating func unknownKey(_ token: StringToken, _ s: Scanner) {
        unknownKeysInEvent &+= 1
        if firstUnknownKey == nil { firstUnknownKey = s.makeString(token, scratch: &scratch) }
    }

    /// Counts an `attributes` key that is no attribute of the model as an unknown key, named `attributes.<key>` when
    /// it is the body's first (its value is skipped).
    @inline(never)
    mutating func unknownAttribute(_ token: StringToken, _ s: Scanner) {
        unknownKeysInEvent &+= 1
        if firstUnknownKey == nil { firstUnknownKey = "attributes." + s.makeString(token, scratch: &scratch) }
    }

    /// Keeps the body's first key that is no feature, for the answer.
    @inline(never)
    mutating func unknownFeature(_ token: StringToken, _ s: Scanner) {
        firstUnknownFeature = s.makeString(token, scratch: &scratch)
    }

    // MARK: Helpers

    func resolve(_ token: StringToken, _ s: Scanner, in table: NameTable, hint: Int) -> Int? {
        if !token.hasEscapes { return table.lookup(s.raw(token), hint: hint) }
        var bytes: [UInt8] = []
        s.unescape(token, into: &bytes)
        return bytes.withUnsafeBufferPointer { table.lookup($0, hint: hint) }
    }

    /// Reads the next `"key":` of an object whose names are in `table` and returns the key's index, or nil for a
    /// name not in the table (`key` then holds its token). The name at `hint` (the one after the previous key: keys
    /// usually come in schema order) is compared directly against the input first, without scanning the key.
    @inline(__always)
    func keyIndex(
        _ s: inout Scanner, in table: NameTable, hint: Int, key: inout StringToken
    ) throws(SyntaxError) -> Int? {
        let names = table.storage
        if hint < names.count
            && s.skipKey(names.patterns + names.patternStarts[hint], count: names.patternLengths[hint])
        {
            return hint
        }
        return try scanKey(&s, in: table, hint: hint, key: &key)
    }

    /// ``keyIndex(_:in:hint:key:)`` when the hinted name is not next: scans the key and looks it up.
    @inline(never)
    func scanKey(
        _ s: inout Scanner, in table: NameTable, hint: Int, key: inout StringToken
    ) throws(SyntaxError) -> Int? {
        key = try s.key()
        return resolve(key, s, in: table, hint: hint)
    }

    /// The text of a number token (its JSON spelling).
    @inline(__always)
    func numberText(_ token: NumberToken, _ s: Scanner) -> String { s.text(token.start, token.end) }

    /// A number sent for a categorical feature, as a reference profile spells it (`mlops-exporter profile`): an
    /// integral value below 10^15 as an integer (`1.0`, `1e2` → `1`, `100`), any other as Swift prints the double; so
    /// that the same value is the same category in the profile and in traffic. Text that is no finite double stays.
    static func categoryText(_ text: String) -> String {
        guard let x = Double(text), x.isFinite else { return text }
        return integralText(text) ?? "\(x)"
    }

    /// A number's text when it is integral (`1.0`, `1e2`) and below 10^15, as an integer (`1`, `100`); nil otherwise.
    static func integralText(_ text: String) -> String? {
        guard let x = Double(text), x.isFinite, x == x.rounded(), abs(x) < 1e15 else { return nil }
        return String(Int64(x))
    }

    /// Reads a prediction or label value typed by the task; nil for null. For classification, `classIndex` is set
    /// to the label's index in ``Schema/classes`` (nil when not listed).
    mutating func outcome(
        _ s: inout Scanner, _ name: String, _ rejection: inout Rejection?, classIndex: inout Int?
    ) throws(SyntaxError)
        -> Outcome?
    {
        let token = try s.scalar(depth: 2)
        classIndex = nil
        if isClassification {
            let label: Outcome
            switch token {
            case .string(let t):
                // Looked up from the input's bytes: no String to read back.
                if !t.hasEscapes { classIndex = schema.classTable.lookup(s.raw(t), hint: Int.max) }
                let outcome = Outcome.label(string(t, s))
                if t.hasEscapes { classIndex = self.classIndex(outcome) }
                return outcome
            case .number(let n):
                // A class as written (`1` for the class `1`), else the configured class spelled as an equal number
                // (`1.0` for the class `1`, `1` for the class `1.0`, as the capture decoders read it), else an integral
                // value's integer text (`1.0` as pandas writes an integer column that holds a NaN, counted under
                // `__other__` when no class is `1`); a number with a fraction that is no class is refused.
                let text = numberText(n, s)
                let written = n.isInteger ? text : Self.integralText(text)
                if let written, let i = self.classIndex(.label(written)) {
                    classIndex = i
                    return .label(written)
                }
                let x = Double(text) ?? .nan
                if let i = schema.numericClassIndex(x) {
                    classIndex = i
                    return .label(schema.classes[i])
                }
                guard let written else {
                    let why =
                        !x.isFinite
                        ? "a number beyond a double's range"
                        : x == x.rounded() ? "a number too large to be a class" : "a number with a fraction"
                    reject(
                        &rejection, .wrongType,
                        "'\(name)' must be a class label (string, integral number or boolean), found \(why)")
                    return nil
                }
                label = .label(written)
            case .bool(let b): label = .label(b ? "true" : "false")
            case .null: return nil
            default:
                reject(
                    &rejection, .wrongType,
                    "'\(name)' must be a class label (string, integral number or boolean), found \(token.typeName)")
                return nil
            }
            classIndex = self.classIndex(label)
            return label
        }
        switch token {
        case .number(let n):
            // Added into running sums (quality, the prediction histogram): bounded so that they stay finite.
            guard SummedValueLimit.accepts(n.value) else {
                reject(&rejection, .invalidNumber, "'\(name)' is out of range (at most ±1e140)")
                return nil
            }
            return .number(n.value)
        case .null: return nil
        default:
            reject(&rejection, .wrongType, "'\(name)' must be a number, found \(token.typeName)")
            return nil
        }
    }

    func classIndex(_ outcome: Outcome?) -> Int? {
        guard isClassification, case .label(let text)? = outcome else { return nil }
        var copy = text
        return copy.withUTF8 { schema.classTable.lookup($0, hint: Int.max) }
    }

    /// A finite number (nil for null); records a rejection for other types.
    /// A `timestamp` (``EventTimestamp``): a negative one is `invalid_number`, as in-process and CSV batch events.
    mutating func timestamp(_ s: inout Scanner, _ rejection: inout Rejection?) throws(SyntaxError) -> Double? {
        guard let t = try double(&s, "timestamp", &rejection) else { return nil }
        guard EventTimestamp.accepts(t) else {
            reject(&rejection, .invalidNumber, "'timestamp' is before 1970 (Unix seconds are at least 0)")
            return nil
        }
        return t
    }

    mutating func double(
        _ s: inout Scanner, _ name: String, _ rejection: inout Rejection?
    ) throws(SyntaxError)
        -> Double?
    {
        let token = try s.scalar(depth: 2)
        switch token {
        case .number(let n):
            guard n.value.isFinite else {
                reject(&rejection, .invalidNumber, "'\(name)' is out of range")
                return nil
            }
            return n.value
        case .null: return nil
        default:
            reject(&rejection, .wrongType, "'\(name)' must be a number, found \(token.typeName)")
            return nil
        }
    }

    /// An id: a string, or an integer's JSON text (nil for null).
    mutating func identifier(_ s: inout Scanner, _ rejection: inout Rejection?) throws(SyntaxError) -> String? {
        let token = try s.scalar(depth: 2)
        switch token {
        case .string(let t): return s.makeString(t, scratch: &scratch)
        case .number(let n) where n.isInteger: return numberText(n, s)
        case .null: return nil
        default:
            reject(&rejection, .wrongType, "'id' must be a string or an integer, found \(token.typeName)")
            return nil
        }
    }

    // MARK: Prediction events

    /// At '{': parses one prediction event into `event`; returns the first semantic problem, if any.
    mutating func parsePrediction(
        _ s: inout Scanner, into event: inout PredictionEvent
    ) throws(SyntaxError)
        -> Rejection?
    {
        event.id = nil
        event.timestamp = nil
        featuresSeen = false  // the features are reset by `features(_:_:_:)`, or below when the key is absent
        event.unknownFeatureCount = 0
        unknownKeysInEvent = 0
        event.predictionClass = nil
        event.score = nil
        probabilitiesSeen = false  // kept from the previous event until `probabilities(_:_:_:)` or the end
        event.latencySeconds = nil
        event.status = .ok
        event.errorKind = nil
        // The visitor gets the event `inout`: put back the shapes the schema gives, should it have changed them.
        if event.features.count != schema.features.count {
            event.features = Array(repeating: .missing, count: schema.features.count)
        }
        if event.attributes.count != schema.attributeNames.count {
            event.attributes = Array(repeating: nil, count: schema.attributeNames.count)
        }
        for i in event.attributes.indices { event.attributes[i] = nil }
        event.label = nil
        event.labelClass = nil

        var rejection: Rejection?
        var hasVersion = false
        var prediction: Outcome?
        var predictionClass: Int?
        var labelClass: Int?
        var given: UInt32 = 0  // one bit per `Field`
        markNewEvent()
        s.pos += 1
        if !s.objectIsEmpty() {
            let fields = fieldTable
            var key = StringToken(start: 0, end: 0, hasEscapes: false)
            var previous = fields.count  // the start of the object
            repeat {
                // The key that followed the previous one last time is compared in place first.
                let shift = UInt64(truncatingIfNeeded: previous &* 4)
                let hint = Int(truncatingIfNeeded: (fieldSuccessors >> shift) & 0xF)
                guard let index = try keyIndex(&s, in: fields, hint: hint, key: &key),
                    let field = Field(rawValue: index)
                else {
                    unknownKey(key, s)  // the hint did not match, so `key` is this key
                    try s.skipValue(depth: 2)
                    continue
                }
                if index != hint {
                    fieldSuccessors = fieldSuccessors & ~(0xF << shift) | UInt64(truncatingIfNeeded: index) << shift
                }
                previous = index
                // JSON decoders keep the last of a key given twice, so its first value was lost unsaid: refused, as
                // `batch` and `profile` refuse it in their files and the CloudEvents receiver in an envelope.
                if given & (1 << index) != 0 { rejectDuplicate(&rejection, PredictionEventFields.names[index]) }
                given |= 1 << index
                switch field {
                case .id: event.id = try identifier(&s, &rejection)
                case .timestamp: event.timestamp = try timestamp(&s, &rejection)
                case .version: hasVersion = try version(&s, &event, &rejection)
                case .features: try features(&s, &event, &rejection)
                case .prediction:
                    prediction = try outcome(&s, "prediction", &rejection, classIndex: &predictionClass)
                case .score: event.score = try double(&s, "score", &rejection)
                case .probabilities: try probabilities(&s, &event, &rejection)
                case .latencySeconds:
                    event.latencySeconds = try double(&s, "latency_seconds", &rejection)
                    if let latency = event.latencySeconds, latency < 0 {
                        reject(&rejection, .invalidNumber, "'latency_seconds' must not be negative")
                    } else if let latency = event.latencySeconds, !SummedValueLimit.accepts(latency) {
                        reject(&rejection, .invalidNumber, "'latency_seconds' is out of range (at most 1e140)")
                    }
                case .status: try status(&s, &event, &rejection)
                case .errorKind:
                    let token = try s.scalar(depth: 2)
                    switch token {
                    case .string(let t): event.errorKind = string(t, s)
                    case .null: event.errorKind = nil
                    default: reject(&rejection, .wrongType, "'error_kind' must be a string, found \(token.typeName)")
                    }
                case .attributes: try attributes(&s, &event, &rejection)
                case .label: event.label = try outcome(&s, "label", &rejection, classIndex: &labelClass)
                }
            } while try s.objectContinues()
        }
        if !probabilitiesSeen && !event.probabilities.isEmpty { event.probabilities.removeAll(keepingCapacity: true) }
        if !featuresSeen {
            setAllFeaturesMissing(&event)
        }
        // An empty version is none, as ``MonitoredModel/record`` has it (it was recorded under `__other__`).
        if rejection == nil && (!hasVersion || event.version.isEmpty) {
            if let defaultVersion {
                event.version = defaultVersion
            } else {
                reject(&rejection, .missingVersion, "missing 'version'")
            }
        }
        if rejection == nil {
            if let prediction {
                event.prediction = prediction
            } else {
                reject(&rejection, .missingPrediction, "missing 'prediction'")
            }
        }
        if rejection == nil && isClassification {
            event.predictionClass = predictionClass
            event.labelClass = labelClass
        }
        return rejection
    }

    mutating func version(
        _ s: inout Scanner, _ event: inout PredictionEvent, _ rejection: inout Rejection?
    )
        throws(SyntaxError) -> Bool
    {
        let token = try s.scalar(depth: 2)
        switch token {
        case .string(let t) where !t.hasEscapes && t.count > StringCache.maximumLength:
            let raw = s.raw(t)
            if !raw.elementsEqual(versionBytes) {
                versionBytes.removeAll(keepingCapacity: true)
                versionBytes.append(contentsOf: raw)
                versionString = String(decoding: raw, as: UTF8.self)
            }
            event.version = versionString
            return true
        case .string(let t):
            event.version = string(t, s)
            return true
        case .null: return false
        default:
            reject(&rejection, .wrongType, "'version' must be a string, found \(token.typeName)")
            return false
        }
    }

    mutating func status(
        _ s: inout Scanner, _ event: inout PredictionEvent, _ rejection: inout Rejection?
    )
        throws(SyntaxError)
    {
        let token = try s.scalar(depth: 2)
        if case .null = token {
            event.status = .ok
            return
        }
        if case .string(let t) = token {
            let value = string(t, s)
            if value == "ok" {
                event.status = .ok
                return
            }
            if value == "error" {
                event.status = .error
                return
            }
        }
        reject(&rejection, .invalidStatus, "'status' must be \"ok\" or \"error\"")
    }

    /// At a field's value: true when it is a non-empty object, the scanner then at its first key. `null` and `{}`
    /// give false; any other type is rejected as `wrong_type` (and false).
    @inline(__always)
    mutating func enterObject(
        _ s: inout Scanner, _ field: StaticString, _ rejection: inout Rejection?
    )
        throws(SyntaxError) -> Bool
    {
        guard s.peek() == 0x7B else {
            let token = try s.scalar(depth: 2)
            if case .null = token { return false }
            reject(&rejection, .wrongType, "'\(field)' must be an object, found \(token.typeName)")
            return false
        }
        s.pos += 1
        return !s.objectIsEmpty()
    }

    /// Reads the `features` object. Every feature ends up either given by this object or `.missing` (no reset of
    /// the reused event beforehand): a feature skipped over in schema order is set missing on the way, the ones
    /// after the last key at the end. Keys out of order are still read; a feature given twice rejects the event (a
    /// `features` key given twice is refused by the event's parser).
    mutating func features(
        _ s: inout Scanner, _ event: inout PredictionEvent, _ rejection: inout Rejection?
    )
        throws(SyntaxError)
    {
        featuresSeen = true
        guard try enterObject(&s, "features", &rejection) else {
            setAllFeaturesMissing(&event)
            return
        }
        var next = 0  // every feature below `next` is given or set missing already
        var key = StringToken(start: 0, end: 0, hasEscapes: false)
        repeat {
            guard let index = try keyIndex(&s, in: schema.featureTable, hint: next, key: &key) else {
                event.unknownFeatureCount += 1
                if firstUnknownFeature == nil { unknownFeature(key, s) }
                try s.skipValue(depth: 3)
                continue
            }
            if index >= next {
                for i in next..<index { event.features[i] = .missing }
                next = index &+ 1
            }
            if Self.givenTwice(&featureMarks, index, mark: eventMark) {
                rejectDuplicate(&rejection, "features.\(schema.features[index].name)")
            }
            let token = try s.scalar(depth: 3)
            if schema.featureIsNumeric[index] {
                switch token {
                case .number(let n):
                    if n.value.isFinite {
                        event.features[index] = .number(n.value)
                    } else {
                        reject(
                            &rejection, .invalidNumber, "feature '\(schema.features[index].name)' is out of range")
                    }
                case .bool(let b): event.features[index] = .number(b ? 1 : 0)
                case .null: event.features[index] = .missing
                default:
                    reject(
                        &rejection, .wrongType,
                        "numeric feature '\(schema.features[index].name)' must be a number, found \(token.typeName)")
                }
            } else {
                switch token {
                case .string(let t):
                    // An empty string is a missing value, as a reference profile (and a batch's CSV) reads it.
                    let text = string(t, s)
                    event.features[index] = text.isEmpty ? .missing : .category(text)
                case .number(let n) where !n.value.isFinite:
                    // Beyond the range of a double (`1e400`): the category was its spelling here, while `profile`
                    // and `batch` read no such value; refused as the numbers elsewhere are.
                    reject(
                        &rejection, .invalidNumber,
                        "categorical feature '\(schema.features[index].name)' is a number out of range")
                case .number(let n): event.features[index] = .category(Self.categoryText(numberText(n, s)))
                case .bool(let b): event.features[index] = .category(b ? "true" : "false")
                case .null: event.features[index] = .missing
                default:
                    reject(
                        &rejection, .wrongType,
                        "categorical feature '\(schema.features[index].name)' must be a string, number or "
                            + "boolean, found \(token.typeName)")
                }
            }
        } while try s.objectContinues()
        for i in next..<event.features.count { event.features[i] = .missing }
    }

    mutating func attributes(
        _ s: inout Scanner, _ event: inout PredictionEvent, _ rejection: inout Rejection?
    )
        throws(SyntaxError)
    {
        guard try enterObject(&s, "attributes", &rejection) else { return }
        var hint = 0
        var key = StringToken(start: 0, end: 0, hasEscapes: false)
        repeat {
            guard let index = try keyIndex(&s, in: schema.attributeTable, hint: hint, key: &key) else {
                unknownAttribute(key, s)
                try s.skipValue(depth: 3)
                continue
            }
            hint = index + 1
            if Self.givenTwice(&attributeMarks, index, mark: eventMark) {
                rejectDuplicate(&rejection, "attributes.\(schema.attributeNames[index])")
            }
            let token = try s.scalar(depth: 3)
            switch token {
            case .string(let t): event.attributes[index] = string(t, s)
            // A number as a categorical feature's: `1.0` is the group `1` (pandas writes an integer column that holds a
            // NaN as floats; the group was `1.0`, so `__other__`).
            case .number(let n): event.attributes[index] = Self.categoryText(numberText(n, s))
            case .bool(let b): event.attributes[index] = b ? "true" : "false"
            case .null: event.attributes[index] = nil
            default:
                reject(
                    &rejection, .wrongType,
                    "attribute '\(schema.attributeNames[index])' must be a string, number or boolean, "
                        + "found \(token.typeName)")
            }
        } while try s.objectContinues()
    }

    mutating func probabilities(
        _ s: inout Scanner, _ event: inout PredictionEvent, _ rejection: inout Rejection?
    )
        throws(SyntaxError)
    {
        let classCount = schema.classes.count
        let first = s.peek()
        if first == 0x7B || first == 0x5B {
            if !isClassification {
                try s.skipValue(depth: 2)
                reject(&rejection, .invalidProbabilities, "'probabilities' given for a regression model")
                return
            }
            probabilitiesSeen = true
            if event.probabilities.count == classCount {
                for i in 0..<classCount { event.probabilities[i] = .nan }
            } else {
                event.probabilities = Array(repeating: .nan, count: classCount)
            }
        }
        if first == 0x7B {
            s.pos += 1
            var hint = 0
            var key = StringToken(start: 0, end: 0, hasEscapes: false)
            if !s.objectIsEmpty() {
                repeat {
                    let index = try keyIndex(&s, in: schema.classTable, hint: hint, key: &key)
                    let token = try s.scalar(depth: 3)
                    guard let index else {
                        // Named in the answer: at most 256 bytes of it (a 15 MB key was repeated whole).
                        if rejection == nil {
                            let name = s.makeString(key, scratch: &scratch).shortened(toUTF8Bytes: 256)
                            reject(&rejection, .invalidProbabilities, "'probabilities' has unknown class '\(name)'")
                        }
                        continue
                    }
                    hint = index + 1
                    if Self.givenTwice(&classMarks, index, mark: eventMark) {
                        rejectDuplicate(&rejection, "probabilities.\(schema.classes[index])")
                    }
                    if let p = probability(token, &rejection) { event.probabilities[index] = p }
                } while try s.objectContinues()
            }
            if rejection == nil, let missing = event.probabilities.firstIndex(where: { $0.isNaN }) {
                reject(&rejection, .invalidProbabilities, "'probabilities' lacks class '\(schema.classes[missing])'")
            }
        } else if first == 0x5B {
            s.pos += 1
            var count = 0
            s.skipWhitespace()
            if s.pos < s.end && s.base[s.pos] == 0x5D {
                s.pos += 1
            } else {
                repeat {
                    let token = try s.scalar(depth: 3)
                    if let p = probability(token, &rejection), count < classCount { event.probabilities[count] = p }
                    count += 1
                } while try s.arrayContinues()
            }
            if count != classCount {
                reject(
                    &rejection, .invalidProbabilities,
                    "'probabilities' has \(count) values for \(classCount) classes")
            }
        } else {
            let token = try s.scalar(depth: 2)
            if case .null = token {
                probabilitiesSeen = false
                return
            }
            reject(&rejection, .wrongType, "'probabilities' must be an object or an array, found \(token.typeName)")
        }
        if rejection != nil { event.probabilities.removeAll(keepingCapacity: true) }
    }

    func probability(_ token: Token, _ rejection: inout Rejection?) -> Double? {
        guard case .number(let n) = token else {
            reject(&rejection, .wrongType, "probabilities must be numbers, found \(token.typeName)")
            return nil
        }
        guard n.value >= 0 && n.value <= 1 else {
            reject(&rejection, .invalidProbabilities, "probability \(n.value) is outside [0, 1]")
            return nil
        }
        return n.value
    }

    // MARK: Label events

    /// At '{': parses one label event into `event`; returns the first semantic problem, if any.
    mutating func parseLabel(_ s: inout Scanner, into event: inout LabelEvent) throws(SyntaxError) -> Rejection? {
        var rejection: Rejection?
        var id: String?
        var label: Outcome?
        var labelClass: Int?
        event.timestamp = nil
        unknownKeysInEvent = 0
        var given: UInt32 = 0  // one bit per `Field`
        s.pos += 1
        if !s.objectIsEmpty() {
            repeat {
                let key = try s.key()
                let field = resolve(key, s, in: fieldTable, hint: Int.max).flatMap(Field.init(rawValue:))
                if let field, field == .id || field == .label || field == .timestamp {
                    if given & (1 << field.rawValue) != 0 {
                        rejectDuplicate(&rejection, PredictionEventFields.names[field.rawValue])
                    }
                    given |= 1 << field.rawValue
                }
                switch field {
                case .id: id = try identifier(&s, &rejection)
                case .label: label = try outcome(&s, "label", &rejection, classIndex: &labelClass)
                case .timestamp: event.timestamp = try timestamp(&s, &rejection)
                default:
                    // Any other key, a prediction's field too (`version`, `attributes`: a label credits neither), is
                    // skipped and counted, as a misspelt one (a prediction's field was skipped unseen).
                    unknownKey(key, s)
                    try s.skipValue(depth: 2)
                }
            } while try s.objectContinues()
        }
        if rejection == nil {
            // An empty id is none, as for labels recorded in process (it joined a prediction of empty id).
            if let id, !id.isEmpty { event.id = id } else { reject(&rejection, .missingID, "missing 'id'") }
        }
        if rejection == nil {
            if let label { event.label = label } else { reject(&rejection, .missingLabel, "missing 'label'") }
        }
        if rejection == nil { event.labelClass = labelClass }
        return rejection
    }
}

/// Sets every feature of `event` missing (one uniqueness check for the whole array).
private func setAllFeaturesMissing(_ event: inout PredictionEvent) {
    event.features.withUnsafeMutableBufferPointer { values in
        for i in values.indices { values[i] = .missing }
    }
}

/// Records a key given twice in one event (`invalid_json`), unless an earlier problem was recorded for it.
@inline(__always)
private func rejectDuplicate(_ rejection: inout Rejection?, _ key: @autoclosure () -> String) {
    reject(&rejection, .invalidJSON, "'\(key())' is given twice (each key may appear once in an event)")
}

/// Records `reason` unless an earlier problem was recorded for the event (the first one is reported).
@inline(__always)
private func reject(_ rejection: inout Rejection?, _ reason: RejectReason, _ message: @autoclosure () -> String) {
    if rejection == nil { rejection = Rejection(reason: reason, message: message()) }
}
