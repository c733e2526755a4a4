// swift-tools-version:6.0
// libFuzzer harnesses for the parsers and decoders of mlops-exporter. Build and run them with scripts/fuzz
// (docs/fuzzing.md): they link only with `--sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address`, which is why they
// live in a package of their own and not in the main one.
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

/// One harness: an executable target `fuzz-<name>` whose sources are in `Sources/fuzz-<name>`.
func harness(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(name: "fuzz-\(name)", dependencies: ["FuzzSupport"] + dependencies, swiftSettings: strict)
}

let package = Package(
    name: "mlops-exporter-fuzz",
    dependencies: [
        .package(name: "mlops-exporter", path: ".."),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // Input splitting and invariant checks shared by the harnesses.
        .target(name: "FuzzSupport", swiftSettings: strict),
        harness("http1-parser", [.product(name: "HTTPServer", package: "mlops-exporter")]),
        harness("http1-response-parser", [.product(name: "HTTPServer", package: "mlops-exporter")]),
        harness(
            "http2-session",
            [
                .product(name: "HTTPServer", package: "mlops-exporter"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        harness("ingestion", [.product(name: "Ingestion", package: "mlops-exporter")]),
        harness(
            "capture",
            [
                .product(name: "Capture", package: "mlops-exporter"),
                .product(name: "Ingestion", package: "mlops-exporter"),
            ]),
        harness("config", [.product(name: "ExporterConfig", package: "mlops-exporter")]),
        harness(
            "profiling",
            [
                .product(name: "Profiling", package: "mlops-exporter"),
                .product(name: "ExporterConfig", package: "mlops-exporter"),
                .product(name: "ModelMonitoring", package: "mlops-exporter"),
            ]),
        harness(
            "negotiation",
            [
                .product(name: "MLOpsExporter", package: "mlops-exporter"),
                .product(name: "Ingestion", package: "mlops-exporter"),
            ]),
    ]
)
