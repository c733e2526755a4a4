import Ingestion

/// What is kept of a prediction until its label arrives (and handed to collectors with the label): the
/// fields quality and fairness need, resolved to indices. Built by ``PredictionSnapshot/init(_:context:receivedAt:)``.
public struct PredictionSnapshot: Sendable, Equatable {
    /// Unix time the prediction was received (or its `timestamp`, when the event had one).
    public var time: Double
    /// Index in ``ModelContext/versionLabels``.
    public var version: Int
    /// For classification, the predicted class's index in ``ModelContext/classLabels`` (`__other__` last);
    /// -1 for regression.
    public var predictedClass: Int
    /// For regression, the predicted value; NaN for classification.
    public var value: Double
    /// The event's `score` (for binary classifiers, the positive class's score), NaN when absent.
    public var score: Double
    /// The event's `probabilities`, one per configured class, or empty.
    public var probabilities: [Double]
    /// Per sensitive attribute, the group index in ``ModelContext/groupLabels``.
    public var groups: GroupIndices

    /// Creates a snapshot.
    public init(
        time: Double, version: Int, predictedClass: Int, value: Double, score: Double, probabilities: [Double],
        groups: GroupIndices
    ) {
        self.time = time
        self.version = version
        self.predictedClass = predictedClass
        self.value = value
        self.score = score
        self.probabilities = probabilities
        self.groups = groups
    }

    /// The snapshot of an accepted prediction event.
    public init(_ event: PredictionEvent, context: ModelContext, receivedAt: Double) {
        // An implausible timestamp (a day ahead, ten years back) is ignored: the delay is measured from the arrival.
        time =
            event.timestamp.flatMap { EventTimestamp.isPlausible($0, receivedAt: receivedAt) ? $0 : nil } ?? receivedAt
        version = context.versionIndex(event.version)
        switch event.prediction {
        case .number(let x):
            predictedClass = -1
            value = x
        case .label:
            predictedClass = context.classIndex(event.predictionClass)
            value = .nan
        }
        score = event.score ?? .nan
        probabilities = event.probabilities
        groups = GroupIndices(
            (0..<event.attributes.count).lazy.map { context.groupIndex(attribute: $0, value: event.attributes[$0]) })
    }
}

/// A prediction joined with its ground truth: delivered to collectors that declare
/// ``ModelCollector/needsOutcomes``, once per joined label (from the labels endpoint, or inline with the
/// prediction), at the label's arrival.
public struct JoinedOutcome: Sendable, Equatable {
    /// The prediction as it was received.
    public var prediction: PredictionSnapshot
    /// The label, typed like the model's predictions (a class label of no configured class: at most
    /// ``HeldLabel/maxLabelBytes`` of its text, cut between Unicode scalars; it counts as `__other__`).
    public var label: Outcome
    /// For classification, the label's index in ``ModelContext/classLabels`` (`__other__` last); -1 for
    /// regression.
    public var actualClass: Int
    /// For regression, the label's value; NaN for classification.
    public var actualValue: Double
    /// Seconds from the prediction's time to the label's arrival (0 for inline labels).
    public var delaySeconds: Double

    /// Creates an outcome.
    public init(
        prediction: PredictionSnapshot, label: Outcome, actualClass: Int, actualValue: Double, delaySeconds: Double
    ) {
        self.prediction = prediction
        self.label = label
        self.actualClass = actualClass
        self.actualValue = actualValue
        self.delaySeconds = delaySeconds
    }
}
