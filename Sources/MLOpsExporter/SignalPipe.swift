import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The write end of the pipe that ``SignalPipe``'s handler writes to (-1: none). Set before the handler is
/// installed and reset after it is removed; the handler only reads it.
private nonisolated(unsafe) var signalPipeWriteEnd: Int32 = -1

/// A pipe made ahead by ``SignalPipe/reserve()`` (read end, write end), taken by the next ``SignalPipe``.
private let reservedSignalPipe = Mutex<(Int32, Int32)?>(nil)

/// The signal handler: writes the signal's number to the pipe (`write` is async-signal-safe; a full pipe
/// drops the byte, and a pipe holding unread signals already wakes the reader).
private func writeSignalToPipe(_ signal: Int32) {
    var byte = UInt8(truncatingIfNeeded: signal)
    let saved = errno
    _ = write(signalPipeWriteEnd, &byte, 1)
    errno = saved
}

/// Delivers signals to one thread through a pipe (the self-pipe pattern): a `sigaction` handler, whichever thread
/// the kernel interrupts, writes the signal's number, and ``next()`` reads it. No thread pool is involved, and no
/// thread ignores the signals: one cannot be lost to an ignoring thread or wait for a free pool worker.
/// The signals are unblocked in the thread that creates it: with them blocked everywhere else (``block(_:)`` before
/// any thread starts), the handler only ever interrupts that thread's `read`. One instance at a time per process;
/// ``restore()`` puts the previous handlers back.
final class SignalPipe {
    private let signals: [Int32]
    private var previous: [sigaction] = []
    /// The creating thread's signal mask before the signals were unblocked in it (``restore()`` puts it back).
    private var previousMask = sigset_t()
    private let readEnd: Int32
    private let writeEnd: Int32

    /// Makes the pipe the next instance takes (once; a no-op while one is reserved), so that the instance needs no
    /// descriptor when made: the exporter reserves it before it listens, since clients may take every descriptor
    /// left after that.
    static func reserve() {
        reservedSignalPipe.withLock { reserved in
            if reserved == nil { reserved = makePipe() }
        }
    }

    private static func makePipe() -> (Int32, Int32)? {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return nil }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
        return (fds[0], fds[1])
    }

    /// Installs the handler for `signals`, on the reserved pipe if there is one. Nil if the pipe cannot be made or
    /// another instance is installed.
    init?(signals: [Int32]) {
        guard signalPipeWriteEnd < 0 else { return nil }
        guard let (read, write) = reservedSignalPipe.withLock({ $0.take() }) ?? Self.makePipe() else { return nil }
        readEnd = read
        writeEnd = write
        self.signals = signals
        signalPipeWriteEnd = writeEnd
        for signal in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = writeSignalToPipe
            action.sa_flags = SA_RESTART
            sigemptyset(&action.sa_mask)
            var old = sigaction()
            sigaction(signal, &action, &old)
            previous.append(old)
        }
        // Delivered here even if the process blocked them early (``block(_:)``) for every other thread.
        Self.mask(signals, SIG_UNBLOCK, old: &previousMask)
    }

    /// Blocks `signals` in the calling thread (and the threads it starts afterwards).
    static func block(_ signals: [Int32]) { mask(signals, SIG_BLOCK) }

    /// Whether one of `signals` is pending: sent, and blocked in this thread until ``next()`` takes it (the start
    /// before the handlers are installed).
    static func isPending(_ signals: [Int32]) -> Bool {
        var set = sigset_t()
        guard sigpending(&set) == 0 else { return false }
        return signals.contains { sigismember(&set, $0) == 1 }
    }

    private static func mask(_ signals: [Int32], _ how: Int32) {
        var ignored = sigset_t()
        mask(signals, how, old: &ignored)
    }

    private static func mask(_ signals: [Int32], _ how: Int32, old: inout sigset_t) {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        pthread_sigmask(how, &set, &old)
    }

    /// The signals that have arrived and are not read yet, read without waiting (empty when none).
    func queued() -> [Int32] {
        var out: [Int32] = []
        var descriptor = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
        while poll(&descriptor, 1, 0) == 1, descriptor.revents & Int16(POLLIN) != 0 {
            var byte: UInt8 = 0
            guard read(readEnd, &byte, 1) == 1 else { break }
            out.append(Int32(byte))
        }
        return out
    }

    /// Blocks until one of the signals arrives and returns it.
    func next() -> Int32 {
        var byte: UInt8 = 0
        while true {
            let n = read(readEnd, &byte, 1)
            if n == 1 { return Int32(byte) }
            if n < 0 && errno == EINTR { continue }
            // The write end is ours and open: a read fails only if the descriptor is broken.
            return SIGTERM
        }
    }

    /// Puts the previous handlers back and closes the pipe.
    ///
    /// The signals are blocked in this thread while the handlers change, and its mask from before is then put back: a
    /// signal that came between the old handler's return and the process's exit took the default action (the CLI
    /// exited 129 on a SIGHUP during its stop); with the CLI's mask (them blocked from the start) it stays pending.
    func restore() {
        Self.mask(signals, SIG_BLOCK)
        for (signal, old) in zip(signals, previous) {
            var old = old
            sigaction(signal, &old, nil)
        }
        pthread_sigmask(SIG_SETMASK, &previousMask, nil)
        signalPipeWriteEnd = -1
        close(readEnd)
        close(writeEnd)
    }
}
