import Dispatch
import Exposition
import Foundation
import Synchronization

/// The bounds of a ``WorkerPool``.
public struct WorkerLimits: Sendable, Equatable {
    /// Threads running jobs; at most this many jobs run at once.
    public var threads: Int
    /// Jobs that may wait for a thread; a submission beyond `threads + queue` jobs in the pool is refused.
    public var queue: Int
    /// Most jobs (running and waiting) of one submitter key (a client's address); nil: no per-key limit.
    public var perKey: Int?
    /// A job that waited longer than this for a thread is not run but expired: its client has most likely
    /// given up, and running it would only keep the pool busy after an attacker left.
    public var maxQueueWait: Duration

    /// Limits with the given values; `threads` and `queue` are raised to 1 and 0 at least.
    public init(threads: Int, queue: Int, perKey: Int? = nil, maxQueueWait: Duration) {
        self.threads = max(1, threads)
        self.queue = max(0, queue)
        self.perKey = perKey.map { max(1, $0) }
        self.maxQueueWait = maxQueueWait
    }
}

/// A fixed number of threads running submitted jobs, with a bounded queue: the place for work a client can
/// make expensive (bcrypt, gunzip, decoding large bodies), so that it never runs on an event loop and never
/// piles up without bound.
///
/// Contract:
/// - ``submit(key:run:expired:)`` never blocks and never runs the job on the caller's thread. It refuses
///   (``Submission/queueFull``) when `threads + queue` jobs are running or waiting, and
///   (``Submission/keyLimit``) when `key` already has ``WorkerLimits/perKey`` jobs in the pool; the caller
///   answers 503 or 429 and counts it.
/// - An accepted job gets exactly one of its closures called, on a pool thread: `run`, or `expired` when it
///   waited longer than ``WorkerLimits/maxQueueWait`` or the pool was shut down first. A job is expired once that
///   time has passed even while every thread is busy (a thread of the pool's own watches the queue's oldest job):
///   before, the wait was checked only when a thread took the job, so a client waited behind a slow job (a bcrypt
///   check at cost 17: 13 s) for all of it, and then got its 503.
/// - The per-key table holds only keys with a job in the pool, so it never has more than `threads + queue`
///   entries. It is touched only on submission and completion, under the pool's lock.
/// - The threads stop when the pool is deinitialised or ``shutdown()`` is called; jobs still waiting then
///   are expired.
final class WorkerPool: Sendable {
    /// What became of a submission.
    enum Submission: Equatable {
        /// Queued; one of its closures will run.
        case accepted
        /// `threads + queue` jobs are already in the pool.
        case queueFull
        /// The key already has its ``WorkerLimits/perKey`` jobs in the pool.
        case keyLimit
    }

    let limits: WorkerLimits
    private let core: Core
    private let stopping = Atomic<Bool>(false)

    /// Whether ``shutdown()`` was called (lock-free: read per request).
    var isStopped: Bool { stopping.load(ordering: .relaxed) }

    /// Starts `limits.threads` threads.
    init(limits: WorkerLimits) {
        self.limits = limits
        core = Core(limits: limits)
        for _ in 0..<limits.threads {
            Thread.detachNewThread { [core] in core.work() }
        }
        Thread.detachNewThread { [core] in core.expireOverdue() }
    }

    deinit { core.stop() }

    /// Queues `run` unless the pool or `key`'s share of it is full (see the type's contract).
    func submit(
        key: String? = nil, run: @escaping @Sendable () -> Void, expired: @escaping @Sendable () -> Void
    ) -> Submission {
        core.submit(Job(key: key, enqueued: .now, run: run, expired: expired))
    }

    /// Whether a submission would find room now (a hint: another thread may take it first). Lock-free.
    var hasRoom: Bool { core.load.load(ordering: .relaxed) < limits.threads + limits.queue }

    /// Jobs running or waiting.
    var jobs: Int { core.load.load(ordering: .relaxed) }

    /// Stops the threads once they are idle; waiting jobs are expired, later submissions refused.
    func shutdown() {
        stopping.store(true, ordering: .relaxed)
        core.stop()
    }

    private struct Job: Sendable {
        let key: String?
        let enqueued: ContinuousClock.Instant
        let run: @Sendable () -> Void
        let expired: @Sendable () -> Void
    }

    private struct State {
        /// Waiting jobs, a ring of `queue + threads` slots (a job waits until a thread takes it).
        var ring: [Job?]
        var head = 0
        var waiting = 0
        var running = 0
        var perKey: [String: Int] = [:]
        var stopped = false
    }

    private final class Core: Sendable {
        let limits: WorkerLimits
        let state: Mutex<State>
        /// One signal per queued job, plus one per thread on stop.
        let wakeups = DispatchSemaphore(value: 0)
        /// Running plus waiting jobs, mirrored for the lock-free ``WorkerPool/hasRoom``.
        let load = Atomic<Int>(0)
        /// Signalled when a job is queued into an empty queue (a new oldest job to watch) and on stop.
        let oldestChanged = DispatchSemaphore(value: 0)

        init(limits: WorkerLimits) {
            self.limits = limits
            state = Mutex(State(ring: Array(repeating: nil, count: limits.queue + limits.threads)))
        }

        func submit(_ job: Job) -> Submission {
            let capacity = limits.threads + limits.queue
            var wasEmpty = false
            let outcome = state.withLock { state -> Submission in
                guard !state.stopped, state.waiting + state.running < capacity else { return .queueFull }
                if let key = job.key, let perKey = limits.perKey {
                    let held = state.perKey[key, default: 0]
                    guard held < perKey else { return .keyLimit }
                    state.perKey[key] = held + 1
                }
                state.ring[(state.head + state.waiting) % state.ring.count] = job
                wasEmpty = state.waiting == 0
                state.waiting += 1
                load.store(state.waiting + state.running, ordering: .relaxed)
                return .accepted
            }
            if outcome == .accepted {
                wakeups.signal()
                // A new oldest job for the watcher (a later one's time comes after the oldest's).
                if wasEmpty { oldestChanged.signal() }
            }
            return outcome
        }

        func stop() {
            let wasStopped = state.withLock { state in
                defer { state.stopped = true }
                return state.stopped
            }
            guard !wasStopped else { return }
            for _ in 0..<limits.threads { wakeups.signal() }
            oldestChanged.signal()
        }

        /// The watcher's loop: expires the waiting jobs that waited longer than ``WorkerLimits/maxQueueWait`` (the
        /// oldest first: the queue is in order of arrival), then sleeps until the new oldest one's time or a job is
        /// queued.
        func expireOverdue() {
            while true {
                let now = ContinuousClock.now
                let (overdue, next, stopped) = state.withLock { state -> ([Job], ContinuousClock.Instant?, Bool) in
                    guard !state.stopped else { return ([], nil, true) }
                    var overdue: [Job] = []
                    while state.waiting > 0, let job = state.ring[state.head],
                        now - job.enqueued > limits.maxQueueWait
                    {
                        state.ring[state.head] = nil
                        state.head = (state.head + 1) % state.ring.count
                        state.waiting -= 1
                        release(job, &state)
                        overdue.append(job)
                    }
                    load.store(state.waiting + state.running, ordering: .relaxed)
                    let oldest = state.waiting > 0 ? state.ring[state.head]?.enqueued : nil
                    return (overdue, oldest.map { $0 + limits.maxQueueWait }, false)
                }
                for job in overdue { job.expired() }
                if stopped { return }
                // Slept in steps of at most a minute (a wait of days is not one `DispatchTime` sum).
                let seconds = next.map { min(60, max(0, ($0 - ContinuousClock.now).seconds) + 0.001) } ?? 60
                _ = oldestChanged.wait(timeout: .now() + seconds)
            }
        }

        /// A pool thread's loop.
        func work() {
            while true {
                wakeups.wait()
                enum Next {
                    case job(Job, stopped: Bool)
                    case nothing
                    case exit
                }
                let next = state.withLock { state -> Next in
                    if state.waiting > 0 {
                        let job = state.ring[state.head]!
                        state.ring[state.head] = nil
                        state.head = (state.head + 1) % state.ring.count
                        state.waiting -= 1
                        state.running += 1
                        return .job(job, stopped: state.stopped)
                    }
                    return state.stopped ? .exit : .nothing
                }
                switch next {
                case .exit:
                    return
                case .nothing:
                    continue
                case .job(let job, let stopped):
                    if stopped || ContinuousClock.now - job.enqueued > limits.maxQueueWait {
                        job.expired()
                    } else {
                        job.run()
                    }
                    finished(job)
                }
            }
        }

        private func finished(_ job: Job) {
            state.withLock { state in
                state.running -= 1
                release(job, &state)
                load.store(state.waiting + state.running, ordering: .relaxed)
            }
        }

        /// Gives back `job`'s share of its key (under the lock).
        private func release(_ job: Job, _ state: inout State) {
            if let key = job.key, limits.perKey != nil, let held = state.perKey[key] {
                if held <= 1 { state.perKey[key] = nil } else { state.perKey[key] = held - 1 }
            }
        }
    }
}
