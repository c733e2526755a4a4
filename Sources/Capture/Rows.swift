import Ingestion

/// The decoded rows of one exchange (flat arrays, no allocation per row), filled completely before any event is
/// delivered.
struct Rows {
    /// One row's values other than its features, probabilities and attributes.
    struct Info {
        var unknownFeatures = 0
        var prediction: Outcome?
        var predictionClass: Int?
        var score: Double?
        /// Whether the row's ``Rows/probabilities`` are set.
        var hasProbabilities = false
        var id: String?
        var version: String?
    }

    let featureCount: Int
    let classCount: Int
    let attributeCount: Int
    private(set) var count = 0
    /// `count * featureCount` values, row after row.
    var features: [FeatureValue] = []
    var info: [Info] = []
    /// `count * classCount` values, meaningful where ``Info/hasProbabilities`` is true; empty until a row sets some
    /// (``prepareProbabilities()``): most responses carry none, and an array costs an allocation per exchange.
    private(set) var probabilities: [Double] = []
    /// `count * attributeCount` values.
    var attributes: [String?] = []
    /// The feature leaves the direct v2 reader took from short numbers while it read the request
    /// (``RequestShape``); begun with the rows.
    var leafLog = FeatureLeafLog()

    init(schema: borrowing Schema) {
        featureCount = schema.features.count
        classCount = schema.classes.count
        attributeCount = schema.attributeNames.count
    }

    /// The id of the whole exchange (a v2 request's `id`), for rows without one of their own: one row takes it, each of
    /// several `<id>/<row>` as it is delivered (never all held at once), as the proxy's request id does. Cleared with
    /// the rows (``reset(count:)``, which every reading that yields rows goes through).
    private(set) var exchangeID: String?

    /// The longest exchange id taken, in UTF-8 bytes: what a KServe logger event's `ce-id` may be. A longer one is
    /// none (a 60 KB id on each of 10,000 rows took 600 MB when every row's was made at once).
    static let maxExchangeIDBytes = 256

    /// Names the rows after one id for the whole exchange (``exchangeID``); an empty one, or one longer than
    /// ``maxExchangeIDBytes``, is none.
    mutating func setRequestID(_ id: String) {
        guard !id.isEmpty, id.utf8.count <= Self.maxExchangeIDBytes else { return }
        exchangeID = id
    }

    /// No rows, for an exchange (or another reading of one): what the arrays hold is meaningless until
    /// ``reset(count:)``, which reuses them.
    mutating func begin() {
        count = 0
        leafLog.begin()
    }

    /// Frees the arrays (an empty row set) when they hold more than `limit` values in all.
    mutating func releaseIfOver(_ limit: Int) {
        guard features.count + info.count + probabilities.count + attributes.count > limit else { return }
        count = 0
        features = []
        info = []
        probabilities = []
        attributes = []
    }

    /// Sets the row count: every row with all features missing and nothing else. Arrays of the right size already
    /// (an earlier exchange's with as many rows) are written in place, not allocated again.
    mutating func reset(count: Int) {
        self.count = count
        exchangeID = nil
        if features.count == count * featureCount {
            Rows.clear(&features)
        } else {
            features = Rows.filled(count: count * featureCount) { .missing }
        }
        Rows.refill(&info, count: count) { Info() }
        probabilities = []
        Rows.refill(&attributes, count: count * attributeCount) { nil }
    }

    /// Sets `array` to `count` values made by `make`: in place when it has `count` values (and is not shared), else
    /// in a new array (``filled(count:_:)``).
    @inline(__always)
    static func refill<T>(_ array: inout [T], count: Int, _ make: () -> T) {
        guard array.count == count else {
            array = filled(count: count, make)
            return
        }
        // None to write (not even a uniqueness check, which an empty array fails: it is shared).
        guard count > 0 else { return }
        array.withUnsafeMutableBufferPointer { values in
            for i in values.indices { values[i] = make() }
        }
    }

    /// Sets every value of `features` to missing, in place (through copy-on-write: a shared array is copied first).
    @inline(__always)
    static func clear(_ features: inout [FeatureValue]) {
        guard !features.isEmpty else { return }
        features.withUnsafeMutableBufferPointer { values in
            guard let base = values.baseAddress else { return }
            for i in values.indices { overwrite(base + i, with: .missing) }
        }
    }

    /// Stores `value` in `slot` (initialized). A number or a missing value there holds nothing to release: it is
    /// written over, not destroyed first (a call per value, for the enum's payload); any other value is assigned over
    /// (so a case added to ``FeatureValue`` later is released, never leaked).
    @inline(__always)
    static func overwrite(_ slot: UnsafeMutablePointer<FeatureValue>, with value: FeatureValue) {
        switch slot.pointee {
        case .number, .missing: slot.initialize(to: value)
        default: slot.pointee = value
        }
    }

    /// `count` values made by `make` in a new array (empty without allocating when `count` is 0): made in place, not
    /// copied from one value (a copy of an ``Info`` costs a retain per string, and destroying the original as much).
    ///
    /// Neither `Array(repeating:count:)` nor `Array(unsafeUninitializedCapacity:initializingWith:)`: both allocate
    /// through the standard library's unspecialized `Array._allocateBufferUninitialized(minimumCapacity:)`, which
    /// looks the storage class's generic metadata up at run time (~660 instructions an array, more than the rest of
    /// the allocation); `reserveCapacity(_:)` allocates through inlined code whose metadata is resolved once.
    @inline(__always)
    static func filled<T>(count: Int, _ make: () -> T) -> [T] {
        guard count > 0 else { return [] }
        var array: [T] = []
        array.reserveCapacity(count)
        for _ in 0..<count { array.append(make()) }
        return array
    }

    /// Sets probability `index` of `row`, allocating the rows' probabilities at the first one.
    mutating func setProbability(_ value: Double, row: Int, index: Int) {
        if probabilities.isEmpty { probabilities = Array(repeating: 0, count: count * classCount) }
        probabilities[row * classCount + index] = value
    }

    /// Every row's prediction is set, or the error names the first row without one.
    func checkPredictions() throws(CaptureError) {
        for row in 0..<count where info[row].prediction == nil {
            throw CaptureError(.missingField, "no prediction for row \(row)")
        }
    }

    /// For a two-class model, a row with probabilities and no score gets the positive class's probability as its
    /// score (`positive`: its index in the classes; scikit-learn lists a model's classes sorted, so the positive
    /// class may come first).
    mutating func fillBinaryScores(positive: Int) {
        guard classCount == 2 else { return }
        for row in 0..<count where info[row].hasProbabilities && info[row].score == nil {
            info[row].score = probabilities[row * 2 + positive]
        }
    }

    /// Hands each row to `body` in `event` (reset to the row's values; timestamp, latency and status untouched), with
    /// its index and the row count. Every other field of the event is set (an event is reused from exchange to
    /// exchange).
    func deliver(_ event: inout PredictionEvent, _ body: (inout PredictionEvent, Int, Int) -> Void) {
        for row in 0..<count {
            if count == 1 {
                event.features = features  // shared, not copied
            } else {
                if event.features.count != featureCount {
                    event.features = Rows.filled(count: featureCount) { .missing }
                }
                for i in 0..<featureCount { event.features[i] = features[row * featureCount + i] }
            }
            // The row's info read field by field (a copy of it would retain its strings, and release them after).
            event.unknownFeatureCount = info[row].unknownFeatures
            event.prediction = info[row].prediction ?? .number(0)
            event.predictionClass = info[row].predictionClass
            event.score = info[row].score
            let hasProbabilities = info[row].hasProbabilities
            if hasProbabilities && count == 1 {
                event.probabilities = probabilities  // shared, not copied: the row's are all there are
            } else if hasProbabilities {
                if event.probabilities.count != classCount {
                    event.probabilities = Array(repeating: 0, count: classCount)
                }
                for i in 0..<classCount { event.probabilities[i] = probabilities[row * classCount + i] }
            } else if !event.probabilities.isEmpty {
                event.probabilities.removeAll(keepingCapacity: true)
            }
            if let id = info[row].id {
                event.id = id
            } else if let exchangeID {
                event.id = count == 1 ? exchangeID : "\(exchangeID)/\(row)"
            } else {
                event.id = nil
            }
            event.version = info[row].version ?? ""
            if event.attributes.count != attributeCount {
                event.attributes = Rows.filled(count: attributeCount) { nil }
            }
            for i in 0..<attributeCount { event.attributes[i] = attributes[row * attributeCount + i] }
            event.label = nil
            event.labelClass = nil
            event.errorKind = nil
            body(&event, row, count)
        }
    }
}
