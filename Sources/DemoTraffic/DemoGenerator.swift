import Foundation

/// `mlops-exporter demo`: sends realistic prediction batches and delayed labels for the demo models
/// (examples/demo/models.yaml) to an exporter, phase after phase, until stopped or `duration` passes.
/// Failures of the target (connection errors, non-202 answers, rejected events) are counted and reported on
/// standard error; they never stop the generator.
public final class DemoGenerator {
    /// What to send, where and how fast.
    public struct Options: Sendable {
        /// The exporter's base URL (`http://127.0.0.1:9747`).
        public var target: String
        /// Predictions per (real) second, over both models.
        public var rate: Double = 40
        /// Demo seconds per real second: 10 runs phases and label delays ten times faster.
        public var timeScale: Double = 1
        /// The phases.
        public var schedule: DemoSchedule = .default
        /// Seed of the traffic (the same seed, rate and schedule send the same events).
        public var seed: UInt64 = 1
        /// Real seconds to run; nil: until killed.
        public var duration: Double?
        /// Demo seconds from a prediction to its label (some labels never arrive).
        public var labelDelay: Double = 30
        /// Seconds between batches (real time).
        public var tick: Double = 0.5
        /// The demo models to send traffic for (`fraud`, `eta`): those the target's configuration declares.
        public var models: Set<String> = DemoGenerator.models

        /// Options sending to `target` with the defaults.
        public init(target: String) { self.target = target }
    }

    /// What has been sent so far.
    public struct Stats: Sendable {
        /// Prediction events sent (accepted or not).
        public var predictions = 0
        /// Label events sent.
        public var labels = 0
        /// Events the target accepted.
        public var accepted = 0
        /// Events the target rejected one by one.
        public var rejected = 0
        /// Requests that failed: no connection, or an answer other than 202.
        public var failedRequests = 0
    }

    /// The models the demo generates traffic for (those of examples/demo/models.yaml).
    public static let models: Set<String> = ["fraud", "eta"]

    /// The demo models a target configured with the models `configured` (by name) serves: traffic goes to
    /// those only. Throws when it serves none of them; `source` names the configuration in the message.
    public static func models(configured: [String], source: String) throws(DemoError) -> Set<String> {
        let served = Set(configured).intersection(models)
        guard !served.isEmpty else {
            throw .invalidArgument("\(source) declares neither fraud nor eta (see examples/demo)")
        }
        return served
    }

    private let options: Options
    private let client: DemoHTTPClient
    private var scenario: Scenario
    private var pendingLabels: [(due: Double, model: String, line: String)] = []
    private var pendingHead = 0
    /// Counts so far.
    public private(set) var stats = Stats()
    private var lastReport = 0.0
    private var suppressedErrors = 0
    private var lastErrorReport = -Double.infinity

    /// Checks the options and the target URL.
    public init(options: Options) throws(DemoError) {
        guard options.rate > 0, options.rate <= 100_000 else {
            throw .invalidArgument("--rate must be in (0, 100000]")
        }
        guard options.timeScale > 0, options.timeScale <= 100_000 else {
            throw .invalidArgument("--time-scale must be in (0, 100000]")
        }
        guard !options.models.isEmpty, options.models.isSubset(of: Self.models) else {
            throw .invalidArgument("the demo sends traffic for fraud and eta only (examples/demo/models.yaml)")
        }
        if let duration = options.duration, !(duration > 0) {
            throw .invalidArgument("--duration must be positive")
        }
        self.options = options
        client = try DemoHTTPClient(target: options.target)
        scenario = Scenario(seed: options.seed)
    }

    private static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Runs until `duration` passes (or forever). Returns the counts.
    @discardableResult
    public func run() -> Stats {
        let start = Self.now()
        var nextTick = start
        var carry = 0.0
        var lastPhase: DemoPhase?
        log("demo: sending to \(options.target) at \(options.rate) predictions/s, time scale \(options.timeScale)")
        while true {
            let real = Self.now() - start
            if let duration = options.duration, real >= duration { break }
            let demoTime = real * options.timeScale
            let (phase, progress) = options.schedule.phase(at: demoTime)
            if phase != lastPhase {
                log(String(format: "demo: phase %@ (at %.1f s)", phase.rawValue, real))
                lastPhase = phase
            }
            carry += options.rate * options.tick
            let count = Int(carry)
            carry -= Double(count)
            sendPredictions(count: count, phase: phase, progress: progress, demoTime: demoTime)
            sendDueLabels(demoTime: demoTime)
            if real - lastReport >= 10 {
                lastReport = real
                log(
                    "demo: phase \(phase.rawValue): \(stats.predictions) predictions, \(stats.labels) labels sent; "
                        + "\(stats.accepted) accepted, \(stats.rejected) rejected, \(stats.failedRequests) failed requests"
                )
            }
            nextTick += options.tick
            let wait = nextTick - Self.now()
            if wait > 0 {
                usleep(UInt32(min(wait, 1) * 1_000_000))
            } else if wait < -5 {
                nextTick = Self.now()  // far behind (a stalled target): do not burst to catch up
            }
        }
        log(
            "demo: done: \(stats.predictions) predictions, \(stats.labels) labels sent; \(stats.accepted) accepted, "
                + "\(stats.rejected) rejected, \(stats.failedRequests) failed requests")
        return stats
    }

    private func sendPredictions(count: Int, phase: DemoPhase, progress: Double, demoTime: Double) {
        var fraud = "", eta = ""
        var fraudCount = 0, etaCount = 0
        for _ in 0..<count {
            var isFraud = scenario.random.chance(0.7)
            if !options.models.contains(isFraud ? "fraud" : "eta") { isFraud.toggle() }
            let generated =
                isFraud ? scenario.fraud(phase, progress: progress) : scenario.eta(phase, progress: progress)
            if isFraud {
                fraud += generated.line + "\n"
                fraudCount += 1
            } else {
                eta += generated.line + "\n"
                etaCount += 1
            }
            if let label = generated.label, let id = Self.id(of: generated.line) {
                let delay = options.labelDelay * (0.5 + scenario.random.uniform())
                pendingLabels.append(
                    (demoTime + delay, isFraud ? "fraud" : "eta", "{\"id\":\"\(id)\",\"label\":\(label)}"))
            }
            if let bad = scenario.malformed(phase) {
                if isFraud {
                    fraud += bad + "\n"
                    fraudCount += 1
                } else {
                    eta += bad + "\n"
                    etaCount += 1
                }
            }
        }
        if fraudCount > 0 { post(model: "fraud", kind: "predictions", body: fraud, events: fraudCount) }
        if etaCount > 0 { post(model: "eta", kind: "predictions", body: eta, events: etaCount) }
    }

    private static func id(of line: String) -> Substring? {
        guard let start = line.range(of: "{\"id\":\"")?.upperBound,
            let end = line[start...].firstIndex(of: "\"")
        else { return nil }
        return line[start..<end]
    }

    private func sendDueLabels(demoTime: Double) {
        var bodies: [String: (String, Int)] = [:]
        // Labels are sent in prediction order once their (jittered) delay has passed: a label is never
        // held back by more than the jitter behind an earlier one.
        while pendingHead < pendingLabels.count, pendingLabels[pendingHead].due <= demoTime {
            let entry = pendingLabels[pendingHead]
            bodies[entry.model, default: ("", 0)].0 += entry.line + "\n"
            bodies[entry.model, default: ("", 0)].1 += 1
            pendingHead += 1
        }
        if pendingHead > 10_000 {
            pendingLabels.removeFirst(pendingHead)
            pendingHead = 0
        }
        for model in bodies.keys.sorted() {
            let (body, count) = bodies[model]!
            post(model: model, kind: "labels", body: body, events: count)
        }
    }

    private func post(model: String, kind: String, body: String, events: Int) {
        if kind == "labels" { stats.labels += events } else { stats.predictions += events }
        do {
            let response = try client.post(
                path: "/api/v1/models/\(model)/\(kind)", body: body, contentType: "application/x-ndjson")
            guard response.status == 202 else {
                stats.failedRequests += 1
                reportError(
                    "POST \(model)/\(kind): HTTP \(response.status): "
                        + response.body.prefix(200).split(whereSeparator: \.isNewline).joined(separator: " "))
                return
            }
            let accepted = Self.field("accepted", in: response.body) ?? 0
            let rejected = Self.field("rejected", in: response.body) ?? 0
            stats.accepted += accepted
            stats.rejected += rejected
        } catch {
            stats.failedRequests += 1
            reportError("POST \(model)/\(kind): \(error)")
        }
    }

    private static func field(_ name: String, in body: String) -> Int? {
        guard let start = body.range(of: "\"\(name)\":")?.upperBound else { return nil }
        return Int(body[start...].prefix { $0.isNumber })
    }

    /// At most one error line per second; the others are counted in the next one.
    private func reportError(_ message: String) {
        let t = Self.now()
        if t - lastErrorReport < 1 {
            suppressedErrors += 1
            return
        }
        let more = suppressedErrors > 0 ? " (and \(suppressedErrors) more errors)" : ""
        log("demo: error: \(message)\(more)")
        suppressedErrors = 0
        lastErrorReport = t
    }

    private func log(_ message: String) {
        var line = Array((message + "\n").utf8)
        line.withUnsafeMutableBytes { _ = write(2, $0.baseAddress, $0.count) }
    }

    /// Writes `fraud.csv` and `eta.csv` (`rows` rows of stable traffic each, from `seed`) into `directory`:
    /// the reference data `mlops-exporter profile` turns into examples/demo's reference profiles.
    public static func writeReferenceData(directory: String, rows: Int = 5000, seed: UInt64 = 1) throws(DemoError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            // Before, Foundation's error dictionary (NSCocoaErrorDomain Code=4 …) for a folder not yet made.
            throw .io("cannot write into \"\(directory)\": no such folder (create it first)")
        }
        var scenario = Scenario(seed: seed)
        for model in ["fraud", "eta"] {
            let path = directory + "/\(model).csv"
            let csv = scenario.referenceCSV(model: model, rows: rows)
            do {
                try csv.write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                throw .io("cannot write \(path): \(error.localizedDescription)")
            }
        }
    }
}
