/// The rule for an event's `timestamp`, the one place the ingestion API's decoder, in-process recording and the batch
/// readers take it from: Unix seconds, finite and not before 1970. A join delay is measured from a prediction's
/// timestamp: one of -1e300 made the delay histogram's sum 1e300 for good.
public enum EventTimestamp {
    /// Whether `t` is a timestamp an event may carry.
    @inline(__always)
    public static func accepts(_ t: Double) -> Bool { t >= 0 && t.isFinite }
}
