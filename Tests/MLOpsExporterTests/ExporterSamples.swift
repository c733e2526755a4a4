import Testing

@testable import MLOpsExporter

/// The samples of one scrape of `exporter`'s `/metrics` through its endpoints: series (name and labels as written)
/// → value.
func scrape(_ exporter: Exporter) async -> [String: Double] {
    let response = await exporter.endpoints.respond(to: .init(method: "GET", path: "/metrics"))
    var samples: [String: Double] = [:]
    for line in String(decoding: response.body, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
            continue
        }
        samples[String(line[..<space])] = value
    }
    return samples
}

/// Scrapes `exporter` until every series of `expected` has its value, or until a scrape begun once `timeout` had
/// passed still lacks one (polled every 10 ms): the last scrape either way. An exchange decoded on a worker reaches its
/// series one after another, so waiting for one of them does not mean the others are there.
///
/// The deadline is judged by when a scrape began, not by when its answer came (``samples(until:timeout:every:_:)``): a
/// scrape is rendered at once, on the exporter's render queue, but its answer resumes this task only when a thread of
/// the test runner is free, which in a whole-suite run on two busy cores took 45 s. Judged by the answer, a scrape
/// rendered a millisecond before a worker ran an exchange's job was the last word, though the job had long run: the
/// flake of the proxy recorder's worker tests (a timeout of 10 s, then 30 s, changed nothing).
func scrape(
    _ exporter: Exporter, until expected: [String: Double], timeout: Duration = .seconds(30)
) async throws -> [String: Double] {
    try await samples(until: expected, timeout: timeout) { await scrape(exporter) }
}

/// Takes samples with `take` until they have every value of `expected`, or until samples taken from a call begun at
/// or after the deadline (`timeout` from now) still lack one, `interval` apart; returns the last. A sample that was
/// asked for before the deadline is never the last word, however late it came back: what it holds may be older than
/// the deadline by as much as it was late.
func samples(
    until expected: [String: Double], timeout: Duration, every interval: Duration = .milliseconds(10),
    _ take: () async throws -> [String: Double]
) async throws -> [String: Double] {
    let deadline = ContinuousClock.now + timeout
    while true {
        let began = ContinuousClock.now
        let m = try await take()
        if began >= deadline || !expected.contains(where: { m[$0.key] != $0.value }) { return m }
        try await Task.sleep(for: interval)
    }
}

@Suite("The tests' scrape helpers")
struct ExporterSamplesTests {
    @Test("polling judges its deadline by when a sample was asked for, not by when its late answer came")
    func lateAnswerIsNotTheLastWord() async throws {
        var taken = 0
        let m = try await samples(until: ["x": 1], timeout: .milliseconds(50)) {
            taken += 1
            guard taken == 1 else { return ["x": 1] }
            // Read before the value was there, answered after the deadline (as when the test runner's threads are
            // all busy).
            try await Task.sleep(for: .milliseconds(200))
            return ["x": 0]
        }
        #expect(m["x"] == 1)
        #expect(taken == 2)
    }

    @Test("polling gives up with a sample asked for after the deadline")
    func givesUp() async throws {
        var taken = 0
        let m = try await samples(until: ["x": 1], timeout: .milliseconds(30)) {
            taken += 1
            return ["x": 0]
        }
        #expect(m["x"] == 0)
        #expect(taken >= 2)
    }
}
