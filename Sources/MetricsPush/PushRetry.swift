#if canImport(Glibc)
    import Glibc
#endif

/// When to try a push again: exponential backoff from ``initialDelay`` doubling up to ``maximumDelay``, with up to
/// 20 % random jitter, until ``deadline`` seconds after the first attempt. A connection that fails, a 5xx and a 429
/// are retried (a 429's or 503's `Retry-After` in seconds is waited for when it is longer than the backoff); any
/// other 4xx is final: the same request would be refused again.
public struct PushRetry: Sendable, Equatable {
    /// Seconds from the first attempt after which no attempt starts (and the last one is cut short).
    public var deadline: Double
    /// The first wait.
    public var initialDelay: Double
    /// The longest wait.
    public var maximumDelay: Double

    /// Creates a policy.
    public init(deadline: Double = 30, initialDelay: Double = 0.25, maximumDelay: Double = 8) {
        self.deadline = deadline
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
    }

    /// The wait before attempt `attempt + 1` (attempt counts from 1), without jitter.
    public func delay(after attempt: Int) -> Double {
        min(maximumDelay, initialDelay * Double(1 << min(attempt - 1, 30)))
    }

    /// Whether a response with `status` is worth another attempt.
    public static func retryable(status: Int) -> Bool { status == 429 || (500...599).contains(status) }
}

/// The outcome of one attempt, as the retry loop sees it.
enum AttemptResult {
    case success(status: Int)
    case status(Int, body: String, retryAfter: Double?)
    case failed(String)
}

/// Pushes to a Pushgateway with `PUT` (replacing every metric of the grouping key, so that a retry, or a rerun of
/// the same run id, replaces rather than adds) and retries per a ``PushRetry``.
public enum Pushgateway {
    /// What a successful push took.
    public struct Outcome: Sendable, Equatable {
        /// The status answered (200, 202).
        public var status: Int
        /// Attempts made, the last successful.
        public var attempts: Int
    }

    /// PUTs `body` (text format 0.0.4) to `target`, retrying per `retry`. Throws ``PushError/status(_:body:attempts:)``
    /// for a final 4xx and ``PushError/deadline(seconds:attempts:last:)`` when the deadline passes.
    public static func push(
        _ body: [UInt8], to target: PushgatewayTarget, retry: PushRetry = PushRetry(),
        log: (String) -> Void = { _ in }
    ) throws(PushError) -> Outcome {
        try run(retry: retry, log: log) { timeout in
            do throws(PushError) {
                let response = try HTTPExchange.send(
                    method: "PUT", host: target.host, port: target.port, path: target.path,
                    contentType: "text/plain; version=0.0.4; charset=utf-8", body: body, timeout: timeout,
                    userAgent: target.userAgent)
                if (200..<300).contains(response.status) { return .success(status: response.status) }
                return .status(
                    response.status, body: response.body,
                    retryAfter: response.header("retry-after").flatMap { Double($0) })
            } catch {
                return .failed(error.description)
            }
        }
    }

    /// The retry loop over `attempt` (given the seconds it may take), with `now` and `sleep` replaceable for tests.
    /// `what` names the attempts in the log (`push`, `remote write`).
    static func run(
        retry: PushRetry, what: String = "push", log: (String) -> Void, now: () -> Double = monotonicNow,
        sleep: (Double) -> Void = sleepSeconds, jitter: () -> Double = { Double.random(in: 0..<0.2) },
        attempt: (Double) -> AttemptResult
    ) throws(PushError) -> Outcome {
        let start = now()
        var attempts = 0
        while true {
            attempts += 1
            let remaining = retry.deadline - (now() - start)
            let last: String
            var wait = retry.delay(after: attempts) * (1 + jitter())
            switch attempt(max(0.05, remaining)) {
            case .success(let status):
                return Outcome(status: status, attempts: attempts)
            case .status(let code, let body, let retryAfter):
                guard PushRetry.retryable(status: code) else {
                    throw .status(code, body: body, attempts: attempts)
                }
                last = "\(code): \(PushError.oneLine(body))"
                if let retryAfter, retryAfter > wait { wait = retryAfter }
            case .failed(let message):
                last = message
            }
            let left = retry.deadline - (now() - start)
            guard left > 0.05 else {
                throw .deadline(seconds: retry.deadline, attempts: attempts, last: last, what: what)
            }
            wait = min(wait, left)
            log("\(what) attempt \(attempts) failed (\(last)); retrying in \(formatted(wait)) s")
            sleep(wait)
        }
    }

    static func formatted(_ x: Double) -> String { String(Double(Int(x * 100)) / 100) }

    static func monotonicNow() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func sleepSeconds(_ seconds: Double) {
        guard seconds > 0 else { return }
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}
