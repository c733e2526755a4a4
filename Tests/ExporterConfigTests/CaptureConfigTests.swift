import Foundation
import Testing

@testable import ExporterConfig

private let model = """
    models:
      - name: m
        task: binary_classification
        versions: [v1]
        classes: ["0", "1"]
        positive_class: "1"
        features: [{name: x, type: numeric}]
        sensitive_attributes: [{name: g, groups: [a, b]}]

    """

private func problems(_ capture: String, top: String = "") -> [String] {
    do {
        _ = try ConfigLoader.parse(top + model + "    capture: " + capture + "\n", file: "t.yaml")
        return []
    } catch {
        return error.errors.map { "\($0.field): \($0.message)" }
    }
}

@Suite("Capture configuration")
struct CaptureConfigTests {
    @Test func aCustomMappingIsReadWithItsLocations() throws {
        let config = try ConfigLoader.parse(
            "cloudevents: {max_pending: 5, ttl: 2m}\n" + model
                + """
                    capture:
                      protocol: custom
                      inference_service: m-isvc
                      fields: {prediction: "response:/out/*", id: "header:x-request-id"}
                      features: {x: "request:/rows/*/x"}
                      attributes: {g: "request:/rows/*/g"}

                """, file: "t.yaml")
        let capture = try #require(config.models[0].capture)
        #expect(capture.protocolName == "custom" && capture.inferenceService == "m-isvc")
        #expect(capture.fields == ["prediction": "response:/out/*", "id": "header:x-request-id"])
        #expect(capture.features == ["x": "request:/rows/*/x"] && capture.attributes == ["g": "request:/rows/*/g"])
        #expect(config.cloudEvents.maxPending == 5 && config.cloudEvents.ttl == .seconds(120))
        // Built in code, the same configuration passes the file's checks and keeps every field.
        #expect(try config.validated(knownCollectors: ["service"]).models[0].capture == capture)
    }

    /// An attribute mapped for a model that declares none is named with what to do (it said "unknown field
    /// (expected one of: )").
    @Test func anAttributeOfAModelWithoutAttributesSaysWhereToDeclareIt() {
        let config = model.replacingOccurrences(of: "    sensitive_attributes: [{name: g, groups: [a, b]}]\n", with: "")
        #expect(config != model)
        let capture = #"{protocol: custom, fields: {prediction: "response:/p"}, attributes: {tenant: "header:X-T"}}"#
        do {
            _ = try ConfigLoader.parse(config + "    capture: " + capture + "\n", file: "t.yaml")
            Issue.record("accepted")
        } catch {
            #expect(
                error.errors.map { "\($0.field): \($0.message)" } == [
                    "models[0].capture.attributes.tenant: unknown attribute: the model declares no sensitive_attributes (declare it there, with its groups)"
                ])
        }
    }

    @Test func everyMistakeIsNamed() {
        #expect(
            problems("{protocol: grpc}") == [
                #"models[0].capture.protocol: unknown protocol "grpc" (known: kserve_v1, open_inference_v2, mlflow, custom)"#
            ])
        #expect(
            problems("{inference_service: x}") == [
                "models[0].capture.protocol: required: one of kserve_v1, open_inference_v2, mlflow, custom"
            ])
        // An empty service: no logger event could reach the model (accepted before).
        #expect(
            problems(#"{protocol: kserve_v1, inference_service: ""}"#) == [
                "models[0].capture.inference_service: empty: the InferenceService whose logger events this model takes"
            ])
        #expect(
            problems(#"{protocol: kserve_v1, features: {x: "request:/a"}}"#) == [
                "models[0].capture.features: only the custom protocol maps fields (kserve_v1 has a fixed mapping)"
            ])
        #expect(
            problems(#"{protocol: custom, features: {x: "request:/a"}}"#) == [
                "models[0].capture.fields.prediction: required with the custom protocol: where the prediction is"
            ])
        #expect(
            problems(#"{protocol: custom, fields: {prediction: "body:/a"}}"#) == [
                #"models[0].capture.fields.prediction: unknown source "body" (request, response or header)"#
            ])
        #expect(
            problems(#"{protocol: custom, fields: {prediction: "response:a"}}"#) == [
                #"models[0].capture.fields.prediction: "a" is not a JSON pointer (RFC 6901: empty, or starting with /)"#
            ])
        #expect(
            problems(#"{protocol: custom, fields: {prediction: "response:/a"}, features: {y: "request:/y"}}"#).count
                == 1)
        #expect(problems("{protocol: mlflow}", top: "cloudevents: {ttl: 0s}\n").count == 1)
    }

    @Test func twoModelsCannotCaptureTheSameInferenceService() throws {
        func twoModels(_ first: String, _ second: String) -> String {
            """
            models:
              - name: a
                task: regression
                versions: [v1]
                capture: \(first)
              - name: b
                task: regression
                versions: [v1]
                capture: \(second)

            """
        }
        func errors(_ text: String) -> [String] {
            do {
                _ = try ConfigLoader.parse(text, file: "t.yaml")
                return []
            } catch {
                return error.errors.map(\.description)
            }
        }
        #expect(
            errors(
                twoModels(
                    "{protocol: kserve_v1, inference_service: isvc}", "{protocol: mlflow, inference_service: isvc}"))
                == [
                    #"t.yaml:9:52: models[1].capture.inference_service: InferenceService "isvc", already used by model "a""#
                ])
        // The default is the model's name.
        #expect(
            errors(twoModels("{protocol: kserve_v1, inference_service: b}", "{protocol: mlflow}")) == [
                #"t.yaml:9:14: models[1].capture.inference_service: InferenceService "b" (the model's name), already used by model "a""#
            ])
        #expect(errors(twoModels("{protocol: kserve_v1}", "{protocol: mlflow}")).isEmpty)

        // Built in code, the same check.
        var config = try ConfigLoader.parse(twoModels("{protocol: kserve_v1}", "{protocol: mlflow}"), file: "t.yaml")
        config.models[1].capture?.inferenceService = "a"
        #expect(throws: ConfigErrors.self) { try config.validated(knownCollectors: ["service"]) }
        do {
            _ = try config.validated(knownCollectors: ["service"])
        } catch {
            #expect(
                error.errors.map { "\($0.field): \($0.message)" } == [
                    #"models[1].capture.inference_service: InferenceService "a", already used by model "a""#
                ])
        }
    }
}
