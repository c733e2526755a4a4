import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What one render did, for the caller's logs and self metrics.
public struct RenderReport: Sendable {
    /// A collector left out of this render, and why (`error`, `invalid`, `deadline`, `still_running`).
    public struct SkippedCollector: Sendable, Hashable {
        /// The collector's name.
        public var collector: String
        /// The model it collects for (empty for collectors of no model).
        public var model: String
        /// The `reason` label it was counted under.
        public var reason: String
        /// A one-line explanation (the error, or the invalid emission).
        public var detail: String
    }

    /// Families written (those with at least one series).
    public var families: Int = 0
    /// Collectors skipped in this render.
    public var skipped: [SkippedCollector] = []
    /// Those of ``skipped`` not reported before (remembered up to ``Registry/maxReportedProblems``, then
    /// forgotten all at once): log these, so that a collector failing at every scrape is logged once.
    public var firstSkips: [SkippedCollector] = []
}

extension Registry {
    /// Renders every family and collector into `out` (cleared first, capacity kept), in `format`.
    ///
    /// Collectors run concurrently on Dispatch's global queues; the render waits for them at most
    /// `timeout` (use the scrape's `X-Prometheus-Scrape-Timeout-Seconds` minus a margin). Registered
    /// families are written from their atomics without waiting for anything.
    @discardableResult
    public func render(
        format: ExpositionFormat, into out: inout [UInt8], timeout: Duration = .seconds(10)
    ) -> RenderReport {
        render(format: format, into: &out, timeout: timeout, now: nil)
    }

    /// Renders into a new buffer.
    public func render(format: ExpositionFormat, timeout: Duration = .seconds(10)) -> [UInt8] {
        var out: [UInt8] = []
        render(format: format, into: &out, timeout: timeout)
        return out
    }

    /// `now` (monotonic nanoseconds) is for tests; by default the clock is read after the collectors ran.
    func render(format: ExpositionFormat, into buffer: inout [UInt8], timeout: Duration, now: UInt64?) -> RenderReport {
        var out = ByteWriter(capacity: Swift.max(buffer.capacity, lastRenderSize.load(ordering: .relaxed)))
        defer { out.free() }
        let report = render(format: format, into: &out, timeout: timeout, now: now)
        lastRenderSize.store(out.count, ordering: .relaxed)
        buffer.removeAll(keepingCapacity: true)
        buffer.append(contentsOf: out.bytes)
        return report
    }

    func render(format: ExpositionFormat, into out: inout ByteWriter, timeout: Duration, now: UInt64?) -> RenderReport {
        var report = RenderReport()
        let (families, collectors, collected, knownSlots, generation) = state.withLock {
            ($0.families, $0.collectors, $0.collected, $0.slots, $0.collectedGeneration)
        }
        let context = RenderContext(format: format, emitCreated: options.emitCreated)
        let parts = collectors.flatMap(\.parts)
        let slots = slotMaps(for: parts, known: knownSlots, collected: collected, generation: generation)
        let results = runParts(parts, timeout: timeout, report: &report)

        var chunks = merge(results, parts: parts, slots: slots, families: collected.count, report: &report)
        if let selfMetrics {
            let own = selfMetricsSeries(selfMetrics, parts: parts, families: families)
            if let map = slots.last, parts.count < slots.count {
                for (i, chunk) in own.enumerated() where !chunk.isEmpty { chunks[map[i]].append(chunk) }
            }
        }
        let now = now ?? Clock.monotonicNanos()

        // Merge the two sorted lists by family name.
        var i = 0
        var j = 0
        while i < families.count || j < collected.count {
            let before = out.count
            if j == collected.count
                || (i < families.count && families[i].descriptor.name < collected[j].descriptor.name)
            {
                families[i].render(into: &out, context: context, now: now)
                i += 1
            } else {
                collected[j].render(chunks[j], into: &out, context: context)
                j += 1
            }
            if out.count > before { report.families += 1 }
        }
        if format == .openMetrics { out.append(contentsOf: Self.eof) }
        return report
    }

    static let eof: [UInt8] = Array("# EOF\n".utf8)

    /// Each collected family's chunks, in part order, from the parts that were not left out. A part is left
    /// out, as invalid, when it wrote a family its registration did not declare (a group whose parts stray from
    /// its descriptors), or a series that an earlier part already wrote into the same family. That check across
    /// parts compares, per family, the combined hash of its parts' label-set sequences with the one last found
    /// free of duplicates, and looks at the series only when it differs.
    private func merge(
        _ results: [PartOutput?], parts: [CollectorPart], slots: [[Int]], families: Int, report: inout RenderReport
    ) -> [[[CollectedSeries]]] {
        var included = results.map { $0 != nil }
        for (p, result) in results.enumerated() {
            guard let emitted = result?.chunks else { continue }
            if let stray = emitted.indices.first(where: { !emitted[$0].isEmpty && slots[p][$0] < 0 }) {
                included[p] = false
                skip(
                    parts[p], .invalid(""),
                    detail:
                        "family \"\(parts[p].schema.descriptors[stray].name)\" is not one its collector registered (or is described differently)",
                    report: &report)
            }
        }
        // Per family: (part, chunk index) in part order, and the combined hash of their sequences.
        var contributions = [[(part: Int, index: Int)]](repeating: [], count: families)
        var combined = [HashSequence](repeating: HashSequence(), count: families)
        for (p, result) in results.enumerated() where included[p] {
            guard let output = result else { continue }
            for (i, chunk) in output.chunks.enumerated() where !chunk.isEmpty {
                let slot = slots[p][i]
                contributions[slot].append((p, i))
                combined[slot].add(output.hashes[i])
            }
        }
        let verified = crossVerified.withLock { $0 }
        var fresh = verified.count == families ? verified : [UInt64](repeating: 0, count: families)
        for slot in 0..<families where contributions[slot].count > 1 && combined[slot].value != fresh[slot] {
            // Label bytes by hash (nil for a line of a constant block, whose labels are not kept apart).
            var seen: [UInt64: [[UInt8]?]] = [:]
            var clean = true
            for (p, i) in contributions[slot] where included[p] {
                let chunk = results[p]!.chunks[i]
                var twice: [UInt8]?
                for s in chunk where twice == nil {
                    if case .lines(_, let hashes) = s.value {
                        if hashes.contains(where: { seen[$0] != nil }) { twice = Array("(a constant series)".utf8) }
                    } else if let earlier = seen[s.hash], earlier.contains(where: { $0 == nil || $0 == s.labels }) {
                        twice = s.labels
                    }
                }
                if let twice {
                    included[p] = false
                    clean = false
                    skip(
                        parts[p], .invalid(""),
                        detail:
                            "family \"\(parts[p].schema.descriptors[i].name)\": series {\(String(decoding: twice, as: UTF8.self))} already written by another collector",
                        report: &report)
                    continue
                }
                for s in chunk {
                    if case .lines(_, let hashes) = s.value {
                        for h in hashes { seen[h, default: []].append(nil) }
                    } else {
                        seen[s.hash, default: []].append(s.labels)
                    }
                }
            }
            if clean { fresh[slot] = combined[slot].value }
        }
        crossVerified.withLock { $0 = fresh }
        var chunks = [[[CollectedSeries]]](repeating: [], count: families)
        for (p, result) in results.enumerated() where included[p] {
            guard let output = result else { continue }
            for (i, chunk) in output.chunks.enumerated() where !chunk.isEmpty { chunks[slots[p][i]].append(chunk) }
        }
        return chunks
    }

    /// Per part (then, last, for the registry's own schema): where each family of its schema goes among the
    /// collected families. Maps are computed once per schema and kept until collectors change.
    private func slotMaps(
        for parts: [CollectorPart], known: [Int: [Int]], collected: [CollectedFamily], generation: Int
    ) -> [[Int]] {
        var schemas = parts.map(\.schema)
        if let selfMetrics { schemas.append(selfMetrics.schema) }
        var fresh: [Int: [Int]] = [:]
        var byName: [String: Int]?
        let maps = schemas.map { schema -> [Int] in
            if let map = known[schema.id] ?? fresh[schema.id], map.count == schema.descriptors.count { return map }
            if byName == nil {
                byName = Dictionary(
                    collected.enumerated().map { ($1.descriptor.name, $0) }, uniquingKeysWith: { a, _ in a })
            }
            let map = schema.descriptors.map { d in
                byName![d.name].flatMap { collected[$0].descriptor == d ? $0 : nil } ?? -1
            }
            fresh[schema.id] = map
            return map
        }
        if !fresh.isEmpty {
            state.withLock { st in
                // Only if the collectors did not change meanwhile (the maps index this render's list).
                guard st.collectedGeneration == generation else { return }
                st.slots.merge(fresh) { a, _ in a }
            }
        }
        return maps
    }

    /// The registry's own series: skips and last durations per part (summed over parts of the same collector
    /// and model), and dropped updates per registered family.
    private func selfMetricsSeries(
        _ m: SelfMetrics, parts: [CollectorPart], families: [any RenderableFamily]
    ) -> [[CollectedSeries]] {
        var sink = CollectorSink(schema: m.schema)
        // Parts of the same collector and model (two registrations under one name) are counted together.
        var seen: [UInt64: Int] = [:]
        var merged: [(part: CollectorPart, skips: [UInt64], duration: Double)] = []
        for part in parts {
            let skips = part.skipCounts
            let duration = Double(bitPattern: part.lastDuration.load(ordering: .relaxed))
            if let k = seen[part.identity.hash] {
                for r in skips.indices { merged[k].skips[r] += skips[r] }
                if !duration.isNaN {
                    merged[k].duration = max(merged[k].duration.isNaN ? 0 : merged[k].duration, duration)
                }
            } else {
                seen[part.identity.hash] = merged.count
                merged.append((part, skips, duration))
            }
        }
        let reasons = CollectorPart.reasons
        for (part, skips, duration) in merged {
            for (r, count) in skips.enumerated() where count > 0 {
                sink.counter(m.skipped, [part.collector, part.model, reasons[r]], value: Double(count))
            }
            if !duration.isNaN { sink.gauge(m.duration, part.identity, value: duration) }
        }
        for f in families where f.hasDropped {
            let name = f.descriptor.type == .counter ? f.descriptor.name + "_total" : f.descriptor.name
            for (reason, count) in f.droppedCounts where count > 0 {
                sink.counter(m.dropped, [name, reason.label], value: Double(count))
            }
        }
        return sink.chunks
    }

    /// One run of a part, shared by every render that wants its result while it is under way.
    final class CollectorRun: Sendable {
        let done = DispatchGroup()
        let result = Mutex<Result<PartOutput, CollectorFailure>?>(nil)
        /// Per family of the part's schema, whether the run keeps its samples (nil: a full run).
        let wanted: [Bool]?

        init(wanted: [Bool]?) { self.wanted = wanted }

        /// Whether a render that wants `families` (nil: all) can take this run's result.
        func serves(_ families: [Bool]?) -> Bool { wanted == nil || wanted == families }
    }

    /// Runs (or joins the run already under way of) every part, concurrently, and waits for them until
    /// `timeout`. Renders of different formats that overlap share one run of each part instead of skipping
    /// it; a render that joins a run which does not finish in time counts `still_running`, one that started
    /// it counts `deadline`. Returns each part's series per family of its schema, or nil when left out.
    ///
    /// With `wanted` (per part, the flags of ``CollectorPart/wanted(by:)``), runs keep only those families: a
    /// render joins a run under way only when it keeps at least what the render wants (a full run, or one for
    /// the same families); otherwise it waits for that run to end and starts its own. A part that keeps
    /// nothing is not run.
    func runParts(
        _ parts: [CollectorPart], wanted: [[Bool]?] = [], timeout: Duration, report: inout RenderReport
    ) -> [PartOutput?] {
        guard !parts.isEmpty else { return [] }
        precondition(wanted.isEmpty || wanted.count == parts.count)
        // Capped at a day: DispatchTime arithmetic overflows for absurd timeouts.
        let deadline = DispatchTime.now() + .nanoseconds(Int(min(timeout.saturatingNanoseconds, 86_400_000_000_000)))
        var runs = [(run: CollectorRun, started: Bool)?](repeating: nil, count: parts.count)
        var pending = Array(parts.indices)
        while !pending.isEmpty {
            var toStart: [(CollectorPart, CollectorRun)] = []
            var blockers: [(part: Int, run: CollectorRun)] = []
            for i in pending {
                let families = wanted.isEmpty ? nil : wanted[i]
                if let families, !families.contains(true) {
                    let run = CollectorRun(wanted: families)
                    let empty = PartOutput(
                        chunks: Array(repeating: [], count: families.count),
                        hashes: Array(repeating: 0, count: families.count))
                    run.result.withLock { $0 = .success(empty) }
                    runs[i] = (run, false)
                    continue
                }
                let (run, started) = parts[i].current.withLock { current -> (CollectorRun, Bool?) in
                    if let run = current { return (run, run.serves(families) ? false : nil) }
                    let run = CollectorRun(wanted: families)
                    run.done.enter()
                    current = run
                    return (run, true)
                }
                guard let started else {
                    parts[i].waitsForOtherRuns.add(1, ordering: .relaxed)
                    blockers.append((i, run))
                    continue
                }
                runs[i] = (run, started)
                if started { toStart.append((parts[i], run)) }
            }
            Self.runInLanes(toStart)
            // Parts held by a run that keeps other families: claimed again once it ended (left out when it does
            // not end in time).
            pending = []
            for (i, run) in blockers where run.done.wait(timeout: deadline) == .success { pending.append(i) }
        }
        var out: [PartOutput?] = []
        out.reserveCapacity(parts.count)
        for (part, claimed) in zip(parts, runs) {
            guard let (run, started) = claimed else {
                skip(part, .stillRunning, detail: "a run for other families has not finished", report: &report)
                out.append(nil)
                continue
            }
            _ = run.done.wait(timeout: deadline)
            switch run.result.withLock({ $0 }) {
            case .success(let families)?:
                out.append(families)
                continue
            case .failure(let failure)?:
                switch failure {
                case .threw(let d), .invalid(let d): skip(part, failure, detail: d, report: &report)
                default: skip(part, failure, detail: "", report: &report)
                }
            case nil:
                if started {
                    skip(part, .deadline, detail: "not finished within \(timeout)", report: &report)
                } else {
                    skip(part, .stillRunning, detail: "a run started earlier has not finished", report: &report)
                }
            }
            out.append(nil)
        }
        return out
    }

    private func skip(_ part: CollectorPart, _ failure: CollectorFailure, detail: String, report: inout RenderReport) {
        part.counted(failure)
        let problem = RenderReport.SkippedCollector(
            collector: part.collector, model: part.model, reason: failure.reason, detail: detail)
        report.skipped.append(problem)
        let first = reportedProblems.withLock { seen in
            guard !seen.contains(problem) else { return false }
            if seen.count >= Self.maxReportedProblems { seen.removeAll() }
            seen.insert(problem)
            return true
        }
        if first { report.firstSkips.append(problem) }
    }

    /// How many distinct problems are remembered so that each is reported (logged) once.
    static let maxReportedProblems = 1024

    /// Runs `parts` on a few lanes (as many as cores, two at least), each pulling the next part until none is
    /// left. One wake-up per lane instead of one per part: a scrape of 50 parts spends about a third less CPU
    /// than with a dispatch per part. Each lane is a new serial queue, which libdispatch serves from its
    /// overcommitting pool, so a lane held by a stuck collector never keeps a later scrape's lanes waiting;
    /// and while one lane is stuck the others take the remaining parts.
    private static func runInLanes(_ parts: [(CollectorPart, CollectorRun)]) {
        guard !parts.isEmpty else { return }
        let cursor = LaneCursor()
        for _ in 0..<Swift.min(parts.count, Swift.max(2, lanes)) {
            DispatchQueue(label: "mlops-exporter.collectors").async {
                while true {
                    let i = cursor.next.add(1, ordering: .relaxed).oldValue
                    guard i < parts.count else { return }
                    let (part, run) = parts[i]
                    let start = Clock.monotonicNanos()
                    let result = runOne(part, wanted: run.wanted)
                    // The self metric reports scrapes' runs: a run for a few families is not one.
                    if run.wanted == nil {
                        let seconds = Double(Clock.monotonicNanos() &- start) / 1e9
                        part.lastDuration.store(seconds.bitPattern, ordering: .relaxed)
                    }
                    run.result.withLock { $0 = result }
                    part.current.withLock { $0 = nil }
                    run.done.leave()
                }
            }
        }
    }

    /// Lanes: one per processor.
    static let lanes = Swift.max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))

    final class LaneCursor: Sendable {
        let next = Atomic<Int>(0)
    }

    private static func runOne(_ part: CollectorPart, wanted: [Bool]?) -> Result<PartOutput, CollectorFailure> {
        var sink = CollectorSink(schema: part.schema, sizes: part.memory.withLock { $0.sizes }, wanted: wanted ?? [])
        do {
            try part.body(&sink)
        } catch {
            return .failure(.threw(String(describing: error)))
        }
        if let limit = part.maxSeries {
            let emitted = sink.chunks.reduce(0) { $0 + $1.count }
            if emitted > limit {
                return .failure(.invalid("\(emitted) series, more than the \(limit) it declares (maxSeries)"))
            }
        }
        return part.memory.withLock { memory in
            // Sizes for the next run from full runs only (a partial run's lists are empty for the families it drops).
            if wanted == nil { memory.sizes = sink.chunks.map(\.count) }
            return sink.finish(verified: &memory.verified)
        }
    }
}
