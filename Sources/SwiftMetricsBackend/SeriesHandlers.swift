import CoreMetrics
import Exposition
import Synchronization

/// A swift-metrics handler bound to one series of a family that the factory created.
protocol SeriesHandler: AnyObject, Sendable {
    associatedtype Series: FamilySeries
    /// Resolves the series once; updates then go straight to it.
    init(family: MetricFamily<Series>, address: SeriesAddress) throws(ExpositionError)
    var binding: SeriesBinding<Series> { get }
}

extension SeriesHandler {
    var address: SeriesAddress { binding.address }

    /// Takes the series out of its family (swift-metrics `destroy()`).
    func removeSeries() { _ = binding.remove() }
}

/// A series' family and labels, to resolve and remove it.
struct SeriesBinding<Series: FamilySeries>: Sendable {
    let family: MetricFamily<Series>
    let address: SeriesAddress

    func resolve() throws(ExpositionError) -> Series { try family.labels(address.labels) }

    /// Whether a series was there to remove.
    func remove() -> Bool { (try? family.remove(labels: address.labels)) == true }
}

/// `Counter` and `FloatingPointCounter`: lock-free, straight to the series; `reset()` sets it back to 0
/// (Prometheus then sees a counter reset).
final class CounterSeriesHandler: SeriesHandler, CounterHandler, FloatingPointCounterHandler {
    let binding: SeriesBinding<Exposition.Counter>
    let series: Exposition.Counter

    init(family: CounterFamily, address: SeriesAddress) throws(ExpositionError) {
        binding = SeriesBinding(family: family, address: address)
        series = try binding.resolve()
    }

    func increment(by amount: Int64) { series.inc(by: Int(truncatingIfNeeded: amount)) }

    func increment(by amount: Double) { series.inc(by: amount) }

    func reset() { series.resetToZero() }
}

/// `Meter` and non-aggregating `Recorder` (swift-metrics `Gauge`).
final class GaugeSeriesHandler: SeriesHandler, MeterHandler, RecorderHandler {
    let binding: SeriesBinding<Exposition.Gauge>
    let series: Exposition.Gauge

    init(family: GaugeFamily, address: SeriesAddress) throws(ExpositionError) {
        binding = SeriesBinding(family: family, address: address)
        series = try binding.resolve()
    }

    func set(_ value: Int64) { series.set(Double(value)) }

    func set(_ value: Double) { series.set(value) }

    func increment(by amount: Double) { series.inc(by: amount) }

    func decrement(by amount: Double) { series.dec(by: amount) }

    func record(_ value: Int64) { series.set(Double(value)) }

    func record(_ value: Double) { series.set(value) }
}

/// Aggregating `Recorder` and `Timer` (durations converted from nanoseconds to seconds).
final class HistogramSeriesHandler: SeriesHandler, RecorderHandler, TimerHandler {
    let binding: SeriesBinding<Histogram>
    let series: Histogram

    init(family: HistogramFamily, address: SeriesAddress) throws(ExpositionError) {
        binding = SeriesBinding(family: family, address: address)
        series = try binding.resolve()
    }

    func record(_ value: Int64) { series.observe(Double(value)) }

    func record(_ value: Double) { series.observe(value) }

    func recordNanoseconds(_ duration: Int64) { series.observe(Double(duration) / 1e9) }
}

/// Turns swift-metrics labels and dimension keys into Prometheus names.
enum SwiftMetricsNames {
    /// Each character outside `[a-zA-Z0-9_]` becomes `_`, leading underscores are dropped (reserved);
    /// `nil` when nothing usable is left or the result starts with a digit.
    static func sanitized(_ text: String) -> String? {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            let legal =
                scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "_")
            if out.isEmpty && (!legal || scalar == "_") { continue }
            out.append(legal ? scalar : "_")
        }
        guard let first = out.first, !("0"..."9").contains(first) else { return nil }
        return String(out)
    }

    /// The family name for a label: counters without `_total` (it is written back), timers with `_seconds`.
    static func familyName(_ label: String, kind: FamilyKind) -> String? {
        guard var name = sanitized(label) else { return nil }
        switch kind {
        case .counter:
            if name.hasSuffix("_total") { name.removeLast("_total".count) }
            return name.isEmpty ? nil : name
        case .timer:
            return name.hasSuffix("_seconds") ? name : name + "_seconds"
        case .gauge, .histogram:
            return name
        }
    }

    /// Dimensions as label pairs; `nil` when a key is unusable or two keys become the same name.
    static func labels(_ dimensions: [(String, String)]) -> [String: String]? {
        var labels: [String: String] = [:]
        for (key, value) in dimensions {
            guard let name = sanitized(key), labels.updateValue(value, forKey: name) == nil else { return nil }
        }
        return labels
    }
}
