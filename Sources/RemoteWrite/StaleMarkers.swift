/// Prometheus staleness markers for remote write (the spec: a sender MUST send one when a series will no longer be
/// appended to): a sample whose value is the NaN with Prometheus' `StaleNaN` bit pattern, which ends the series at
/// its timestamp, where a receiver would otherwise keep returning its last sample for its lookback (5 minutes in
/// Prometheus), so a `sum by` over replicas counted a replaced pod twice.
public enum StaleMarkers {
    /// `StaleNaN`'s bits (prometheus/model/value): a NaN no arithmetic produces (Swift's `.nan` is `0x7ff8…0`).
    public static let bitPattern: UInt64 = 0x7ff0_0000_0000_0002

    /// The staleness marker's value.
    public static var value: Double { Double(bitPattern: bitPattern) }

    /// Whether `value` is a staleness marker (compared by bits: NaN equals nothing).
    public static func isMarker(_ value: Double) -> Bool { value.bitPattern == bitPattern }

    /// A marker for each series of `previous` that `current` no longer has (same name, same labels in the same
    /// order: both come from the same renderer), in `previous`' order.
    public static func gone(from previous: [ExpositionSample], in current: [ExpositionSample]) -> [ExpositionSample] {
        guard !previous.isEmpty else { return [] }
        var present = Set<SeriesKey>(minimumCapacity: current.count)
        for sample in current { present.insert(SeriesKey(sample)) }
        return previous.compactMap { present.contains(SeriesKey($0)) ? nil : marker(for: $0) }
    }

    /// A marker for each series of `samples`: every one of them ends (the sender stops).
    public static func all(_ samples: [ExpositionSample]) -> [ExpositionSample] { samples.map(marker(for:)) }

    /// `sample`'s series with the marker as its value.
    public static func marker(for sample: ExpositionSample) -> ExpositionSample {
        ExpositionSample(name: sample.name, labels: sample.labels, value: value)
    }

    /// A series' identity: its name and labels.
    struct SeriesKey: Hashable {
        let name: String
        let labels: [ExpositionSample.Label]

        init(_ sample: ExpositionSample) {
            name = sample.name
            labels = sample.labels
        }
    }
}
