import Exposition
import Foundation
import Logging
import ModelMonitoring
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Keeps every model's state on disk (docs/storage.md): ``restore(now:)`` reads the last checkpoint back at start,
/// before anything is recorded; ``start()`` runs a thread that writes a checkpoint every `interval`, and on
/// ``requestCheckpoint()`` (after a configuration reload); ``stop()`` writes a last one (graceful shutdown).
///
/// Faults never stop the exporter: an unreadable checkpoint is logged, counted
/// (`mlops_storage_restore_failures_total{reason}`), renamed `checkpoint.corrupt-<time>` and every model starts
/// empty; a checkpoint that cannot be written is logged and counted (`mlops_storage_checkpoint_failures_total`) and
/// the previous one stays. If an unreadable checkpoint cannot be set aside, no checkpoint is written over it
/// (`reason="blocked"`) until a later checkpoint can set it aside while it is still that file (another one put in its
/// place, a backup, is read first). One that can be neither read nor renamed for lack of permission (the directory's
/// owner set after start) stays unread: each checkpoint reads it first (`permission` until it can), then restores it.
///
/// One process per directory (``CheckpointFile/lock()``): the restore waits up to ``lockWait`` for a lock another
/// process holds (the exporter it replaces, still writing its last checkpoint). Without it, the process starts
/// empty and restores nothing; at the first checkpoint that gets the lock (the other process exited since), it
/// restores the checkpoint it never read before writing one: the saved state replaces what this process recorded
/// since its start, which is counted (`mlops_storage_state_dropped_total{reason="late_restore"}`) and logged, never
/// written over the saved state. The same holds for a checkpoint that appears in a directory that was unusable at
/// start (a volume mounted late).
///
/// A crash is noticed at the next start: the process that takes the directory makes its `running` marker, and removes
/// it after the last checkpoint of a clean ``stop()``. A checkpoint found with the marker there was left by a process
/// that crashed (or whose last checkpoint failed): its counters are older than what Prometheus last scraped, and
/// would step back, which `rate()` and `increase()` read as a reset whose whole value is counted again. So the models'
/// counters start from zero (a reset Prometheus reads right), their windows and pending predictions are restored
/// (`mlops_storage_restored_after_crash`).
///
/// The checkpoint thread runs at the lowest CPU priority (nice 19) below the event loops and recording, so that under
/// full load a checkpoint takes longer (about 1.5% of a busy core's time: seconds rather than a tenth of one) rather
/// than slowing ingestion.
public final class Checkpointer: Sendable {
    /// The storage directory's files.
    public let file: CheckpointFile
    /// Time between checkpoints.
    public let interval: Duration
    /// How long the restore at start waits for the storage directory's lock while another process holds it.
    public let lockWait: Duration
    /// Asked during the wait for the lock: true ends it (the process is being stopped).
    let stopWaiting: @Sendable () -> Bool
    /// The metrics (register them in the exporter's registry).
    public let metrics: StorageMetrics
    let monitor: ModelMonitor
    let exporterVersion: String
    let logger: Logger
    /// Largest checkpoint read back (a bigger file is refused as `too_large`).
    let maxBytes: Int
    /// One checkpoint at a time; also holds the buffer reused from one checkpoint to the next.
    let writing = Mutex<[UInt8]>([])
    /// An unreadable checkpoint that could not be set aside: never written over. Each checkpoint renames it aside
    /// while it is still that file (its ``CheckpointFile/entryIdentity``); one put in its place meanwhile (a backup)
    /// is read first, as a checkpoint never read.
    struct Blocked {
        let file: CheckpointFile.Identity?
    }
    /// Set (non-nil) while checkpoints are blocked.
    let blocked = Mutex<Blocked?>(nil)
    /// Set once a checkpoint unreadable for lack of permission has been counted and logged: the checkpoints that read
    /// it again until they can count `permission` only, and say it once.
    let permissionReported = Atomic<Bool>(false)
    /// Why the checkpoint last could not be read (what a checkpoint that finds it still unread fails with).
    let unreadError = Mutex<CheckpointFile.IOError?>(nil)
    /// Set once the `running` marker could not be made and that was logged.
    let markerWarned = Atomic<Bool>(false)
    /// The `running` marker a restore found while the checkpoint could not be read for lack of permission: the late
    /// restore that reads it is one after a crash (its own ``markRunning()`` finds the marker this process made).
    let crashBeforeUnread = Atomic<Bool>(false)
    /// Whether the checkpoint at ``CheckpointFile/path`` is this process's to replace: the restore looked and found
    /// none, read it, or set it aside; or this process wrote it. Until then (the directory was unusable or locked at
    /// start: a volume not mounted yet, a symbolic link to nowhere, another exporter still running) a checkpoint that
    /// appears there is never written over: it holds state this process never restored. The next checkpoint restores
    /// it first (``checkpoint(now:)``).
    let owns = Atomic<Bool>(false)
    /// Whether this process made the directory's `running` marker (``markRunning()``), or adopted one a crashed
    /// process left (`adopted`).
    let marked = Atomic<Bool>(false)
    let adopted = Atomic<Bool>(false)
    /// The storage directory's lock (``CheckpointFile/lock()``), once taken: its descriptor, kept open.
    let lockDescriptor = Mutex<Int32?>(nil)
    /// The checkpoint file this process last read or wrote (nil: none there then): a lock lost and taken again keeps
    /// the directory this process's only when the checkpoint is still that file (``takeLock()``).
    let knownCheckpoint = Mutex<CheckpointFile.Identity?>(nil)
    let wake = DispatchSemaphore(value: 0)
    /// Whether a checkpoint was asked for (``requestCheckpoint()``) and not yet begun: asks that arrive meanwhile
    /// join it instead of each adding a wake-up (a semaphore counts them: a flood of reloads queued one checkpoint
    /// each, written one after the other long after the flood).
    let requested = Atomic<Bool>(false)
    let state = Mutex<(running: Bool, stopping: Bool)>((false, false))
    let finished = DispatchSemaphore(value: 0)

    /// A checkpointer of `monitor`'s models in `directory`; `stopWaiting` is asked every 100 ms while the restore
    /// waits for another process's lock, and true ends the wait (the process is being stopped).
    public init(
        directory: String, interval: Duration = .seconds(60), lockWait: Duration = .zero, monitor: ModelMonitor,
        exporterVersion: String, logger: Logger, maxBytes: Int = 4 << 30,
        stopWaiting: @escaping @Sendable () -> Bool = { false }
    ) {
        file = CheckpointFile(directory: directory)
        self.interval = interval
        self.lockWait = lockWait
        self.stopWaiting = stopWaiting
        self.monitor = monitor
        self.exporterVersion = exporterVersion
        self.logger = logger
        self.maxBytes = maxBytes
        metrics = StorageMetrics()
    }

    // MARK: Restore

    /// What a restore found.
    public struct RestoreReport: Sendable {
        /// Per model in the checkpoint, its result.
        public var results: [(model: String, result: RestoreResult)] = []
        /// Why the checkpoint could not be read, if so (its `rawValue` is the `reason` label value).
        public var failure: RestoreFailureReason?
        /// Where an unreadable checkpoint was set aside, or a copy kept of one with a model that could not be read.
        public var setAside: String?
        /// Whether the process that held the directory before did not stop cleanly: the models' counters restarted
        /// from zero, the rest restored.
        public var afterCrash = false
    }

    /// Reads the checkpoint, if any, back into the monitor's models (each model on its own, see
    /// ``ModelMonitoring/ModelMonitor/restore(model:fingerprints:state:now:counters:)``), after waiting up to ``lockWait`` for
    /// the storage directory's lock if another process holds it. Never throws: every fault is logged and counted, and
    /// what could not be read starts empty.
    @discardableResult
    public func restore(now: Double = Date().timeIntervalSince1970) -> RestoreReport {
        writing.withLock { buffer in
            var report = RestoreReport()
            do throws(CheckpointFile.IOError) {
                try file.prepareDirectory()
            } catch {
                failed(
                    &report, .unreadable, "storage: the storage directory is unusable; starting with empty state",
                    ["path": "\(file.directory)", "error": "\(error)"])
                return report
            }
            if let holder = takeLock(waiting: lockWait) {
                failed(
                    &report, .locked,
                    "storage: the storage directory is locked (another process holds it, or its lock file cannot be used); this one starts with empty state and restores the checkpoint once it has the lock, before writing one",
                    ["path": "\(file.directory)", "holder": "\(holder)", "waited": "\(lockWait)"])
                return report
            }
            return read(into: &report, now: now, buffer: &buffer, late: false)
        }
    }

    /// Reads the checkpoint (the lock held) into the monitor's models: at start, or (`late`) at the first checkpoint
    /// of a process that did not read it at start, when each model it restores replaces the one this process
    /// recorded into since its start.
    private func read(
        into report: inout RestoreReport, now: Double, buffer: inout [UInt8], late: Bool
    ) -> RestoreReport {
        let started = DispatchTime.now().uptimeNanoseconds
        defer {
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            metrics.restoreDuration.store(seconds.bitPattern, ordering: .relaxed)
        }
        let crashedBefore = late && crashBeforeUnread.exchange(false, ordering: .relaxed)
        let crashed = markRunning() || crashedBefore
        let bytes: [UInt8]
        do throws(CheckpointFile.IOError) {
            guard let read = try file.read(maxBytes: maxBytes, prefix: CheckpointFormat.magic, checkAbove: 64 << 20)
            else {
                owns.store(true, ordering: .relaxed)
                if crashed {
                    // Before, only "no checkpoint yet": a crash loop before the first checkpoint left no trace.
                    logger.warning(
                        "storage: the process before did not stop cleanly and left no checkpoint (it stopped before its first); starting with empty state",
                        metadata: ["path": "\(file.path)"])
                } else {
                    logger.info(
                        "storage: no checkpoint yet; starting with empty state", metadata: ["path": "\(file.path)"])
                }
                return report
            }
            bytes = read
        } catch {
            let reason: RestoreFailureReason =
                error.code == EFBIG ? .tooLarge : error.code == EBADMSG ? .corrupt : .unreadable
            unreadError.withLock { $0 = error }
            if error.isTransient {
                // Nothing wrong with the file: it stays, unread, and each checkpoint reads it first and fails until it
                // can (as for permissions), so that it is never written over.
                failed(
                    &report, reason,
                    late
                        ? "storage: cannot read the checkpoint this process never read (tried again at the next checkpoint)"
                        : "storage: cannot read the checkpoint now; starting with empty state (it is read again, and restored, before the first checkpoint)",
                    ["path": "\(file.path)", "reason": "\(reason.rawValue)", "error": "\(error)"])
                if crashed { crashBeforeUnread.store(true, ordering: .relaxed) }
                return report
            }
            if error.reason == .permission {
                // Set aside when the directory allows it (a file of another user in a writable directory: checkpoints
                // go on). When the rename fails for lack of permission too (a volume whose owner is set after start),
                // it stays unread: each checkpoint reads it first, and fails as `permission` until it can (that
                // rename failure blocked every checkpoint for the process's life, permissions fixed or not).
                let first = !permissionReported.exchange(true, ordering: .relaxed)
                if first {
                    failed(
                        &report, reason,
                        late
                            ? "storage: cannot read the checkpoint this process never read (permissions)"
                            : "storage: cannot read the checkpoint (permissions); starting with empty state",
                        ["path": "\(file.path)", "reason": "\(reason.rawValue)", "error": "\(error)"])
                }
                report.setAside = setAside(now: now, keepUnreadable: true, quietly: !first)
                if report.setAside == nil && crashed { crashBeforeUnread.store(true, ordering: .relaxed) }
                return report
            }
            failed(
                &report, reason, "storage: cannot read the checkpoint; starting with empty state",
                ["path": "\(file.path)", "reason": "\(reason.rawValue)", "error": "\(error)"])
            // Kept aside like a corrupt one: the next checkpoint must not replace what could not be read.
            permissionReported.store(false, ordering: .relaxed)  // another file's failure: a later one is reported
            report.setAside = setAside(now: now)
            if report.setAside == nil && crashed { crashBeforeUnread.store(true, ordering: .relaxed) }
            return report
        }
        // The first checkpoint will be about this size: its buffer is sized once instead of grown.
        buffer.reserveCapacity(bytes.count + bytes.count / 8)
        let entries: [CheckpointFormat.ModelEntry]
        let header: CheckpointFormat.Header
        do throws(CheckpointFormat.ReadError) {
            (header, entries) = try CheckpointFormat.decode(bytes)
        } catch {
            failed(
                &report, error.reason, "storage: the checkpoint cannot be read; starting with empty state",
                ["path": "\(file.path)", "reason": "\(error.reason.rawValue)", "error": "\(error)"])
            permissionReported.store(false, ordering: .relaxed)
            report.setAside = setAside(now: now)
            // Blocked: the crash is remembered for the read of what a later checkpoint finds there (a backup).
            if report.setAside == nil && crashed { crashBeforeUnread.store(true, ordering: .relaxed) }
            return report
        }
        owns.store(true, ordering: .relaxed)
        permissionReported.store(false, ordering: .relaxed)
        knownCheckpoint.withLock { $0 = file.checkpointIdentity }
        if crashed {
            report.afterCrash = true
            metrics.restoredAfterCrash.store(true, ordering: .relaxed)
            logger.warning(
                "storage: the process that wrote the checkpoint did not stop cleanly (a crash, a kill, or a last checkpoint that failed): windows and pending labels are restored, counters restart from zero so that Prometheus reads a reset rather than counters stepping back",
                metadata: ["path": "\(file.path)", "created": "\(header.created)"])
        }
        for var entry in entries {
            // Which collectors' options changed, when nothing else did (their state starts empty), for the log.
            var changedCollectors: [String]? = nil
            if let context = monitor.model(named: entry.name)?.context, let saved = entry.fingerprints.collectors,
                entry.fingerprints.layout == context.layoutFingerprint,
                saved.count == context.collectorFingerprints.count
            {
                changedCollectors = zip(saved, context.collectorFingerprints).enumerated().filter {
                    $0.element.0 != $0.element.1
                }
                .map { context.configuration.collectors[$0.offset].name }
            }
            let (result, problem) = monitor.restore(
                model: entry.name, fingerprints: entry.fingerprints, state: &entry.state, now: now, counters: !crashed)
            report.results.append((entry.name, result))
            var metadata: Logger.Metadata = ["model": "\(entry.name)", "result": "\(result.rawValue)"]
            if let problem { metadata["problem"] = "\(problem)" }
            if late && (result == .restored || result == .changed) {
                // What this process recorded into the model since its start is gone: the saved state took its place.
                metrics.dropped(model: entry.name, .lateRestore)
                logger.warning(
                    "storage: the checkpoint left by the previous holder of the storage directory replaces this model's state recorded since start",
                    metadata: metadata)
            }
            switch result {
            case .restored: logger.info("storage: model state restored", metadata: metadata)
            case .changed:
                if let changedCollectors {
                    metadata["collectors_changed"] = "\(changedCollectors.joined(separator: ","))"
                    logger.warning(
                        "storage: only collector options changed since the checkpoint: the pending labels and the collectors' state are restored, a changed collector's carried on as by a reload (empty where its state changed shape)",
                        metadata: metadata)
                } else {
                    logger.warning(
                        crashed
                            ? "storage: the model's configuration changed since the checkpoint: its windows and pending labels start empty (and its counters, after a crash)"
                            : "storage: the model's configuration changed since the checkpoint: its windows and pending labels start empty (counters kept)",
                        metadata: metadata)
                }
            case .removed:
                logger.warning(
                    "storage: the model is no longer configured: its saved state is dropped", metadata: metadata)
            case .failed:
                logger.error("storage: the model's saved state cannot be read: it starts empty", metadata: metadata)
            }
        }
        if report.results.contains(where: { $0.1 == .failed }) {
            // The next checkpoint replaces the file: the failed model's saved state is kept in a copy.
            do throws(CheckpointFile.IOError) {
                report.setAside = try file.keepCopy(bytes)
                logger.warning(
                    "storage: a model's saved state could not be read: the checkpoint is kept as a copy",
                    metadata: ["path": "\(report.setAside ?? "")"])
            } catch {
                logger.error(
                    "storage: a model's saved state could not be read, and the checkpoint could not be copied aside",
                    metadata: ["error": "\(error)"])
            }
        }
        metrics.restores.withLock { $0 += report.results }
        logger.info(
            "storage: checkpoint read",
            metadata: [
                "path": "\(file.path)", "written_by": "\(header.exporterVersion)", "created": "\(header.created)",
                "models": "\(entries.count)", "bytes": "\(bytes.count)",
            ])
        return report
    }

    /// A restore that read nothing back: its reason in `report`, counted, and logged.
    private func failed(
        _ report: inout RestoreReport, _ reason: RestoreFailureReason, _ message: Logger.Message,
        _ metadata: Logger.Metadata
    ) {
        report.failure = reason
        metrics.restoreFailed(reason)
        logger.error(message, metadata: metadata)
    }

    /// Makes the directory's `running` marker unless this process made it already (the lock held): whether one was
    /// there before (the process that held the directory last did not stop cleanly). A marker that cannot be made is
    /// logged: a crash of this process would then go unnoticed at the next start.
    func markRunning() -> Bool {
        guard !marked.load(ordering: .relaxed) else { return false }
        let crashed = file.runningMarkerExists
        do throws(CheckpointFile.IOError) {
            try file.markRunning()
            marked.store(true, ordering: .relaxed)
            adopted.store(crashed, ordering: .relaxed)
        } catch {
            // Said once: it is tried at each checkpoint, and a directory that stays read-only said it every interval.
            if !markerWarned.exchange(true, ordering: .relaxed) {
                logger.warning(
                    "storage: the running marker cannot be made: if this process crashes, the next one restores its counters from the last checkpoint (they step back)",
                    metadata: ["path": "\(file.directory)", "error": "\(error)"])
            }
        }
        return crashed
    }

    /// Renames an unreadable checkpoint aside; if that fails, blocks checkpoints so that it is never overwritten
    /// (until a later ``setAside(now:keepUnreadable:quietly:)`` succeeds). `keepUnreadable`: a checkpoint that could
    /// not be read for lack of permission, which a rename refused for lack of permission too leaves unread, not
    /// blocked: the next checkpoint reads it first.
    func setAside(now: Double, keepUnreadable: Bool = false, quietly: Bool = false) -> String? {
        do throws(CheckpointFile.IOError) {
            let target = try file.setAside(now: now)
            owns.store(true, ordering: .relaxed)
            blocked.withLock { $0 = nil }
            permissionReported.store(false, ordering: .relaxed)
            crashBeforeUnread.store(false, ordering: .relaxed)  // nothing unread is left to restore
            logger.warning("storage: the unreadable checkpoint was kept aside", metadata: ["path": "\(target)"])
            return target
        } catch {
            if keepUnreadable && error.reason == .permission {
                if !quietly {
                    logger.error(
                        "storage: the checkpoint can be neither read nor set aside (permissions): it is left unread, and each checkpoint reads it first, failing as permission until it can",
                        metadata: ["path": "\(file.path)", "error": "\(error)"])
                }
                return nil
            }
            blocked.withLock { $0 = Blocked(file: file.entryIdentity) }
            if !quietly {
                logger.error(
                    "storage: the unreadable checkpoint cannot be set aside; no checkpoint will be written over it until it can",
                    metadata: ["path": "\(file.path)", "error": "\(error)"])
            }
            return nil
        }
    }

    /// Takes the storage directory's lock (``takeLock()``), trying again every 100 ms for up to `wait` while another
    /// process holds it: nil once it is this process's, else who holds it.
    func takeLock(waiting wait: Duration) -> String? {
        guard var holder = takeLock() else { return nil }
        guard wait > .zero else { return holder }
        logger.warning(
            "storage: the storage directory is locked by another process; waiting for it",
            metadata: ["path": "\(file.directory)", "holder": "\(holder)", "wait": "\(wait)"])
        let clock = ContinuousClock()
        let start = clock.now
        while clock.now - start < wait {
            if stopWaiting() {
                logger.warning(
                    "storage: asked to stop while waiting for the storage directory's lock; not waiting longer",
                    metadata: ["path": "\(file.directory)", "waited": "\(clock.now - start)"])
                return holder
            }
            usleep(100_000)
            guard let still = takeLock() else {
                logger.info(
                    "storage: the storage directory's lock was released; restoring",
                    metadata: ["path": "\(file.directory)", "waited": "\(clock.now - start)"])
                return nil
            }
            holder = still
        }
        return holder
    }

    /// Takes the storage directory's lock unless this process holds it: nil when it does now, or when the lock cannot
    /// be taken for a reason that is no other user (a directory this process cannot write, a filesystem without record
    /// locks, no space or descriptors: logged, tried again at the next checkpoint); else who holds it (a process id),
    /// or what is in the lock's place in a writable directory (a directory, a link, another user's file): then the
    /// directory is not used, as when another process holds it (it was used without a lock, so two exporters
    /// restored and wrote the same state).
    ///
    /// A lock held is checked to be still the lock file's: one removed or replaced meanwhile (an operator clearing a
    /// "stale" lock) guarded nothing, and another exporter may have taken the directory. It is then taken again; and
    /// unless the checkpoint is still the one this process last read or wrote, the directory's state is no longer
    /// this process's to replace: the next checkpoint restores it first (``owns``). Before, the process went on
    /// writing, and two exporters wrote over each other's state.
    func takeLock() -> String? {
        lockDescriptor.withLock { held -> String? in
            if let fd = held {
                if file.lockIsCurrent(fd) { return nil }
                close(fd)
                held = nil
                let mine = knownCheckpoint.withLock { $0 } == file.checkpointIdentity
                if !mine { owns.store(false, ordering: .relaxed) }
                logger.error(
                    "storage: the lock file was removed or replaced while this process held it; taking it again",
                    metadata: [
                        "path": "\(file.directory)",
                        "checkpoint": "\(mine ? "still this process's" : "written by another process: restored first")",
                    ])
            }
            do throws(CheckpointFile.IOError) {
                switch try file.lock() {
                case .acquired(let fd):
                    held = fd
                    // Taken (again) after another process held it: unless the checkpoint is still the one this process
                    // last read or wrote, that process wrote meanwhile, and its state is restored first. Before, this
                    // was checked only when the lost lock was noticed: an exporter that noticed it before the other's
                    // first write took the lock back later and wrote over the other's state.
                    if owns.load(ordering: .relaxed), knownCheckpoint.withLock({ $0 }) != file.checkpointIdentity {
                        owns.store(false, ordering: .relaxed)
                        logger.warning(
                            "storage: the checkpoint changed while another process held the lock; restoring it first",
                            metadata: ["path": "\(file.directory)"])
                    }
                    return nil
                case .heldBy(let pid):
                    guard let pid else { return "another process" }
                    return pid == "\(getpid())" ? "another Exporter of this process" : "process \(pid)"
                }
            } catch {
                // Something else in the lock's place (a directory, a link, a FIFO, another user's file) in a
                // directory this process can write: used without the lock, two exporters restored and wrote the same
                // state. Anything else (no record locks on the filesystem, ENOLCK; no space or descriptors to make the
                // file; a read-only directory) is not a sign of another user: carry on, and try again.
                let inTheWay: Set<Int32> = [EISDIR, ELOOP, EINVAL, EACCES, EPERM, ENXIO]
                guard inTheWay.contains(error.code), access(file.directory, W_OK) == 0 else {
                    logger.warning(
                        "storage: the storage directory's lock cannot be taken (tried again at the next checkpoint)",
                        metadata: ["path": "\(file.directory)", "error": "\(error)"])
                    return nil
                }
                return "none known: the lock file cannot be used (\(error))"
            }
        }
    }

    // MARK: Checkpoints

    /// What a checkpoint wrote.
    public struct CheckpointReport: Sendable {
        /// Bytes written.
        public var bytes: Int
        /// Seconds spent reading the models' state.
        public var encodeSeconds: Double
        /// Seconds in all.
        public var seconds: Double
    }

    /// Writes a checkpoint now (waiting for one in progress to finish first). Returns what it wrote, or nil when it
    /// failed (logged and counted). A checkpoint there that this process never read (it was locked or unusable at
    /// start) is restored first, replacing what the models recorded since start (counted in
    /// `mlops_storage_state_dropped_total`), so that it is never written over unread.
    @discardableResult
    public func checkpoint(now: Double = Date().timeIntervalSince1970) -> CheckpointReport? {
        writing.withLock { buffer -> CheckpointReport? in
            let started = DispatchTime.now().uptimeNanoseconds
            do throws(CheckpointFile.IOError) {
                try file.prepareDirectory()
                if let holder = takeLock() {
                    metrics.failed(.locked)
                    logger.error(
                        "storage: checkpoint not written: the storage directory is locked (another process holds it, or its lock file cannot be used)",
                        metadata: ["path": "\(file.directory)", "holder": "\(holder)"])
                    return nil
                }
            } catch {
                return failed(error)
            }
            // Blocked: the rename is tried again (a directory made writable since lets it go aside, and checkpoints go
            // on) while the file is still the one that could not be read; another one in its place (a backup put back,
            // or none) is read first, as a checkpoint never read.
            if let stuck = blocked.withLock({ $0 }) {
                if let current = file.entryIdentity, stuck.file == current {
                    guard setAside(now: now, quietly: true) != nil else {
                        metrics.failed(.blocked)
                        logger.error(
                            "storage: checkpoint not written: an unreadable checkpoint could not be set aside",
                            metadata: ["path": "\(file.path)"])
                        return nil
                    }
                } else {
                    blocked.withLock { $0 = nil }
                    owns.store(false, ordering: .relaxed)
                }
            }
            if !owns.load(ordering: .relaxed) {
                if file.exists {
                    if !permissionReported.load(ordering: .relaxed) {
                        logger.warning(
                            "storage: the storage directory holds a checkpoint this process never read (the directory was locked by another process or unusable at start, or the checkpoint replaced): restoring it before the first checkpoint",
                            metadata: ["path": "\(file.path)"])
                    }
                    var report = RestoreReport()
                    _ = read(into: &report, now: now, buffer: &buffer, late: true)
                }
                if blocked.withLock({ $0 }) != nil {
                    metrics.failed(.blocked)
                    logger.error(
                        "storage: checkpoint not written: an unreadable checkpoint could not be set aside",
                        metadata: ["path": "\(file.path)"])
                    return nil
                }
                if !owns.load(ordering: .relaxed) && file.exists {
                    // Still unread (permissions, or short of descriptors or memory): never written over.
                    return failed(
                        unreadError.withLock { $0 }
                            ?? CheckpointFile.IOError(operation: "read \(file.path)", code: EACCES))
                }
            }
            _ = markRunning()
            let encodeStarted = DispatchTime.now().uptimeNanoseconds
            let names = monitor.modelNames
            let models = names.compactMap { monitor.model(named: $0) }
            var w = StateWriter(reusing: &buffer)
            CheckpointFormat.encode(
                exporterVersion: exporterVersion, created: now,
                models: models.map { ($0.name, StateFingerprints(of: $0.context)) }, into: &w
            ) { i, w in models[i].saveState(into: &w) }
            let encoded = DispatchTime.now().uptimeNanoseconds
            defer { buffer = w.take() }
            do throws(CheckpointFile.IOError) {
                try file.write(w.bytes)
                owns.store(true, ordering: .relaxed)
                knownCheckpoint.withLock { $0 = file.checkpointIdentity }
                // What an unread file left behind is over with it (it was removed): a later one is reported anew,
                // and a later late restore is no restore after this process's start's crash.
                permissionReported.store(false, ordering: .relaxed)
                crashBeforeUnread.store(false, ordering: .relaxed)
            } catch {
                return failed(error)
            }
            let finished = DispatchTime.now().uptimeNanoseconds
            let report = CheckpointReport(
                bytes: w.bytes.count, encodeSeconds: Double(encoded - encodeStarted) / 1e9,
                seconds: Double(finished - started) / 1e9)
            metrics.succeeded(
                at: Date().timeIntervalSince1970, duration: report.seconds, encode: report.encodeSeconds,
                bytes: report.bytes)
            logger.debug(
                "storage: checkpoint written",
                metadata: [
                    "path": "\(file.path)", "bytes": "\(report.bytes)", "seconds": "\(report.seconds)",
                    "models": "\(models.count)",
                ])
            return report
        }
    }

    /// A checkpoint not written for `error`: counted and logged.
    private func failed(_ error: CheckpointFile.IOError) -> CheckpointReport? {
        metrics.failed(error.reason)
        logger.error(
            "storage: checkpoint not written; the previous one stays",
            metadata: ["path": "\(file.path)", "reason": "\(error.reason.rawValue)", "error": "\(error)"])
        return nil
    }

    /// Starts the checkpoint thread (once).
    public func start() {
        let first = state.withLock { s -> Bool in
            defer { s.running = true }
            return !s.running
        }
        guard first else { return }
        let thread = Thread { [self] in run() }
        thread.name = "mlops-checkpoint"
        thread.start()
    }

    /// Asks the checkpoint thread for a checkpoint now (after a configuration reload). Asks made before that
    /// checkpoint begins are one: at most one checkpoint is ever pending.
    public func requestCheckpoint() {
        guard state.withLock({ $0.running && !$0.stopping }) else { return }
        if !requested.exchange(true, ordering: .acquiringAndReleasing) { wake.signal() }
    }

    /// Stops the thread and writes a last checkpoint (graceful shutdown); once it is written, removes the `running`
    /// marker (the next start restores the counters too). Returns once it is written. Does nothing when ``start()``
    /// never ran: a process that did not restore must not write its empty state over a checkpoint.
    public func stop() {
        let wasRunning = state.withLock { s -> Bool in
            defer { s.stopping = true }
            return s.running && !s.stopping
        }
        guard wasRunning else { return }
        wake.signal()
        finished.wait()
        finalCheckpoint()
    }

    /// Releases the directory's lock once this checkpointer is done with it (``finalCheckpoint(now:)``,
    /// ``abandon()``): another `Exporter` of the same process may take the directory then (the lock is the
    /// descriptor's, not the process's).
    deinit { releaseLock() }

    func releaseLock() {
        lockDescriptor.withLock { held in
            if let fd = held { file.unlock(fd) }
            held = nil
        }
    }

    /// Writes a last checkpoint and, once it is written, removes the `running` marker, so that the next start restores
    /// the counters too, then releases the directory's lock: what ``stop()`` does once the thread has stopped. Nothing
    /// may be recorded after it.
    @discardableResult
    public func finalCheckpoint(now: Double = Date().timeIntervalSince1970) -> CheckpointReport? {
        defer { releaseLock() }
        guard let report = checkpoint(now: now) else { return nil }
        if marked.load(ordering: .relaxed) { removeMarker() }
        return report
    }

    /// Removes the `running` marker (logged when it cannot be).
    private func removeMarker() {
        do throws(CheckpointFile.IOError) {
            try file.removeRunningMarker()
            marked.store(false, ordering: .relaxed)
        } catch {
            logger.warning(
                "storage: the running marker cannot be removed: the next start restores the last checkpoint as after a crash (counters from zero)",
                metadata: ["path": "\(file.directory)", "error": "\(error)"])
        }
    }

    /// Stops the thread without a checkpoint and removes the `running` marker this process made (one a crashed
    /// process left stays): for a start that failed before anything was served, so that the next start restores the
    /// checkpoint as after a clean stop.
    public func abandon() {
        let wasRunning = state.withLock { s -> Bool in
            defer { s.stopping = true }
            return s.running && !s.stopping
        }
        if wasRunning {
            wake.signal()
            finished.wait()
        }
        writing.withLock { _ in
            if marked.load(ordering: .relaxed) && !adopted.load(ordering: .relaxed) { removeMarker() }
        }
        releaseLock()
    }

    /// The nice value of the checkpoint thread: below the event loops and recording threads (nice 0), so that under
    /// full load a checkpoint takes longer instead of slowing them.
    public static let threadNice: Int32 = 19

    /// Lowers the calling thread's CPU priority to ``threadNice`` (Linux: nice is per thread).
    public static func lowerThreadPriority() {
        #if os(Linux)
            // who = 0 is the calling thread on Linux.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, threadNice)
        #endif
    }

    func run() {
        Self.lowerThreadPriority()
        let seconds = interval.seconds
        while true {
            _ = wake.wait(timeout: .now() + seconds)
            if state.withLock({ $0.stopping }) { break }
            // Cleared before the checkpoint reads the state: an ask that arrives during it gets one more.
            requested.store(false, ordering: .releasing)
            checkpoint()
        }
        finished.signal()
    }
}
