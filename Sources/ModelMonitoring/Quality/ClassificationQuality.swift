#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A classifier's quality: the slot layout of one version (confusion counts, probability sums, calibration
/// bins and score histograms), how one joined outcome is recorded, and the metrics computed from a window's
/// (or the totals') counts.
///
/// Classes are the configured ones followed by `__other__` (K = C + 1). The probability an outcome gives
/// its actual class comes from `probabilities` (one per configured class) or, for a binary model, from
/// `score` read as P(positive class) when it lies in [0, 1]; an outcome whose actual class is
/// `__other__` (no probability was given for it) or whose score lies outside [0, 1] is counted in
/// `probabilitySkipped` and left out of the probability metrics.
struct ClassificationQuality: Sendable {
    /// K: configured classes plus `__other__`.
    let classes: Int
    /// C: configured classes.
    let configured: Int
    /// For binary models, the positive class's index.
    let positive: Int?
    let calibrationBins: Int
    let scoreBins: Int

    // Positions within a version's block.
    /// `classes × classes` confusion counts, `actual · K + predicted`.
    let confusion = 0
    /// Outcomes in the probability metrics.
    let probabilityCount: Int
    /// Σ −ln(clip(p_actual)) (Double).
    let logLossSum: Int
    /// Binary: Σ (p − y)² (Double).
    let brierSum: Int
    /// Outcomes with a probability input that could not be used.
    let probabilitySkipped: Int
    /// Binary: per calibration bin, the count, Σp (Double) and Σy.
    let calibrationCount: Int
    let calibrationProbabilitySum: Int
    let calibrationPositives: Int
    /// Binary: per score bin, positives and negatives.
    let scorePositives: Int
    let scoreNegatives: Int
    /// Slots per version.
    let width: Int

    /// float64 machine epsilon: scikit-learn's `log_loss` clips probabilities to [ε, 1 − ε].
    static let epsilon = Double.ulpOfOne

    init(classes: Int, positive: Int?, options: QualityOptions) {
        self.classes = classes
        configured = classes - 1
        self.positive = positive
        calibrationBins = positive == nil ? 0 : options.calibrationBins
        scoreBins = positive == nil ? 0 : options.scoreBins
        probabilityCount = classes * classes
        logLossSum = probabilityCount + 1
        brierSum = probabilityCount + 2
        probabilitySkipped = probabilityCount + 3
        calibrationCount = probabilityCount + 4
        calibrationProbabilitySum = calibrationCount + calibrationBins
        calibrationPositives = calibrationProbabilitySum + calibrationBins
        scorePositives = calibrationPositives + calibrationBins
        scoreNegatives = scorePositives + scoreBins
        width = scoreNegatives + scoreBins
    }

    /// Records `outcome` for version block `base` (`version × width`); `block` is the window slice of the
    /// label's arrival, nil when late. Class indices must lie in `0..<classes`.
    @inline(__always)
    func record(_ outcome: JoinedOutcome, base: Int, block: Int?, slots: QualitySlots) {
        let actual = outcome.actualClass
        slots.add(block, base &+ actual &* classes &+ outcome.prediction.predictedClass)
        let probabilities = outcome.prediction.probabilities
        let score = outcome.prediction.score
        var pActual = Double.nan
        var pPositive = Double.nan
        if probabilities.count == configured {
            if actual < configured { pActual = probabilities[actual] }
            if let positive { pPositive = probabilities[positive] }
        } else if let positive, !score.isNaN {
            if score >= 0 && score <= 1 {
                pPositive = score
                if actual < configured { pActual = actual == positive ? score : 1 - score }
            }
        } else {
            return  // no probability input
        }
        guard !pActual.isNaN, positive == nil || (pPositive >= 0 && pPositive <= 1) else {
            slots.add(block, base &+ probabilitySkipped)
            return
        }
        slots.add(block, base &+ probabilityCount)
        let clipped = Swift.min(Swift.max(pActual, Self.epsilon), 1 - Self.epsilon)
        slots.addDouble(block, base &+ logLossSum, -log(clipped))
        guard let positive else { return }
        let isPositive = actual == positive
        let y: Double = isPositive ? 1 : 0
        slots.addDouble(block, base &+ brierSum, (pPositive - y) * (pPositive - y))
        let c = ProbabilityBins.index(pPositive, bins: calibrationBins)
        slots.add(block, base &+ calibrationCount &+ c)
        slots.addDouble(block, base &+ calibrationProbabilitySum &+ c, pPositive)
        if isPositive { slots.add(block, base &+ calibrationPositives &+ c) }
        let s = ProbabilityBins.index(pPositive, bins: scoreBins)
        slots.add(block, base &+ (isPositive ? scorePositives : scoreNegatives) &+ s)
    }

    /// The metrics of a confusion matrix (`matrix[actual · K + predicted]`, counts), as scikit-learn's
    /// `accuracy_score` and `precision_recall_fscore_support(labels=<configured classes>, zero_division=0)`.
    struct Scores: Equatable {
        /// Outcomes.
        var count = 0.0
        /// Outcomes whose predicted class is their actual, configured class.
        var correct = 0.0
        /// Per configured class.
        var precision: [Double] = []
        var recall: [Double] = []
        var f1: [Double] = []

        /// `correct / count`.
        var accuracy: Double { correct / count }
        /// Unweighted means over the configured classes.
        var macroPrecision: Double { mean(precision) }
        var macroRecall: Double { mean(recall) }
        var macroF1: Double { mean(f1) }

        func mean(_ values: [Double]) -> Double { values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count) }
    }

    /// Accuracy and per-class precision, recall and F1 of `matrix`.
    ///
    /// - An outcome is correct when its predicted class equals its actual class and that class is
    ///   configured: two values outside the configured classes both map to `__other__` but need not be
    ///   the same value, so `__other__`/`__other__` is not counted as correct.
    /// - Per configured class c: TP = M[c][c], precision TP / Σ_a M[a][c], recall TP / Σ_p M[c][p],
    ///   F1 2·TP / (2·TP + FP + FN); 0 when the denominator is 0 (`zero_division=0`). `__other__` takes
    ///   part only as a wrong prediction (an FP of the predicted class) or a missed actual (an FN of the
    ///   actual class), exactly as scikit-learn with `labels=` the configured classes.
    func scores(_ matrix: [Double]) -> Scores {
        var s = Scores()
        s.count = matrix.reduce(0, +)
        for c in 0..<configured {
            let tp = matrix[c * classes + c]
            var predicted = 0.0
            var actual = 0.0
            for k in 0..<classes {
                predicted += matrix[k * classes + c]
                actual += matrix[c * classes + k]
            }
            s.correct += tp
            s.precision.append(predicted > 0 ? tp / predicted : 0)
            s.recall.append(actual > 0 ? tp / actual : 0)
            let denominator = predicted + actual
            s.f1.append(denominator > 0 ? 2 * tp / denominator : 0)
        }
        return s
    }
}
