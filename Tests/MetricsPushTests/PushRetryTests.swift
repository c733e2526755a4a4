import Foundation
import Glibc
import Synchronization
import Testing

@testable import MetricsPush

@Suite struct PushRetryTests {
    /// A fake clock that sleeping advances.
    final class Clock {
        var now = 0.0
        var slept: [Double] = []
    }

    func run(
        _ retry: PushRetry, _ results: [AttemptResult], clock: Clock = Clock()
    ) -> (Result<Pushgateway.Outcome, PushError>, Int) {
        var attempts = 0
        do {
            let outcome = try Pushgateway.run(
                retry: retry, log: { _ in }, now: { clock.now },
                sleep: {
                    clock.slept.append($0); clock.now += $0
                },
                jitter: { 0 }
            ) { _ in
                attempts += 1
                clock.now += 0.01
                return results[min(attempts - 1, results.count - 1)]
            }
            return (.success(outcome), attempts)
        } catch {
            return (.failure(error), attempts)
        }
    }

    /// A remote write's retries are logged as such (they read "push attempt", as if the Pushgateway had failed).
    @Test func aRemoteWriteLogsItsAttemptsAsRemoteWrites() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)  // bound, never listening: refused at once
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        let receiver = try RemoteWriteReceiver(
            url: "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))/api/v1/write")
        var lines: [String] = []
        let error = #expect(throws: PushError.self) {
            try receiver.postAll([[1, 2, 3]], retry: PushRetry(deadline: 0.6)) { lines.append($0) }
        }
        #expect(error?.description.hasPrefix("remote write failed after") == true, "\(String(describing: error))")
        #expect(!lines.isEmpty && lines.allSatisfy { $0.hasPrefix("remote write attempt ") }, "\(lines)")
    }

    @Test func backoffDoublesUpToItsMaximum() {
        let r = PushRetry(deadline: 30, initialDelay: 0.25, maximumDelay: 2)
        #expect((1...6).map(r.delay(after:)) == [0.25, 0.5, 1, 2, 2, 2])
        #expect(
            PushRetry.retryable(status: 503) && PushRetry.retryable(status: 429) && PushRetry.retryable(status: 500))
        #expect(
            !PushRetry.retryable(status: 400) && !PushRetry.retryable(status: 404) && !PushRetry.retryable(status: 413))
    }

    @Test func failuresAnd5xxAnd429AreRetriedUntilSuccess() {
        let clock = Clock()
        let (result, attempts) = run(
            PushRetry(deadline: 30),
            [
                .failed("refused"), .status(503, body: "", retryAfter: nil),
                .status(429, body: "", retryAfter: 3), .success(status: 200),
            ], clock: clock)
        #expect(attempts == 4)
        #expect((try? result.get())?.attempts == 4)
        #expect(clock.slept == [0.25, 0.5, 3])  // Retry-After is longer than the backoff: waited for
    }

    @Test func other4xxIsFinalAtOnce() {
        let (result, attempts) = run(PushRetry(), [.status(400, body: "bad\nmetric", retryAfter: nil)])
        #expect(attempts == 1)
        guard case .failure(.status(400, let body, 1)) = result else {
            Issue.record("\(result)")
            return
        }
        #expect(body == "bad\nmetric")
        #expect(PushError.status(400, body: body, attempts: 1).description.hasSuffix("bad metric"))
    }

    /// An attempt may take all the time left: each was cut at 10 s, so a Pushgateway that answers in 11 s was never
    /// reached, whatever `--push-timeout` allowed (an attacker of batch found; docs/batch.md: "bounded by the time
    /// left").
    @Test func anAttemptMayTakeAllTheTimeLeft() throws {
        let clock = Clock()
        var given: [Double] = []
        let outcome = try Pushgateway.run(
            retry: PushRetry(deadline: 25), log: { _ in }, now: { clock.now }, sleep: { clock.now += $0 },
            jitter: { 0 }
        ) { timeout in
            given.append(timeout)
            clock.now += 11
            return .success(status: 200)
        }
        #expect(outcome.attempts == 1 && given == [25])
    }

    @Test func theDeadlineEndsTheRetries() {
        let clock = Clock()
        let (result, attempts) = run(
            PushRetry(deadline: 5, initialDelay: 0.25, maximumDelay: 8), [.failed("refused")], clock: clock)
        guard case .failure(.deadline(5, let n, "refused", "push")) = result else {
            Issue.record("\(result)")
            return
        }
        #expect(n == attempts && attempts >= 4)
        #expect(clock.now <= 5.1)
    }

    /// A real socket: a server on a free loopback port answers 503 twice, then 200; the push gets through.
    @Test func retriesAgainstARealServer() throws {
        let server = try TestServer(answers: [503, 503, 200])
        defer { server.stop() }
        let target = try PushgatewayTarget(url: "http://127.0.0.1:\(server.port)", job: "j", labels: [("model", "m")])
        let outcome = try Pushgateway.push(
            Array("x 1\n".utf8), to: target, retry: PushRetry(deadline: 10, initialDelay: 0.01))
        #expect(outcome.attempts == 3 && outcome.status == 200)
        #expect(server.requests.withLock { $0 }.allSatisfy { $0.hasPrefix("PUT /metrics/job/j/model/m HTTP/1.1\r\n") })
        #expect(server.requests.withLock { $0.last?.hasSuffix("\r\n\r\nx 1\n") } == true)
    }

    /// A remote write carries the protocol's headers, its `User-Agent` the sender's name and version (the spec's MUST).
    @Test func aRemoteWriteSaysWhoSendsIt() throws {
        let server = try TestServer(answers: [204])
        defer { server.stop() }
        let receiver = try RemoteWriteReceiver(
            url: "http://127.0.0.1:\(server.port)/api/v1/write", userAgent: "mlops-exporter/9.8.7")
        #expect(receiver.post([1, 2, 3], timeout: 5) == .delivered)
        let request = try #require(server.requests.withLock { $0.first })
        let lines = request.split(separator: "\r\n").map(String.init)
        #expect(lines.first == "POST /api/v1/write HTTP/1.1")
        #expect(lines.contains("User-Agent: mlops-exporter/9.8.7"))
        #expect(
            lines.contains("Content-Encoding: snappy") && lines.contains("X-Prometheus-Remote-Write-Version: 0.1.0"))
        #expect(lines.contains("Content-Type: application/x-protobuf"))
    }

    /// A redirect to another host gets no credentials (a receiver's redirect collected the configured `Authorization`
    /// on any host); other headers (a tenant's `X-Scope-OrgID`) go on, and a redirect on the same host keeps them all.
    @Test func aRedirectToAnotherHostGetsNoCredentials() throws {
        let final = try TestServer(answers: [204, 204])
        defer { final.stop() }
        let first = try TestServer(
            answers: [307, 307],
            locations: [
                0: "http://localhost:\(final.port)/steal", 1: "http://127.0.0.1:\(final.port)/same-host",
            ])
        defer { first.stop() }
        let receiver = try RemoteWriteReceiver(
            url: "http://127.0.0.1:\(first.port)/api/v1/write",
            headers: [("Authorization", "Bearer SECRET"), ("X-Scope-OrgID", "team-a")], userAgent: "t/1")
        #expect(receiver.post([1], timeout: 5) == .delivered)
        #expect(receiver.post([2], timeout: 5) == .delivered)
        let requests = final.requests.withLock { $0 }
        #expect(requests.count == 2)
        let other = try #require(requests.first)
        #expect(other.hasPrefix("POST /steal ") && !other.contains("SECRET") && other.contains("X-Scope-OrgID: team-a"))
        let same = try #require(requests.last)
        #expect(same.hasPrefix("POST /same-host ") && same.contains("Authorization: Bearer SECRET"))
    }

    /// Redirects that keep the method and body (307 to another server, 308 to a path) are followed, as Prometheus'
    /// remote write follows them; a 301 (which would turn the POST into a GET) is the answer; a loop ends.
    @Test func remoteWritesFollowRedirectsThatKeepTheirBody() throws {
        let final = try TestServer(answers: [204])
        defer { final.stop() }
        let first = try TestServer(
            answers: [307, 308, 301],
            locations: [0: "/moved", 1: "http://127.0.0.1:\(final.port)/api/v1/push", 2: "/x"])
        defer { first.stop() }
        let receiver = try RemoteWriteReceiver(url: "http://127.0.0.1:\(first.port)/api/v1/write", userAgent: "t/1")
        #expect(receiver.post([7, 8, 9], timeout: 5) == .delivered)
        let paths = first.requests.withLock { $0 }.map { $0.split(separator: "\r\n").first.map(String.init) }
        #expect(paths == ["POST /api/v1/write HTTP/1.1", "POST /moved HTTP/1.1"])
        let last = try #require(final.requests.withLock { $0.first })
        #expect(last.hasPrefix("POST /api/v1/push HTTP/1.1\r\nHost: 127.0.0.1:\(final.port)\r\n"))
        #expect(last.utf8.suffix(3).elementsEqual([7, 8, 9]))
        guard case .rejected(_, 301, _) = receiver.post([1], timeout: 5) else {
            Issue.record("a 301 was followed")
            return
        }
        let loop = try TestServer(
            answers: Array(repeating: 307, count: 7),
            locations: [0: "/a", 1: "/a", 2: "/a", 3: "/a", 4: "/a", 5: "/a", 6: "/a"])
        defer { loop.stop() }
        let looping = try RemoteWriteReceiver(url: "http://127.0.0.1:\(loop.port)/w", userAgent: "t/1")
        guard case .retry(_, nil, let detail, _) = looping.post([1], timeout: 5) else {
            Issue.record("a redirect loop was not ended")
            return
        }
        #expect(detail.contains("more than 5 redirects"))
        #expect(loop.requests.withLock { $0.count } == 6)
        // What may not go into a request line or Host is not followed.
        #expect(HTTPExchange.redirectTarget("/a b", host: "h", port: 1) == nil)
        #expect(HTTPExchange.redirectTarget("http://ev il/", host: "h", port: 1) == nil)
        #expect(HTTPExchange.redirectTarget("https://h/", host: "h", port: 1) == nil)
        #expect(HTTPExchange.redirectTarget("//h/x", host: "h", port: 1) == nil)
    }

    /// A server answering a byte every 0.2 s (its whole answer would take 12 s) cannot hold a push past its deadline:
    /// every attempt as a whole is bounded by the time left, not each read by itself.
    @Test func aTricklingAnswerIsCutAtTheDeadline() throws {
        let server = try TestServer(answers: [200], trickle: 0.2)
        defer { server.stop() }
        let target = try PushgatewayTarget(url: "http://127.0.0.1:\(server.port)", job: "j", labels: [("model", "m")])
        let started = Date()
        #expect(throws: PushError.self) {
            try Pushgateway.push(Array("x 1\n".utf8), to: target, retry: PushRetry(deadline: 1, initialDelay: 0.01))
        }
        #expect(Date().timeIntervalSince(started) < 4)
    }
}

/// A loopback HTTP server that answers each connection with the next status of `answers` (and closes); with
/// `trickle`, a byte of the answer every `trickle` seconds (a server that holds a client with a slow answer).
final class TestServer: Sendable {
    let fd: Int32
    let port: UInt16
    let requests = Mutex<[String]>([])

    /// `locations`: the `Location` of the answer at that index.
    init(answers: [Int], trickle: Double? = nil, locations: [Int: String] = [:]) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = listen(fd, 8)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        port = UInt16(bigEndian: addr.sin_port)
        let thread = Thread { [self] in
            for (index, status) in answers.enumerated() {
                let client = accept(fd, nil, nil)
                guard client >= 0 else { return }
                var received: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
                    guard n > 0 else { break }
                    received += buffer[0..<n]
                    if let text = String(validating: received, as: UTF8.self), let head = text.range(of: "\r\n\r\n"),
                        let lengthLine = text[..<head.lowerBound].split(separator: "\r\n").first(where: {
                            $0.lowercased().hasPrefix("content-length:")
                        }),
                        let length = Int(lengthLine.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)),
                        text.utf8.count - text.utf8.distance(from: text.startIndex, to: head.upperBound) >= length
                    {
                        break
                    }
                }
                self.requests.withLock { $0.append(String(decoding: received, as: UTF8.self)) }
                let location = locations[index].map { "Location: \($0)\r\n" } ?? ""
                let answer = Array(
                    "HTTP/1.1 \(status) X\r\n\(location)Content-Length: 2\r\nConnection: close\r\n\r\nok".utf8)
                if let trickle {
                    for byte in answer {
                        Thread.sleep(forTimeInterval: trickle)
                        guard [byte].withUnsafeBytes({ send(client, $0.baseAddress, 1, Int32(MSG_NOSIGNAL)) }) == 1
                        else { break }
                    }
                } else {
                    _ = answer.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                }
                close(client)
            }
        }
        thread.start()
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}
