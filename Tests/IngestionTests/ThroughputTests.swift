import Foundation
import Ingestion
import Testing

/// Whether the environment variable `name` is "1".
private func environmentFlag(_ name: String) -> Bool { ProcessInfo.processInfo.environment[name] == "1" }

/// A batch of `events` NDJSON prediction events with 15 numeric and 5 categorical features.
func benchmarkBatch(events: Int, decimals: Int?, seed: UInt64) -> (schema: Schema, body: [UInt8]) {
    var features: [FeatureSpec] = []
    for i in 0..<15 { features.append(FeatureSpec("num_feature_\(i)", .numeric)) }
    for i in 0..<5 { features.append(FeatureSpec("cat_feature_\(i)", .categorical)) }
    let schema = try! Schema(
        task: .classification, classes: ["approve", "review", "deny"], features: features,
        attributeNames: ["gender", "region"])
    var rng = SplitMix64(seed: seed)
    func number(_ range: ClosedRange<Double>) -> String {
        let value = Double.random(in: range, using: &rng)
        guard let decimals else { return "\(value)" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        return "\((value * scale).rounded() / scale)"
    }
    let cities = ["paris", "berlin", "madrid", "rome", "lisbon", "vienna"]
    var text = ""
    for e in 0..<events {
        var line = #"{"id":"evt-\#(seed)-\#(e)","timestamp":1764400000.\#(e),"version":"v2.3.1","features":{"#
        for i in 0..<15 { line += #""num_feature_\#(i)":\#(number(-1000...1000)),"# }
        for i in 0..<5 {
            line += #""cat_feature_\#(i)":"\#(cities.randomElement(using: &rng)!)""# + (i < 4 ? "," : "")
        }
        line += #"},"prediction":"review","score":\#(number(0...1)),"#
        line += #""probabilities":{"approve":0.2,"review":0.7,"deny":0.1},"latency_seconds":\#(number(0...0.5)),"#
        line += #""status":"ok","attributes":{"gender":"f","region":"eu-west"}}"# + "\n"
        text += line
    }
    return (schema, Array(text.utf8))
}

@Suite("Throughput")
struct ThroughputTests {
    @Test("NDJSON and JSON batches of 100 events x 20 features", .enabled(if: environmentFlag("INGEST_BENCH")))
    func throughput() throws {
        for decimals in [nil, 4] as [Int?] {
            for format in [BodyFormat.ndjson, .json] {
                var batches: [[UInt8]] = []
                var schema: Schema!
                for seed in 0..<50 {
                    let batch = benchmarkBatch(events: 100, decimals: decimals, seed: UInt64(seed))
                    schema = batch.schema
                    if format == .json {
                        var body = Array("[".utf8)
                        var text = batch.body
                        text.removeLast()
                        for i in text.indices where text[i] == 0x0A { text[i] = 0x2C }
                        body += text + Array("]".utf8)
                        batches.append(body)
                    } else {
                        batches.append(batch.body)
                    }
                }
                var events = 0
                var bytes = 0
                var checksum = 0.0
                let clock = ContinuousClock()
                let start = clock.now
                var elapsed = Duration.zero
                while elapsed < .seconds(2) {
                    for body in batches {
                        let report = try decodePredictions(body: body, format: format, schema: schema, maxEvents: 1000)
                        { event, _ in
                            if case .number(let x) = event.features[0] { checksum += x }
                        }
                        #expect(report.accepted == 100 && report.rejected == 0)
                        events += report.accepted
                        bytes += body.count
                    }
                    elapsed = clock.now - start
                }
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
                let eventsPerSecond = Double(events) / seconds
                let megabytesPerSecond = Double(bytes) / seconds / 1e6
                let numbers = decimals.map { "\($0) decimals" } ?? "shortest-repr doubles"
                print(
                    "INGEST_BENCH format=\(format) numbers=\(numbers)"
                        + " avg_event_bytes=\(bytes / events) events/s=\(Int(eventsPerSecond))"
                        + " MB/s=\(Int(megabytesPerSecond)) (checksum \(checksum))")
            }
        }
    }
}
