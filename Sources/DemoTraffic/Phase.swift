import Foundation

/// What the demo traffic looks like during a phase.
public enum DemoPhase: String, CaseIterable, Sendable {
    /// Traffic like the reference data: no drift, fair scores, fast and almost error-free.
    case stable
    /// Feature drift: larger fraud amounts, more IN and app traffic, longer trips in snow; the fraud concept
    /// changes with it, so accuracy falls and the ETA errors grow.
    case drift
    /// A biased group: the fraud model scores `gender=female` much higher (a fairness violation).
    case bias
    /// Latency rises through the phase (up to about 20×) and errors and ingestion rejects climb.
    case degraded
    /// Drift, bias and degradation at once.
    case incident

    var drifted: Bool { self == .drift || self == .incident }
    var biased: Bool { self == .bias || self == .incident }
    var degraded: Bool { self == .degraded || self == .incident }
}

/// One step of a schedule: a phase and how long it lasts, in demo seconds (before `--time-scale`).
public struct DemoStep: Equatable, Sendable {
    /// The phase.
    public var phase: DemoPhase
    /// Its length in demo seconds; `nil` for "until the generator stops" (only the last step).
    public var seconds: Double?

    /// A step of `phase` lasting `seconds` (nil: forever).
    public init(phase: DemoPhase, seconds: Double?) {
        self.phase = phase
        self.seconds = seconds
    }
}

/// The phases the generator goes through, in order.
public struct DemoSchedule: Equatable, Sendable {
    /// The steps, in order.
    public var steps: [DemoStep]
    /// Whether the schedule starts again after its last step (otherwise the last step lasts forever).
    public var cycles: Bool

    /// The default, over and over (39 demo minutes): stable 3m, drift 5m, stable 8m, bias 5m, stable 8m,
    /// degraded 5m, incident 5m. The stable gaps let a 10-minute window recover between problems.
    public static let `default` = DemoSchedule(
        steps: [
            DemoStep(phase: .stable, seconds: 180), DemoStep(phase: .drift, seconds: 300),
            DemoStep(phase: .stable, seconds: 480), DemoStep(phase: .bias, seconds: 300),
            DemoStep(phase: .stable, seconds: 480), DemoStep(phase: .degraded, seconds: 300),
            DemoStep(phase: .incident, seconds: 300),
        ], cycles: true)

    /// A schedule of `steps`, cycling or not.
    public init(steps: [DemoStep], cycles: Bool) {
        self.steps = steps
        self.cycles = cycles
    }

    /// Parses `stable:30s,drift:2m,bias` (durations in s, m or h; a number alone is seconds). The last step
    /// may omit its duration (it then lasts until the generator stops); no other may.
    public init(parsing text: String, cycles: Bool) throws(DemoError) {
        var steps: [DemoStep] = []
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        for (index, part) in parts.enumerated() {
            let pieces = part.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard let name = pieces.first, let phase = DemoPhase(rawValue: name) else {
                throw .invalidArgument(
                    "--phases: unknown phase \"\(part)\" (expected one of: "
                        + DemoPhase.allCases.map(\.rawValue).joined(separator: ", ") + ")")
            }
            if pieces.count == 2 {
                guard let seconds = Self.parseDuration(pieces[1]), seconds > 0 else {
                    throw .invalidArgument("--phases: invalid duration \"\(pieces[1])\" (e.g. 30s, 2m, 1h)")
                }
                steps.append(DemoStep(phase: phase, seconds: seconds))
            } else {
                guard index == parts.count - 1, !cycles else {
                    throw .invalidArgument("--phases: \"\(name)\" needs a duration (only the last phase may omit it)")
                }
                steps.append(DemoStep(phase: phase, seconds: nil))
            }
        }
        self.init(steps: steps, cycles: cycles)
    }

    static func parseDuration(_ text: String) -> Double? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600]
        if let last = text.last, let unit = units[last] { return Double(text.dropLast()).map { $0 * unit } }
        return Double(text)
    }

    /// The phase at `elapsed` demo seconds since the start, and the progress through it in [0, 1].
    public func phase(at elapsed: Double) -> (phase: DemoPhase, progress: Double) {
        let total = steps.reduce(0.0) { $0 + ($1.seconds ?? .infinity) }
        var t = elapsed
        if cycles, total.isFinite, total > 0 { t = t.truncatingRemainder(dividingBy: total) }
        for step in steps {
            guard let seconds = step.seconds else { return (step.phase, 0) }
            if t < seconds { return (step.phase, t / seconds) }
            t -= seconds
        }
        return (steps[steps.count - 1].phase, 1)
    }
}

/// Problems the demo generator reports.
public enum DemoError: Error, CustomStringConvertible, Equatable {
    /// A command-line value it cannot use.
    case invalidArgument(String)
    /// A file it could not write.
    case io(String)

    /// The message.
    public var description: String {
        switch self {
        case .invalidArgument(let message), .io(let message): message
        }
    }
}
