import Foundation
import Testing

@testable import MLOpsExporter

@Suite("Demo configuration")
struct DemoConfigurationTests {
    @Test("the built-in demo configuration is examples/models.yaml, and it is valid")
    func sameAsExample() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../examples/models.yaml")
        let example = try String(contentsOf: url, encoding: .utf8)
        #expect(DemoConfiguration.yaml == example)
        let config = try DemoConfiguration.load()
        #expect(config.models.map(\.name) == ["fraud", "eta"])
    }
}
