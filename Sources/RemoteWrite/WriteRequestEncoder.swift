import CSnappy
import SwiftProtobuf

/// Builds Prometheus remote write 1.0 request bodies (https://prometheus.io/docs/specs/prw/remote_write_spec/):
/// a `WriteRequest` protobuf, snappy-compressed (block format), to POST with `Content-Type: application/x-protobuf`,
/// `Content-Encoding: snappy` and `X-Prometheus-Remote-Write-Version: 0.1.0`.
///
/// Each sample becomes one time series with one sample at `timestamp`: its labels are `__name__`, the sample's
/// own that are not empty, and the external labels (a sample's own label wins over an external one of the same name, as in
/// Prometheus), sorted by name. Series are split into requests of at most ``maxSamplesPerRequest``; the family
/// metadata goes with the first.
public struct WriteRequestEncoder: Sendable {
    /// Samples per request (Prometheus sends 2,000 by default; receivers accept far more).
    public var maxSamplesPerRequest = 5_000
    /// Added to every series.
    public var externalLabels: [ExpositionSample.Label]

    /// An encoder adding `externalLabels` (an empty value is no label: the spec forbids empty values).
    public init(externalLabels: [String: String] = [:]) {
        self.externalLabels = externalLabels.filter { !$0.value.isEmpty }.map { .init(name: $0.key, value: $0.value) }
    }

    /// The requests' bodies for `samples` at `timestamp` (milliseconds since the Unix epoch), in order.
    public func encode(
        _ samples: [ExpositionSample], metadata: [ExpositionMetadata] = [], timestamp: Int64
    ) throws -> [[UInt8]] {
        var bodies: [[UInt8]] = []
        var start = 0
        repeat {
            let end = min(samples.count, start + max(1, maxSamplesPerRequest))
            var request = Prometheus_WriteRequest()
            request.timeseries.reserveCapacity(end - start)
            for sample in samples[start..<end] { request.timeseries.append(series(sample, timestamp: timestamp)) }
            if start == 0 { request.metadata = metadata.map(Self.metadata) }
            bodies.append(try Snappy.compress(try request.serializedBytes()))
            start = end
        } while start < samples.count
        return bodies
    }

    func series(_ sample: ExpositionSample, timestamp: Int64) -> Prometheus_TimeSeries {
        // An empty value is no label (the spec: label values MUST NOT be empty; a scrape drops them too), so an
        // external label of that name applies.
        var labels: [ExpositionSample.Label] = [.init(name: "__name__", value: sample.name)]
        for label in sample.labels where !label.value.isEmpty { labels.append(label) }
        for external in externalLabels where !labels.contains(where: { $0.name == external.name }) {
            labels.append(external)
        }
        labels.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        var series = Prometheus_TimeSeries()
        series.labels = labels.map { l in
            var label = Prometheus_Label()
            label.name = l.name
            label.value = l.value
            return label
        }
        var point = Prometheus_Sample()
        point.value = sample.value
        point.timestamp = timestamp
        series.samples = [point]
        return series
    }

    static func metadata(_ m: ExpositionMetadata) -> Prometheus_MetricMetadata {
        var out = Prometheus_MetricMetadata()
        out.metricFamilyName = m.family
        out.help = m.help
        switch m.type {
        case "counter": out.type = .counter
        case "gauge": out.type = .gauge
        case "histogram": out.type = .histogram
        case "summary": out.type = .summary
        default: out.type = .unknown
        }
        return out
    }
}

/// Snappy's block format, through the C library.
public enum Snappy {
    /// A compression that failed (never for valid input; the library's status).
    public struct Failure: Error {
        /// The library's status code.
        public let status: Int
    }

    /// `bytes` compressed.
    public static func compress(_ bytes: [UInt8]) throws(Failure) -> [UInt8] {
        var length = snappy_max_compressed_length(bytes.count)
        var out = [UInt8](repeating: 0, count: length)
        let status = bytes.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                input.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(1, input.count)) { i in
                    output.baseAddress!.withMemoryRebound(to: CChar.self, capacity: output.count) { o in
                        snappy_compress(i, input.count, o, &length)
                    }
                }
            }
        }
        guard status == SNAPPY_OK else { throw Failure(status: Int(status.rawValue)) }
        out.removeSubrange(length...)
        return out
    }

    /// `bytes` uncompressed, at most `limit` bytes.
    public static func uncompress(_ bytes: [UInt8], limit: Int) throws(Failure) -> [UInt8] {
        var length = 0
        let sized = bytes.withUnsafeBufferPointer { input in
            input.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(1, input.count)) {
                snappy_uncompressed_length($0, input.count, &length)
            }
        }
        guard sized == SNAPPY_OK, length <= limit else { throw Failure(status: Int(sized.rawValue)) }
        var out = [UInt8](repeating: 0, count: max(1, length))
        let status = bytes.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                input.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(1, input.count)) { i in
                    output.baseAddress!.withMemoryRebound(to: CChar.self, capacity: output.count) { o in
                        snappy_uncompress(i, input.count, o, &length)
                    }
                }
            }
        }
        guard status == SNAPPY_OK else { throw Failure(status: Int(status.rawValue)) }
        out.removeSubrange(length...)
        return out
    }
}
