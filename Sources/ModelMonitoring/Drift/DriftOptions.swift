/// The `drift` collector's options, validated.
///
/// ```yaml
/// collectors:
///   - name: drift
///     options:
///       method: auto             # every feature; or psi, kl_div, jensenshannon, wasserstein, ks, chisquare, z
///       thresholds: {psi: 0.2}   # per method (defaults: Evidently's, see DriftMethod.defaultThreshold)
///       features:                # per feature
///         amount: {method: psi, threshold: 0.25}
///       prediction_method: auto  # the prediction and score columns
///       min_observations: 100    # below this many values in the window: score only, no verdict
///       drift_share: 0.5         # dataset drift when at least this share of features drifted
///       jensenshannon_base: e    # or 2 (then the distance lies in [0, 1])
///       bin_series: true         # export the raw per-bin counters and reference ratios
/// ```
struct DriftOptions: Sendable {
    /// A method or `auto` (resolved per column from the reference).
    enum Choice: Sendable, Equatable {
        case auto
        case method(DriftMethod)
    }

    var method: Choice = .auto
    var thresholds: [DriftMethod: Double] = [:]
    var features: [String: (choice: Choice?, threshold: Double?)] = [:]
    var predictionMethod: Choice = .auto
    var minObservations = 100
    var driftShare = 0.5
    var jensenShannonBase: Double? = nil
    var binSeries = true

    init(_ options: CollectorOptions, featureNames: [String]) throws(ModelCollectorError) {
        try options.checkAllowed([
            "method", "thresholds", "features", "prediction_method", "min_observations", "drift_share",
            "jensenshannon_base", "bin_series",
        ])
        if let m = try options.string("method") { method = try Self.choice(m, options, "method") }
        if let m = try options.string("prediction_method") {
            predictionMethod = try Self.choice(m, options, "prediction_method")
        }
        if let t = try options.map("thresholds") {
            for key in t.values.keys.sorted() {
                guard let m = DriftMethod(rawValue: key) else {
                    throw t.error(key, "unknown method (known: \(Self.methodNames))")
                }
                thresholds[m] = try Self.threshold(try t.number(key)!, t, key, method: m)
            }
        }
        if let f = try options.map("features") {
            for name in f.values.keys.sorted() {
                guard featureNames.contains(name) else {
                    throw f.error(
                        name, "not a feature of the model (features: \(featureNames.joined(separator: ", ")))")
                }
                guard let spec = try f.map(name) else { continue }
                try spec.checkAllowed(["method", "threshold"])
                let choice = try spec.string("method").map { (m) throws(ModelCollectorError) in
                    try Self.choice(m, spec, "method")
                }
                let method: DriftMethod? = if case .method(let m) = choice { m } else { nil }
                let threshold = try spec.number("threshold").map { (t) throws(ModelCollectorError) in
                    try Self.threshold(t, spec, "threshold", method: method)
                }
                features[name] = (choice, threshold)
            }
        }
        if let n = try options.integer("min_observations", in: 1...1_000_000_000) { minObservations = n }
        if let s = try options.number("drift_share") {
            guard s > 0 && s <= 1 else { throw options.error("drift_share", "must lie in (0, 1]") }
            driftShare = s
        }
        if let b = try options.string("jensenshannon_base") {
            switch b {
            case "e": jensenShannonBase = nil
            case "2": jensenShannonBase = 2
            default: throw options.error("jensenshannon_base", "expected e or 2")
            }
        }
        if let b = try options.bool("bin_series") { binSeries = b }
    }

    static var methodNames: String { DriftMethod.allCases.map(\.rawValue).joined(separator: ", ") }

    static func choice(_ text: String, _ options: CollectorOptions, _ key: String) throws(ModelCollectorError) -> Choice
    {
        if text == "auto" { return .auto }
        guard let m = DriftMethod(rawValue: text) else {
            throw options.error(key, "unknown method \"\(text)\" (known: auto, \(methodNames))")
        }
        return .method(m)
    }

    /// A finite threshold >= 0; at most 1 for a method whose score is a p-value (ks, chisquare, z): above, every
    /// column would drift. (A method known only once `auto` is resolved is checked when the collector is built.)
    static func threshold(
        _ value: Double, _ options: CollectorOptions, _ key: String, method: DriftMethod?
    ) throws(ModelCollectorError)
        -> Double
    {
        guard value.isFinite && value >= 0 else { throw options.error(key, "must be a finite number >= 0") }
        if let method, method.isPValue, value > 1 {
            throw options.error(key, "\(method.rawValue) scores a p-value: its threshold must lie in [0, 1]")
        }
        return value
    }

    /// The method and threshold for feature `name`, with `auto` resolved by `resolve`. The model-wide `method` applies
    /// to the features it can score (`fits`): ks and wasserstein to numeric ones, z to categorical ones of at most two
    /// values; the others take `auto` (a model-wide ks refused every model with a categorical feature). A feature's
    /// own method that cannot score it is still refused.
    func resolved(
        feature name: String, fits: (DriftMethod) -> Bool, resolve: (Choice) -> DriftMethod
    ) -> (DriftMethod, Double) {
        let override = features[name]
        var choice = override?.choice ?? method
        if override?.choice == nil, case .method(let m) = method, !fits(m) { choice = .auto }
        return resolved(choice, threshold: override?.threshold, resolve: resolve)
    }

    /// The method of `choice` (`auto` resolved by `resolve`) and `threshold`, else the method's configured or
    /// default threshold.
    func resolved(
        _ choice: Choice, threshold: Double? = nil, resolve: (Choice) -> DriftMethod
    ) -> (DriftMethod, Double) {
        let method = resolve(choice)
        return (method, threshold ?? thresholds[method] ?? method.defaultThreshold)
    }
}
