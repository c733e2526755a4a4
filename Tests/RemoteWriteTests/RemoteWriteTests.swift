import SwiftProtobuf
import Testing

@testable import RemoteWrite

@Suite("Remote write requests")
struct RemoteWriteTests {
    static let text = """
        # HELP mlops_events_total Events, by kind.
        # TYPE mlops_events_total counter
        mlops_events_total{kind="a\\\\b",model="m"} 3
        mlops_events_total{kind="new\\nline",model="m"} 5.5
        # HELP up_gauge A gauge with \\\\ and \\n in its help.
        # TYPE up_gauge gauge
        up_gauge 1
        # TYPE lat_seconds histogram
        lat_seconds_bucket{le="0.1"} 2
        lat_seconds_bucket{le="+Inf"} 4
        lat_seconds_sum 0.75
        lat_seconds_count 4
        odd{q="\\"quoted\\""} NaN
        inf_gauge -Inf

        """

    @Test("the text format is read into samples and metadata, labels unescaped")
    func parse() {
        let (samples, metadata) = ExpositionText.parse(Array(Self.text.utf8))
        #expect(samples.count == 9)
        #expect(
            samples[0]
                == .init(
                    name: "mlops_events_total",
                    labels: [.init(name: "kind", value: "a\\b"), .init(name: "model", value: "m")], value: 3))
        #expect(samples[1].labels[0].value == "new\nline")
        #expect(samples[2] == .init(name: "up_gauge", labels: [], value: 1))
        #expect(samples[4].labels == [.init(name: "le", value: "+Inf")])
        #expect(samples[7].name == "odd" && samples[7].value.isNaN && samples[7].labels[0].value == "\"quoted\"")
        #expect(samples[8].value == -.infinity)
        #expect(metadata.map(\.family) == ["mlops_events_total", "up_gauge", "lat_seconds"])
        #expect(metadata[1].help == "A gauge with \\ and \n in its help.")
        #expect(metadata[2].type == "histogram" && metadata[2].help.isEmpty)
    }

    @Test("requests decode back to every sample, labels sorted with __name__ and the external labels")
    func roundTrip() throws {
        let (samples, metadata) = ExpositionText.parse(Array(Self.text.utf8))
        var encoder = WriteRequestEncoder(externalLabels: ["job": "mlops-exporter", "instance": "pod-a", "model": "x"])
        encoder.maxSamplesPerRequest = 3
        let bodies = try encoder.encode(samples, metadata: metadata, timestamp: 1_767_225_600_123)
        #expect(bodies.count == 3)
        var decoded: [Prometheus_TimeSeries] = []
        for (i, body) in bodies.enumerated() {
            let request = try Prometheus_WriteRequest(serializedBytes: try Snappy.uncompress(body, limit: 1 << 20))
            #expect(request.metadata.count == (i == 0 ? 3 : 0))
            decoded += request.timeseries
        }
        #expect(decoded.count == samples.count)
        for (series, sample) in zip(decoded, samples) {
            let names = series.labels.map(\.name)
            #expect(names == names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
            #expect(series.labels.first { $0.name == "__name__" }?.value == sample.name)
            #expect(series.labels.first { $0.name == "job" }?.value == "mlops-exporter")
            #expect(series.labels.first { $0.name == "instance" }?.value == "pod-a")
            for label in sample.labels {
                #expect(series.labels.contains { $0.name == label.name && $0.value == label.value })
            }
            #expect(series.samples.count == 1 && series.samples[0].timestamp == 1_767_225_600_123)
            #expect(series.samples[0].value == sample.value || (series.samples[0].value.isNaN && sample.value.isNaN))
        }
        // A sample's own label wins over an external one of the same name.
        let own = decoded[0].labels.first { $0.name == "model" }
        #expect(own?.value == "m")
    }

    /// The spec: label values MUST NOT be empty. A sample's empty label is left out (as a scrape drops it), so an
    /// external label of that name applies; before, `model=""` was sent (Prometheus drops it, a strict receiver
    /// refuses the whole request).
    @Test func emptyLabelValuesAreLeftOut() throws {
        let (samples, _) = ExpositionText.parse(Array("a_total{model=\"\",x=\"1\"} 1\n".utf8))
        let encoder = WriteRequestEncoder(externalLabels: ["model": "fleet"])
        let body = try #require(try encoder.encode(samples, timestamp: 1).first)
        let request = try Prometheus_WriteRequest(serializedBytes: try Snappy.uncompress(body, limit: 1 << 20))
        let labels = request.timeseries[0].labels.map { "\($0.name)=\($0.value)" }
        #expect(labels == ["__name__=a_total", "model=fleet", "x=1"])
        // An empty external label is none either (`batch --run-id ""` sent `run_id=""`, an attacker of batch found).
        let none = WriteRequestEncoder(externalLabels: ["run_id": "", "job": "j"])
        let other = try #require(try none.encode(samples, timestamp: 1).first)
        let decoded = try Prometheus_WriteRequest(serializedBytes: try Snappy.uncompress(other, limit: 1 << 20))
        #expect(decoded.timeseries[0].labels.map { "\($0.name)=\($0.value)" } == ["__name__=a_total", "job=j", "x=1"])
    }

    /// A series the previous render had and this one lacks gets a staleness marker (the spec's MUST), the others
    /// none; the marker's bits survive encoding (any NaN would not do: Prometheus tells `StaleNaN` by its bits).
    @Test func seriesGoneFromARenderAreMarkedStale() throws {
        let (before, _) = ExpositionText.parse(
            Array("a_total{model=\"x\"} 1\na_total{model=\"y\"} 2\nb{le=\"1\"} 3\nc NaN\n".utf8))
        let (after, _) = ExpositionText.parse(Array("a_total{model=\"x\"} 4\nc NaN\nd 1\n".utf8))
        let gone = StaleMarkers.gone(from: before, in: after)
        #expect(gone.map(\.name) == ["a_total", "b"])
        #expect(gone.map { $0.labels.map(\.value) } == [["y"], ["1"]])
        #expect(gone.allSatisfy { StaleMarkers.isMarker($0.value) })
        #expect(!StaleMarkers.isMarker(.nan) && !StaleMarkers.isMarker(after[1].value))
        #expect(StaleMarkers.gone(from: [], in: after).isEmpty && StaleMarkers.all(after).count == 3)
        let body = try #require(try WriteRequestEncoder().encode(gone, timestamp: 5).first)
        let request = try Prometheus_WriteRequest(serializedBytes: try Snappy.uncompress(body, limit: 1 << 20))
        #expect(
            request.timeseries.map { $0.samples[0].value.bitPattern } == [0x7ff0_0000_0000_0002, 0x7ff0_0000_0000_0002])
    }

    @Test("snappy round-trips random bytes")
    func snappy() throws {
        var rng = SystemRandomNumberGenerator()
        for size in [0, 1, 100, 65_536, 300_000] {
            let bytes = (0..<size).map { _ in UInt8.random(in: 0...3, using: &rng) }
            let packed = try Snappy.compress(bytes)
            #expect(try Snappy.uncompress(packed, limit: size + 1) == bytes)
        }
    }
}
