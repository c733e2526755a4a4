/// The rule for an event's `timestamp`, the one place the ingestion API's decoder, in-process recording and the batch
/// readers take it from: Unix seconds, finite and not before 1970. A join delay is measured from a prediction's
/// timestamp: one of -1e300 made the delay histogram's sum 1e300 for good.
///
/// An accepted timestamp is used (as the prediction's time, for the join delay) only when it is plausible: at most
/// ``futureSlack`` after the event's arrival (clocks differ; milliseconds sent for seconds are ~1000x ahead) and at
/// most ``pastSlack`` before it (a `1`, a zero value's default: the delay read 57 years, in a histogram sum that
/// never resets). Another is ignored (the delay is measured from the arrival), said in the answer and counted.
public enum EventTimestamp {
    /// Whether `t` is a timestamp an event may carry.
    @inline(__always)
    public static func accepts(_ t: Double) -> Bool { t >= 0 && t.isFinite }

    /// How far ahead of its arrival a timestamp may be (a day).
    public static let futureSlack = 86_400.0
    /// How far before its arrival a timestamp may be (ten years of 365.25 days: a backfill of a year of predictions
    /// whose labels take a year, as loans' defaults do, is well within it).
    public static let pastSlack = 10 * 365.25 * 86_400.0

    /// Whether the accepted timestamp `t` of an event that arrived at `receivedAt` is used.
    @inline(__always)
    public static func isPlausible(_ t: Double, receivedAt: Double) -> Bool {
        t <= receivedAt + futureSlack && t >= receivedAt - pastSlack
    }
}
