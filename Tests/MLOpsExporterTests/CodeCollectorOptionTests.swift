import ExporterConfig
import Foundation
import Testing

@testable import MLOpsExporter

/// A collector option's problem in a configuration built in code has no line to be found by: it names the field, as
/// the file's reader names its fields (it read `<code>: model "m": collector "service": option ...`).
@Suite("Collector option problems of a configuration built in code name the field")
struct CodeCollectorOptionTests {
    @Test("the option's field path, under the configuration's source")
    func optionProblemNamesItsField() {
        let fine = ModelConfiguration(name: "a", task: .regression, versions: ["v"])
        let bad = ModelConfiguration(
            name: "m", task: .regression, versions: ["v"],
            collectors: [
                CollectorConfiguration(name: "quality"),
                CollectorConfiguration(name: "service", options: ["prediction_buckets": .string("x")]),
            ])
        do {
            _ = try Exporter.checkConfiguration(ExporterConfiguration(models: [fine, bad], source: "<code>"))
            Issue.record("should have thrown")
        } catch let error as ConfigErrors {
            #expect(
                error.description
                    == #"<code>: models[1].collectors[1].options.prediction_buckets: model "m": collector "service": expected a list of numbers"#
            )
            #expect(error.errors.map(\.field) == ["models[1].collectors[1].options.prediction_buckets"])
        } catch {
            Issue.record("not ConfigErrors: \(error)")
        }
    }

    /// It read `<code>: model "m": reference: ...`, with no field.
    @Test("a reference profile that cannot be used names the model's reference")
    func referenceProblemNamesItsField() {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ref-\(UUID().uuidString).json").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data(#"{"format": 1}"#.utf8)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fine = ModelConfiguration(name: "a", task: .regression, versions: ["v"])
        let referenced = ModelConfiguration(name: "m", task: .regression, versions: ["v"], reference: path)
        do {
            _ = try Exporter.checkConfiguration(ExporterConfiguration(models: [fine, referenced], source: "<code>"))
            Issue.record("should have thrown")
        } catch let error as ConfigErrors {
            #expect(error.errors.map(\.field) == ["models[1].reference"])
            #expect(error.description.hasPrefix(#"<code>: models[1].reference: model "m": "#), "\(error)")
        } catch {
            Issue.record("not ConfigErrors: \(error)")
        }
    }

    @Test("a max_series total without a line names the model's max_series")
    func seriesTotalNamesItsField() {
        let capped = ModelConfiguration(name: "m", task: .regression, versions: ["v"], maxSeries: 1)
        do {
            _ = try Exporter.checkConfiguration(ExporterConfiguration(models: [capped], source: "<code>"))
            Issue.record("should have thrown")
        } catch let error as ConfigErrors {
            #expect(error.errors.map(\.field) == ["models[0].max_series"])
            #expect(error.description.hasPrefix(#"<code>: models[0].max_series: model "m": its collectors may create"#))
        } catch {
            Issue.record("not ConfigErrors: \(error)")
        }
    }
}
