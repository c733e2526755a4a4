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
        let dropped: CounterHandle
        let afterCrash: GaugeHandle

        init() {
            var s = CollectorSchema()
            checkpoints = try! s.counter("mlops_storage_checkpoints_total", help: "Checkpoints written.")
            failures = try! s.counter(
                "mlops_storage_checkpoint_failures_total",
                help:
                    "Checkpoints that could not be written, by reason (no_space, permission, not_a_directory, io, blocked: an unreadable checkpoint that could not be set aside is in the way; locked: another process uses the storage directory, or its lock file cannot be used). The previous checkpoint stays.",
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
                    "Models found in the checkpoint at start (or, when the storage directory was locked at start, when its lock was taken), by result (restored; changed: configuration changed, counters kept (unless after a crash), windows and pending labels dropped unless only collector options changed; removed: no longer configured; failed: unreadable state, started empty).",
                labels: ["model", "result"])
            restoreFailures = try! s.counter(
                "mlops_storage_restore_failures_total",
                help:
                    "Checkpoints that could not be read at start (or when the lock was taken later), by reason (foreign, newer_version, truncated, corrupt, unreadable, too_large; locked: another process uses the storage directory, or its lock file cannot be used, nothing is read until the lock is taken); the file is renamed checkpoint.corrupt-<time>.",
                labels: ["reason"])
            restoreDuration = try! s.gauge(
                "mlops_storage_restore_duration_seconds",
                help:
                    "Time the last restore took (at start, or when the lock was taken later), not waiting for the lock.",
                unit: "seconds")
            dropped = try! s.counter(
                "mlops_storage_state_dropped_total",
                help:
                    "Models whose state recorded by this process was dropped, by model and reason (late_restore: the storage directory was locked or unusable at start, and the checkpoint restored when its lock was taken replaced what the model recorded since start).",
                labels: ["model", "reason"])
            afterCrash = try! s.gauge(
                "mlops_storage_restored_after_crash",
                help:
                    "1 when the checkpoint restored was left by a process that did not stop cleanly (a crash, a kill, or a last checkpoint that failed): windows and pending labels were restored, every counter restarted from zero (Prometheus reads a reset, not counters stepping back); 0 otherwise."
            )
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
    /// Whether the checkpoint restored was a crashed process's (``Checkpointer``).
    let restoredAfterCrash = Atomic<Bool>(false)
    /// Restore results (model, result) → count; written at start or at the late restore (once: a restore that read
    /// the checkpoint owns the directory), bounded by the checkpoint's models.
    let restores = Mutex<[(model: String, result: RestoreResult)]>([])
    /// States dropped (model, reason), in order: bounded like ``restores``.
    let droppedStates = Mutex<[(model: String, reason: DroppedStateReason)]>([])

    /// Zeroed metrics.
    public init() {}

    func failed(_ reason: CheckpointFailureReason) { failures.add(reason.slot) }

    func restoreFailed(_ reason: RestoreFailureReason) { restoreFailures.add(reason.slot) }

    func dropped(model: String, _ reason: DroppedStateReason) { droppedStates.withLock { $0.append((model, reason)) } }

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
        Self.emit(restores.withLock({ $0 }), f.restores, into: &sink)
        Self.emit(droppedStates.withLock({ $0 }), f.dropped, into: &sink)
        for reason in RestoreFailureReason.allCases {
            sink.counter(f.restoreFailures, [reason.rawValue], value: Double(restoreFailures.load(reason.slot)))
        }
        sink.gauge(f.restoreDuration, value: Double(bitPattern: restoreDuration.load(ordering: .relaxed)))
        sink.gauge(f.afterCrash, value: restoredAfterCrash.load(ordering: .relaxed) ? 1 : 0)
    }
}

extension StorageMetrics {
    /// Emits `pairs` (model, value) as counters of `handle` (model, value), one per distinct pair. Grouped: a crafted
    /// checkpoint may name a model twice, and a series must not be written twice.
    static func emit<Value: RawRepresentable<String> & Hashable>(
        _ pairs: [(String, Value)], _ handle: CounterHandle, into sink: inout CollectorSink
    ) {
        var counts: [String: [Value: Int]] = [:]
        var order: [String] = []
        for (model, value) in pairs {
            if counts[model] == nil { order.append(model) }
            counts[model, default: [:]][value, default: 0] += 1
        }
        for model in order {
            for (value, n) in counts[model]!.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                sink.counter(handle, [model, value.rawValue], value: Double(n))
            }
        }
    }
}

/// Why state a process recorded was dropped (`mlops_storage_state_dropped_total{reason}`; the raw value is the label).
public enum DroppedStateReason: String, Sendable, CaseIterable {
    /// The storage directory was locked (another exporter held it) or unusable at start; when its lock was taken, the
    /// checkpoint found there was restored in place of what the model had recorded since start.
    case lateRestore = "late_restore"
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
    /// An unreadable checkpoint that could not be set aside is in the way: none is written over it. (One this process
    /// never read, the directory having been locked or unusable at start, is restored before the first checkpoint.)
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
