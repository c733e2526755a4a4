import Dispatch

/// Makes libdispatch's timer descriptors while descriptors are free.
///
/// On Linux, libdispatch makes its event loop (an epoll and an eventfd) on the first timer (`asyncAfter`), and
/// the monotonic clock's timerfd when it first arms that clock. Made later, with the process at its open-file
/// limit (any client can bring it there by opening connections), the first two trap (`DISPATCH_INTERNAL_CRASH`:
/// the process died of SIGILL in a CI run, its `asyncAfter` reached after the clients took the last descriptors),
/// and a timerfd that cannot be made leaves the timers unarmed: the status history, the web configuration's
/// watch and the delayed reloads stop, silently. Once made they are kept for the process's life, so making them
/// here, before any listener is open, takes both failures away.
enum DispatchTimerDescriptors {
    /// Makes them (the first call only; later calls return at once). Takes a few milliseconds.
    static func make() { _ = made }

    private static let made: Bool = {
        let queue = DispatchQueue(label: "mlops-exporter.dispatch-descriptors")
        // A timer far off keeps the monotonic clock armed whenever the manager looks at it: the timerfd is made the
        // first time it programs the clock, even if the short timers below were due by then (a late manager runs
        // due timers without programming them).
        let far = DispatchSource.makeTimerSource(queue: queue)
        far.schedule(deadline: .now() + .seconds(3600))
        far.setEventHandler {}
        far.activate()
        // The second short timer is registered after the first fired: the manager handles it in a later pass than
        // the one that ran the first and programmed the far one, so when it fires the timerfd exists.
        for _ in 0..<2 {
            let fired = DispatchSemaphore(value: 0)
            queue.asyncAfter(deadline: .now() + .milliseconds(1)) { fired.signal() }
            fired.wait()
        }
        far.cancel()
        return true
    }()
}
