import Dispatch
import Foundation
import Synchronization
import Testing

@testable import Exposition

// Shared helpers for the Exposition unit tests.

/// A registry without self metrics, so that expected outputs contain only what a test registered.
func plainRegistry(emitCreated: Bool = false) -> Registry {
    Registry(options: .init(emitCreated: emitCreated, selfMetricsPrefix: nil))
}

/// Renders `registry` in `format` to a string through the public API.
func rendered(_ registry: Registry, _ format: ExpositionFormat = .text, timeout: Duration = .seconds(10)) -> String {
    String(decoding: registry.render(format: format, timeout: timeout), as: UTF8.self)
}

/// Renders with a synthetic monotonic `now` (internal API), for time-to-live tests.
func rendered(_ registry: Registry, _ format: ExpositionFormat = .text, now: UInt64) -> String {
    var out: [UInt8] = []
    _ = registry.render(format: format, into: &out, timeout: .seconds(10), now: now)
    return String(decoding: out, as: UTF8.self)
}

/// The lines of `text` that start with `prefix`.
func lines(_ text: String, startingWith prefix: String) -> [String] {
    text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { $0.hasPrefix(prefix) }
}

/// Nanoseconds in `seconds` seconds.
func nanos(seconds: Double) -> UInt64 { UInt64(seconds * 1e9) }

/// Runs `body(index)` on `count` dedicated threads (not the test's cooperative pool), released together,
/// and resumes when all have finished.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) async {
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
        let box = ContinuationBox(done, count: count)
        let start = DispatchSemaphore(value: 0)
        for i in 0..<count {
            Thread {
                start.wait()
                body(i)
                box.finished()
            }.start()
        }
        for _ in 0..<count { start.signal() }
    }
}

/// Resumes a continuation when the last of `count` threads has finished.
final class ContinuationBox: Sendable {
    let remaining: Atomic<Int>
    let continuation: Mutex<CheckedContinuation<Void, Never>?>

    init(_ c: CheckedContinuation<Void, Never>, count: Int) {
        remaining = Atomic(count)
        continuation = Mutex(c)
    }

    func finished() {
        if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
            continuation.withLock { $0.take() }?.resume()
        }
    }
}

/// A collector defined by a closure.
struct ClosureCollector: Collector {
    let name: String
    let descriptors: [MetricDescriptor]
    let body: @Sendable (inout CollectorSink) throws -> Void

    init(
        _ name: String, _ descriptors: [MetricDescriptor],
        _ body: @escaping @Sendable (inout CollectorSink) throws -> Void
    ) {
        self.name = name
        self.descriptors = descriptors
        self.body = body
    }

    func collect(into sink: inout CollectorSink) throws { try body(&sink) }
}

/// Lets a test hold a collector inside `collect` until it releases it: `entered` is signalled when the
/// collector starts blocking, `release` lets it go. Only the first run blocks.
final class Gate: Sendable {
    let entered = DispatchSemaphore(value: 0)
    let release = DispatchSemaphore(value: 0)
    let armed = Atomic<Bool>(true)

    /// Called from `collect`: blocks the first time only.
    func pass() {
        if armed.exchange(false, ordering: .acquiringAndReleasing) {
            entered.signal()
            release.wait()
        }
    }
}

/// A collector writing gauge `<name>_value 1` that blocks on `gate` on its first run.
func blockingCollector(_ name: String, gate: Gate) throws -> ClosureCollector {
    ClosureCollector(name, [try MetricDescriptor(name: name + "_value", type: .gauge, help: "Blocks.")]) { sink in
        gate.pass()
        sink.gauge(name + "_value", value: 1)
    }
}

struct TestError: Error, CustomStringConvertible {
    var description: String { "collector failed on purpose" }
}

/// SplitMix64: a small seeded generator so that property tests are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A value set on one thread and read on another.
final class SharedValue<T: Sendable>: Sendable {
    private let storage = Mutex<T?>(nil)
    func set(_ value: T) { storage.withLock { $0 = value } }
    var value: T? { storage.withLock { $0 } }
}
