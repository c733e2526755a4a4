import Glibc
import Logging

/// The process's open-file limit (`RLIMIT_NOFILE`), against the descriptors the exporter's connection caps may hold.
enum OpenFileLimit {
    /// Descriptors kept for everything that is no client connection: listeners, epoll and event fds, the upstream
    /// pool's spares, checkpoint files, the process collector's `/proc` reads.
    static let reserve = 64

    /// Raises the soft limit to the hard one, as Go's runtime does for every program: the usual soft limit (1024, a
    /// systemd service's default) is no more than the default connection cap, and a server out of descriptors cannot
    /// accept a scrape. Logs a warning when even the hard limit is below `needed` (the connection caps plus the upstream
    /// pool) plus ``reserve``: connections beyond it wait, the oldest that sent no request evicted to make room
    /// (`mlops_exporter_http_errors_total{reason="emfile"}`). Returns the soft limit in force (nil if it cannot be read).
    @discardableResult
    static func raise(toServe needed: Int, logger: Logger) -> Int? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let soft = Int(clamping: limit.rlim_cur)  // RLIM_INFINITY (all ones) clamps to Int.max
        if soft < needed + reserve {
            logger.warning(
                "the open-file limit is below what the connection caps may hold: connections past it wait, the oldest without a request evicted to make room (raise `ulimit -n`, or LimitNOFILE= in a systemd unit)",
                metadata: ["open_file_limit": "\(soft)", "needed": "\(needed + reserve)"])
        }
        return soft
    }
}
