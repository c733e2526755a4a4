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

/// Scrapes `exporter` until every series of `expected` has its value, or `timeout` has passed (polled every 10 ms):
/// the last scrape either way. (30 s: in a fresh-clone run, beside pip and with 749 tests at once, two exchanges'
/// jobs on the ingestion workers were not done 10 s after they were queued; not reproduced since.) An exchange decoded on a worker reaches its series one after another, so waiting for
/// one of them does not mean the others are there.
func scrape(
    _ exporter: Exporter, until expected: [String: Double], timeout: Duration = .seconds(30)
) async throws -> [String: Double] {
    let deadline = ContinuousClock.now + timeout
    var m = await scrape(exporter)
    while expected.contains(where: { m[$0.key] != $0.value }), ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(10))
        m = await scrape(exporter)
    }
    return m
}
