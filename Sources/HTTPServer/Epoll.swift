import CSystemShims
import Glibc

/// Readiness bits of an epoll registration or event.
struct EpollEvents: OptionSet, Hashable {
    let rawValue: UInt32

    static let readable = EpollEvents(rawValue: cshims_epollin())
    static let writable = EpollEvents(rawValue: cshims_epollout())
    /// The peer shut down its sending side (read will return 0 once buffered data is consumed).
    static let readHangup = EpollEvents(rawValue: cshims_epollrdhup())
    /// Always reported, never requested: socket error pending.
    static let error = EpollEvents(rawValue: cshims_epollerr())
    /// Always reported, never requested: both directions are shut down (e.g. after a reset).
    static let hangup = EpollEvents(rawValue: cshims_epollhup())
}

/// A level-triggered epoll instance with a reusable event array. Owned by one ``EventLoop`` thread.
///
/// Level-triggered keeps the loop simple: a descriptor that still has data is reported again, so a
/// handler may read once per wake-up. The price is discipline: interest in `readable` must be dropped
/// whenever the loop will not read (back-pressure, EOF seen) and `writable` is registered only while
/// output is pending, otherwise `epoll_wait` returns at once and the loop spins.
final class Epoll {
    let fd: Int32
    private let events: UnsafeMutablePointer<epoll_event>
    let capacity: Int32

    init(capacity: Int32 = 128) throws(HTTPServerError) {
        fd = epoll_create1(cshims_epoll_cloexec())
        guard fd >= 0 else { throw HTTPServerError(.eventLoopFailed, "epoll_create1 failed", errno: errno) }
        self.capacity = capacity
        events = cshims_epoll_events_allocate(capacity)
    }

    deinit {
        cshims_epoll_events_free(events)
        Syscall.close(fd)
    }

    /// Registers `descriptor` for `interest`, reporting `token` with its events.
    func add(_ descriptor: Int32, interest: EpollEvents, token: UInt64) -> Int32? {
        control(EPOLL_CTL_ADD, descriptor, interest, token)
    }

    /// Changes the interest of a registered descriptor.
    func modify(_ descriptor: Int32, interest: EpollEvents, token: UInt64) -> Int32? {
        control(EPOLL_CTL_MOD, descriptor, interest, token)
    }

    /// Removes a registration (before closing the descriptor, so no stale event can arrive).
    func remove(_ descriptor: Int32) {
        _ = control(EPOLL_CTL_DEL, descriptor, [], 0)
    }

    private func control(_ operation: Int32, _ descriptor: Int32, _ interest: EpollEvents, _ token: UInt64) -> Int32? {
        cshims_epoll_ctl(fd, operation, descriptor, interest.rawValue, token) == 0 ? nil : errno
    }

    /// Waits up to `timeoutMilliseconds` (-1: forever) and returns the number of ready events,
    /// 0 on timeout or EINTR (the caller's loop re-computes its timeout and calls again).
    func wait(timeoutMilliseconds: Int32) -> Int {
        let count = cshims_epoll_wait(fd, events, capacity, timeoutMilliseconds)
        if count < 0 {
            let error = errno
            precondition(error == EINTR, "epoll_wait failed: \(Syscall.describe(error))")
            return 0
        }
        return Int(count)
    }

    /// The events and token of ready event `index` (< the last `wait` result).
    func event(at index: Int) -> (events: EpollEvents, token: UInt64) {
        (
            EpollEvents(rawValue: cshims_epoll_event_mask(events, Int32(index))),
            cshims_epoll_event_token(events, Int32(index))
        )
    }
}
