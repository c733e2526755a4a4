import Dispatch
import Foundation
import Synchronization
import Testing

@testable import MLOpsExporter

@Suite("Worker pool")
struct WorkerPoolTests {
    /// Records which closures ran, in order.
    final class Log: Sendable {
        let entries = Mutex<[String]>([])
        let done = DispatchSemaphore(value: 0)
        func add(_ entry: String) {
            entries.withLock { $0.append(entry) }
            done.signal()
        }
        /// Waits (at most 5 s each) for `count` entries.
        func wait(for count: Int) -> [String] {
            for _ in 0..<count { _ = done.wait(timeout: .now() + 5) }
            return entries.withLock { $0 }
        }
    }

    /// Submits a job that blocks its thread until `gate` is signalled, and waits until it runs.
    static func block(
        _ pool: WorkerPool, _ gate: DispatchSemaphore, _ log: Log, key: String? = nil
    )
        -> WorkerPool
        .Submission
    {
        let started = DispatchSemaphore(value: 0)
        let submission = pool.submit(
            key: key,
            run: {
                started.signal()
                gate.wait()
                log.add("blocker")
            }, expired: { log.add("blocker expired") })
        _ = started.wait(timeout: .now() + 5)
        return submission
    }

    @Test func refusesBeyondThreadsPlusQueue() {
        let pool = WorkerPool(limits: WorkerLimits(threads: 1, queue: 2, maxQueueWait: .seconds(60)))
        let gate = DispatchSemaphore(value: 0)
        let log = Log()
        #expect(Self.block(pool, gate, log) == .accepted)
        #expect(pool.submit(run: { log.add("a") }, expired: { log.add("a expired") }) == .accepted)
        #expect(pool.submit(run: { log.add("b") }, expired: { log.add("b expired") }) == .accepted)
        #expect(!pool.hasRoom)
        #expect(pool.submit(run: { log.add("c") }, expired: { log.add("c expired") }) == .queueFull)
        gate.signal()
        #expect(log.wait(for: 3) == ["blocker", "a", "b"])
        // Room again once the jobs are done.
        #expect(pool.submit(run: { log.add("d") }, expired: {}) == .accepted)
        #expect(log.wait(for: 1) == ["blocker", "a", "b", "d"])
    }

    @Test func limitsEachKeyAndForgetsKeysWithoutJobs() {
        let pool = WorkerPool(
            limits: WorkerLimits(threads: 1, queue: 8, perKey: 2, maxQueueWait: .seconds(60)))
        let gate = DispatchSemaphore(value: 0)
        let log = Log()
        #expect(Self.block(pool, gate, log, key: "10.0.0.1") == .accepted)
        #expect(pool.submit(key: "10.0.0.1", run: { log.add("second") }, expired: {}) == .accepted)
        #expect(pool.submit(key: "10.0.0.1", run: { log.add("third") }, expired: {}) == .keyLimit)
        #expect(pool.submit(key: "10.0.0.2", run: { log.add("other") }, expired: {}) == .accepted)
        #expect(pool.submit(run: { log.add("no key") }, expired: {}) == .accepted)
        gate.signal()
        #expect(log.wait(for: 4) == ["blocker", "second", "other", "no key"])
        #expect(pool.submit(key: "10.0.0.1", run: { log.add("again") }, expired: {}) == .accepted)
        #expect(log.wait(for: 1).last == "again")
    }

    /// A job is expired once it has waited its time, while every thread is still busy: before, the wait was checked
    /// only when a thread took the job, so its client waited for the whole of the job ahead (a bcrypt check at cost
    /// 17: 13 s) and then got its 503.
    @Test func expiresJobsThatWaitedTooLongWhileEveryThreadIsBusy() {
        let pool = WorkerPool(
            // 300 ms: the blocker itself must reach the worker within that (50 ms was missed once on a loaded
            // 2-core machine, and the blocker expired instead of the late job).
            limits: WorkerLimits(threads: 1, queue: 4, perKey: 1, maxQueueWait: .milliseconds(300)))
        let gate = DispatchSemaphore(value: 0)
        let log = Log()
        #expect(Self.block(pool, gate, log) == .accepted)
        let submitted = ContinuousClock.now
        #expect(
            pool.submit(key: "k", run: { log.add("late") }, expired: { log.add("late expired") }) == .accepted)
        #expect(log.wait(for: 1) == ["late expired"])
        #expect(ContinuousClock.now - submitted < .seconds(3))
        // Its place and its key's share are given back.
        #expect(pool.jobs == 1)
        #expect(pool.submit(key: "k", run: { log.add("next") }, expired: { log.add("next expired") }) == .accepted)
        gate.signal()
        #expect(log.wait(for: 2).prefix(2) == ["late expired", "blocker"])
    }

    @Test func shutdownExpiresWaitingJobsAndRefusesNewOnes() {
        let pool = WorkerPool(limits: WorkerLimits(threads: 1, queue: 4, maxQueueWait: .seconds(60)))
        let gate = DispatchSemaphore(value: 0)
        let log = Log()
        #expect(Self.block(pool, gate, log) == .accepted)
        #expect(pool.submit(run: { log.add("waiting") }, expired: { log.add("waiting expired") }) == .accepted)
        pool.shutdown()
        #expect(pool.submit(run: { log.add("new") }, expired: {}) == .queueFull)
        gate.signal()
        #expect(log.wait(for: 2) == ["blocker", "waiting expired"])
    }

    @Test func neverRunsAJobOnTheSubmittingThread() {
        let pool = WorkerPool(limits: WorkerLimits(threads: 2, queue: 2, maxQueueWait: .seconds(60)))
        let log = Log()
        let caller = pthread_self()
        #expect(
            pool.submit(run: { log.add(pthread_equal(pthread_self(), caller) != 0 ? "caller" : "worker") }, expired: {})
                == .accepted)
        #expect(log.wait(for: 1) == ["worker"])
    }
}
