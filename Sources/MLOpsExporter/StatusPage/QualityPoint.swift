import Exposition

/// A classifier's cumulative labelled outcomes at one instant, summed over versions: what the status page needs for a
/// quality SLO's accuracy over the SLO's own `window`, from the same raw counters the generated rule reads
/// (`mlops_model_correct_predictions_total` is the confusion matrix's diagonal over the configured classes,
/// `mlops_model_classification_outcomes_total` all of it).
struct QualityPoint: Sendable {
    /// Unix seconds.
    var time: Double
    var correct: Double = 0
    var outcomes: Double = 0

    static let families = FamilySelection([
        "mlops_model_correct_predictions_total", "mlops_model_classification_outcomes_total",
    ])

    init(time: Double) { self.time = time }

    /// The point of `model` in `snapshot`.
    init(model: String, snapshot: MetricSnapshot, time: Double) {
        self.time = time
        correct = snapshot.sum("mlops_model_correct_predictions_total", ["model": model])
        outcomes = snapshot.sum("mlops_model_classification_outcomes_total", ["model": model])
    }

    /// What was labelled along `points` (oldest first, at least one): the increases between each two in turn, a count
    /// that went down having restarted there (as `increase()` reads samples).
    static func change(along points: [QualityPoint]) -> (correct: Double, outcomes: Double) {
        func delta(_ x: Double, _ y: Double) -> Double { y >= x ? y - x : y }
        var correct = 0.0
        var outcomes = 0.0
        for i in points.indices.dropFirst() {
            correct += delta(points[i - 1].correct, points[i].correct)
            outcomes += delta(points[i - 1].outcomes, points[i].outcomes)
        }
        return (correct, outcomes)
    }
}
