import Ingestion
import Testing

private func labels(
    _ body: String, _ format: BodyFormat = .ndjson, schema: Schema = classificationSchema()
)
    throws(BodyError) -> ([LabelEvent], DecodeReport)
{
    var events: [LabelEvent] = []
    let report = try decodeLabels(body: Array(body.utf8), format: format, schema: schema, maxEvents: 10) { event, _ in
        events.append(event)
    }
    return (events, report)
}

@Suite("Label events")
struct LabelTests {
    /// `id`, `label` or `timestamp` given twice rejects the label (`invalid_json`): the first was dropped unsaid.
    @Test("a key given twice in a label rejects it")
    func keyGivenTwice() throws {
        let (events, report) = try labels(
            """
            {"id":"e1","label":"a","label":"b"}
            {"id":"e2","id":"e3","label":"a"}
            {"id":"e4","label":"a","x":1,"x":2}
            {"id":"e5","\\u006cabel":"a","label":"b"}
            """)
        #expect(events.map(\.id) == ["e4"])
        #expect(
            report.errors.map(\.message) == [
                "'label' is given twice (each key may appear once in an event)",
                "'id' is given twice (each key may appear once in an event)",
                "'label' is given twice (each key may appear once in an event)",  // one written with an escape
            ])
        #expect(report.errors.allSatisfy { $0.reason == .invalidJSON })
    }

    @Test("classification labels, with and without timestamp; unknown keys ignored")
    func classification() throws {
        let (events, report) = try labels(
            """
            {"id":"e1","label":"b","timestamp":1764400000}
            {"id":7,"label":3,"extra":{"x":[1]}}
            {"id":"e3","label":false}
            """)
        #expect(report.accepted == 3)
        #expect(report.unknownKeys == 1 && report.firstUnknownKey == "extra")
        #expect(
            events == [
                LabelEvent(id: "e1", label: .label("b"), labelClass: 1, timestamp: 1_764_400_000),
                LabelEvent(id: "7", label: .label("3")),
                LabelEvent(id: "e3", label: .label("false")),
            ])
    }

    /// A prediction's field on a label (`version`, `attributes`, `prediction`: a label credits neither a version nor a
    /// group) is counted and named as any other key that is no label field (before, skipped unseen).
    @Test("a prediction's fields on a label are unknown keys")
    func predictionFieldsOnALabel() throws {
        let (events, report) = try labels(
            """
            {"id":"e1","version":"v2","label":"b","attributes":{"gender":"f"},"prediction":"a","score":0.1}
            {"id":"e2","label":"a","features":{"x":1},"status":"error"}
            """)
        #expect(report.accepted == 2)
        #expect(report.unknownKeys == 6 && report.firstUnknownKey == "version", "\(report)")
        #expect(events.map(\.id) == ["e1", "e2"])
    }

    /// pandas writes an integer column holding a NaN as floats (`3.0`), numpy float classes likewise: an integral
    /// number is the class of its integer text, as a categorical feature's; one with a fraction is still refused (it
    /// was refused as not an integer, the labels of such a file all lost).
    @Test("a class written as an integral float is that integer's class")
    func integralFloatClasses() throws {
        let (events, report) = try labels(
            """
            {"id":"f","label":3.0}
            {"id":"g","label":1e2}
            {"id":"h","label":2.5}
            """)
        #expect(events.map(\.label) == [.label("3"), .label("100")])
        #expect(report.rejected == 1)
        #expect(
            report.errors.first?.message
                == "'label' must be a class label (string, integral number or boolean), found a number with a fraction")
        // Classes spelled as floats (`classes: [0.0, 1.0]`): a number is the class of an equal value, whichever way it
        // is written (`1.0` became `1`, no class, so every outcome counted wrong).
        let floats = try Schema(task: .classification, classes: ["0.0", "1.0"], features: [FeatureSpec("x", .numeric)])
        let (floated, floatReport) = try labels(
            """
            {"id":"a","label":1.0}
            {"id":"b","label":0}
            {"id":"c","label":"1.0"}
            {"id":"d","label":2}
            {"id":"e","label":1e20}
            """, schema: floats)
        #expect(floated.map(\.label) == [.label("1.0"), .label("0.0"), .label("1.0"), .label("2")])
        #expect(floated.map(\.labelClass) == [1, 0, 1, nil])
        #expect(
            floatReport.errors.first?.message
                == "'label' must be a class label (string, integral number or boolean), found a number too large to be a class"
        )
    }

    @Test("regression labels are numbers; JSON arrays work too")
    func regression() throws {
        let (events, report) = try labels(
            #"[{"id":"a","label":1.5},{"id":"b","label":"x"}]"#, .json, schema: regressionSchema())
        #expect(events == [LabelEvent(id: "a", label: .number(1.5))])
        #expect(
            report.errors == [
                EventError(
                    index: 1, line: nil, offset: 24, reason: .wrongType,
                    message: "'label' must be a number, found a string")
            ])
    }

    @Test("missing id, missing label and other reasons")
    func reasons() throws {
        let (events, report) = try labels(
            """
            {"label":"a"}
            {"id":"x"}
            {"id":"x","label":null}
            {"id":null,"label":"a"}
            {"id":1.5,"label":"a"}
            {"id":"x","label":"a","timestamp":"t"}
            {"id":"x","label":"a"
            {"id":"ok","label":"a"}
            """)
        #expect(events.map(\.id) == ["ok"])
        #expect(
            report.errors.map(\.reason) == [
                .missingID, .missingLabel, .missingLabel, .missingID, .wrongType, .wrongType, .invalidJSON,
            ])
        #expect(report.errors.map(\.line) == [1, 2, 3, 4, 5, 6, 7])
        #expect(report.rejectedByReason == ["missing_id": 2, "missing_label": 2, "wrong_type": 2, "invalid_json": 1])
    }

    /// An empty id is no id, as for labels recorded in process (`EventValidation`): it was accepted, and joined a
    /// prediction whose id was empty too.
    @Test func anEmptyIDIsMissing() throws {
        let (events, report) = try labels(#"{"id":"","label":"a"}"# + "\n" + #"{"id":"k","label":"a"}"#)
        #expect(events.map(\.id) == ["k"])
        #expect(report.errors.map(\.reason) == [.missingID])
    }

    @Test("maxEvents applies to labels")
    func maxEvents() {
        let body = String(repeating: #"{"id":"x","label":"a"}"# + "\n", count: 11)
        #expect(throws: BodyError.tooManyEvents(count: 11, limit: 10)) { try labels(body) }
    }
}
