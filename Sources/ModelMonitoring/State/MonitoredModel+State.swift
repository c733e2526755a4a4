extension MonitoredModel {
    /// Writes everything the model has accumulated: its ingestion counters, its label join (counters and the
    /// predictions waiting for their label), then each collector's state under its name (empty for a collector
    /// that is not a ``PersistentCollector``). Runs beside recording and scrapes.
    public func saveState(into w: inout StateWriter) {
        w.section { $0.slots(counters.slots) }
        w.section { w in
            guard let joiner else { return w.byte(0) }
            w.byte(1)
            joiner.save(into: &w)
        }
        w.count(collectors.count)
        for collector in collectors {
            w.string(type(of: collector).name)
            w.section { w in (collector as? any PersistentCollector)?.saveState(into: &w) }
        }
    }

    /// Reads what ``saveState(into:)`` wrote into this model, freshly built and not yet recording. With `windows`
    /// (the model's layout is unchanged) the pending predictions are restored, and each collector's state where
    /// `collectors` says so (its options unchanged; nil: every one); without, only the counters that a
    /// configuration reload keeps (ingestion and label join), and the saved pending predictions are counted as
    /// evicted by a reload, as they would have been in a running process. Without `counters` (the state was saved
    /// by a process that crashed), every counter starts from zero instead of its saved value
    /// (``PersistentCollector/restartCounters()``), windows and pending predictions as saved. Throws on anything
    /// malformed: the caller then discards this model object.
    func restoreState(
        from r: inout StateReader, now: Double, windows: Bool, collectors restoring: [Bool]? = nil,
        counters keep: Bool
    ) throws(StateError) {
        var ingest = try r.section()
        try ingest.slotsPrefix(into: counters.slots)
        if !keep { counters.slots.zero() }
        var join = try r.section()
        if try join.byte() == 1 {
            if let joiner { try joiner.restore(from: &join, now: now, windows: windows, counters: keep) }
        }
        let n = try r.count(max: 1 << 16)
        guard !windows || n == collectors.count else {
            throw .mismatch("\(n) collectors saved, \(collectors.count) configured")
        }
        for i in 0..<n {
            let name = try r.string(max: 256)
            var section = try r.section()
            guard windows, restoring?[i] ?? true else { continue }
            let collector = collectors[i]
            guard name == type(of: collector).name else {
                throw .mismatch("collector \(i) saved as \"\(name)\", configured \"\(type(of: collector).name)\"")
            }
            if let persistent = collector as? any PersistentCollector, !section.isAtEnd {
                try persistent.restoreState(from: &section, now: now)
                if !keep { persistent.restartCounters() }
            }
            guard section.isAtEnd else { throw .malformed("collector \"\(name)\": bytes left over") }
        }
    }
}

extension LabelJoiner {
    var persistentSlots: [AtomicSlots] {
        [
            counters.joinedEndpoint, counters.joinedInline, counters.unmatched, counters.carried, counters.delays,
            counters.delaySum,
        ]
    }

    /// The counters, then the pending predictions.
    func save(into w: inout StateWriter) {
        for slots in persistentSlots { w.slots(slots) }
        w.section { w in
            store.save(into: &w) { snapshot, arrival, w in snapshot.save(into: &w, arrival: arrival) }
        }
    }

    /// Reads the counters (without `counters`, reads them and starts them from zero), then the pending predictions
    /// (or, without `windows`, counts them as evicted by a reload).
    func restore(from r: inout StateReader, now: Double, windows: Bool, counters keep: Bool) throws(StateError) {
        for slots in persistentSlots {
            try r.slots(into: slots)
            if !keep { slots.zero() }
        }
        var pending = try r.section()
        let saved: (expired: UInt64, evicted: UInt64, duplicates: UInt64, entries: Int)
        if windows {
            let context = self.context
            saved = try store.restore(from: &pending, now: now) { r, arrival throws(StateError) in
                try PredictionSnapshot.restore(from: &r, arrival: arrival, context: context)
            }
        } else {
            saved = try PendingStore<PredictionSnapshot>.skip(from: &pending) { r throws(StateError) in
                try PredictionSnapshot.skip(from: &r)
            }
            counters.carried.add(3, UInt64(saved.entries))
        }
        // The totals saved are counters too: after a crash they start from zero with the rest (the restore's own
        // expiries and evictions are counted by the store as they happen).
        guard keep else { return }
        counters.carried.add(0, saved.expired)
        counters.carried.add(1, saved.evicted)
        counters.carried.add(2, saved.duplicates)
    }
}

/// What became of one model's saved state at start (`mlops_storage_restore_total{model,result}`).
public enum RestoreResult: String, Sendable, CaseIterable {
    /// Everything restored.
    case restored
    /// The model's configuration changed: its ingestion and join counters kept, its windows and pending predictions
    /// dropped (the pending ones counted as evicted by a reload); but when only collectors' options changed, the
    /// pending predictions and the collectors' state kept, carried on as by a reload.
    case changed
    /// The model is no longer configured: its state was dropped.
    case removed
    /// The model's saved state could not be read: it starts empty.
    case failed
}

extension ModelMonitor {
    /// Restores model `name` from its saved state (written by ``MonitoredModel/saveState(into:)`` with
    /// `fingerprints`): builds a fresh copy of the configured model, reads the state into it and, if all of it
    /// reads, installs the copy in place of the configured (empty) model. Run before any event is recorded. A model
    /// whose configuration changed keeps its counters. When only collectors' options changed (the layout fingerprint
    /// equal), it keeps its pending predictions and the state of every collector whose options did not change too;
    /// a changed collector carries its state on as across a reload (``ModelCollector/carryingState(of:)``, from the
    /// collector built again with the saved options), or starts empty.
    /// Without `counters` (the state was saved by a process that crashed: its counters are older than what
    /// Prometheus last scraped), the model's counters start from zero and the rest is restored. Returns the result
    /// and, for a failure, why.
    public func restore(
        model name: String, fingerprints: StateFingerprints, state: inout StateReader, now: Double,
        counters: Bool = true
    ) -> (result: RestoreResult, problem: StateError?) {
        guard let current = model(named: name) else { return (.removed, nil) }
        let unchanged = current.context.stateFingerprint == fingerprints.state
        // Only options changed: the same layout, collectors by the same names in the same order.
        let sameLayout =
            unchanged
            || (fingerprints.layout == current.context.layoutFingerprint
                && fingerprints.collectors?.count == current.context.collectorFingerprints.count)
        let restoring =
            unchanged
            ? nil
            : fingerprints.collectors.map { saved in
                zip(saved, current.context.collectorFingerprints).map { $0 == $1 }
            }
        var problems: [ModelSetupErrors.Problem] = []
        var fresh = makeModel(
            current.context, counters: IngestCounters(model: name), joinCounters: JoinCounters(), problems: &problems)
        guard problems.isEmpty else { return (.failed, .mismatch(problems.map(\.message).joined(separator: "; "))) }
        if !unchanged, sameLayout,
            let carried = restoreCarrying(current.context, fingerprints, state, now: now, counters: counters)
        {
            fresh = carried
        } else {
            do {
                try fresh.restoreState(
                    from: &state, now: now, windows: sameLayout, collectors: restoring, counters: counters)
            } catch {
                return (.failed, error)
            }
            guard state.isAtEnd else { return (.failed, .malformed("bytes left over after the model's state")) }
        }
        // Every value read must be one a scrape can show (a sum of probabilities is finite and non-negative…): a
        // checkpoint whose checksum holds can still carry one that no count bound catches, and it would leave the
        // collector out of every scrape, and be saved again in every later checkpoint.
        for part in fresh.parts {
            if let problem = part.check() {
                return (.failed, .malformed("collector \"\(part.collector)\": \(problem)"))
            }
        }
        models.withLock { models in
            if models[name] === current { models[name] = fresh }
        }
        generation.add(1, ordering: .releasing)
        return (unchanged ? .restored : .changed, nil)
    }
}

extension ModelMonitor {
    /// A model of `context` whose collectors' options differ from the saved ones: the model as it was saved (built
    /// again from the saved options, which must give the saved state fingerprint), its state read whole, then carried
    /// over to `context` as a reload carries it (``carryingState(of:into:hash:problems:startedEmpty:)``). Nil when the saved options
    /// are unknown (format 1) or do not rebuild that model, or its state does not read: the caller restores what the
    /// change left alone instead.
    func restoreCarrying(
        _ context: ModelContext, _ fingerprints: StateFingerprints, _ state: StateReader, now: Double, counters: Bool
    ) -> MonitoredModel? {
        guard let options = fingerprints.collectorOptions, options.count == context.configuration.collectors.count
        else { return nil }
        var saved = context.configuration
        for i in options.indices { saved.collectors[i].options = options[i] }
        guard
            let savedContext = try? ModelContext(
                configuration: saved, referenceSHA256: context.referenceSHA256, reference: context.reference),
            savedContext.stateFingerprint == fingerprints.state
        else { return nil }
        var problems: [ModelSetupErrors.Problem] = []
        let previous = makeModel(
            savedContext, counters: IngestCounters(model: context.name), joinCounters: JoinCounters(),
            problems: &problems)
        guard problems.isEmpty else { return nil }
        var reader = state
        do {
            try previous.restoreState(from: &reader, now: now, windows: true, counters: counters)
        } catch {
            return nil
        }
        guard reader.isAtEnd else { return nil }
        var startedEmpty: [String] = []
        let carried = carryingState(
            of: previous, into: context.configuration, hash: context.referenceSHA256, problems: &problems,
            startedEmpty: &startedEmpty)
        return problems.isEmpty ? carried : nil
    }
}
