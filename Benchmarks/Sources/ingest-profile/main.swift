// The ingestion workloads without the benchmark framework, for profilers (perf, valgrind/callgrind) and a
// quick ns-per-event reading:
//
//     swift build -c release --product ingest-profile
//     .build/release/ingest-profile record 10000000      # record(_:) of a pre-shaped 20-feature event
//     .build/release/ingest-profile ingest 20000         # decode + record of the 100-event NDJSON fixture
//     objcopy --strip-debug .build/release/ingest-profile /tmp/ingest-profile   # valgrind 3.19 cannot read its DWARF 5
//     valgrind --tool=callgrind --toggle-collect='*measured*' /tmp/ingest-profile ingest 200
import BenchmarkFixtures
import IngestFixtures
import Ingestion
import ModelMonitoring

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@inline(never)
func measuredRecord(_ model: MonitoredModel, _ event: PredictionEvent, repeats: Int) -> Int {
    var rejected = 0
    for _ in 0..<repeats where model.record(event) != nil { rejected += 1 }
    return rejected
}

@inline(never)
func measuredRecordFixedTime(_ model: MonitoredModel, _ event: PredictionEvent, repeats: Int) -> Int {
    var rejected = 0
    for _ in 0..<repeats where model.record(event, receivedAt: 1_764_410_000) != nil { rejected += 1 }
    return rejected
}

@inline(never)
func measuredIngest(_ fixture: IngestFixture, repeats: Int) -> Int {
    var accepted = 0
    for _ in 0..<repeats { accepted += fixture.ingestBatch(receivedAt: 1_764_410_000) }
    return accepted
}

let args = CommandLine.arguments
guard args.count == 3, let n = Int(args[2]), n > 0, n <= 1_000_000_000 else {
    print("usage: ingest-profile record|record-fixed-time|ingest COUNT")
    exit(2)
}
let fixture = try IngestFixture()
let clock = ContinuousClock()
let start = clock.now
let cpuStart = threadCPUNanos()
let events: Int
switch args[1] {
case "record":
    precondition(measuredRecord(fixture.model, fixture.event, repeats: n) == 0)
    events = n
case "record-fixed-time":
    precondition(measuredRecordFixedTime(fixture.model, fixture.event, repeats: n) == 0)
    events = n
case "ingest":
    events = measuredIngest(fixture, repeats: n)
    precondition(events == 100 * n)
default:
    print("unknown workload \(args[1])")
    exit(2)
}
let cpu = Double(threadCPUNanos() - cpuStart)
let elapsed = clock.now - start
let ns = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
precondition(fixture.accepted == UInt64(events), "accepted \(fixture.accepted), expected \(events)")
/// `x` with one decimal.
func f(_ x: Double) -> String {
    let tenths = Int((x * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}
print(
    "\(args[1]): \(events) events, wall \(f(ns / 1e6)) ms = \(f(ns / Double(events))) ns/event, "
        + "thread CPU \(f(cpu / 1e6)) ms = \(f(cpu / Double(events))) ns/event")
