import Exposition
import ModelMonitoring
import Synchronization

/// The storage's own metrics (`mlops_storage_*`, docs/storage.md), kept in atomics by the ``Checkpointer`` and
/// written at scrape time. Every reason is exported from the start (at 0), so that `rate()` and `increase()` see the
/// first failure.
public final class StorageMetrics: Collector {
    /// Reasons a checkpoint fails: see ``CheckpointFile/IOError/reason`` and `blocked` (an unreadable checkpoint
    /// could not be set aside, so none is written over it).
    public static let checkpointFailureReasons = ["no_space", "permission", "not_a_directory", "io", "blocked"]
    /// Reasons a checkpoint cannot be read at start: see ``CheckpointFormat/ReadError/reason``, plus `unreadable`
    /// (the file or directory cannot be read) and `too_large`.
    public static let restoreFailureReasons = [
        "foreign", "newer_version", "truncated", "corrupt", "unreadable", "too_large",
    ]

    struct Families {
        let schema: CollectorSchema
        let checkpoints: CounterHandle
        let failures: CounterHandle
        let lastSuccess: GaugeHandle
        let duration: GaugeHandle
        let encode: GaugeHandle
        let bytes: GaugeHandle
        let restores: CounterHandle
        let restoreFailures: CounterHandle
        let restoreDuration: GaugeHandle

        init() {
            var s = CollectorSchema()
            checkpoints = try! s.counter("mlops_storage_checkpoints_total", help: "Checkpoints written.")
            failures = try! s.counter(
                "mlops_storage_checkpoint_failures_total",
                help:
                    "Checkpoints that could not be written, by reason (no_space, permission, not_a_directory, io, blocked: an unreadable checkpoint could not be set aside). The previous checkpoint stays.",
                labels: ["reason"])
            lastSuccess = try! s.gauge(
                "mlops_storage_last_checkpoint_success_timestamp_seconds",
                help: "When the last checkpoint was written (Unix time; 0 before the first).", unit: "seconds")
            duration = try! s.gauge(
                "mlops_storage_checkpoint_duration_seconds",
                help: "Time the last checkpoint took: reading the state, writing, fsync and rename.", unit: "seconds")
            encode = try! s.gauge(
                "mlops_storage_checkpoint_encode_seconds",
                help:
                    "Time the last checkpoint spent reading the models' state (the part that runs beside ingestion and scrapes).",
                unit: "seconds")
            bytes = try! s.gauge(
                "mlops_storage_checkpoint_bytes", help: "Size of the last checkpoint written.", unit: "bytes")
            restores = try! s.counter(
                "mlops_storage_restore_total",
                help:
                    "Models found in the checkpoint at start, by result (restored; changed: configuration changed, counters kept, windows and pending labels dropped; removed: no longer configured; failed: unreadable state, started empty).",
                labels: ["model", "result"])
            restoreFailures = try! s.counter(
                "mlops_storage_restore_failures_total",
                help:
                    "Checkpoints that could not be read at start, by reason (foreign, newer_version, truncated, corrupt, unreadable, too_large); the file is renamed checkpoint.corrupt-<time>.",
                labels: ["reason"])
            restoreDuration = try! s.gauge(
                "mlops_storage_restore_duration_seconds", help: "Time the restore at start took.", unit: "seconds")
            schema = s
        }
    }

    static let families = Families()
    /// The families.
    public var schema: CollectorSchema { Self.families.schema }
    /// The collector's name.
    public var name: String { "storage" }

    let checkpoints = Atomic<UInt64>(0)
    let failures = AtomicSlots(count: checkpointFailureReasons.count)
    let lastSuccess = Atomic<UInt64>(0)
    let duration = Atomic<UInt64>(0)
    let encode = Atomic<UInt64>(0)
    let bytes = Atomic<UInt64>(0)
    let restoreFailures = AtomicSlots(count: restoreFailureReasons.count)
    let restoreDuration = Atomic<UInt64>(0)
    /// Restore results (model, result) → count; written once at start, bounded by the checkpoint's models.
    let restores = Mutex<[(model: String, result: RestoreResult)]>([])

    /// Zeroed metrics.
    public init() {}

    func failed(_ reason: String) {
        failures.add(Self.checkpointFailureReasons.firstIndex(of: reason) ?? 3)
    }

    func restoreFailed(_ reason: String) {
        restoreFailures.add(Self.restoreFailureReasons.firstIndex(of: reason) ?? 4)
    }

    func succeeded(at time: Double, duration seconds: Double, encode encodeSeconds: Double, bytes size: Int) {
        checkpoints.add(1, ordering: .relaxed)
        lastSuccess.store(time.bitPattern, ordering: .relaxed)
        duration.store(seconds.bitPattern, ordering: .relaxed)
        encode.store(encodeSeconds.bitPattern, ordering: .relaxed)
        bytes.store(UInt64(size), ordering: .relaxed)
    }

    /// Emits the families.
    public func collect(into sink: inout CollectorSink) {
        let f = Self.families
        sink.counter(f.checkpoints, value: Double(checkpoints.load(ordering: .relaxed)))
        for (i, reason) in Self.checkpointFailureReasons.enumerated() {
            sink.counter(f.failures, [reason], value: Double(failures.load(i)))
        }
        sink.gauge(f.lastSuccess, value: Double(bitPattern: lastSuccess.load(ordering: .relaxed)))
        sink.gauge(f.duration, value: Double(bitPattern: duration.load(ordering: .relaxed)))
        sink.gauge(f.encode, value: Double(bitPattern: encode.load(ordering: .relaxed)))
        sink.gauge(f.bytes, value: Double(bytes.load(ordering: .relaxed)))
        // Grouped: a crafted checkpoint may name a model twice, and a series must not be written twice.
        var counts: [String: [RestoreResult: Int]] = [:]
        var order: [String] = []
        for (model, result) in restores.withLock({ $0 }) {
            if counts[model] == nil { order.append(model) }
            counts[model, default: [:]][result, default: 0] += 1
        }
        for model in order {
            for (result, n) in counts[model]!.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                sink.counter(f.restores, [model, result.rawValue], value: Double(n))
            }
        }
        for (i, reason) in Self.restoreFailureReasons.enumerated() {
            sink.counter(f.restoreFailures, [reason], value: Double(restoreFailures.load(i)))
        }
        sink.gauge(f.restoreDuration, value: Double(bitPattern: restoreDuration.load(ordering: .relaxed)))
    }
}
