// The capture decoders (`CaptureDecoder.decode`) on the exchanges the reverse proxy sees most, without the
// benchmark framework: ns and allocations per exchange, and a target for valgrind/callgrind.
//
//     cd Benchmarks && BENCHMARK_DISABLE_MALLOC_INTERPOSER=1 swift build -c release --product capture-profile \
//         --scratch-path .build-noint
//     .build-noint/release/capture-profile v2 1000000         # one v2 row of 20 FP64 features
//     .build-noint/release/capture-profile v1 1000000         # the same row as KServe v1 `instances`
//     .build-noint/release/capture-profile v2-batch32 100000  # 32 v2 rows, one [32, 20] input
//     .build-noint/release/capture-profile v2-proba 1000000   # one v2 row, `predict` and `predict_proba` outputs
//     objcopy --strip-debug .build-noint/release/capture-profile /tmp/capture-profile   # valgrind 3.19 and DWARF 5
//     valgrind --tool=callgrind --toggle-collect='*measured*' /tmp/capture-profile v2 2000
//
// Allocations are counted by CaptureMallocCounter (the executable's own malloc, calling glibc's).
import Capture
import CaptureMallocCounter
import Ingestion

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The credit model of the proxy's perf profile: 20 numeric features, classes "0" and "1".
let schema = try! Schema(
    task: .classification, classes: ["0", "1"],
    features: (0..<20).map { FeatureSpec("f\($0)", .numeric) })

/// `count` rows of 20 feature values, as JSON numbers.
func rowValues(_ row: Int) -> [String] {
    (0..<20).map { i in i % 3 == 0 ? "\(row + i)" : "\(Double(row * 20 + i) * 0.137 + 0.5)" }
}

func v2Request(rows: Int) -> String {
    let data = (0..<rows).flatMap(rowValues).joined(separator: ",")
    return #"{"inputs":[{"name":"input-0","shape":[\#(rows),20],"datatype":"FP64","data":[\#(data)]}]}"#
}

func v2Response(rows: Int, probabilities: Bool = false) -> String {
    let labels = (0..<rows).map { "\($0 % 2)" }.joined(separator: ",")
    var outputs = #"{"name":"predict","shape":[\#(rows)],"datatype":"INT64","data":[\#(labels)]}"#
    if probabilities {
        let values = (0..<rows).map { $0 % 2 == 0 ? "0.75,0.25" : "0.125,0.875" }.joined(separator: ",")
        outputs += #",{"name":"predict_proba","shape":[\#(rows),2],"datatype":"FP64","data":[\#(values)]}"#
    }
    return #"{"model_name":"credit","outputs":[\#(outputs)]}"#
}

struct Workload {
    var decoder: CaptureDecoder
    var request: [UInt8]
    var response: [UInt8]
    var rows: Int
}

func workload(_ name: String) -> Workload? {
    let v1 = try! CaptureDecoder(protocol: .kserveV1, schema: schema)
    let v2 = try! CaptureDecoder(protocol: .openInferenceV2, schema: schema)
    func make(_ decoder: CaptureDecoder, _ request: String, _ response: String, _ rows: Int) -> Workload {
        Workload(decoder: decoder, request: Array(request.utf8), response: Array(response.utf8), rows: rows)
    }
    switch name {
    case "v2": return make(v2, v2Request(rows: 1), v2Response(rows: 1), 1)
    case "v1":
        return make(v1, #"{"instances":[[\#(rowValues(0).joined(separator: ","))]]}"#, #"{"predictions":[1]}"#, 1)
    case "v2-batch32": return make(v2, v2Request(rows: 32), v2Response(rows: 32), 32)
    case "v2-proba": return make(v2, v2Request(rows: 1), v2Response(rows: 1, probabilities: true), 1)
    default: return nil
    }
}

/// Decodes the exchange `repeats` times; returns the rows delivered plus a checksum of their values (so that
/// nothing is optimised away).
@inline(never)
func measuredDecode(_ w: Workload, repeats: Int) -> (rows: Int, checksum: Double) {
    var rows = 0
    var checksum = 0.0
    w.request.withUnsafeBytes { request in
        w.response.withUnsafeBytes { response in
            for _ in 0..<repeats {
                do {
                    rows += try w.decoder.decode(request: request, response: response, headers: []) { event in
                        if case .number(let x) = event.features[event.features.count - 1] { checksum += x }
                        checksum += Double(event.predictionClass ?? 0) + (event.score ?? 0)
                    }
                } catch {
                    fatalError("\(error)")
                }
            }
        }
    }
    return (rows, checksum)
}

func threadCPUNanos() -> Int {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return t.tv_sec * 1_000_000_000 + t.tv_nsec
}

/// `x` with one decimal.
func f(_ x: Double) -> String {
    let tenths = Int((x * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}

let args = CommandLine.arguments
guard args.count == 3, let n = Int(args[2]), n > 0, n <= 1_000_000_000, let w = workload(args[1]) else {
    print("usage: capture-profile v2|v1|v2-batch32|v2-proba COUNT")
    exit(2)
}
// Warm up (and check the rows) before measuring.
let warm = measuredDecode(w, repeats: 1000)
precondition(warm.rows == 1000 * w.rows, "decoded \(warm.rows) rows, expected \(1000 * w.rows)")
let mallocs = capture_malloc_count()
let clock = ContinuousClock()
let start = clock.now
let cpuStart = threadCPUNanos()
let result = measuredDecode(w, repeats: n)
let cpu = Double(threadCPUNanos() - cpuStart)
let elapsed = clock.now - start
let allocations = Double(capture_malloc_count() - mallocs)
precondition(result.rows == n * w.rows)
let ns = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
print(
    "\(args[1]): \(n) exchanges of \(w.rows) rows, wall \(f(ns / Double(n))) ns/exchange, "
        + "thread CPU \(f(cpu / Double(n))) ns/exchange, \(f(allocations / Double(n))) mallocs/exchange "
        + "(checksum \(result.checksum))")
