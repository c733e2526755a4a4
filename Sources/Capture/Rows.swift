import Ingestion

/// The decoded rows of one exchange, column by column (flat arrays, no allocation per row), filled completely
/// before any event is delivered.
struct Rows {
    let featureCount: Int
    let classCount: Int
    let attributeCount: Int
    private(set) var count = 0
    /// `count * featureCount` values, row after row.
    var features: [FeatureValue] = []
    var unknownFeatures: [Int] = []
    var predictions: [Outcome?] = []
    var predictionClasses: [Int?] = []
    var scores: [Double?] = []
    /// `count * classCount` values, meaningful where ``hasProbabilities`` is true.
    var probabilities: [Double] = []
    var hasProbabilities: [Bool] = []
    var ids: [String?] = []
    var versions: [String?] = []
    /// `count * attributeCount` values.
    var attributes: [String?] = []

    init(schema: Schema) {
        featureCount = schema.features.count
        classCount = schema.classes.count
        attributeCount = schema.attributeNames.count
    }

    /// Sets the row count: every row with all features missing and nothing else.
    mutating func reset(count: Int) {
        self.count = count
        features = Array(repeating: .missing, count: count * featureCount)
        unknownFeatures = Array(repeating: 0, count: count)
        predictions = Array(repeating: nil, count: count)
        predictionClasses = Array(repeating: nil, count: count)
        scores = Array(repeating: nil, count: count)
        probabilities = Array(repeating: 0, count: count * classCount)
        hasProbabilities = Array(repeating: false, count: count)
        ids = Array(repeating: nil, count: count)
        versions = Array(repeating: nil, count: count)
        attributes = Array(repeating: nil, count: count * attributeCount)
    }

    /// Every row's prediction is set, or the error names the first row without one.
    func checkPredictions() throws(CaptureError) {
        if let row = predictions.firstIndex(where: { $0 == nil }) {
            throw CaptureError(.missingField, "no prediction for row \(row)")
        }
    }

    /// For a two-class model, a row with probabilities and no score gets the second class's probability as its
    /// score (the positive class's, classes being listed negative first).
    mutating func fillBinaryScores() {
        guard classCount == 2 else { return }
        for row in 0..<count where hasProbabilities[row] && scores[row] == nil {
            scores[row] = probabilities[row * 2 + 1]
        }
    }

    /// Hands each row to `body` in `event` (reset to the row's values; timestamp, latency and status untouched).
    func deliver(_ event: inout PredictionEvent, _ body: (inout PredictionEvent) -> Void) {
        for row in 0..<count {
            if event.features.count != featureCount {
                event.features = Array(repeating: .missing, count: featureCount)
            }
            for i in 0..<featureCount { event.features[i] = features[row * featureCount + i] }
            event.unknownFeatureCount = unknownFeatures[row]
            event.prediction = predictions[row] ?? .number(0)
            event.predictionClass = predictionClasses[row]
            event.score = scores[row]
            if hasProbabilities[row] {
                event.probabilities = Array(probabilities[row * classCount..<(row + 1) * classCount])
            } else if !event.probabilities.isEmpty {
                event.probabilities.removeAll(keepingCapacity: true)
            }
            event.id = ids[row]
            event.version = versions[row] ?? ""
            if event.attributes.count != attributeCount {
                event.attributes = Array(repeating: nil, count: attributeCount)
            }
            for i in 0..<attributeCount { event.attributes[i] = attributes[row * attributeCount + i] }
            event.label = nil
            event.labelClass = nil
            event.errorKind = nil
            body(&event)
        }
    }
}
