/// Thrown by ``Exporter/start()`` when an earlier start of the same exporter failed: that start stopped what it had
/// begun (the storage, the status history, the workers) and removed the registrations its init made, so it cannot
/// serve again; make a new `Exporter` (with the same registry if need be).
public struct StartFailedBefore: Error, CustomStringConvertible {
    /// What to do instead.
    public var description: String {
        "this exporter failed to start before and cannot start again: make a new one (its registrations were removed)"
    }
}
