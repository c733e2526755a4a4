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
    let schema: CollectorSchema
    let body: @Sendable (inout CollectorSink) throws -> Void

    init(
        _ name: String, _ descriptors: [MetricDescriptor],
        _ body: @escaping @Sendable (inout CollectorSink) throws -> Void
    ) {
        self.name = name
        var schema = CollectorSchema()
        for d in descriptors { _ = try! schema.declare(d) }
        self.schema = schema
        self.body = body
    }

    func collect(into sink: inout CollectorSink) throws { try body(&sink) }
}

/// Emission by family name, for tests written against families described by name: the handle is found in
/// the sink's schema (a name it does not declare gets a handle of no schema, which the sink refuses).
extension CollectorSink {
    func handle(_ name: String, _ type: MetricType) -> FamilyHandle {
        var base = name
        if type == .counter, base.hasSuffix("_total") { base.removeLast(6) }
        if type == .info, base.hasSuffix("_info") { base.removeLast(5) }
        if let i = descriptors.firstIndex(where: { $0.name == base }), descriptors[i].type == type {
            return FamilyHandle(schema: schema, index: i, descriptor: descriptors[i])
        }
        return FamilyHandle(
            schema: -1, index: 0, descriptor: try! MetricDescriptor(name: base, type: type, help: ""))
    }

    mutating func counter(_ name: String, _ values: [String] = [], value: Double, created: Double? = nil) {
        counter(CounterHandle(handle(name, .counter))!, values, value: value, created: created)
    }

    mutating func gauge(_ name: String, _ values: [String] = [], value: Double) {
        gauge(GaugeHandle(handle(name, .gauge))!, values, value: value)
    }

    mutating func unknown(_ name: String, _ values: [String] = [], value: Double) {
        unknown(UnknownHandle(handle(name, .unknown))!, values, value: value)
    }

    mutating func info(_ name: String, _ values: [String]) {
        info(InfoHandle(handle(name, .info))!, values)
    }

    mutating func stateSet(_ name: String, _ values: [String] = [], states: [(String, Bool)]) {
        stateSet(StateSetHandle(handle(name, .stateset))!, values, states: states)
    }

    mutating func histogram(
        _ name: String, _ values: [String] = [], bounds: [Double], counts: [UInt64], sum: Double
    ) {
        histogram(HistogramHandle(handle(name, .histogram))!, values, bounds: bounds, counts: counts, sum: sum)
    }

    mutating func summary(
        _ name: String, _ values: [String] = [], quantiles: [(Double, Double)], count: UInt64, sum: Double
    ) {
        summary(SummaryHandle(handle(name, .summary))!, values, quantiles: quantiles, count: count, sum: sum)
    }
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
