import BenchmarkFixtures
import DriftFixtures
import ExporterConfig
import Exposition
import Foundation
import Ingestion
import ModelMonitoring
import Profiling

// The drift workloads without the benchmark framework (whose malloc interposer makes valgrind abort):
//
//   drift-profile memory [--models 10] [--features 50] [--method M]
//       memory per model: the drift collector's slots computed from the layout, and the RSS delta of creating
//       the models (and of filling their windows and scraping), as JSON.
//   drift-profile window --config FILE --model NAME --reference FILE --current FILE.ndjson
//                        [--mode record|ingest] [--repeat 5]
//       CPU time of one window: every event of FILE.ndjson recorded (pre-decoded events through `record(_:)`,
//       or the NDJSON through `MonitoredModel.ingest` in batches of 1000: decode + validate + record), then
//       one text scrape; a fresh monitor per repeat; JSON with each repeat's times and the drift verdicts.
//   drift-profile profile --config FILE --model NAME --input FILE --out FILE
//       `Profiler.run`, what `mlops-exporter profile` runs (the one-time cost of a reference), with its CPU time.
//   drift-profile scrape [--iterations 20] [--shift 0] [--collectors drift] [--dump FILE]
//       10 models x 50 features, full window: repeated scrapes (--dump writes the last body). --collectors takes
//       names from service, drift, quality, fairness (comma-separated): with quality or fairness, every model
//       also has 2 sensitive attributes of 3 groups, each prediction an id, and 95% of them their label in
//       the same slice, so that every quality and fairness series has a value. JSON: CPU ms per scrape, body
//       bytes, samples (`series`) and how many of them are NaN.
//   drift-profile record [--features 20] [--iterations 1000000] [--service]
//       (the last two for valgrind --tool=callgrind).

func option(_ name: String, _ arguments: [String]) -> String? {
    guard let i = arguments.firstIndex(of: "--" + name), i + 1 < arguments.count else { return nil }
    return arguments[i + 1]
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("drift-profile: \(message)\n".utf8))
    exit(2)
}

/// Resident set size of this process, in bytes (VmRSS).
func residentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return (Int(line.split(separator: " ")[1]) ?? 0) * 1024
    }
    return 0
}

func json(_ object: Any) -> String {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    return String(decoding: data, as: UTF8.self)
}

/// The drift collector's slots for one model of the workload, from the layout documented in `DriftColumn`:
/// per slice, numeric columns `bins + fine + 5` slots, categorical `values + 1 (other) + 1 (missing)`; totals
/// `bins + 1` per column; 8 bytes a slot. Plus the collector's Double copies of the reference counts, and the
/// profile itself as the model keeps it (Int counts, fine counts and edges; 16-byte strings): both are built
/// before the RSS baseline here, so only the computed figure has them.
func computedBytes(features: Int, slices: Int) -> [String: Int] {
    let numericBins = DriftWorkload.normalDeciles.count + 3
    let fine = 1000
    let numericWidth = numericBins + fine + 5
    let categoricalWidth = DriftWorkload.categories.count + 2
    var width = 0
    var totals = 0
    var referenceDoubles = 0
    var profileWords = 0
    let numericProfileWords = fine + numericBins + (numericBins - 3)
    let categoricalProfileWords = DriftWorkload.categories.count * 3 + 1
    for i in 0..<features {
        if DriftWorkload.isCategorical(i) {
            width += categoricalWidth
            totals += DriftWorkload.categories.count + 2
            referenceDoubles += DriftWorkload.categories.count + 1
            profileWords += categoricalProfileWords
        } else {
            width += numericWidth
            totals += numericBins + 1
            referenceDoubles += numericBins + fine
            profileWords += numericProfileWords
        }
    }
    width += 2 + 2 + numericWidth  // prediction (no, yes, other + missing), score
    totals += 4 + numericBins + 1
    referenceDoubles += 3 + numericBins + fine
    profileWords += 2 * 3 + 1 + numericProfileWords
    return [
        "slots_per_slice": width, "ring_bytes": width * slices * 8, "totals_bytes": totals * 8,
        "reference_copy_bytes": referenceDoubles * 8, "profile_bytes": profileWords * 8,
        "total_bytes": width * slices * 8 + totals * 8 + referenceDoubles * 8 + profileWords * 8,
    ]
}

func memory(_ arguments: [String]) throws {
    let count = Int(option("models", arguments) ?? "10") ?? 10
    let features = Int(option("features", arguments) ?? "50") ?? 50
    // Build the profiles (and the configuration) first, so that the RSS delta is the models alone.
    var configurations = DriftWorkload.configurations(models: count, features: features, service: false)
    let method = option("method", arguments)
    if let method {
        // One method for every column (the computed figure below assumes `auto`: fine counts on numeric columns).
        for i in configurations.indices {
            configurations[i].collectors = [CollectorConfiguration(name: "drift", options: ["method": .string(method)])]
        }
    }
    let references = DriftWorkload.references(for: configurations)
    let registry = Registry()
    let monitor = ModelMonitor()
    try registry.register(monitor)
    let before = residentBytes()
    let prepared = try monitor.prepare(
        ExporterConfiguration(models: configurations, source: "bench"), references: references)
    monitor.apply(prepared)
    let created = residentBytes()
    let models = configurations.map { monitor.model(named: $0.name)! }
    let events = DriftWorkload.events(for: models[0], count: 1024)
    let now = WallClock.now()
    for model in models {
        for s in 0..<12 {
            for i in 0..<1000 { model.record(events[(s * 1000 + i) % 1024], receivedAt: now - Double(s) * 300) }
        }
    }
    let filled = residentBytes()
    let body = registry.render(format: .text)
    let scraped = residentBytes()
    var out: [String: Any] = method == nil ? computedBytes(features: features, slices: 12) : ["method": method!]
    if let drift = models[0].collectors.compactMap({ $0 as? DriftCollector }).first {
        out["collector_slots_per_slice"] = drift.windowSlotsPerSlice
        out["collector_ring_bytes"] = drift.windowSlotsPerSlice * 12 * 8
    }
    out["models"] = count
    out["features"] = features
    out["rss_before"] = before
    out["rss_delta_created_per_model"] = (created - before) / count
    out["rss_delta_filled_per_model"] = (filled - before) / count
    out["rss_delta_scraped_per_model"] = (scraped - before) / count
    out["scrape_bytes"] = body.count
    print(json(out))
}

/// Reads `path` whole.
func read(_ path: String) -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else { fail("cannot read \(path)") }
    return [UInt8](data)
}

/// The NDJSON body split into batches of `size` lines.
func batches(_ body: [UInt8], size: Int) -> [[UInt8]] {
    var out: [[UInt8]] = []
    var start = 0
    var lines = 0
    for (i, byte) in body.enumerated() where byte == UInt8(ascii: "\n") {
        lines += 1
        if lines == size {
            out.append(Array(body[start...i]))
            start = i + 1
            lines = 0
        }
    }
    if start < body.count { out.append(Array(body[start...])) }
    return out
}

func window(_ arguments: [String]) throws {
    guard let configPath = option("config", arguments), let name = option("model", arguments),
        let referencePath = option("reference", arguments), let currentPath = option("current", arguments)
    else { fail("window needs --config, --model, --reference and --current") }
    let mode = option("mode", arguments) ?? "record"
    guard mode == "record" || mode == "ingest" else { fail("--mode is record or ingest") }
    let repeats = Int(option("repeat", arguments) ?? "5") ?? 5
    let model = try Profiler.model(named: name, in: configPath)
    let profile = try ProfileLoader.load(path: referencePath, model: model)
    let references = [model.reference!: LoadedReference(profile: profile, sha256: "bench")]
    let body = read(currentPath)
    let chunks = batches(body, size: 1000)

    var runs: [[String: Any]] = []
    var last: [UInt8] = []
    for _ in 0..<repeats {
        let registry = Registry()
        let monitor = ModelMonitor()
        try registry.register(monitor)
        monitor.apply(
            try monitor.prepare(ExporterConfiguration(models: [model], source: "bench"), references: references))
        let monitored = monitor.model(named: name)!
        // Untimed: the events decoded once (record mode), as embedding code would hold them.
        var events: [PredictionEvent] = []
        if mode == "record" {
            for chunk in chunks {
                _ = try decodePredictions(
                    body: chunk, format: .ndjson, schema: monitored.context.schema, maxEvents: 1000
                ) {
                    event, _ in events.append(event)
                }
            }
        }
        let now = WallClock.now()
        let t0 = processCPUNanos()
        var accepted = 0
        if mode == "record" {
            for event in events where monitored.record(event, receivedAt: now) == nil { accepted += 1 }
        } else {
            for chunk in chunks {
                let report = try chunk.withUnsafeBytes { raw in
                    try monitored.ingest(.predictions, body: raw, format: .ndjson, maxEvents: 1000, receivedAt: now)
                }
                accepted += report.accepted
            }
        }
        let t1 = processCPUNanos()
        last = registry.render(format: .text)
        let t2 = processCPUNanos()
        runs.append([
            "events": accepted, "ingest_cpu_ns": t1 - t0, "scrape_cpu_ns": t2 - t1, "scrape_bytes": last.count,
        ])
    }
    // The drift series of the last scrape, for comparison with Evidently's verdicts.
    var drift: [String: Any] = [:]
    for line in String(decoding: last, as: UTF8.self).split(separator: "\n")
    where line.hasPrefix("mlops_feature_drift_") || line.hasPrefix("mlops_prediction_drift_")
        || line.hasPrefix("mlops_dataset_drift_")
    {
        let parts = line.split(separator: " ")
        drift[String(parts[0])] = Double(parts[1]) ?? Double.nan
    }
    print(json(["mode": mode, "model": name, "runs": runs, "drift": drift]))
}

func profile(_ arguments: [String]) throws {
    guard let configPath = option("config", arguments), let name = option("model", arguments),
        let input = option("input", arguments), let out = option("out", arguments)
    else { fail("profile needs --config, --model, --input and --out") }
    let t0 = processCPUNanos()
    let summary = try Profiler.run(Profiler.Request(configPath: configPath, model: name, input: input, output: out))
    let t1 = processCPUNanos()
    print(json(["cpu_ns": t1 - t0, "rows": summary.profile.rows, "summary": summary.description]))
}

func scrape(_ arguments: [String]) throws {
    let iterations = Int(option("iterations", arguments) ?? "20") ?? 20
    let shift = Double(option("shift", arguments) ?? "0") ?? 0
    let collectors = (option("collectors", arguments) ?? "drift").split(separator: ",").map(String.init)
    if let unknown = collectors.first(where: { !DriftWorkload.knownCollectors.contains($0) }) {
        fail("unknown collector \(unknown) (known: \(DriftWorkload.knownCollectors.joined(separator: ", ")))")
    }
    let fixture = try DriftFixture(
        models: 10, features: 50, service: false, mixedMethods: true, eventPool: 16384, shift: shift,
        collectors: collectors)
    precondition(fixture.fillWindow(slices: 12, perSlice: 1000, now: WallClock.now()) == 0)
    var buffer: [UInt8] = []
    var bytes = 0
    let t0 = processCPUNanos()
    for _ in 0..<iterations { bytes = fixture.scrape(into: &buffer) }
    let t1 = processCPUNanos()
    if let path = option("dump", arguments) {
        // The last scrape's body, to compare two builds' output.
        try Data(buffer.prefix(bytes)).write(to: URL(fileURLWithPath: path))
    }
    // Samples of the last body, and those whose value is NaN (a series without data).
    var series = 0
    var nan = 0
    for line in buffer.prefix(bytes).split(separator: UInt8(ascii: "\n")) where line.first != UInt8(ascii: "#") {
        series += 1
        if line.split(separator: UInt8(ascii: " ")).last.map({ $0.elementsEqual("NaN".utf8) }) == true { nan += 1 }
    }
    print(
        json([
            "iterations": iterations, "bytes": bytes, "cpu_ms_per_scrape": Double(t1 - t0) / 1e6 / Double(iterations),
            "collectors": collectors.joined(separator: ","), "series": series, "nan_series": nan,
        ]))
}

func record(_ arguments: [String]) throws {
    let iterations = Int(option("iterations", arguments) ?? "1000000") ?? 1_000_000
    let features = Int(option("features", arguments) ?? "20") ?? 20
    let fixture = try DriftFixture(models: 1, features: features, service: arguments.contains("--service"))
    let model = fixture.models[0]
    let events = fixture.events
    let mask = events.count - 1
    var rejected = 0
    let t0 = processCPUNanos()
    for i in 0..<iterations where model.record(events[i & mask]) != nil { rejected += 1 }
    let t1 = processCPUNanos()
    print(
        json(["iterations": iterations, "rejected": rejected, "cpu_ns_per_event": Double(t1 - t0) / Double(iterations)])
    )
}

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    switch arguments.first {
    case "memory": try memory(arguments)
    case "window": try window(arguments)
    case "profile": try profile(arguments)
    case "scrape": try scrape(arguments)
    case "record": try record(arguments)
    default: fail("usage: drift-profile memory|window|profile|scrape|record [options] (see main.swift)")
    }
} catch {
    fail("\(error)")
}
