import Ingestion
import Testing

@Suite("Prediction events")
struct PredictionTests {
    @Test("all fields decode into schema order")
    func allFields() throws {
        let event = try #require(
            try single(
                #"""
                { "id": "e1", "timestamp": 1764400000.5, "version": "v3",
                  "features": {"city": "paris", "income": 52000.5, "age": 41},
                  "prediction": 12.5, "score": 0.25, "latency_seconds": 0.012,
                  "status": "error", "error_kind": "timeout",
                  "attributes": {"gender": "f", "ignored": 1}, "label": 13, "unknown": {"a": [1, {"b": null}]} }
                """#))
        #expect(event.id == "e1")
        #expect(event.timestamp == 1_764_400_000.5)
        #expect(event.version == "v3")
        #expect(event.features == [.number(41), .number(52000.5), .category("paris")])
        #expect(event.unknownFeatureCount == 0)
        #expect(event.prediction == .number(12.5))
        #expect(event.score == 0.25)
        #expect(event.latencySeconds == 0.012)
        #expect(event.status == .error)
        #expect(event.errorKind == "timeout")
        #expect(event.attributes == ["f"])
        #expect(event.label == .number(13))
        #expect(event.probabilities.isEmpty)
    }

    @Test("minimal event: defaults, missing features, integer id")
    func minimal() throws {
        let event = try #require(try single(#"{"version":"v","prediction":-0.5,"id":42}"#))
        #expect(event.id == "42")
        #expect(event.timestamp == nil)
        #expect(event.features == [.missing, .missing, .missing])
        #expect(event.status == .ok)
        #expect(event.errorKind == nil)
        #expect(event.attributes == [nil])
        #expect(event.label == nil)
    }

    @Test("feature value conversions and nulls; unknown features counted")
    func featureValues() throws {
        let decoded = try decode(
            #"""
            [{"version":"v","prediction":1,"features":{"age":true,"income":null,"city":7.50,"zip":"75001","x":{"y":[]}}},
             {"version":"v","prediction":1,"features":{"age":false,"city":false}},
             {"version":"v","prediction":1,"features":null,"attributes":{"gender":1.0}},
             {"version":"v","prediction":1,"features":{"city":1.0}},
             {"version":"v","prediction":1,"features":{"city":1e2}},
             {"version":"v","prediction":1,"features":{"city":""}}]
            """#)
        // A number for a categorical feature is the category a reference profile names it (7.50 → 7.5, 1.0 → 1,
        // 1e2 → 100: the same value, the same category); an empty string is missing, as the profile reads it.
        #expect(
            decoded.events.map(\.features) == [
                [.number(1), .missing, .category("7.5")],
                [.number(0), .missing, .category("false")],
                [.missing, .missing, .missing],
                [.missing, .missing, .category("1")],
                [.missing, .missing, .category("100")],
                [.missing, .missing, .missing],
            ])
        #expect(decoded.events.map(\.unknownFeatureCount) == [2, 0, 0, 0, 0, 0])
        // An attribute's number as a categorical feature's: `1.0` is the group `1` (it was `1.0`, so `__other__`).
        #expect(decoded.events[2].attributes == ["1"])
        #expect(decoded.report.unknownFeatures == 2)
    }

    /// Keys that are no event field are skipped and counted over the accepted events, the body's first named (a
    /// misspelt `probabilites` lost the probabilities without a trace); keys the events repeat in order take the
    /// hinted path, and an unknown key between them is still seen.
    @Test func unknownKeysAreCountedAndTheFirstNamed() throws {
        let decoded = try decode(
            #"""
            [{"version":"v","prediction":1,"probabilites":{"a":1},"id":"x"},
             {"version":"v","prediction":1,"id":"y"},
             {"version":"v","prediction":1,"pr\u0065diction_id":2,"id":"z","note":null},
             {"version":"v","prediction":"not a number","extra":1}]
            """#)
        #expect(decoded.events.count == 3)
        #expect(decoded.report.unknownKeys == 3)  // the rejected fourth event's key is not counted
        #expect(decoded.report.firstUnknownKey == "probabilites")
        let clean = try decode(#"[{"version":"v","prediction":1},{"version":"v","prediction":2}]"#)
        #expect(clean.report.unknownKeys == 0 && clean.report.firstUnknownKey == nil)
    }

    @Test("the buffer is reset between events")
    func reset() throws {
        let decoded = try decode(
            #"""
            [{"version":"v","prediction":1,"id":"a","features":{"age":1},"status":"error","attributes":{"gender":"m"}},
             {"version":"v","prediction":2}]
            """#)
        #expect(decoded.events[1].id == nil)
        #expect(decoded.events[1].features == [.missing, .missing, .missing])
        #expect(decoded.events[1].status == .ok)
        #expect(decoded.events[1].attributes == [nil])
    }

    @Test("features not given by an event are missing whatever the previous event gave (no per-event reset)")
    func lazyReset() throws {
        let decoded = try decode(
            #"""
            [{"version":"v","prediction":1,"features":{"age":1,"income":2,"city":"x"}},
             {"version":"v","prediction":2,"features":{"city":"y"}},
             {"version":"v","prediction":3,"features":{"income":5}},
             {"version":"v","prediction":4,"features":{"age":6,"income":7,"city":"z"}},
             {"version":"v","prediction":5,"features":{"age":8},"features":{"city":"w"}},
             {"version":"v","prediction":6,"features":{"age":9,"income":10,"city":"v"}},
             {"version":"v","prediction":7,"features":null},
             {"version":"v","prediction":8,"features":{"income":11,"age":12}},
             {"version":"v","prediction":9,"features":{}}]
            """#)
        #expect(
            decoded.events.map(\.features) == [
                [.number(1), .number(2), .category("x")],
                [.missing, .missing, .category("y")],
                [.missing, .number(5), .missing],
                [.number(6), .number(7), .category("z")],
                // (the fifth, `features` given twice, is rejected: `keyGivenTwice`)
                [.number(9), .number(10), .category("v")],
                [.missing, .missing, .missing],
                [.number(12), .number(11), .missing],
                [.missing, .missing, .missing],
            ])
    }

    @Test("probabilities and class indices are not carried over from the previous event")
    func lazyResetClassification() throws {
        let decoded = try decode(
            #"""
            [{"version":"v","prediction":"a","label":"b","probabilities":[0.5,0.25,0.25]},
             {"version":"v","prediction":"zebra"},
             {"version":"v","prediction":"c","probabilities":{"a":0.2,"b":0.3,"c":0.5}},
             {"version":"v","prediction":"b\u0061","label":"\u0063"}]
            """#, schema: classificationSchema())
        #expect(decoded.events.map(\.probabilities) == [[0.5, 0.25, 0.25], [], [0.2, 0.3, 0.5], []])
        #expect(decoded.events.map(\.predictionClass) == [0, nil, 2, nil])
        #expect(decoded.events.map(\.labelClass) == [1, nil, nil, 2])
        #expect(decoded.events.map(\.prediction) == [.label("a"), .label("zebra"), .label("c"), .label("ba")])
    }

    @Test("features in any order are resolved (hint and hash paths)")
    func featureOrder() throws {
        let event = try #require(
            try single(#"{"version":"v","prediction":1,"features":{"city":"x","income":2,"age":3}}"#))
        #expect(event.features == [.number(3), .number(2), .category("x")])
    }

    @Test("classification predictions: strings, integers and booleans become labels")
    func classification() throws {
        let schema = classificationSchema()
        let decoded = try decode(
            #"""
            [{"version":"v","prediction":"b","label":"c"},
             {"version":"v","prediction":2,"label":true},
             {"version":"v","prediction":"zebra"}]
            """#, schema: schema)
        #expect(decoded.events.map(\.prediction) == [.label("b"), .label("2"), .label("zebra")])
        #expect(decoded.events.map(\.predictionClass) == [1, nil, nil])
        #expect(decoded.events.map(\.label) == [.label("c"), .label("true"), nil])
        #expect(decoded.events.map(\.labelClass) == [2, nil, nil])
    }

    @Test("probabilities as an object and as an array, in class order")
    func probabilities() throws {
        let schema = classificationSchema()
        let decoded = try decode(
            #"""
            [{"version":"v","prediction":"a","probabilities":{"c":0.1,"a":0.6,"b":0.3}},
             {"version":"v","prediction":"a","probabilities":[0.5,0.25,0.25]},
             {"version":"v","prediction":"a","probabilities":null}]
            """#, schema: schema)
        #expect(decoded.events.map(\.probabilities) == [[0.6, 0.3, 0.1], [0.5, 0.25, 0.25], []])
    }

    @Test(
        "each rejection reason",
        arguments: [
            (#"{"prediction":1}"#, RejectReason.missingVersion, "missing 'version'"),
            (#"{"version":null,"prediction":1}"#, .missingVersion, "missing 'version'"),
            // Empty: none, as for events recorded in process (it was recorded under __other__).
            (#"{"version":"","prediction":1}"#, .missingVersion, "missing 'version'"),
            (#"{"version":"v"}"#, .missingPrediction, "missing 'prediction'"),
            (#"{"version":"v","prediction":null}"#, .missingPrediction, "missing 'prediction'"),
            (#"{"version":3,"prediction":1}"#, .wrongType, "'version' must be a string, found a number"),
            (#"{"version":"v","prediction":"1"}"#, .wrongType, "'prediction' must be a number, found a string"),
            (
                #"{"version":"v","prediction":1,"id":1.5}"#, .wrongType,
                "'id' must be a string or an integer, found a number"
            ),
            (
                #"{"version":"v","prediction":1,"id":{}}"#, .wrongType,
                "'id' must be a string or an integer, found an object"
            ),
            (
                #"{"version":"v","prediction":1,"timestamp":"now"}"#, .wrongType,
                "'timestamp' must be a number, found a string"
            ),
            (
                #"{"version":"v","prediction":1,"features":[1]}"#, .wrongType,
                "'features' must be an object, found an array"
            ),
            (
                #"{"version":"v","prediction":1,"features":{"age":"old"}}"#, .wrongType,
                "numeric feature 'age' must be a number, found a string"
            ),
            (
                #"{"version":"v","prediction":1,"features":{"city":[]}}"#, .wrongType,
                "categorical feature 'city' must be a string, number or boolean, found an array"
            ),
            (
                #"{"version":"v","prediction":1,"features":{"age":1e999}}"#, .invalidNumber,
                "feature 'age' is out of range"
            ),
            (
                #"{"version":"v","prediction":1,"attributes":"x"}"#, .wrongType,
                "'attributes' must be an object, found a string"
            ),
            (
                #"{"version":"v","prediction":1,"attributes":{"gender":{}}}"#, .wrongType,
                "attribute 'gender' must be a string, number or boolean, found an object"
            ),
            (
                #"{"version":"v","prediction":1,"error_kind":5}"#, .wrongType,
                "'error_kind' must be a string, found a number"
            ),
            (
                #"{"version":"v","prediction":1,"latency_seconds":-0.1}"#, .invalidNumber,
                "'latency_seconds' must not be negative"
            ),
            (#"{"version":"v","prediction":1,"score":-1e400}"#, .invalidNumber, "'score' is out of range"),
            // A category given as a number beyond a double's range: its spelling was the category (profile and batch
            // read none such).
            (
                #"{"version":"v","prediction":1,"features":{"city":1e400}}"#, .invalidNumber,
                "categorical feature 'city' is a number out of range"
            ),
            // Summed values beyond ±1e140 (their running sums would overflow): refused.
            (
                #"{"version":"v","prediction":2e154}"#, .invalidNumber,
                "'prediction' is out of range (at most ±1e140)"
            ),
            (
                #"{"version":"v","prediction":1,"label":-1e141}"#, .invalidNumber,
                "'label' is out of range (at most ±1e140)"
            ),
            (
                #"{"version":"v","prediction":1,"latency_seconds":1e308}"#, .invalidNumber,
                "'latency_seconds' is out of range (at most 1e140)"
            ),
            (#"{"version":"v","prediction":1,"status":"fine"}"#, .invalidStatus, #"'status' must be "ok" or "error""#),
            (#"{"version":"v","prediction":1,"status":1}"#, .invalidStatus, #"'status' must be "ok" or "error""#),
            (
                #"{"version":"v","prediction":1,"probabilities":[0.5]}"#, .invalidProbabilities,
                "'probabilities' given for a regression model"
            ),
            (
                #"{"version":"v","prediction":1,"probabilities":0.5}"#, .wrongType,
                "'probabilities' must be an object or an array, found a number"
            ),
            (#"{"version":"v","prediction":1,"label":"x"}"#, .wrongType, "'label' must be a number, found a string"),
        ])
    func reasons(_ object: String, _ reason: RejectReason, _ message: String) throws {
        let decoded = try decode("[\(object)]")
        #expect(decoded.events.isEmpty)
        #expect(decoded.report.rejected == 1)
        #expect(decoded.report.errors == [EventError(index: 0, line: nil, offset: 1, reason: reason, message: message)])
        #expect(decoded.report.rejectedByReason == [reason.rawValue: 1])
    }

    @Test(
        "classification rejection reasons",
        arguments: [
            (
                #"{"version":"v","prediction":1.5}"#, RejectReason.wrongType,
                "'prediction' must be a class label (string, integral number or boolean), found a number with a fraction"
            ),
            (
                #"{"version":"v","prediction":["a"]}"#, .wrongType,
                "'prediction' must be a class label (string, integral number or boolean), found an array"
            ),
            (
                #"{"version":"v","prediction":"a","probabilities":{"a":0.5,"b":0.5}}"#, .invalidProbabilities,
                "'probabilities' lacks class 'c'"
            ),
            (
                #"{"version":"v","prediction":"a","probabilities":{"a":0.5,"b":0.5,"c":0,"d":0}}"#,
                .invalidProbabilities,
                "'probabilities' has unknown class 'd'"
            ),
            (
                #"{"version":"v","prediction":"a","probabilities":[0.5,0.5]}"#, .invalidProbabilities,
                "'probabilities' has 2 values for 3 classes"
            ),
            (
                #"{"version":"v","prediction":"a","probabilities":[0.5,0.5,0,0]}"#, .invalidProbabilities,
                "'probabilities' has 4 values for 3 classes"
            ),
            (
                #"{"version":"v","prediction":"a","probabilities":[0.5,1.5,0]}"#, .invalidProbabilities,
                "probability 1.5 is outside [0, 1]"
            ),
            (
                #"{"version":"v","prediction":"a","probabilities":{"a":"x","b":0,"c":0}}"#, .wrongType,
                "probabilities must be numbers, found a string"
            ),
        ])
    func classificationReasons(_ object: String, _ reason: RejectReason, _ message: String) throws {
        let decoded = try decode("[\(object)]", schema: classificationSchema())
        #expect(decoded.events.isEmpty)
        #expect(decoded.report.errors == [EventError(index: 0, line: nil, offset: 1, reason: reason, message: message)])
    }

    @Test("the first problem of an event is reported")
    func firstProblemWins() throws {
        let error = try rejection(#"{"status":"bad","version":1}"#)
        #expect(error?.reason == .invalidStatus)
    }

    @Test("duplicate schema names are refused")
    func schemaDuplicates() {
        #expect(throws: SchemaError(list: "features", name: "a")) {
            try Schema(task: .regression, features: [FeatureSpec("a", .numeric), FeatureSpec("a", .categorical)])
        }
        #expect(throws: SchemaError(list: "classes", name: "x")) {
            try Schema(task: .classification, classes: ["x", "y", "x"], features: [])
        }
    }

    @Test("rejected or malformed events leave nothing behind for the next accepted one")
    func resetAfterFailures() throws {
        let decoded = try decode(
            """
            {"version":"v","prediction":1,"features":{"age":1,"income":2,"city":"x"},"attributes":{"gender":"f"},"status":"bad"}
            {"version":"v","prediction":2}
            {"version":"v","prediction":3,"features":{"age":4,"income":5,"city":"y"},"attributes":{"gender":"m"}}
            {"version":"v","prediction":4,"features":{"age":6,"income":
            {"version":"v","prediction":5}
            {"version":"v","prediction":6,"features":{"age":7},"probabilities":[0.5]} junk
            {"version":"v","prediction":7,"attributes":null}
            """, .ndjson)
        #expect(decoded.report.rejected == 3)
        #expect(decoded.events.map(\.prediction) == [.number(2), .number(3), .number(5), .number(7)])
        for i in [0, 2, 3] {
            #expect(decoded.events[i].features == [.missing, .missing, .missing])
            #expect(decoded.events[i].attributes == [nil])
        }
        #expect(decoded.events[1].features == [.number(4), .number(5), .category("y")])
    }

    /// A known key given twice in one event rejects it, `invalid_json` naming the key: JSON decoders keep the last,
    /// so the first value was dropped without a word (it was accepted, the last one winning). Keys that are no field,
    /// feature or attribute are skipped as before; the next event starts afresh (its keys are not "given twice").
    @Test("a key given twice in an event rejects it")
    func keyGivenTwice() throws {
        let decoded = try decode(
            #"""
            [{"version":"v1","version":"v2","prediction":"a"},
             {"version":"v","prediction":"a","probabilities":[0.5,0.25,0.25],"probabilities":null},
             {"version":"v","prediction":"a","features":{"x":1,"x":2}},
             {"version":"v","prediction":"a","probabilities":{"a":0.5,"b":0.5,"a":0,"c":0}},
             {"version":"v","prediction":"a","features":{"x":1},"other":1,"other":2},
             {"version":"v","prediction":"a","features":{"x":3}}]
            """#, schema: classificationSchema())
        #expect(decoded.report.accepted == 2)
        #expect(
            decoded.report.errors.map { "\($0.index) \($0.reason.rawValue) \($0.message)" } == [
                "0 invalid_json 'version' is given twice (each key may appear once in an event)",
                "1 invalid_json 'probabilities' is given twice (each key may appear once in an event)",
                "2 invalid_json 'features.x' is given twice (each key may appear once in an event)",
                "3 invalid_json 'probabilities.a' is given twice (each key may appear once in an event)",
            ])
        #expect(decoded.events.map(\.features) == [[.number(1)], [.number(3)]])
        let attribute = try rejection(#"{"version":"v","prediction":1,"attributes":{"gender":"f","gender":"m"}}"#)
        #expect(attribute?.message == "'attributes.gender' is given twice (each key may appear once in an event)")
        // A model without features (the marks were sized from the features' count alone: out of range here).
        let noFeatures = try Schema(task: .regression, features: [], attributeNames: ["gender"])
        let featureless = try rejection(
            #"{"version":"v","prediction":1,"attributes":{"gender":"f","gender":"m"}}"#, schema: noFeatures)
        #expect(featureless?.reason == .invalidJSON)
    }

    @Test("a visitor that changes the event's arrays does not break the next events")
    func visitorChangesArrays() throws {
        let body = """
            {"version":"v","prediction":1,"features":{"age":1,"city":"x"},"attributes":{"gender":"f"}}
            {"version":"v","prediction":2,"features":{"age":2},"attributes":{"gender":"m"}}
            {"version":"v","prediction":3,"features":{"income":3}}
            """
        var seen: [PredictionEvent] = []
        var call = 0
        let report = try decodePredictions(
            body: Array(body.utf8), format: .ndjson, schema: regressionSchema(), maxEvents: 10
        ) { event, _ in
            seen.append(event)
            call += 1
            switch call {
            case 1:
                event.features = []  // emptied
                event.attributes = []
            default:
                event.features.append(.number(99))  // grown
                event.attributes.append("extra")
                event.probabilities = [1, 2, 3]
            }
        }
        #expect(report.accepted == 3)
        #expect(
            seen.map(\.features) == [
                [.number(1), .missing, .category("x")], [.number(2), .missing, .missing],
                [.missing, .number(3), .missing],
            ])
        #expect(seen.map(\.attributes) == [["f"], ["m"], [nil]])
        #expect(seen.map(\.probabilities) == [[], [], []])
    }

    @Test("strings around the 15-byte inline limit, ASCII or not, escaped or not, decode exactly")
    func inlineStringLimit() throws {
        let values = [
            "", "a", String(repeating: "x", count: 15), String(repeating: "x", count: 16),
            String(repeating: "y", count: 17),
            "\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}a", "\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}",
            "\u{1F600}\u{1F600}\u{1F600}x", "tab\there", String(repeating: "z", count: 14) + "\u{E9}",
        ]
        let schema = try Schema(
            task: .regression, features: [FeatureSpec("c", .categorical)], attributeNames: ["g"])
        for value in values {
            let json = value.unicodeScalars.map { $0 == "\t" ? "\\t" : String($0) }.joined()
            let event = try #require(
                try single(
                    #"{"version":"v","prediction":1,"id":"\#(json)","features":{"c":"\#(json)"},"attributes":{"g":"\#(json)"}}"#,
                    schema: schema))
            #expect(Array((event.id ?? "-").utf8) == Array(value.utf8), "\(value)")
            // (An empty category is a missing value.)
            #expect(event.features == [value.isEmpty ? .missing : .category(value)], "\(value)")
            #expect(event.attributes == [value], "\(value)")
        }
    }

    @Test("500 events of random feature subsets in random order decode to exactly what each one gave")
    func randomSubsets() throws {
        let names = (0..<12).map { "f\($0)" }
        let schema = try Schema(
            task: .regression,
            features: names.enumerated().map { FeatureSpec($1, $0 % 3 == 2 ? .categorical : .numeric) })
        var rng = SplitMix64(seed: 7)
        var lines: [String] = []
        var expected: [[FeatureValue]] = []
        for e in 0..<500 {
            var values = [FeatureValue](repeating: .missing, count: names.count)
            var members: [String] = []
            for i in names.indices.shuffled(using: &rng) where Bool.random(using: &rng) {
                if i % 3 == 2 {
                    values[i] = .category("c\(e % 7)")
                    members.append(#""\#(names[i])":"c\#(e % 7)""#)
                } else {
                    values[i] = .number(Double(e * 100 + i))
                    members.append(#""\#(names[i])":\#(e * 100 + i)"#)
                }
            }
            if e % 50 == 0 { members.append(#""unknown":1"#) }
            let features = e % 97 == 5 ? "" : #","features":{\#(members.joined(separator: ","))}"#
            if features.isEmpty { values = [FeatureValue](repeating: .missing, count: names.count) }
            lines.append(#"{"version":"v","prediction":1\#(features)}"#)
            expected.append(values)
        }
        let decoded = try decode(lines.joined(separator: "\n"), .ndjson, schema: schema)
        #expect(decoded.report.accepted == 500)
        #expect(decoded.events.count == 500)
        for (index, event) in decoded.events.enumerated() where event.features != expected[index] {
            Issue.record("event \(index): \(event.features) != \(expected[index])")
            break
        }
    }

    @Test("many features resolve through the hash table in any order")
    func manyFeatures() throws {
        let names = (0..<100).map { "f\($0)" }
        let schema = try Schema(task: .regression, features: names.map { FeatureSpec($0, .numeric) })
        let order = names.indices.reversed().map { (i: Int) in "\"f\(i)\":\(i)" }.joined(separator: ",")
        let event = try #require(
            try single(#"{"version":"v","prediction":1,"features":{\#(order),"f100":1}}"#, schema: schema))
        #expect(event.features == (0..<100).map { .number(Double($0)) })
        #expect(event.unknownFeatureCount == 1)
    }
}

@Suite("Decoder cache")
struct DecoderCacheTests {
    /// A body of `count` events whose keys come in an order drawn from `rng`, with values drawn from small sets
    /// (so that the string cache holds many of them) and unique ids.
    func body(_ count: Int, _ rng: inout SplitMix64) -> String {
        (0..<count).map { i in
            var members = [
                #""version":"v\#(Int.random(in: 1...3, using: &rng))""#,
                #""prediction":\#(Int.random(in: 0...9, using: &rng))"#,
                #""id":"event-\#(rng.next())""#,
                #""features":{"city":"city-\#(Int.random(in: 0...40, using: &rng))","age":\#(i)}"#,
                #""attributes":{"gender":"\#(["f", "m", "x", "a-much-longer-group-name"].randomElement(using: &rng)!)"}"#,
            ]
            if Bool.random(using: &rng) { members.shuffle(using: &rng) }
            return "{" + members.joined(separator: ",") + "}"
        }.joined(separator: "\n")
    }

    @Test("a cache shared by 50 bodies decodes each exactly as without it")
    func sameResults() throws {
        var rng = SplitMix64(seed: 11)
        let cache = DecoderCache()
        for _ in 0..<50 {
            let text = body(40, &rng)
            var with: [PredictionEvent] = []
            var without: [PredictionEvent] = []
            let a = try decodePredictions(
                body: Array(text.utf8), format: .ndjson, schema: regressionSchema(), maxEvents: 100, cache: cache
            ) { event, _ in with.append(event) }
            let b = try decodePredictions(
                body: Array(text.utf8), format: .ndjson, schema: regressionSchema(), maxEvents: 100
            ) { event, _ in without.append(event) }
            #expect(a == b)
            #expect(with.count == 40)
            #expect(with == without)
        }
    }
}
