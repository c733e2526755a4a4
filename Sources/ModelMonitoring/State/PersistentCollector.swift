/// A ``ModelCollector`` whose counts survive a restart: with `--storage.path`, the exporter writes its state in
/// every checkpoint and reads it back at start into a collector built from the same model configuration
/// (docs/storage.md). All built-in collectors are persistent; a user's collector that does not adopt this protocol
/// starts empty after a restart.
///
/// # Contract
/// - ``saveState(into:)`` runs beside recording and scrapes, on the checkpoint thread: it reads the collector's
///   slots atomically (no snapshot of the whole is needed, as for a scrape) and must not block recording for
///   longer than a copy of a small part.
/// - ``restoreState(from:now:)`` runs before any event is recorded, on a collector freshly built from a model
///   configuration whose fingerprint equals the one the state was saved with. It checks every count and index it
///   reads (throwing ``StateError``, never trapping): the exporter then discards the model's restored state whole
///   and starts it empty. Window slices older than the window ending at `now` are dropped.
///
/// After a crash (the process that wrote the checkpoint did not stop cleanly), ``restartCounters()`` runs right after
/// ``restoreState(from:now:)``: the checkpoint's counters are older than what Prometheus last scraped, and a counter
/// that steps back is read as a reset to zero whose whole value is counted again; a counter that restarts from zero
/// is read as the reset it is. Windows and other state (gauges' inputs) stay as restored.
public protocol PersistentCollector: ModelCollector {
    /// Writes the collector's counts.
    func saveState(into writer: inout StateWriter)
    /// Reads what ``saveState(into:)`` wrote.
    func restoreState(from reader: inout StateReader, now: Double) throws(StateError)
    /// Sets every counter (and histogram) the collector exports back to zero, keeping its windows: runs, before any
    /// event is recorded, on a collector restored from the checkpoint of a process that crashed. The default does
    /// nothing: a collector without it shows its restored counters, which step back after a crash.
    func restartCounters()
}

extension PersistentCollector {
    /// Keeps the restored counters (see ``PersistentCollector``).
    public func restartCounters() {}
}

extension ServiceCollector: PersistentCollector {
    /// Error kinds learned (in slot order), then every slot array.
    public func saveState(into w: inout StateWriter) {
        let names = errorKinds.all
        w.count(names.count)
        for name in names { w.string(name) }
        for slots in persistentSlots { w.slots(slots) }
    }

    /// Learns the saved error kinds in their order (each must get its saved slot), then reads the slots.
    public func restoreState(from r: inout StateReader, now: Double) throws(StateError) {
        let n = try r.count(max: errorKinds.capacity)
        for i in 0..<n {
            let name = try r.string(max: 1024)
            guard errorKinds.slot(of: name) == i else { throw .mismatch("error kind \"\(name)\" not in slot \(i)") }
        }
        for slots in persistentSlots { try r.slots(into: slots) }
        // A last event after now (a checkpoint written by a clock that ran ahead, or the clock set back since) is now:
        // kept in the future, `storeMax` never let a real event lower it and staleness alerts stayed silent.
        for v in 0..<lastEvent.count where lastEvent.loadDouble(v) > now { lastEvent.store(v, now.bitPattern) }
        // Negative predictions seen before: known when they left the sum below zero.
        for v in 0..<predictionSums.count where predictionSums.loadDouble(v) < 0 { predictionNegative.store(v, 1) }
    }

    /// Every slot but the time of the last event (a gauge).
    public func restartCounters() {
        for slots in persistentSlots where slots !== lastEvent { slots.zero() }
    }

    var persistentSlots: [AtomicSlots] {
        [requests, errors, latencyCounts, latencySums, predictionCounts, predictionSums, lastEvent]
    }
}

extension DriftCollector: PersistentCollector {
    /// The window, the totals since start, and the late count.
    public func saveState(into w: inout StateWriter) {
        ring.save(into: &w)
        // The totals since start, as before the ring kept them: one slot per column's bin and missing count.
        let totals = ring.cumulativeTotals()
        let slots = AtomicSlots(count: totals.count)
        for (i, total) in totals.enumerated() { slots.store(i, total) }
        w.slots(slots)
        w.slots(late)
    }

    /// Reads what ``saveState(into:)`` wrote.
    public func restoreState(from r: inout StateReader, now: Double) throws(StateError) {
        try ring.restore(from: &r, now: now)
        let slots = AtomicSlots(count: ring.cumulative.count)
        try r.slots(into: slots)
        ring.setCumulativeTotals((0..<slots.count).map { slots.load($0) })
        try r.slots(into: late)
    }

    /// The totals since start and the late count; the window stays.
    public func restartCounters() {
        ring.setCumulativeTotals([UInt64](repeating: 0, count: ring.cumulative.count))
        late.zero()
    }
}

extension QualityCollector: PersistentCollector {
    /// The window, the totals since start, and the late count.
    public func saveState(into w: inout StateWriter) { slots.save(into: &w, late: late) }
    /// Reads what ``saveState(into:)`` wrote.
    public func restoreState(from r: inout StateReader, now: Double) throws(StateError) {
        try slots.restore(from: &r, late: late, now: now)
    }

    /// The totals since start and the late counts; the window stays.
    public func restartCounters() {
        slots.totals.zero()
        late.zero()
    }
}

extension FairnessCollector: PersistentCollector {
    /// The window, the totals since start, and the late counts.
    public func saveState(into w: inout StateWriter) { slots.save(into: &w, late: late) }
    /// Reads what ``saveState(into:)`` wrote.
    public func restoreState(from r: inout StateReader, now: Double) throws(StateError) {
        try slots.restore(from: &r, late: late, now: now)
    }

    /// The totals since start and the late counts; the window stays.
    public func restartCounters() {
        slots.totals.zero()
        late.zero()
    }
}

extension QualitySlots {
    /// The window, the totals, then a collector's `late` counts.
    func save(into w: inout StateWriter, late: AtomicSlots) {
        ring.save(into: &w)
        w.slots(totals)
        w.slots(late)
    }

    func restore(from r: inout StateReader, late: AtomicSlots, now: Double) throws(StateError) {
        try ring.restore(from: &r, now: now)
        try r.slots(into: totals)
        try r.slots(into: late)
    }
}
