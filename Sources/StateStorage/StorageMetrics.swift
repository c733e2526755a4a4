import Exposition
import ModelMonitoring
import Synchronization

/// The storage's own metrics (`mlops_storage_*`, docs/storage.md), kept in atomics by the ``Checkpointer`` and
/// written at scrape time. Every reason is exported from the start (at 0), so that `rate()` and `increase()` see the
/// first failure.
public final class StorageMetrics: Collector {
    /// Reasons a checkpoint fails (``CheckpointFailureReason``), as label values.
    public static let checkpointFailureReasons = CheckpointFailureReason.allCases.map(\.rawValue)
    /// Reasons a checkpoint cannot be read at start (``RestoreFailureReason``), as label values.
    public static let restoreFailureReasons = RestoreFailureReason.allCases.map(\.rawValue)

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
                    "Checkpoints that could not be written, by reason (no_space, permission, not_a_directory, io, blocked: a checkpoint this process could not read, or never read, is in the way; locked: another process uses the storage directory, or its lock file cannot be used). The previous checkpoint stays.",
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
                    "Checkpoints that could not be read at start, by reason (foreign, newer_version, truncated, corrupt, unreadable, too_large; locked: another process uses the storage directory, or its lock file cannot be used, nothing is read); the file is renamed checkpoint.corrupt-<time>.",
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
    let failures = AtomicSlots(count: CheckpointFailureReason.allCases.count)
    let lastSuccess = Atomic<UInt64>(0)
    let duration = Atomic<UInt64>(0)
    let encode = Atomic<UInt64>(0)
    let bytes = Atomic<UInt64>(0)
    let restoreFailures = AtomicSlots(count: RestoreFailureReason.allCases.count)
    let restoreDuration = Atomic<UInt64>(0)
    /// Restore results (model, result) → count; written once at start, bounded by the checkpoint's models.
    let restores = Mutex<[(model: String, result: RestoreResult)]>([])

    /// Zeroed metrics.
    public init() {}

    func failed(_ reason: CheckpointFailureReason) { failures.add(reason.slot) }

    func restoreFailed(_ reason: RestoreFailureReason) { restoreFailures.add(reason.slot) }

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
        for reason in CheckpointFailureReason.allCases {
            sink.counter(f.failures, [reason.rawValue], value: Double(failures.load(reason.slot)))
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
        for reason in RestoreFailureReason.allCases {
            sink.counter(f.restoreFailures, [reason.rawValue], value: Double(restoreFailures.load(reason.slot)))
        }
        sink.gauge(f.restoreDuration, value: Double(bitPattern: restoreDuration.load(ordering: .relaxed)))
    }
}

/// Why a checkpoint is not written (`mlops_storage_checkpoint_failures_total{reason}`; the raw value is the label).
public enum CheckpointFailureReason: String, Sendable, CaseIterable {
    /// ENOSPC, EDQUOT, EFBIG.
    case noSpace = "no_space"
    /// EACCES, EPERM, EROFS.
    case permission
    /// ENOTDIR, ENOENT: the directory is missing or not one.
    case notADirectory = "not_a_directory"
    /// Any other I/O error.
    case io
    /// A checkpoint this process did not read is in the way (an unreadable one could not be set aside, or the
    /// directory was unusable at start and a checkpoint appeared since): none is written over it.
    case blocked
    /// Another process holds the storage directory's lock (`<directory>/lock`).
    case locked

    /// Its counter's slot: its position in `allCases`.
    var slot: Int {
        switch self {
        case .noSpace: 0
        case .permission: 1
        case .notADirectory: 2
        case .io: 3
        case .blocked: 4
        case .locked: 5
        }
    }
}

/// Why a checkpoint cannot be read at start (`mlops_storage_restore_failures_total{reason}`; the raw value is the
/// label): ``CheckpointFormat/ReadError/reason``, or the file cannot be read.
public enum RestoreFailureReason: String, Sendable, CaseIterable {
    /// Not a checkpoint.
    case foreign
    /// Written by a newer format version.
    case newerVersion = "newer_version"
    /// Cut short.
    case truncated
    /// Checksum or structure wrong.
    case corrupt
    /// The file or the directory cannot be read.
    case unreadable
    /// Larger than the most a checkpoint may be.
    case tooLarge = "too_large"
    /// Another process holds the storage directory's lock: its checkpoint is not read (it is that process's state).
    case locked

    /// Its counter's slot: its position in `allCases`.
    var slot: Int {
        switch self {
        case .foreign: 0
        case .newerVersion: 1
        case .truncated: 2
        case .corrupt: 3
        case .unreadable: 4
        case .tooLarge: 5
        case .locked: 6
        }
    }
}
