import Compression
import Foundation
import Testing

/// Compression speed and ratio on rendered Prometheus text, for choosing ``Gzip/defaultBackend`` and
/// ``Gzip/defaultLevel``. Disabled unless `GZIP_BENCH` is set; run it in release:
/// `GZIP_BENCH=1 swift test -c release --scratch-path .build-misc-rel --filter CompressionTests`.
@Suite struct GzipBenchmarkTests {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["GZIP_BENCH"] != nil))
    func compressPrometheusText() throws {
        var table = "| body | backend | level | size | ratio | best ms/call | MB/s |\n|---|---|---|---|---|---|---|\n"
        for size in [1 << 20, 8 << 20] {
            let body = prometheusText(size: size)
            for backend in GzipBackend.allCases {
                for level in [1, 3, 6] {
                    let compressor = try GzipCompressor(level: level, backend: backend)
                    var out: [UInt8] = []
                    compressor.compress(body, into: &out)  // warm up: scratch and state allocated
                    var best = Duration.seconds(1000)
                    let clock = ContinuousClock()
                    let runs = size > 4 << 20 ? 5 : 15
                    for _ in 0..<runs {
                        let elapsed = clock.measure { compressor.compress(body, into: &out) }
                        best = min(best, elapsed)
                    }
                    #expect(try Gzip.gunzip(out, maxOutputSize: body.count) == body)
                    let ms = Double(best.components.attoseconds) / 1e15 + Double(best.components.seconds) * 1e3
                    let mbps = Double(body.count) / 1e6 / (ms / 1e3)
                    let ratio = Double(body.count) / Double(out.count)
                    table += "| \(String(format: "%.2f", Double(body.count) / 1e6)) MB | \(backend) | \(level) "
                    table += "| \(out.count) | \(String(format: "%.2f", ratio)) | \(String(format: "%.2f", ms)) "
                    table += "| \(String(format: "%.0f", mbps)) |\n"
                }
            }
        }
        print(table)
    }
}
