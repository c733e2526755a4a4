/// The `quality` collector's options, validated.
///
/// ```yaml
/// collectors:
///   - name: quality
///     options:               # binary classification only; every option is optional
///       calibration_bins: 10     # equal-width bins over P(positive) for the expected calibration error
///       score_bins: 1000         # equal-width bins over [0, 1] for the binned ROC AUC
///       bin_series: true         # export the per-bin calibration counters
///       score_bin_series: false  # export the per-bin score histograms (2 × score_bins series per version)
/// ```
///
/// Regression and multiclass models take no options: the binned families only exist for a binary
/// classifier's positive-class probability, so naming one of these options for another task is an error.
struct QualityOptions: Sendable, Equatable {
    /// Every option name.
    static let names: Set<String> = ["calibration_bins", "score_bins", "bin_series", "score_bin_series"]
    /// Most `calibration_bins`.
    static let maxCalibrationBins = 1000
    /// Most `score_bins`.
    static let maxScoreBins = 100_000

    var calibrationBins = 10
    var scoreBins = 1000
    var binSeries = true
    var scoreBinSeries = false

    init() {}

    init(_ options: CollectorOptions, task: QualityTask) throws(ModelCollectorError) {
        try options.checkAllowed(Self.names)
        if task != .binary {
            for key in Self.names.sorted() where options.values[key] != nil {
                throw options.error(key, "only binary classification models have probability bins")
            }
        }
        if let n = try options.integer("calibration_bins", in: 1...Self.maxCalibrationBins) { calibrationBins = n }
        if let n = try options.integer("score_bins", in: 2...Self.maxScoreBins) { scoreBins = n }
        if let b = try options.bool("bin_series") { binSeries = b }
        if let b = try options.bool("score_bin_series") { scoreBinSeries = b }
    }
}

/// What the `quality` collector measures for a model, from its task.
enum QualityTask: Sendable, Equatable {
    /// Binary classification: confusion, per-class metrics, log loss, Brier, ECE and ROC AUC.
    case binary
    /// Multiclass classification: confusion, per-class metrics and log loss.
    case multiclass
    /// Regression: error sums, MAE, RMSE, MAPE, R².
    case regression
}
