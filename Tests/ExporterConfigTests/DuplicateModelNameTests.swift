import Testing

@testable import ExporterConfig

/// A model name given twice was reported only when neither model had another problem: the loader skipped the
/// duplicate check for a model it refused, so one run showed the other problem and the next one the duplicate.
@Suite("A model name given twice is reported with the models' other problems")
struct DuplicateModelNameTests {
    @Test("the second model has another problem too")
    func secondRefused() {
        let problems = fileProblems(
            """
            models:
              - {name: m, task: regression, versions: [v]}
              - {name: m, task: regression, versions: []}
            """)
        #expect(
            problems == [
                #"models[1].name: model "m" is configured twice"#, "models[1].versions: list at least one version",
            ])
    }

    @Test("the first model has another problem")
    func firstRefused() {
        let problems = fileProblems(
            """
            models:
              - {name: m, task: nope, versions: [v]}
              - {name: m, task: regression, versions: [v]}
            """)
        #expect(problems.count == 2, "\(problems)")
        #expect(problems.first?.hasPrefix(#"models[0].task: unknown task "nope""#) == true, "\(problems)")
        #expect(problems.last == #"models[1].name: model "m" is configured twice"#, "\(problems)")
    }

    @Test("built in code: the duplicate is named with the other problem")
    func inCode() {
        let configuration = ExporterConfiguration(
            models: [
                ModelConfiguration(name: "m", task: .regression, versions: ["v"]),
                ModelConfiguration(
                    name: "m", task: .binaryClassification, versions: ["v"], classes: ["a"],
                    positiveClass: "a"),
            ], source: "<code>")
        do {
            _ = try configuration.validated()
            Issue.record("should have thrown")
        } catch {
            #expect(
                error.errors.map(\.description) == [
                    "<code>: models[1].classes: binary classification needs exactly 2 classes",
                    #"<code>: models[1].name: model "m" is configured twice"#,
                ])
        }
    }
}
