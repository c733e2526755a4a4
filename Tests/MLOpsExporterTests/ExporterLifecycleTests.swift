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
}
