/// For the Open Inference Protocol v2: which output tensors of a response hold the prediction, the score and the
/// probabilities.
///
/// An output named in ``probabilities`` (default `predict_proba`, `probabilities`) gives the probabilities, one
/// row of one value per class; one named in ``score`` (default `score`, `scores`) the score; the prediction is the
/// output named ``prediction`` when set, otherwise the first output that is neither. When there is no such
/// output, the prediction is the class of highest probability. Names are compared exactly.
public struct OutputNames: Sendable, Equatable {
    /// The output holding the prediction; nil: the first output not listed in ``score`` or ``probabilities``.
    public var prediction: String?
    /// The names of outputs holding the score (shape `[N]` or `[N, 1]`).
    public var score: [String]
    /// The names of outputs holding the probabilities (shape `[N, classes]`).
    public var probabilities: [String]

    /// The defaults: MLServer's scikit-learn runtime answers `predict` and `predict_proba`.
    public init(
        prediction: String? = nil, score: [String] = ["score", "scores"],
        probabilities: [String] = ["predict_proba", "probabilities"]
    ) {
        self.prediction = prediction
        self.score = score
        self.probabilities = probabilities
    }
}
