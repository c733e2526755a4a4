import Dispatch
import Synchronization

/// What one render did, for the caller's logs and self metrics.
public struct RenderReport: Sendable {
    /// A collector left out of this render, and why (`error`, `invalid`, `deadline`, `still_running`).
    public struct SkippedCollector: Sendable, Equatable {
        /// The collector's name.
        public var collector: String
        /// The `reason` label it was counted under.
        public var reason: String
        /// A one-line explanation (the error, or the invalid emission).
        public var detail: String
    }

    /// Families written (those with at least one series).
    public var families: Int = 0
    /// Collectors skipped in this render.
    public var skipped: [SkippedCollector] = []
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
        let (families, collectors) = state.withLock { ($0.families, $0.collectors) }
        let context = RenderContext(format: format, emitCreated: options.emitCreated)
        var collected = runCollectors(collectors, timeout: timeout, report: &report)
        if let selfMetrics, let dropped = droppedUpdatesFamily(families, descriptor: selfMetrics.dropped) {
            collected.append(dropped)
        }
        collected.sort { $0.names.descriptor.name < $1.names.descriptor.name }
        let now = now ?? Clock.monotonicNanos()

        // Merge the two sorted lists by family name.
        var i = 0
        var j = 0
        while i < families.count || j < collected.count {
            let before = out.count
            if j == collected.count
                || (i < families.count && families[i].descriptor.name < collected[j].names.descriptor.name)
            {
                families[i].render(into: &out, context: context, now: now)
                i += 1
            } else {
                collected[j].render(into: &out, context: context)
                j += 1
            }
            if out.count > before { report.families += 1 }
        }
        if format == .openMetrics { out.append(contentsOf: Self.eof) }
        return report
    }

    static let eof: [UInt8] = Array("# EOF\n".utf8)

    private func droppedUpdatesFamily(
        _ families: [any RenderableFamily], descriptor: MetricDescriptor
    ) -> CollectedFamily? {
        guard families.contains(where: { $0.hasDropped }) else { return nil }
        var series: [CollectedSeries] = []
        for f in families {
            for (reason, count) in f.droppedCounts where count > 0 {
                let name = f.descriptor.type == .counter ? f.descriptor.name + "_total" : f.descriptor.name
                series.append(
                    CollectedSeries(labelValues: [name, reason.label], value: .counter(Double(count), created: nil)))
            }
        }
        return try? CollectedFamily(descriptor: descriptor, series: series)
    }

    /// One run of a collector, shared by every render that wants its result while it is under way.
    final class CollectorRun: Sendable {
        let done = DispatchGroup()
        let result = Mutex<Result<[CollectedFamily], CollectorFailure>?>(nil)
    }

    /// Runs (or joins the run already under way of) every collector, concurrently, and waits for them
    /// until `timeout`. Renders of different formats that overlap share one run of each collector instead
    /// of skipping it; a render that joins a run which does not finish in time counts `still_running`,
    /// one that started it counts `deadline`.
    private func runCollectors(
        _ collectors: [RegisteredCollector], timeout: Duration, report: inout RenderReport
    ) -> [CollectedFamily] {
        guard !collectors.isEmpty else { return [] }
        // Capped at a day: DispatchTime arithmetic overflows for absurd timeouts.
        let deadline = DispatchTime.now() + .nanoseconds(Int(min(timeout.saturatingNanoseconds, 86_400_000_000_000)))
        var runs: [(RegisteredCollector, CollectorRun, started: Bool)] = []
        for c in collectors {
            let (run, started) = c.current.withLock { current -> (CollectorRun, Bool) in
                if let run = current { return (run, false) }
                let run = CollectorRun()
                run.done.enter()
                current = run
                return (run, true)
            }
            runs.append((c, run, started))
            guard started else { continue }
            DispatchQueue.global().async { [selfMetrics] in
                let start = Clock.monotonicNanos()
                let result = Self.runOne(c)
                let seconds = Double(Clock.monotonicNanos() &- start) / 1e9
                try? selfMetrics?.collectorDuration.labels([c.collector.name]).set(seconds)
                run.result.withLock { $0 = result }
                c.current.withLock { $0 = nil }
                run.done.leave()
            }
        }
        var out: [CollectedFamily] = []
        for (c, run, started) in runs {
            _ = run.done.wait(timeout: deadline)
            switch run.result.withLock({ $0 }) {
            case .success(let families)?: out.append(contentsOf: families)
            case .failure(let failure)?:
                switch failure {
                case .threw(let d), .invalid(let d): skip(c, failure, detail: d, report: &report)
                default: skip(c, failure, detail: "", report: &report)
                }
            case nil:
                if started {
                    skip(c, .deadline, detail: "not finished within \(timeout)", report: &report)
                } else {
                    skip(c, .stillRunning, detail: "a run started earlier has not finished", report: &report)
                }
            }
        }
        return out
    }

    private func skip(
        _ c: RegisteredCollector, _ failure: CollectorFailure, detail: String, report: inout RenderReport
    ) {
        report.skipped.append(.init(collector: c.collector.name, reason: failure.reason, detail: detail))
        try? selfMetrics?.collectorSkipped.labels([c.collector.name, failure.reason]).inc()
    }

    private static func runOne(_ c: RegisteredCollector) -> Result<[CollectedFamily], CollectorFailure> {
        var sink = CollectorSink(descriptors: c.descriptors)
        do {
            try c.collector.collect(into: &sink)
        } catch {
            return .failure(.threw(String(describing: error)))
        }
        if let problem = sink.problem { return .failure(.invalid(problem)) }
        var families: [CollectedFamily] = []
        for d in c.descriptors {
            do {
                families.append(try CollectedFamily(descriptor: d, series: sink.families[d.name] ?? []))
            } catch {
                return .failure(error)
            }
        }
        return .success(families)
    }
}
