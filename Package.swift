// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

// Platforms. The server is Linux-only: `HTTPServer` runs on epoll, eventfd and accept4 (`CSystemShims`), and
// everything built on it is Linux-only too: the products `HTTPServer`, `MLOpsExporter` and the `mlops-exporter`
// executable, with the targets `DemoTraffic` and `MetricsPush` (Linux socket flags), `custom-collector-example` and
// their tests (`HTTPServerTests`, `MLOpsExporterTests`, `DemoTrafficTests`, `MetricsPushTests`). The other library
// products (`Exposition`, `ExporterConfig`, `Ingestion`, `Capture`, `ModelMonitoring`, `Profiling`, `RuleGeneration`,
// `SwiftMetricsBackend`), `Compression` and `BatchScoring` are portable: they import Foundation, or Glibc / Darwin
// under `#if canImport` (scripts/test checks it), and use `Synchronization`, hence macOS 15. Only Linux builds and
// tests them so far: their macOS build is unverified.
let package = Package(
    name: "mlops-exporter",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Exposition", targets: ["Exposition"]),
        // For Fuzz/ (a package of its own, built with the fuzzer runtime): the modules its harnesses drive.
        .library(name: "Capture", targets: ["Capture"]),
        .library(name: "ExporterConfig", targets: ["ExporterConfig"]),
        .library(name: "HTTPServer", targets: ["HTTPServer"]),
        .library(name: "Ingestion", targets: ["Ingestion"]),
        .library(name: "MLOpsExporter", targets: ["MLOpsExporter"]),
        .library(name: "ModelMonitoring", targets: ["ModelMonitoring"]),
        .library(name: "Profiling", targets: ["Profiling"]),
        .library(name: "RuleGeneration", targets: ["RuleGeneration"]),
        .library(name: "StateStorage", targets: ["StateStorage"]),
        .library(name: "SwiftMetricsBackend", targets: ["SwiftMetricsBackend"]),
        .executable(name: "mlops-exporter", targets: ["mlops-exporter"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        // Remote write 1.0's protobuf (issue 19): the runtime only; the generated code is committed
        // (scripts/gen-protobuf), so the plugin is never built here.
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
    ],
    targets: [
        // Metric model, registry, collectors and the two text encoders. Pure: no I/O, no dependencies.
        .target(name: "Exposition", swiftSettings: strict),
        // Linux syscalls that Glibc does not import (epoll, eventfd, accept4). Linux-only.
        .target(name: "CSystemShims"),
        // System libraries for HTTP/2 (libnghttp2 1.52, memory mode) and TLS (OpenSSL 3).
        .systemLibrary(name: "CNghttp2", pkgConfig: "libnghttp2", providers: [.apt(["libnghttp2-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // HTTP/1.1, HTTP/2 and TLS server on epoll. Knows nothing of metrics. Linux-only.
        .target(
            name: "HTTPServer",
            dependencies: [
                "CSystemShims", "CNghttp2", "COpenSSL", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // libxcrypt, for bcrypt password hashes of the web configuration's basic_auth_users.
        .systemLibrary(name: "CCrypt", pkgConfig: "libcrypt", providers: [.apt(["libcrypt-dev"])]),
        // System libraries for one-shot gzip: libdeflate (default, faster) and zlib (for comparison).
        .systemLibrary(
            name: "CLibdeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"]), .brew(["libdeflate"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        // gzip compression of whole buffers. Knows nothing of HTTP or metrics.
        .target(name: "Compression", dependencies: ["CLibdeflate", "CZlib"], swiftSettings: strict),
        .systemLibrary(name: "CSnappy", pkgConfig: "snappy", providers: [.apt(["libsnappy-dev"])]),
        // Prometheus remote write 1.0 requests from a text-format exposition (protobuf + snappy). Pure.
        .target(
            name: "RemoteWrite",
            dependencies: ["Exposition", "CSnappy", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["Proto"], swiftSettings: strict),
        // The configuration file (YAML): typed model configurations, validated with file:line:field errors.
        .target(
            name: "ExporterConfig", dependencies: ["Exposition", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict),
        // Prometheus rules (SLO recording rules, burn-rate and model-health alerts) and Sloth specs from the
        // configuration. Pure: text in memory only.
        .target(name: "RuleGeneration", dependencies: ["ExporterConfig"], swiftSettings: strict),
        // Decoding of prediction and label events (JSON arrays, NDJSON) against a model's schema. Pure.
        .target(name: "Ingestion", swiftSettings: strict),
        // Capture decoders: a model server's request and response JSON (KServe v1, Open Inference Protocol v2,
        // MLflow, custom JSON pointers) to prediction events. Pure: no I/O.
        .target(name: "Capture", dependencies: ["Ingestion"], swiftSettings: strict),
        // Per-model monitoring: collectors (service, user-defined) fed by decoded events, ingestion accounting.
        // Pure: no sockets, no files.
        .target(
            name: "ModelMonitoring", dependencies: ["Exposition", "Ingestion", "ExporterConfig"],
            swiftSettings: strict),
        // Reference profiles: reads CSV / NDJSON reference data into a profile file, loads and checks profiles.
        .target(
            name: "Profiling", dependencies: ["ModelMonitoring", "ExporterConfig", "Ingestion"], swiftSettings: strict),
        // `mlops-exporter batch`: one batch of a model's predictions (and labels) from CSV / NDJSON files through the
        // model's collectors as one window, to a report and a text-format render. Pure: files in, report out.
        .target(
            name: "BatchScoring",
            dependencies: ["ExporterConfig", "Exposition", "Ingestion", "ModelMonitoring", "Profiling"],
            swiftSettings: strict),
        // Pushes a text-format render to a Prometheus Pushgateway (grouping key in the URL path, PUT, retries with
        // backoff up to a deadline) over a minimal blocking HTTP/1.1 client. Knows nothing of metrics. Linux-only
        // (its socket uses Glibc's socket-type flags).
        .target(name: "MetricsPush", swiftSettings: strict),
        // Checkpoints of the models' state on disk (--storage.path): the file format, atomic writes, restore at
        // start, faults set aside. Knows nothing of HTTP.
        .target(
            name: "StateStorage",
            dependencies: [
                "Exposition", "ModelMonitoring", "Compression", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // Wiring: registry + server + endpoints; the library product for embedding. Linux-only (the server).
        .target(
            name: "MLOpsExporter",
            dependencies: [
                "Exposition", "HTTPServer", "Compression", "ExporterConfig", "Ingestion", "ModelMonitoring",
                "Profiling", "StateStorage", "Capture", "RemoteWrite", "MetricsPush",
                "CCrypt", "COpenSSL",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict,
            // `mlops_exporter_build_info`'s revision: the package's git revision, read before each build.
            plugins: ["BuildRevision"]
        ),
        // Writes the git revision of the package (`unknown` outside a git checkout of its own) as a Swift source of
        // the target it is applied to, before every build (Plugins/BuildRevision).
        .plugin(name: "BuildRevision", capability: .buildTool()),
        // A swift-metrics backend: code instrumented with swift-metrics exports through a `Registry`.
        .target(
            name: "SwiftMetricsBackend",
            dependencies: ["Exposition", .product(name: "CoreMetrics", package: "swift-metrics")],
            swiftSettings: strict
        ),
        // `mlops-exporter demo`: realistic prediction and delayed-label traffic for examples/demo, in phases
        // (stable, drift, bias, degraded), sent over HTTP/1.1. Knows nothing of the exporter's internals.
        // Linux-only (its client socket uses Glibc's socket-type flags).
        .target(name: "DemoTraffic", swiftSettings: strict),
        // The command line: parses arguments, nothing else. Linux-only (the server).
        .executableTarget(
            name: "mlops-exporter",
            dependencies: [
                "MLOpsExporter", "ExporterConfig", "ModelMonitoring", "Profiling", "RuleGeneration", "DemoTraffic",
                "BatchScoring", "MetricsPush", "RemoteWrite",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // The example of a user-defined model collector (examples/custom-collector), built and tested with the rest.
        .executableTarget(
            name: "custom-collector-example",
            dependencies: [
                "MLOpsExporter", "ModelMonitoring", "Exposition", "Ingestion",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "examples/custom-collector", exclude: ["models.yaml"], swiftSettings: strict),
        // Test support: renders fixture registries for the Python conformance tests.
        .executableTarget(name: "exposition-fixture", dependencies: ["Exposition"], swiftSettings: strict),
        .testTarget(
            name: "RemoteWriteTests",
            dependencies: ["RemoteWrite", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: strict),
        .testTarget(name: "ExpositionTests", dependencies: ["Exposition"], swiftSettings: strict),
        .testTarget(
            name: "HTTPServerTests", dependencies: ["HTTPServer", "CNghttp2", "COpenSSL"], swiftSettings: strict),
        .testTarget(name: "CompressionTests", dependencies: ["Compression"], swiftSettings: strict),
        .testTarget(
            name: "MLOpsExporterTests",
            dependencies: [
                "MLOpsExporter", "Capture", "Compression", "RemoteWrite",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strict),
        .testTarget(name: "ExporterConfigTests", dependencies: ["ExporterConfig"], swiftSettings: strict),
        .testTarget(
            name: "RuleGenerationTests", dependencies: ["RuleGeneration", "ExporterConfig"], swiftSettings: strict),
        .testTarget(name: "IngestionTests", dependencies: ["Ingestion"], swiftSettings: strict),
        .testTarget(name: "CaptureTests", dependencies: ["Capture", "Ingestion"], swiftSettings: strict),
        .testTarget(name: "DemoTrafficTests", dependencies: ["DemoTraffic"], swiftSettings: strict),
        .testTarget(
            name: "BatchScoringTests", dependencies: ["BatchScoring", "Profiling", "ExporterConfig"],
            swiftSettings: strict),
        .testTarget(name: "MetricsPushTests", dependencies: ["MetricsPush"], swiftSettings: strict),
        .testTarget(name: "ModelMonitoringTests", dependencies: ["ModelMonitoring"], swiftSettings: strict),
        .testTarget(
            name: "StateStorageTests", dependencies: ["StateStorage", "ModelMonitoring", "ExporterConfig"],
            swiftSettings: strict),
        .testTarget(
            name: "ProfilingTests", dependencies: ["Profiling", "ModelMonitoring", "ExporterConfig"],
            swiftSettings: strict),
        .testTarget(
            name: "SwiftMetricsBackendTests",
            dependencies: [
                "SwiftMetricsBackend", "Exposition", .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
    ]
)
