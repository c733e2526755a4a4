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
