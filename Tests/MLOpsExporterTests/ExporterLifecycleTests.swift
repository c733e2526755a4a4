import Foundation
import HTTPServer
import Logging
import Testing

@testable import Exposition
@testable import MLOpsExporter

@Suite("Exporter lifecycle")
struct ExporterLifecycleTests {
    /// An embedded exporter is freed whole once shut down and released: no reference cycle through the server
    /// (the registry's body-budget collector and the web configuration's reload both refer to it).
    @Test func anExporterIsFreedAfterShutdown() throws {
        weak var exporter: Exporter?
        weak var registry: Registry?
        weak var server: HTTPServer?
        weak var web: WebConfigState?
        do {
            var configuration = Exporter.Configuration()
            configuration.listenAddresses = ["127.0.0.1:0"]
            configuration.processMetrics = false
            let started = try Exporter(
                configuration: configuration, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
            try started.start()
            _ = started.registry.render(format: .text)
            started.shutdown(deadline: .seconds(1))
            exporter = started
            registry = started.registry
            server = started.server
            web = started.web
        }
        // A render's collector lanes release what they ran a moment after the render has its results: wait
        // for that (at most 5 s), not for anything else.
        let deadline = ContinuousClock.now + .seconds(5)
        while exporter != nil || registry != nil || server != nil || web != nil, ContinuousClock.now < deadline {
            usleep(1000)
        }
        #expect(exporter == nil)
        #expect(registry == nil)
        #expect(server == nil)
        #expect(web == nil)
    }

    /// A start that finds an address in use stops what it began and removes the exporter's registrations: a second
    /// start of it is refused (before, it served without the storage and the status history, which the failed start
    /// had stopped for good: no checkpoint, nothing came back), and a new exporter on the same registry, started
    /// once the address is free, checkpoints and restores.
    @Test func aStartThatFindsItsAddressInUseMakesWayForANewExporter() throws {
        let directory = NSTemporaryDirectory() + "lifecycle-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let registry = Registry()
        let (busy, port) = try occupiedPort()
        let failed = try Self.exporter(listen: "127.0.0.1:\(port)", storage: directory, registry: registry)
        #expect(throws: HTTPServerError.self) { try failed.start() }
        #expect(throws: StartFailedBefore.self) { try failed.start() }
        close(busy)
        let first = try Self.exporter(listen: "127.0.0.1:\(port)", storage: directory, registry: registry)
        try first.start()
        for _ in 0..<10 { _ = first.model("fraud")!.record(version: "v1", prediction: .label("fraud")) }
        first.shutdown(deadline: .seconds(1))
        #expect(FileManager.default.fileExists(atPath: directory + "/checkpoint"))
        let second = try Self.exporter(listen: "127.0.0.1:0", storage: directory)
        try second.start()
        defer { second.shutdown(deadline: .seconds(1)) }
        let text = String(decoding: second.registry.render(format: .text), as: UTF8.self)
        #expect(
            text.split(separator: "\n").contains {
                $0.hasPrefix("mlops_model_requests_total{") && $0.contains("model=\"fraud\"") && $0.hasSuffix(" 10")
            })
    }

    /// The same with the proxy's address in use (before, the proxy's pruning thread ran on, holding the models, and
    /// a second start said the server was started already).
    @Test func aStartThatFindsTheProxysAddressInUseMakesWayForANewExporter() throws {
        let (busy, port) = try occupiedPort()
        var models = ExporterConfiguration(models: [Self.fraud], source: "<code>")
        var proxy = ProxyConfiguration(upstream: .init(host: "127.0.0.1", port: 1))
        proxy.listenAddresses = ["127.0.0.1:\(port)"]
        models.proxy = proxy
        let registry = Registry()
        let failed = try Self.exporter(listen: "127.0.0.1:0", models: models, registry: registry)
        // Named the proxy's (the web port's own bind error is an HTTPServerError as it is).
        let error = #expect(throws: ProxyStartError.self) { try failed.start() }
        #expect(error?.underlying is HTTPServerError)
        #expect(error.map { "\($0)".hasPrefix("proxy (proxy.listen): bind to 127.0.0.1:\(port)") } == true)
        #expect(throws: StartFailedBefore.self) { try failed.start() }
        close(busy)
        let exporter = try Self.exporter(listen: "127.0.0.1:0", models: models, registry: registry)
        try exporter.start()
        defer { exporter.shutdown(deadline: .seconds(1)) }
        #expect(exporter.proxyAddresses == ["127.0.0.1:\(port)"])
    }

    /// A second start of a running exporter is refused and changes nothing (a first version of the failed-start
    /// path took it for a failed first start: the running exporter's workers stopped and its registrations went).
    @Test func aSecondStartOfARunningExporterIsRefusedAndLeavesItServing() throws {
        let exporter = try Self.exporter(listen: "127.0.0.1:0")
        try exporter.start()
        defer { exporter.shutdown(deadline: .seconds(1)) }
        #expect(throws: HTTPServerError.self) { try exporter.start() }
        #expect(String(decoding: exporter.registry.render(format: .text), as: UTF8.self).contains("mlops_model_"))
        for pool in exporter.workerPools { #expect(pool.submit(run: {}, expired: {}) == .accepted) }
    }

    /// A failed start takes back the exporter's own registrations only: what the host registered in the same registry
    /// after making the exporter stays (and a new exporter may be made with that registry).
    @Test func aFailedStartKeepsTheHostsOwnRegistrations() throws {
        let registry = Registry()
        let (busy, port) = try occupiedPort()
        defer { close(busy) }
        let failed = try Self.exporter(listen: "127.0.0.1:\(port)", registry: registry)
        let hostCounter = try registry.counter("host_requests", help: "The host's own.")
        hostCounter.inc()
        #expect(throws: HTTPServerError.self) { try failed.start() }
        let text = String(decoding: registry.render(format: .text), as: UTF8.self)
        #expect(text.contains("host_requests_total 1"))
        #expect(!text.contains("mlops_model_"))
        let replacement = try Self.exporter(listen: "127.0.0.1:0", registry: registry)
        try replacement.start()
        replacement.shutdown(deadline: .seconds(1))
    }

    /// Shutting down stops the ingestion and password-check workers (they ran until the exporter was freed).
    @Test func shutdownStopsTheWorkers() throws {
        let exporter = try Self.exporter(listen: "127.0.0.1:0")
        try exporter.start()
        exporter.shutdown(deadline: .seconds(1))
        for pool in exporter.workerPools {
            #expect(pool.submit(run: {}, expired: {}) == .queueFull)
        }
    }

    static let fraud = ModelConfiguration(
        name: "fraud", task: .binaryClassification, versions: ["v1"], classes: ["legit", "fraud"],
        positiveClass: "fraud")

    static func exporter(
        listen: String, storage: String? = nil,
        models: ExporterConfiguration = ExporterConfiguration(models: [fraud], source: "<code>"),
        registry: Registry = Registry()
    ) throws -> Exporter {
        var configuration = Exporter.Configuration()
        configuration.listenAddresses = [listen]
        configuration.processMetrics = false
        configuration.models = models
        configuration.storage = storage.map { StorageConfiguration(path: $0) }
        return try Exporter(
            configuration: configuration, registry: registry,
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
    }
}

/// A loopback port held by a listening socket (in use until the descriptor is closed).
private func occupiedPort() throws -> (fd: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}
