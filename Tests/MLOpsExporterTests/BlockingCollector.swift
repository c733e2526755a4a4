import Dispatch
import Exposition
import Synchronization

/// A collector whose first run blocks until released (at most 60 s): a render or scrape under way, held.
final class BlockingCollector: Collector {
    let name = "blocking"
    let entered = DispatchSemaphore(value: 0)
    let release = DispatchSemaphore(value: 0)
    let armed = Atomic<Bool>(true)
    static let (families, value) = try! CollectorSchema.build { try $0.gauge("blocking_value", help: "") }
    var schema: CollectorSchema { Self.families }

    func collect(into sink: inout CollectorSink) throws {
        if armed.exchange(false, ordering: .acquiringAndReleasing) {
            entered.signal()
            _ = release.wait(timeout: .now() + 60)
        }
        sink.gauge(Self.value, value: 1)
    }
}
