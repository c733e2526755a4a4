import Foundation
import Testing

@testable import ExporterConfig

/// `field: message` of each problem of `configuration`, built in code.
private func codeProblems(
    _ configuration: ExporterConfiguration, knownCollectors: Set<String> = ConfigLoader.builtInCollectors
) -> [String] {
    do {
        _ = try configuration.validated(knownCollectors: knownCollectors, referencesMustExist: false)
        return []
    } catch {
        return error.errors.map { "\($0.field): \($0.message)" }
    }
}

private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..")

@Suite("A configuration built in code is checked like a file")
struct CodeConfigurationTests {
    @Test(
        "every example configuration comes back unchanged from validated()",
        arguments: [
            "examples/models.yaml", "examples/demo/models.yaml", "examples/custom-collector/models.yaml",
            "examples/llm.yaml",
        ])
    func examplesRoundTrip(file: String) throws {
        let loaded = try ConfigLoader.load(
            file: repository.appendingPathComponent(file).path,
            knownCollectors: ConfigLoader.builtInCollectors.union(["high_score"]))
        let checked = try loaded.validated(knownCollectors: ConfigLoader.builtInCollectors.union(["high_score"]))
        #expect(checked == loaded)
        #expect(
            checked.models.flatMap(\.collectors).map(\.location) == loaded.models.flatMap(\.collectors).map(\.location))
    }

    @Test("zero models is valid, in code and in a file")
    func zeroModels() throws {
        #expect(try ExporterConfiguration(models: [], source: "<code>").validated().models.isEmpty)
        #expect(try ConfigLoader.parse("models: []\n", file: "f.yaml").models.isEmpty)
    }

    @Test("the same mistakes get the same fields and messages as in a file")
    func sameMessages() {
        let cases: [(ExporterConfiguration, String)] = [
            (
                ExporterConfiguration(
                    models: [
                        ModelConfiguration(
                            name: "m", task: .binaryClassification, versions: ["v1"], classes: ["a", "b", "c"],
                            positiveClass: "z")
                    ], source: "<code>"),
                """
                models:
                  - {name: m, task: binary_classification, versions: [v1], classes: [a, b, c], positive_class: z}
                """
            ),
            (
                ExporterConfiguration(models: [ModelConfiguration(name: "bad name", task: .regression)], source: "c"),
                "models:\n  - {name: bad name, task: regression, versions: []}\n"
            ),
            (
                ExporterConfiguration(
                    models: [
                        ModelConfiguration(
                            name: "m", task: .regression, versions: ["v"],
                            features: [FeatureConfiguration(name: "country", kind: .categorical)],
                            latencyBuckets: [0.5, 0.1], collectors: [CollectorConfiguration(name: "nope")])
                    ], source: "c"),
                """
                models:
                  - name: m
                    task: regression
                    versions: [v]
                    features: [{name: country, type: categorical}]
                    latency_buckets: [0.5, 0.1]
                    collectors: [nope]
                """
            ),
        ]
        for (code, yaml) in cases {
            let expected = fileProblems(yaml)
            #expect(!expected.isEmpty)
            #expect(codeProblems(code) == expected)
        }
    }

    @Test("SLOs, alerting and service SLOs are checked too")
    func slosAndAlerting() {
        var model = ModelConfiguration(name: "m", task: .regression, versions: ["v"], latencyBuckets: [0.1, 1])
        model.slos = [
            SLOConfiguration(type: .latency, objective: 99, thresholdSeconds: 0.5),
            SLOConfiguration(type: .quality, objective: 95, target: 0.9),
        ]
        var configuration = ExporterConfiguration(models: [model], source: "<code>")
        configuration.alerting.rejectRatio = 2
        configuration.serviceSLOs = [SLOConfiguration(type: .drift, objective: 99)]
        #expect(
            codeProblems(configuration) == [
                "models[0].slos[0].threshold_seconds: 0.5 is not one of the model's latency_buckets (0.1, 1)",
                "models[0].slos[1].type: quality SLOs need a classification model (accuracy)",
                "alerting.reject_ratio: must be above 0 and below 1",
                "service_slos[0].type: service-wide SLOs are availability or latency (drift SLOs are per model)",
            ])
    }

    @Test("ttft, tpot and goodput SLOs come back unchanged from validated(), and are checked against the llm section")
    func llmSLOs() throws {
        var model = ModelConfiguration(name: "chat", task: .textGeneration, versions: ["base"])
        model.llm = LLMConfiguration(
            ttftBuckets: [0.1, 0.5], tpotBuckets: [0.025, 0.05], objectives: .init(ttftSeconds: 0.5, tpotSeconds: 0.05))
        model.collectors.append(CollectorConfiguration(name: "llm"))
        model.slos = [
            SLOConfiguration(type: .ttft, objective: 99, thresholdSeconds: 0.5),
            SLOConfiguration(name: "tokens", type: .tpot, objective: 99.5, period: .days28, thresholdSeconds: 0.025),
            SLOConfiguration(type: .goodput, objective: 95, description: "in time"),
        ]
        let configuration = ExporterConfiguration(models: [model], source: "<code>")
        // The llm collector is registered by the exporter (MLOpsExporter), not known to ExporterConfig alone.
        let known = ConfigLoader.builtInCollectors.union(["llm"])
        #expect(try configuration.validated(knownCollectors: known) == configuration)
        var wrong = configuration
        wrong.models[0].slos[0].thresholdSeconds = 0.3
        wrong.models[0].llm?.objectives = .init()
        wrong.serviceSLOs = [SLOConfiguration(type: .tpot, objective: 99, thresholdSeconds: 0.05)]
        #expect(
            codeProblems(wrong, knownCollectors: known) == [
                "models[0].slos[0].threshold_seconds: 0.3 is not one of the model's llm.ttft_buckets (0.1, 0.5)",
                "models[0].slos[2].type: goodput SLOs need llm.objectives (ttft_seconds, tpot_seconds or duration_seconds; none are set)",
                "service_slos[0].type: service-wide SLOs are availability or latency (tpot SLOs are per model)",
            ])
    }

    @Test("errors name the configuration's source, without a line")
    func errorsNameTheSource() {
        do {
            _ = try ExporterConfiguration(models: [ModelConfiguration(name: "m", task: .regression)], source: "<code>")
                .validated()
            Issue.record("no versions: should have thrown")
        } catch {
            #expect(error.description == "<code>: models[0].versions: list at least one version")
        }
    }

    @Test("defaults are filled as for a file; a relative reference stays as given")
    func defaultsAndPaths() throws {
        var model = ModelConfiguration(
            name: "m", task: .binaryClassification, versions: ["v"], classes: ["a", "b"], positiveClass: "b",
            reference: "profiles/m.json")
        model.slos = [SLOConfiguration(type: .quality, objective: 95, target: 0.9)]
        var configuration = ExporterConfiguration(models: [model], source: "<code>")
        configuration.alerting.runbookBaseURL = "https://runbooks.example.com/x/"
        let checked = try configuration.validated(referencesMustExist: false)
        #expect(checked.models[0].slos[0].metric == .accuracy)
        #expect(checked.alerting.runbookBaseURL == "https://runbooks.example.com/x")
        #expect(checked.models[0].reference == "profiles/m.json")
        #expect(throws: ConfigErrors.self) { try configuration.validated(referencesMustExist: true) }
    }
}
