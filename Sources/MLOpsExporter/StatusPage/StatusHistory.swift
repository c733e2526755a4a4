import Dispatch
import Exposition
import ModelMonitoring
import Synchronization

/// Each model's cumulative counts at instants over its window, so that the status page can show rates and
/// quantiles over the window from counters and histograms that only ever grow.
///
/// A background timer ticks every second and takes a ``WindowPoint`` of each model whose last point is older
/// than its window / ``pointsPerWindow`` (one second at least), from a snapshot of the model's `service`,
/// `labels` and `llm` parts: the same runs a scrape makes, so nothing is counted twice. Bound: at most
/// ``capacity`` points per configured model (`mlops_exporter_status_history_points` says how many are held);
/// the points of a model no longer configured are dropped at the next tick.
///
/// A model with a quality SLO also has ``QualityPoint``s over the longest of its quality SLOs' windows (every such
/// window / 120, from its `quality` part's two outcome counters; at most ``capacity`` more, counted in the same
/// gauge), so that the page reads the SLO's accuracy over the SLO's `window`, as the generated rule does, not over the
/// model's window: with a 1 m model window and a 1 h SLO window, five wrong labels after a hundred right ones a minute
/// before made the page Critical while the alert stayed silent.
final class StatusHistory: Sendable {
    static let pointsPerWindow = 120
    /// Points kept per model: a whole window, plus the one just before it.
    static let capacity = pointsPerWindow + 2
    /// Parts whose figures the points read.
    static let sampledCollectors: Set<String> = ["service", "labels", "llm"]

    let registry: Registry
    let monitor: ModelMonitor
    let rings = Mutex<[String: [WindowPoint]]>([:])
    let qualityRings = Mutex<[String: [QualityPoint]]>([:])
    /// When ``sample(now:)`` last ran (nil before the first).
    let lastSampled = Mutex<Double?>(nil)
    /// The wall clock and the monotonic one at the last tick (``sample(now:clock:)``): a step of the wall clock between
    /// two ticks is told from time passing by their difference.
    let lastTick = Mutex<(wall: Double, clock: ContinuousClock.Instant)?>(nil)
    let running = Atomic<Bool>(false)
    let stopped = Atomic<Bool>(false)
    let held: Gauge?
    let queue = DispatchQueue(label: "mlops-exporter.status-history", qos: .utility)

    init(registry: Registry, monitor: ModelMonitor) {
        self.registry = registry
        self.monitor = monitor
        held = try? registry.gauge(
            "mlops_exporter_status_history_points",
            help:
                "Points of the models' counts held for the status page's rates over the window (at most 122 per model, and 122 more for a model with a quality SLO)."
        )
    }

    /// Starts the timer (once); the first points are taken at once.
    func start() {
        guard !running.exchange(true, ordering: .acquiringAndReleasing) else { return }
        queue.async { [self] in tick() }
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    private func tick() {
        guard !stopped.load(ordering: .relaxed) else { return }
        sample(now: WallClock.now(), clock: ContinuousClock.now)
        queue.asyncAfter(deadline: .now() + .seconds(1)) { [weak self] in self?.tick() }
    }

    /// Seconds between two points of `model`.
    static func interval(_ model: MonitoredModel) -> Double {
        max(1, model.context.configuration.window.duration.seconds / Double(pointsPerWindow))
    }

    /// The longest window of `model`'s quality SLOs, if it has any.
    static func qualityWindow(_ model: MonitoredModel) -> Double? {
        model.context.configuration.slos.lazy.filter { $0.type == .quality }.map(\.window.seconds).max()
    }

    /// Takes a point of every model that is due. With `clock` (the timer's ticks), a step of the wall clock since the
    /// last tick (an NTP step: the wall clock moved more than 2 s more or less than the monotonic one) first moves every
    /// point by the step, so that the history keeps its spacing on the new clock: after a step back, the page showed
    /// "collecting…" for as long as the step (no point was older than now), and after a step forward its rates ran over
    /// the step's length.
    func sample(now: Double, clock: ContinuousClock.Instant? = nil) {
        if let clock {
            let step = lastTick.withLock { last -> Double in
                defer { last = (now, clock) }
                guard let last else { return 0 }
                return (now - last.wall) - (clock - last.clock).seconds
            }
            if abs(step) > 2 { move(by: step) }
        }
        // A model that appeared since the last tick (a reload added it) counted from zero when it was built, after
        // that tick: its first point is zero then (every tick's time is kept, points due or not: a model's points
        // come every window/120 s, and a zero point at the last point taken spread its first counts over time it did
        // not exist). Before, its first point was its counts at the next tick, up to a second later, and what came in
        // that second (a burst of errors) never showed in its window. (At the first tick there is none: the models'
        // counts then, restored from a checkpoint, are the base.)
        let previous = lastSampled.withLock { last -> Double? in
            defer { last = now }
            return last
        }
        let names = monitor.modelNames
        let configured = Set(names)
        // Models with no point yet: new since the last tick (a reload added them), or the first tick.
        let fresh = Set(rings.withLock { rings in names.filter { rings[$0]?.isEmpty ?? true } })
        let due = rings.withLock {
            self.due(in: &$0, names: names, configured: configured, now: now, time: \WindowPoint.time) {
                Self.interval($0)
            }
        }
        let qualityDue = qualityRings.withLock {
            self.due(in: &$0, names: names, configured: configured, now: now, time: \QualityPoint.time) { model in
                Self.qualityWindow(model).map { max(1, $0 / Double(Self.pointsPerWindow)) }
            }
        }
        guard !due.isEmpty || !qualityDue.isEmpty else { return }
        let parts = monitor.parts().filter {
            (due.contains($0.model) && Self.sampledCollectors.contains($0.collector))
                || ($0.collector == "quality" && qualityDue.contains($0.model))
        }
        let snapshot = registry.snapshot(
            of: parts, timeout: .seconds(5), families: WindowPoint.families.union(QualityPoint.families.names))
        // Each model's samples apart once, and the points made before the lock is taken. Before, each point scanned
        // every model's samples (and every ring key was looked for in the list of names), inside the lock that a page
        // reading the history waits for: with 3,000 models an idle exporter (a debug build) took about a core, and a
        // model's page that came during a tick took 21-24 s.
        let byModel = snapshot.partitioned(by: "model")
        let points = due.map { ($0, WindowPoint(model: $0, snapshot: byModel[$0] ?? MetricSnapshot(), time: now)) }
        let qualityPoints = qualityDue.map {
            ($0, QualityPoint(model: $0, snapshot: byModel[$0] ?? MetricSnapshot(), time: now))
        }
        // Zero at the last tick only for a model new since it; a model that gained its quality SLO by a reload kept
        // its counts, and a zero point put all of them in the SLO's window.
        let qualityTotal = qualityRings.withLock {
            Self.append(qualityPoints, to: &$0) { fresh.contains($0) ? previous.map(QualityPoint.init(time:)) : nil }
        }
        let total = rings.withLock {
            Self.append(points, to: &$0) { name in
                previous.map { WindowPoint(model: name, snapshot: MetricSnapshot(), time: $0) }
            }
        }
        held?.set(Double(total + qualityTotal))
    }

    /// Moves every point, and the last sample's time, by `seconds`.
    func move(by seconds: Double) {
        rings.withLock { Self.move(&$0, by: seconds, time: \.time) }
        qualityRings.withLock { Self.move(&$0, by: seconds, time: \.time) }
        lastSampled.withLock { $0 = $0.map { $0 + seconds } }
    }

    static func move<Point>(_ rings: inout [String: [Point]], by seconds: Double, time: WritableKeyPath<Point, Double>)
    {
        for key in Array(rings.keys) {
            guard var ring = rings.removeValue(forKey: key) else { continue }
            for i in ring.indices { ring[i][keyPath: time] += seconds }
            rings[key] = ring
        }
    }

    /// The models of `names` whose last point in `rings` is at least their interval old (`interval` nil: the model
    /// keeps no ring there, its points dropped); the rings of models not `configured` are dropped.
    func due<Point>(
        in rings: inout [String: [Point]], names: [String], configured: Set<String>, now: Double,
        time: (Point) -> Double, interval: (MonitoredModel) -> Double?
    ) -> Set<String> {
        for key in rings.keys where !configured.contains(key) { rings[key] = nil }
        var due = Set<String>()
        for name in names {
            guard let model = monitor.model(named: name) else { continue }
            guard let every = interval(model) else {
                rings[name] = nil
                continue
            }
            if let last = rings[name]?.last, now - time(last) < every - 0.05 { continue }
            due.insert(name)
        }
        return due
    }

    /// Appends each point to its model's ring (after `zero`'s point, for a ring still empty), keeping the last
    /// ``capacity``; returns the points held in all.
    static func append<Point>(
        _ points: [(String, Point)], to rings: inout [String: [Point]], zero: (String) -> Point?
    ) -> Int {
        for (name, point) in points {
            var ring = rings[name] ?? []
            if ring.isEmpty, let first = zero(name) { ring.append(first) }
            ring.append(point)
            if ring.count > capacity { ring.removeFirst(ring.count - capacity) }
            rings[name] = ring
        }
        return rings.values.reduce(0) { $0 + $1.count }
    }

    /// What happened to `model` over the last `window` seconds up to `current`: from the oldest point within
    /// the window (or the last one before it, when the window starts between two points), through every later
    /// point, as `increase()` adds the increases between samples (a count that went down between two points
    /// restarted there: a reconfigured model); nil when no point is a second older than `current`.
    func change(model: String, window: Double, current: WindowPoint) -> WindowChange? {
        let path = rings.withLock { Self.path(in: $0[model] ?? [], window: window, until: current.time, time: \.time) }
        guard !path.isEmpty else { return nil }
        return WindowChange(along: path + [current])
    }

    /// The points of `ring` a change over the last `window` seconds up to `now` runs along (see
    /// ``change(model:window:current:)``); empty when none is a second older than `now`.
    static func path<Point>(in ring: [Point], window: Double, until now: Double, time: (Point) -> Double) -> [Point] {
        let start = now - window - 0.5
        let usable = ring.filter { time($0) <= now - 1 }
        guard let base = usable.first(where: { time($0) >= start }) ?? usable.last else { return [] }
        return [base] + ring.filter { time($0) > time(base) && time($0) < now }
    }

    /// What `model` had labelled over the last `window` seconds up to `current`, chosen as ``change(model:window:current:)``
    /// chooses its points; nil when no point is a second older than `current`.
    func qualityChange(
        model: String, window: Double, current: QualityPoint
    ) -> (correct: Double, outcomes: Double)? {
        let path = qualityRings.withLock {
            Self.path(in: $0[model] ?? [], window: window, until: current.time, time: \.time)
        }
        guard !path.isEmpty else { return nil }
        return QualityPoint.change(along: path + [current])
    }
}
