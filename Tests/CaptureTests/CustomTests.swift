import Capture
import Ingestion
import Testing

@Suite("Custom JSON pointers")
struct CustomTests {
    let mapping = CustomMapping(
        features: [
            "age": .init(.request, "/data/*/person/age"), "income": .init(.request, "/data/*/income"),
            "region": .init(.header, "X-Region"),
        ],
        prediction: .init(.response, "/result/*/class"), score: .init(.response, "/result/*/p"),
        id: .init(.header, "x-request-id"), version: .init(.response, "/meta/model~1version"),
        attributes: ["tenant": .init(.request, "/tenant")])

    @Test("rows from the '*' arrays, broadcast values from plain pointers and headers")
    func rows() throws {
        let decoder = try CaptureDecoder(protocol: .custom, schema: binarySchema(), custom: mapping)
        let request = #"{"tenant": "acme", "data": [{"person": {"age": 30}, "income": 5}, {"income": 6}]}"#
        let response = #"{"meta": {"model/version": 3}, "result": [{"class": "1", "p": 0.9}, {"class": 0, "p": 0.2}]}"#
        let events = try decode(
            decoder, request, response, headers: [("x-request-id", "req-7"), ("x-region", "eu \"west\"")])
        #expect(
            events.map(\.features) == [
                [.number(30), .number(5), .category("eu \"west\"")], [.missing, .number(6), .category("eu \"west\"")],
            ])
        #expect(events.map(\.prediction) == [.label("1"), .label("0")])
        #expect(events.map(\.score) == [0.9, 0.2])
        #expect(events.map(\.id) == ["req-7/0", "req-7/1"])
        #expect(events.allSatisfy { $0.version == "3" && $0.attributes == ["acme"] })
    }

    @Test("an id shared by the rows of a batch is numbered per row; per-row ids and a single row's are kept")
    func batchIDs() throws {
        let shared = CustomMapping(
            features: ["age": .init(.request, "/rows/*/a")], prediction: .init(.response, "/results/*/label"),
            id: .init(.request, "/id"))
        let decoder = try CaptureDecoder(protocol: .custom, schema: binarySchema(), custom: shared)
        let batch = try decode(
            decoder, #"{"id": "batch-42", "rows": [{"a": 1}, {"a": 3}]}"#,
            #"{"results": [{"label": "1"}, {"label": "0"}]}"#)
        #expect(batch.map(\.id) == ["batch-42/0", "batch-42/1"])
        let one = try decode(decoder, #"{"id": "req-1", "rows": [{"a": 1}]}"#, #"{"results": [{"label": "1"}]}"#)
        #expect(one.map(\.id) == ["req-1"])
        let perRow = CustomMapping(
            features: ["age": .init(.request, "/rows/*/a")], prediction: .init(.response, "/results/*/label"),
            id: .init(.request, "/rows/*/id"))
        let own = try decode(
            try CaptureDecoder(protocol: .custom, schema: binarySchema(), custom: perRow),
            #"{"rows": [{"a": 1, "id": "p"}, {"a": 3, "id": "q"}]}"#, #"{"results": [{"label": "1"}, {"label": "0"}]}"#)
        #expect(own.map(\.id) == ["p", "q"])
    }

    @Test("no '*': one event; a numeric header is a number; a missing header is missing")
    func single() throws {
        let m = CustomMapping(
            features: ["age": .init(.header, "x-age"), "income": .init(.header, "x-income")],
            prediction: .init(.response, ""))
        let decoder = try CaptureDecoder(protocol: .custom, schema: binarySchema(), custom: m)
        let events = try decode(decoder, "not JSON, not read", "1", headers: [("x-age", " 42 ")])
        #expect(events.count == 1)
        #expect(events[0].features == [.number(42), .missing, .missing])
        #expect(events[0].prediction == .label("1"))
    }

    @Test("'*' arrays of different lengths are a row count mismatch")
    func mismatch() throws {
        let decoder = try CaptureDecoder(protocol: .custom, schema: binarySchema(), custom: mapping)
        #expect(
            failure(decoder, #"{"data": [{}, {}]}"#, #"{"result": [{"class": 1, "p": 0.5}]}"#) == .rowCountMismatch)
    }

    @Test(
        "configuration errors name the field",
        arguments: [
            (CustomMapping(prediction: nil), "custom.prediction"),
            (
                CustomMapping(features: ["height": .init(.request, "/h")], prediction: .init(.response, "")),
                "custom.features.height"
            ),
            (
                CustomMapping(prediction: .init(.response, ""), attributes: ["team": .init(.request, "/t")]),
                "custom.attributes.team"
            ),
            (CustomMapping(prediction: .init(.response, "result")), "custom.prediction"),
            (CustomMapping(prediction: .init(.response, "/a/*/b/*")), "custom.prediction"),
            (
                CustomMapping(features: ["age": .init(.request, "/a~2")], prediction: .init(.response, "")),
                "custom.features.age"
            ),
            (
                CustomMapping(prediction: .init(.response, ""), probabilities: .init(.header, "x-p")),
                "custom.probabilities"
            ),
        ])
    func configErrors(mapping: CustomMapping, field: String) {
        #expect(throws: CaptureConfigError.self) {
            try CaptureDecoder(protocol: .custom, schema: binarySchema(), custom: mapping)
        }
        do {
            _ = try CaptureDecoder(protocol: .custom, schema: binarySchema(), custom: mapping)
        } catch {
            #expect(error.field == field)
        }
    }

    @Test("a mapping is required for custom and refused for the other protocols")
    func mappingPresence() {
        #expect(throws: CaptureConfigError(field: "custom", message: "protocol 'custom' needs a mapping")) {
            try CaptureDecoder(protocol: .custom, schema: binarySchema())
        }
        for p in CaptureProtocol.allCases where p != .custom {
            #expect(throws: CaptureConfigError.self) {
                try CaptureDecoder(protocol: p, schema: binarySchema(), custom: mapping)
            }
        }
    }
}
