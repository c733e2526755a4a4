/// What the ingestion API accepted but recorded otherwise than the sender may think, said in its answer (nothing
/// is rejected for it): values outside the model's configured sets, recorded under `__other__` (a version not in
/// `versions`, a class not in `classes`, a sensitive attribute's value not in its `groups`), and timestamps more than
/// a day ahead of the arrival (milliseconds sent for seconds: a label's join delay from such a prediction is 0).
public struct IngestNotices: Sendable, Equatable {
    /// How many events had one such value, and the body's first (as the event gave it).
    public struct Tally: Sendable, Equatable {
        /// Events with such a value.
        public var count = 0
        /// The first such value of the body.
        public var first: String?

        /// Counts one, keeping `value()` when it is the first.
        @inline(__always)
        public mutating func note(_ value: @autoclosure () -> String) {
            if first == nil { first = value() }
            count += 1
        }
    }

    /// Events whose `version` is not configured.
    public var unknownVersions = Tally()
    /// Predictions and labels whose class is not configured (classification).
    public var unknownClasses = Tally()
    /// Sensitive attribute values that are not among the attribute's groups (first as `attribute=value`).
    public var unknownGroups = Tally()
    /// Timestamps more than ``EventTimestamp/futureSlack`` seconds after the event arrived (first as the number
    /// sent): ignored.
    public var futureTimestamps = Tally()
    /// Timestamps more than ``EventTimestamp/pastSlack`` seconds before the event arrived (first as the number sent):
    /// ignored.
    public var pastTimestamps = Tally()

    /// How far ahead of its arrival a timestamp may be before it is said.
    @available(*, deprecated, renamed: "EventTimestamp.futureSlack")
    public static var futureSlack: Double { EventTimestamp.futureSlack }

    /// Nothing noted.
    public init() {}

    /// Whether anything was noted.
    public var isEmpty: Bool {
        unknownVersions.count + unknownClasses.count + unknownGroups.count + futureTimestamps.count
            + pastTimestamps.count == 0
    }

    /// Notes `timestamp` when it is no plausible time for an event received at `receivedAt`
    /// (``EventTimestamp/isPlausible(_:receivedAt:)``).
    @inline(__always)
    public mutating func check(timestamp: Double?, receivedAt: Double) {
        guard let timestamp, !EventTimestamp.isPlausible(timestamp, receivedAt: receivedAt) else { return }
        let text = timestamp < 1e15 && timestamp == timestamp.rounded() ? String(Int64(timestamp)) : "\(timestamp)"
        if timestamp > receivedAt {
            futureTimestamps.note(text)
        } else {
            pastTimestamps.note(text)
        }
    }
}
