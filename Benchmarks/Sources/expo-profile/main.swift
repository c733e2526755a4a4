// A plain executable running one benchmark workload, for profilers. The benchmark executables cannot run
// under valgrind (the malloc interposer they link aborts it); this one links nothing but `Exposition`.
//
//     swift build -c release --product expo-profile
//     valgrind --tool=callgrind --toggle-collect='*measured*' .build/release/expo-profile render-text 10000 20
//
// `--toggle-collect='*measured*'` counts only the timed part (the `measured…` functions below), not the setup.
import BenchmarkFixtures
import Exposition

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@inline(never)
func measuredRender(_ fixture: RenderFixture, format: ExpositionFormat, repeats: Int) {
    for _ in 0..<repeats { fixture.registry.render(format: format, into: &fixture.buffer) }
}

@inline(never)
func measuredInc(_ counter: Counter, repeats: Int) {
    for _ in 0..<repeats { counter.inc() }
}

@inline(never)
func measuredObserve(_ histogram: Histogram, _ values: UnsafeMutableBufferPointer<Double>, repeats: Int) {
    for i in 0..<repeats { histogram.observe(values[i & Observations.mask]) }
}

@inline(never)
func measuredRegister(_ family: CounterFamily, _ labels: [(String, String)]) throws {
    for (handler, code) in labels { _ = try family.labels(handler, code) }
}

func time(_ label: String, per count: Int, unit: String, _ body: () throws -> Void) rethrows {
    let clock = ContinuousClock()
    let elapsed = try clock.measure(body)
    let (s, a) = elapsed.components
    let nanos = Double(s) * 1e9 + Double(a) / 1e9
    print("\(label): \(nanos / 1e6) ms total, \(nanos / Double(count)) ns per \(unit)")
}

let args = CommandLine.arguments
guard args.count >= 2 else {
    print("usage: expo-profile render-text|render-om SERIES REPEATS | inc|observe REPEATS | register SERIES")
    exit(2)
}
let n = args.count > 2 ? Int(args[2])! : 10_000
let repeats = args.count > 3 ? Int(args[3])! : 10

switch args[1] {
case "render-text", "render-om":
    let format: ExpositionFormat = args[1] == "render-text" ? .text : .openMetrics
    let fixture = try RenderFixture(series: n)
    fixture.registry.render(format: format, into: &fixture.buffer)  // warm: sorts, sizes the buffer
    print("\(fixture.mix); \(fixture.buffer.count) bytes")
    // Each render timed on its own (as the benchmark harness does), so that the median can be compared
    // with the harness's p50; under callgrind the `measured…` calls add up to `repeats` renders as before.
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let faults = usage.ru_minflt
    let clock = ContinuousClock()
    var each: [Double] = []
    each.reserveCapacity(repeats)
    for _ in 0..<repeats {
        let elapsed = clock.measure { measuredRender(fixture, format: format, repeats: 1) }
        let (s, a) = elapsed.components
        each.append(Double(s) * 1e9 + Double(a) / 1e9)
    }
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let total = each.reduce(0, +)
    each.sort()
    print("render \(args[1]) x\(repeats): \(total / 1e6) ms total, \(total / Double(n * repeats)) ns per series")
    print(
        "per render, ns per series: median \(each[each.count / 2] / Double(n)), min \(each[0] / Double(n)); "
            + "minor page faults per render: \((usage.ru_minflt - faults) / repeats)")
case "inc":
    let counter = try Registry().counter("profile_events", help: "Events.")
    time("inc x\(n)", per: n, unit: "op") { measuredInc(counter, repeats: n) }
case "observe":
    let histogram = try Registry().histogram("profile_latency_seconds", help: "Latency.")
    let observations = Observations()
    time("observe x\(n)", per: n, unit: "op") { measuredObserve(histogram, observations.values, repeats: n) }
case "register":
    let labels = registrationLabels(count: n)
    let registry = Registry()
    let family = try registry.counterFamily("profile_requests", help: "Requests.", labelNames: ["handler", "code"])
    try time("register x\(n)", per: n, unit: "series") { try measuredRegister(family, labels) }
default:
    print("unknown workload \(args[1])")
    exit(2)
}
