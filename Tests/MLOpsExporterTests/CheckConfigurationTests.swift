import ExporterConfig
import Foundation
import Testing

@testable import MLOpsExporter

/// The lines of the `ConfigErrors` that checking `models` (YAML, after a `models:` line) throws, and the file's path
/// they start with; no lines when it is valid.
private func problems(_ models: String) throws -> (path: String, lines: [String]) {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("check-\(UUID().uuidString).yaml")
    try ("models:\n" + models).write(to: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: file) }
    do {
        _ = try Exporter.checkConfiguration(file: file.path)
        return (file.path, [])
    } catch let error as ConfigErrors {
        return (file.path, error.description.split(separator: "\n").map(String.init))
    }
}

/// The first lines of a binary classifier `fraud` (lines 2-6 of the file), before its own fields.
private let fraud = """
      - name: fraud
        task: binary_classification
        versions: [v1]
        classes: [legit, fraud]
        positive_class: fraud

    """

@Suite("Checking a configuration file")
struct CheckConfigurationTests {
    @Test("collector option problems name the file, line and column of the option")
    func optionProblemsAreLocated() throws {
        let (path, lines) = try problems(
            fraud + """
                    sensitive_attributes: [{name: gender, groups: [f, m]}]
                    collectors:
                      - name: service
                        options: {prediction_bucket: [1, 2]}
                      - name: fairness
                        options:
                          bounds:
                            disparate_impact: 0.8
                            nope: 0.1
                """)
        #expect(lines.count == 2, "\(lines)")
        #expect(
            lines.first?.hasPrefix(
                #"\#(path):10:19: model "fraud": collector "service": option prediction_bucket: unknown option"#)
                == true, "\(lines)")
        #expect(
            lines.last?.hasPrefix(
                #"\#(path):15:13: model "fraud": collector "fairness": option bounds.nope: unknown metric"#)
                == true,
            "\(lines)")
    }

    /// Every problem of one collector's options is listed in one run (before, only the first: fix it, run again, see
    /// the next).
    @Test("all of a collector's option problems, each at its line")
    func allOptionProblemsOfACollector() throws {
        let (path, lines) = try problems(
            fraud + """
                    collectors:
                      - name: quality
                        options:
                          calibration_bins: 0
                          score_bins: 100001
                          bin_series: 3
                """)
        #expect(lines.count == 3, "\(lines)")
        for (line, option) in [(10, "calibration_bins"), (11, "score_bins"), (12, "bin_series")] {
            #expect(
                lines.contains { $0.hasPrefix("\(path):\(line):") && $0.contains("option \(option):") }, "\(lines)"
            )
        }
    }

    /// The max_series total is reported at the collector whose series passed it (it had no line), and says when a
    /// refused collector is not in its count (the count read 59 while quality alone needed 184).
    @Test("the max_series total names a line, and what it leaves out")
    func seriesTotalIsLocated() throws {
        let (path, lines) = try problems(
            fraud + """
                    max_series: 5
                    collectors:
                      - service
                      - name: fairness
                        options: {nope: 1}
                """)
        let total = lines.first { $0.contains("more than max_series (5)") }
        #expect(
            total?.hasPrefix("\(path):9:9: model \"fraud\": its collectors may create up to ") == true, "\(lines)")
        #expect(total?.contains("series (not counting the 1 refused above), more than") == true, "\(lines)")
    }

    /// A reference profile that does not fit its model is reported at the model's `reference` line (it named no line
    /// before: `FILE: model "fraud": reference: ...`).
    @Test("a reference profile's problems found after loading name its line")
    func referenceProblemsAreLocated() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("check-ref-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        // A profile of feature `c` only: the model's `amount` has none.
        let profile = #"""
            {"features": [{"categorical": {"counts": [1, 0], "values": ["x"]}, "missing": 0, "name": "c"}],
             "format": "mlops-exporter.profile/v1", "input_sha256": "", "model": "fraud", "rows": 1}
            """#
        try profile.write(to: folder.appendingPathComponent("ref.json"), atomically: true, encoding: .utf8)
        let (path, lines) = try problems(
            fraud + """
                    features: [{name: amount, type: numeric}]
                    reference: \(folder.path)/ref.json
                    collectors: [service, drift]
                """)
        #expect(
            lines.contains {
                $0.hasPrefix("\(path):8:16: model \"fraud\": reference: ") && $0.contains("no profile for feature")
            }, "\(lines)")
        #expect(!lines.contains { $0.hasPrefix("\(path):0:") }, "\(lines)")
    }
}
