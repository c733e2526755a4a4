// swift-tools-version:6.0
// A Hummingbird 2 service that mounts mlops-exporter's endpoints (`/metrics`, the ingestion API) beside its own
// routes. A package of its own, so that the main build does not pull Hummingbird; docs/embedding.md.
import PackageDescription

let package = Package(
    name: "hummingbird-example",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "mlops-exporter", path: "../.."),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "hummingbird-example",
            dependencies: [
                .product(name: "MLOpsExporter", package: "mlops-exporter"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6), .enableUpcomingFeature("ExistentialAny")]
        )
    ]
)
