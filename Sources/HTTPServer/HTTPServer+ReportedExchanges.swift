import Glibc

extension HTTPServer {
    /// Waits until the ``ReverseProxy`` exchanges that ended before the call have been reported to its observer
    /// (``ReverseProxyObserver/proxyExchangeEnded(_:)``), at most `timeout`; returns whether they all were.
    ///
    /// A loop reports the exchanges that ended once their responses are written and no event is ready (at most
    /// 1 ms or 32 exchanges later), so that recording them never delays an answer: a client can read its answer
    /// before the exchange is recorded. A
    /// reader of what the observer records (a scrape) calls this first, so that what a client was answered before
    /// the read began is in it. Waits for the exchanges ended when the call began only (under load the loops end
    /// more all the time): normally none, or one loop iteration's reporting. Must not be called on an event-loop
    /// thread (it returns at once there: its own loop reports only after the handler returns).
    @discardableResult
    public func waitForEndedExchangesReported(timeout: Duration) -> Bool {
        let loops = runningLoops
        guard !loops.contains(where: { $0.isOnLoopThread }) else { return false }
        let ended = loops.map { $0.exchangesEnded.load(ordering: .acquiring) }
        func reported() -> Bool {
            for (loop, count) in zip(loops, ended) where loop.exchangesReported.load(ordering: .acquiring) < count {
                return false
            }
            return true
        }
        if reported() { return true }
        // Polled from 20 us, doubling to 1 ms: a loop reporting a big capture needs the CPU more than the waiters do.
        let deadline = Syscall.monotonicNow() &+ timeout.nanoseconds
        var pause: UInt32 = 20
        while Syscall.monotonicNow() < deadline {
            usleep(pause)
            if reported() { return true }
            pause = min(pause * 2, 1000)
        }
        return false
    }
}
