// swift-tools-version:6.1
// Benchmarks for the `Exposition` module and the ingestion path (`IngestBenchmarks`), kept out of the main package so that its users and its CI
// never resolve or build the benchmark framework. Run from this directory:
//
//     swift package --allow-writing-to-package-directory benchmark
//
// See RESULTS.md for the commands, the measured numbers and the targets.
import PackageDescription

import class Foundation.ProcessInfo
import struct Foundation.URL

// A path dependency's identity is the last component of its path, so `..` is named after whatever
// folder the repository was cloned into ("main" here, something else in CI's fresh clone).
let mainPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .lastPathComponent

// The malloc interposer (which counts allocations) puts a 16-byte size header in front of every
// allocation the benchmark process makes, the fixtures' included: a registry of 100k series then takes
// about 8 MB more and renders 10-15 % slower than the same registry in the exporter, which links no
// interposer. `BENCHMARK_DISABLE_MALLOC_INTERPOSER=1` (the variable `ordo-one/benchmark` itself honours
// for its default traits) builds without it: the render timings are then the exporter's, and the
// benchmarks that need allocation counts are left out (see RESULTS.md, "How to run"). Use a separate
// scratch path for that build, or every switch rebuilds everything.
let mallocInterposer = ProcessInfo.processInfo.environment["BENCHMARK_DISABLE_MALLOC_INTERPOSER"] == nil

let package = Package(
    name: "ExpositionBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // Only the MallocInterposer trait (malloc counts without jemalloc), or no trait at all when
        // `BENCHMARK_DISABLE_MALLOC_INTERPOSER` is set (see `mallocInterposer` above). Naming the traits
        // turns off the default `RuntimeInterposer`, whose package is not in this machine's package mirror.
        .package(
            url: "https://github.com/ordo-one/benchmark", exact: "1.38.1",
            traits: mallocInterposer ? ["MallocInterposer"] : []),
    ],
    targets: [
        // Drift (issue 6): the models, reference profiles and events of the drift benchmarks.
        .target(
            name: "DriftFixtures",
            dependencies: [
                "BenchmarkFixtures",
                .product(name: "ModelMonitoring", package: mainPackage),
                .product(name: "Profiling", package: mainPackage),
                .product(name: "Exposition", package: mainPackage),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // record() cost per event (20 and 100 features) and scrape cost (10 models x 50 features).
        .executableTarget(
            name: "DriftBenchmarks",
            dependencies: [
                "DriftFixtures",
                "BenchmarkFixtures",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ModelMonitoring", package: mainPackage),
                .product(name: "Exposition", package: mainPackage),
            ],
            path: "Benchmarks/DriftBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Without the framework: memory per model (RSS), one window's CPU time (scripts/bench-drift), callgrind.
        .executableTarget(
            name: "drift-profile",
            dependencies: [
                "DriftFixtures",
                "BenchmarkFixtures",
                .product(name: "ModelMonitoring", package: mainPackage),
                .product(name: "Profiling", package: mainPackage),
                .product(name: "Exposition", package: mainPackage),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The registries, observations and label values the benchmarks work on.
        .target(
            name: "BenchmarkFixtures",
            dependencies: [.product(name: "Exposition", package: mainPackage)],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "ExpositionBenchmarks",
            dependencies: [
                "BenchmarkFixtures",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Exposition", package: mainPackage),
            ],
            path: "Benchmarks/ExpositionBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)] + (mallocInterposer ? [.define("MALLOC_INTERPOSER")] : []),
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The same workloads without the benchmark framework, for valgrind/callgrind (which the malloc
        // interposer linked into benchmark executables makes abort).
        .executableTarget(
            name: "expo-profile",
            dependencies: ["BenchmarkFixtures", .product(name: "Exposition", package: mainPackage)],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The ingestion benchmark's model and batch (Fixtures/), shared by the benchmark and its profile driver.
        .target(
            name: "IngestFixtures",
            dependencies: [
                "BenchmarkFixtures",
                .product(name: "ModelMonitoring", package: mainPackage),
                .product(name: "Exposition", package: mainPackage),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // record() and decode+record (MonitoredModel.ingest) cost in process: ns per event, allocations.
        .executableTarget(
            name: "IngestBenchmarks",
            dependencies: [
                "IngestFixtures",
                "BenchmarkFixtures",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ModelMonitoring", package: mainPackage),
            ],
            path: "Benchmarks/IngestBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The ingestion workloads without the framework, for perf and valgrind/callgrind.
        .executableTarget(
            name: "ingest-profile",
            dependencies: [
                "IngestFixtures", "BenchmarkFixtures", .product(name: "ModelMonitoring", package: mainPackage),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The capture decoders (proxy and CloudEvents bodies): ns and allocations per exchange, for callgrind too.
        .target(name: "CaptureMallocCounter"),
        .executableTarget(
            name: "llm-meter-profile",
            dependencies: ["CaptureMallocCounter", .product(name: "Capture", package: mainPackage)],
            swiftSettings: [.swiftLanguageMode(.v6)],
            linkerSettings: [.unsafeFlags(["-Xlinker", "--export-dynamic"], .when(platforms: [.linux]))]
        ),
        .executableTarget(
            name: "capture-profile",
            dependencies: [
                "CaptureMallocCounter", .product(name: "Capture", package: mainPackage),
                .product(name: "Ingestion", package: mainPackage),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)],
            // The counter's malloc must be in the dynamic symbol table for the Swift runtime's calls to bind to it.
            linkerSettings: [.unsafeFlags(["-Xlinker", "--export-dynamic"], .when(platforms: [.linux]))]
        ),
        // Label join, quality and fairness (QUALITY_RESULTS.md): the benchmark model, the harness benchmarks,
        // and a plain executable for RSS per pending entry and the CPU time of one window.
        .target(
            name: "QualityBenchFixtures",
            dependencies: [
                .product(name: "Exposition", package: mainPackage),
                .product(name: "ModelMonitoring", package: mainPackage),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "LabelJoinBenchmarks",
            dependencies: [
                "QualityBenchFixtures", .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Exposition", package: mainPackage),
                .product(name: "ModelMonitoring", package: mainPackage),
            ],
            path: "Benchmarks/LabelJoinBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "checkpoint-bench",
            dependencies: [
                "DriftFixtures", "BenchmarkFixtures", .product(name: "ModelMonitoring", package: mainPackage),
                .product(name: "StateStorage", package: mainPackage),
                .product(name: "ExporterConfig", package: mainPackage),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Exposition", package: mainPackage),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "quality-bench",
            dependencies: [
                "QualityBenchFixtures", .product(name: "Exposition", package: mainPackage),
                .product(name: "ModelMonitoring", package: mainPackage),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
