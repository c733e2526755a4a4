import ExporterConfig
import FuzzSupport
import ModelMonitoring
import Profiling

/// A multiclass classifier with learned and configured categories and two sensitive attributes.
private let classifier = ModelConfiguration(
    name: "churn", task: .multiclassClassification, versions: ["v1"], classes: ["stay", "leave", "pause"],
    features: [
        FeatureConfiguration(name: "amount", kind: .numeric),
        FeatureConfiguration(name: "tenure", kind: .numeric),
        FeatureConfiguration(name: "country", kind: .categorical),
        FeatureConfiguration(name: "channel", kind: .categorical, values: ["web", "app"]),
    ],
    sensitiveAttributes: [
        SensitiveAttribute(name: "gender", groups: ["f", "m"]), SensitiveAttribute(name: "age", groups: ["young"]),
    ])

/// A regressor.
private let eta = ModelConfiguration(
    name: "eta", task: .regression, versions: ["v1"],
    features: [
        FeatureConfiguration(name: "distance_km", kind: .numeric),
        FeatureConfiguration(name: "weather", kind: .categorical, values: ["clear", "rain"]),
    ])

/// `mlops-exporter profile` on reference data (the payload), then the exporter's loading of the profile it
/// wrote.
///
/// Control bits: 0, NDJSON (else CSV); 1, the regression model (else the classifier); 2-3, quantile bins
/// minus one (1...4); 4-7, fine bins minus one (1...16).
///
/// Checks that no input crashes the reader or the builder, and that whatever profile it builds can be
/// written and then loads back, passing the loader's consistency checks, equal to what was written: a
/// profile `profile` accepts must never be one the exporter refuses at start-up.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProfiling(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = FuzzInput(data, size)
    let format: InputFormat = input.flag(0) ? .ndjson : .csv
    let model = input.flag(1) ? eta : classifier
    let options = ProfileBuilder.Options(
        bins: 1 + Int((input.control >> 2) & 3), fineBins: 1 + Int(input.control >> 4), maxCategories: 3)
    let profile: ReferenceProfile
    do {
        profile = try Profiler.profile(
            Array(input.payload), file: "reference.\(format.rawValue)", format: format, model: model, options: options)
    } catch {
        invariant(!error.description.isEmpty, "an empty error")
        return 0
    }
    do {
        let encoded = try Profiler.encode(profile)
        let loaded = try ProfileLoader.load(bytes: encoded, path: "profile.json", model: model)
        invariant(loaded == profile, "the profile changed on the way: \(profile) became \(loaded)")
    } catch {
        invariant(false, "a profile that does not load back: \(error) (\(profile))")
    }
    return 0
}
