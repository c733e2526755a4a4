// swift-tools-version:6.1
// Benchmarks for the `Exposition` module, kept out of the main package so that its users and its CI
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

let package = Package(
    name: "ExpositionBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        // Only the MallocInterposer trait (malloc counts without jemalloc). Naming the traits turns off
        // the default `RuntimeInterposer`, whose package is not in this machine's package mirror.
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
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
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The same workloads without the benchmark framework, for valgrind/callgrind (which the malloc
        // interposer linked into benchmark executables makes abort).
        .executableTarget(
            name: "expo-profile",
            dependencies: ["BenchmarkFixtures", .product(name: "Exposition", package: mainPackage)],
            swiftSettings: [.swiftLanguageMode(.v6)]
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
            name: "quality-bench",
            dependencies: [
                "QualityBenchFixtures", .product(name: "Exposition", package: mainPackage),
                .product(name: "ModelMonitoring", package: mainPackage),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
