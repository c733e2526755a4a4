import BenchmarkFixtures
import DriftFixtures
import ExporterConfig
import Exposition
import Foundation
import Ingestion
import Logging
import ModelMonitoring
import StateStorage
import Synchronization

// Checkpoint and restore of the models' state (issue 15's benchmark), without the benchmark framework:
//
//   checkpoint-bench [--models 10] [--features 50] [--per-slice 4000] [--pending 100000] [--repeat 5]
//                    [--dir DIR] [--ingest-seconds 2] [--threads 2]
//
// Builds `models` models of `features` features (every 4th categorical) with service, drift (default methods:
// K-S / Wasserstein keep 1,000 fine counts per numeric column), quality and fairness; fills all 12 slices of their
// one-hour window (`per-slice` events per slice and model, 19 of 20 followed by their label), then adds `pending`
// predictions with ids and no label per model (`max_pending` = `pending`). Then:
// - checkpoint: `Checkpointer.checkpoint()` (encode + write + fsync + rename) `repeat` times: ms, encode ms, bytes;
// - restore: a fresh monitor of the same models restores the file `repeat` times: ms;
// - ingestion during checkpoints: `threads` threads record events (each with a fresh id) for `ingest-seconds`,
//   alone, then while a thread at the checkpoint thread's priority writes checkpoints back to back, alternated three
//   times; events per second of both, and their ratio.
// Prints JSON.

func option(_ name: String, _ arguments: [String]) -> String? {
    guard let i = arguments.firstIndex(of: "--" + name), i + 1 < arguments.count else { return nil }
    return arguments[i + 1]
}

func json(_ object: Any) -> String {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    return String(decoding: data, as: UTF8.self)
}

func summary(_ values: [Double]) -> [String: Double] {
    let sorted = values.sorted()
    return ["min": sorted.first ?? 0, "median": sorted[sorted.count / 2], "max": sorted.last ?? 0]
}

let arguments = CommandLine.arguments
let modelCount = Int(option("models", arguments) ?? "10")!
let features = Int(option("features", arguments) ?? "50")!
let perSlice = Int(option("per-slice", arguments) ?? "4000")!
let pending = Int(option("pending", arguments) ?? "100000")!
let repeats = Int(option("repeat", arguments) ?? "5")!
let ingestSeconds = Double(option("ingest-seconds", arguments) ?? "2")!
let threads = Int(option("threads", arguments) ?? "2")!
let directory = option("dir", arguments) ?? NSTemporaryDirectory() + "checkpoint-bench-\(getpid())"
var logger = Logger(label: "checkpoint-bench")
logger.logLevel = .critical

let collectors = ["service", "drift", "quality", "fairness"]

/// A monitor of the workload's models with `max_pending` = `pending`.
func makeMonitor() throws -> (ModelMonitor, [MonitoredModel]) {
    let configurations = DriftWorkload.configurations(models: modelCount, features: features, collectors: collectors)
        .map { c -> ModelConfiguration in
            var c = c
            c.maxPending = pending
            return c
        }
    let monitor = ModelMonitor()
    monitor.apply(
        try monitor.prepare(
            ExporterConfiguration(models: configurations, source: "bench"),
            references: DriftWorkload.references(for: configurations)))
    return (monitor, configurations.map { monitor.model(named: $0.name)! })
}

let fixture = try DriftFixture(
    models: modelCount, features: features, service: true, eventPool: 8192, collectors: collectors)
let now = Date().timeIntervalSince1970
let (monitor, models) = try makeMonitor()
// Fill through the fixture's models, then move their state into the monitor with max_pending = pending: the
// fixture's own models have the default max_pending. Simpler: record the same traffic into `models` directly.
var rejected = 0
for model in models {
    for s in 0..<12 {
        let t = now - Double(s) * DriftWorkload.sliceSeconds
        for i in 0..<perSlice {
            let k = (s * perSlice + i) % fixture.events.count
            var event = fixture.events[k]
            event.id = "\(s)-\(i)"
            if model.record(event, receivedAt: t) != nil { rejected += 1 }
            if i % 20 != 19 {
                model.record(label: LabelEvent(id: "\(s)-\(i)", label: fixture.labels[k]), receivedAt: t)
            }
        }
    }
    for i in 0..<pending {
        var event = fixture.events[i % fixture.events.count]
        event.id = "pending-\(i)"
        if model.record(event, receivedAt: now - 60 + Double(i) / Double(pending) * 60) != nil { rejected += 1 }
    }
}
precondition(rejected == 0, "\(rejected) events rejected")
let pendingNow = models.map { $0.joiner!.store.counts.pending }.reduce(0, +)

try? FileManager.default.removeItem(atPath: directory)
let checkpointer = Checkpointer(
    directory: directory, monitor: monitor, exporterVersion: "bench", logger: logger)
var checkpointMs: [Double] = []
var encodeMs: [Double] = []
var bytes = 0
// The first checkpoint grows its buffer from nothing (the exporter keeps it from one checkpoint to the next, and
// sizes it from the checkpoint it restored at start): reported on its own.
let first = checkpointer.checkpoint()!
for _ in 0..<repeats {
    let report = checkpointer.checkpoint()!
    checkpointMs.append(report.seconds * 1000)
    encodeMs.append(report.encodeSeconds * 1000)
    bytes = report.bytes
}

var restoreMs: [Double] = []
var restoredPending = 0
for _ in 0..<repeats {
    let (fresh, freshModels) = try makeMonitor()
    let reader = Checkpointer(directory: directory, monitor: fresh, exporterVersion: "bench", logger: logger)
    let start = DispatchTime.now().uptimeNanoseconds
    let report = reader.restore()
    restoreMs.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    precondition(report.failure == nil && report.results.allSatisfy { $0.result == RestoreResult.restored })
    restoredPending = freshModels.map { fresh.model(named: $0.name)!.joiner!.store.counts.pending }.reduce(0, +)
}

/// Events recorded per second by `threads` threads over `seconds` (each event with a fresh id).
func ingestionRate(seconds: Double) -> Double {
    let total = Atomic<Int>(0)
    let group = DispatchGroup()
    for t in 0..<threads {
        group.enter()
        Thread {
            var n = 0
            let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
            let model = models[t % models.count]
            while n < 50_000_000 {
                var event = fixture.events[n % fixture.events.count]
                event.id = "t\(t)-\(n)"
                model.record(event)
                n += 1
                if n % 256 == 0 && DispatchTime.now().uptimeNanoseconds >= deadline { break }
            }
            total.add(n, ordering: .relaxed)
            group.leave()
        }.start()
    }
    let start = DispatchTime.now().uptimeNanoseconds
    group.wait()
    return Double(total.load(ordering: .relaxed)) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
}

// Alternated three times, so that the machine's drift weighs on both alike.
var alone = 0.0
var during = 0.0
let written = Atomic<Int>(0)
for _ in 0..<3 {
    alone += ingestionRate(seconds: ingestSeconds) / 3
    let stop = Atomic<Bool>(false)
    let loop = DispatchGroup()
    loop.enter()
    Thread {
        Checkpointer.lowerThreadPriority()
        while !stop.load(ordering: .relaxed) {
            _ = checkpointer.checkpoint()
            written.add(1, ordering: .relaxed)
        }
        loop.leave()
    }.start()
    during += ingestionRate(seconds: ingestSeconds) / 3
    stop.store(true, ordering: .relaxed)
    loop.wait()
}
try? FileManager.default.removeItem(atPath: directory)

print(
    json([
        "models": modelCount, "features": features, "per_slice": perSlice, "pending_per_model": pending,
        "pending_total": pendingNow, "restored_pending_total": restoredPending, "checkpoint_ms": summary(checkpointMs),
        "encode_ms": summary(encodeMs), "bytes": bytes, "first_checkpoint_ms": first.seconds * 1000,
        "restore_ms": summary(restoreMs),
        "ingest_events_per_second_alone": alone.rounded(),
        "ingest_events_per_second_during_checkpoints": during.rounded(),
        "ingest_ratio": during / alone, "checkpoints_during_ingest": written.load(ordering: .relaxed),
        "threads": threads,
    ]))
