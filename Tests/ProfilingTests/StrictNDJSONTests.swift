import Profiling
import Testing

/// `profile` reads NDJSON as JSON (RFC 8259) plus the three words Python's `json` writes for non-finite floats
/// (`NaN`, `Infinity`, `-Infinity`), nothing else: Foundation's reader accepted a trailing comma, and a line with
/// `NaN` went to its JSON5 reader, which also took comments, unquoted keys and single quotes (adversarial review of
/// drift). Every such line is refused naming the file, the line, the column and the key.
@Suite struct StrictNDJSONTests {
    func fail(_ text: String) -> String { failure(text, .ndjson, file: "d.ndjson") }

    static let ok = #"{"amount": 1, "country": "DE", "channel": "web"}"#

    @Test func trailingCommasAreRefused() {
        #expect(
            fail(#"{"amount": 1, "country": "DE", "channel": "web",}"#)
                == #"d.ndjson:1:48: after key "channel": a comma before "}" (trailing commas are not JSON)"#)
        #expect(
            fail("\(Self.ok)\n" + #"{"amount": 1, "features": {"amount": 2,}}"#)
                == #"d.ndjson:2:39: after key "features.amount": a comma before "}" (trailing commas are not JSON)"#)
        #expect(
            fail(#"{"amount": 1, "country": [1, 2,], "channel": "web"}"#)
                == #"d.ndjson:1:31: key "country": a comma before "]" (trailing commas are not JSON)"#)
        // The column counts characters, not bytes.
        #expect(
            fail(#"{"country": "éé", "channel": "web",}"#)
                == #"d.ndjson:1:35: after key "channel": a comma before "}" (trailing commas are not JSON)"#)
    }

    @Test func json5BesideNaNIsRefused() {
        #expect(
            fail(#"{"amount": NaN, "country": "DE", "channel": "web" /* c */}"#)
                == #"d.ndjson:1:51: after key "channel": expected "," or "}", got "/" (comments are not JSON)"#)
        #expect(
            fail(#"{"amount": NaN, // c"#)
                == #"d.ndjson:1:17: after key "amount": expected a key in double quotes, got "/" (comments are not JSON)"#
        )
        #expect(
            fail(#"{amount: NaN, "country": "DE", "channel": "web"}"#)
                == #"d.ndjson:1:2: key amount: not in double quotes (JSON keys are strings)"#)
        #expect(
            fail(#"{"amount": NaN, "country": 'DE', "channel": "web"}"#)
                == #"d.ndjson:1:28: key "country": expected a value, got "'" (single-quoted strings are not JSON)"#)
        #expect(
            fail(#"{"amount": 0x1F, "country": "DE", "score": NaN, "channel": "web"}"#)
                == #"d.ndjson:1:12: key "amount": 0x1F is not a JSON value"#)
        for word in ["nan", "+Infinity", "-NaN", "inf", "+1", ".5", "1.", "01", "Infinityx"] {
            #expect(
                fail(#"{"amount": \#(word), "country": "DE", "score": NaN, "channel": "web"}"#)
                    == #"d.ndjson:1:12: key "amount": \#(word) is not a JSON value"#)
        }
    }

    @Test func otherSyntaxErrorsNameTheKey() {
        #expect(
            fail("\(Self.ok)\n{\"amount\": 1,\n")
                == #"d.ndjson:2:14: after key "amount": the line ends inside an object"#)
        #expect(fail(#"{"amount": 1} x"#) == #"d.ndjson:1:15: text after the JSON value"#)
        #expect(
            fail("{\"country\": \"a\u{1}b\"}")
                == #"d.ndjson:1:15: key "country": control character U+0001 in a string (escape it as \u0001)"#)
        #expect(fail(#"{"country": "a\qb"}"#) == #"d.ndjson:1:15: key "country": invalid escape \q in a string"#)
        #expect(
            fail(#"{"country": "\ud800x"}"#)
                == #"d.ndjson:1:14: key "country": \ud800 is half of a surrogate pair, without its other half"#)
        #expect(fail(#"{"amount" 1}"#) == #"d.ndjson:1:11: key "amount": expected ":", got "1""#)
        #expect(fail(#"{"amount": }"#) == #"d.ndjson:1:12: key "amount": expected a value, got "}""#)
        #expect(fail(#"{"amount": 1, "amount": 2}"#) == #"d.ndjson:1:15: key "amount": appears twice in the object"#)
        #expect(
            fail(String(repeating: "[", count: 100_000))
                == "d.ndjson:1:65: arrays and objects nested deeper than 64 levels")
    }

    /// What Python's `json` writes is read: NaN is missing; the infinities are numbers the profile refuses.
    @Test func pythonsNonFiniteWordsAreRead() throws {
        let p = try profile(
            #"{"amount": NaN, "country": "DE", "channel": "web", "score": NaN}"# + "\n"
                + #"{"amount": -0.0E+2, "country": "é\u00e9\"", "channel": "app", "score": 1e-3}"#,
            .ndjson, file: "d.ndjson")
        #expect(p.rows == 2 && p.features[0].missing == 1 && p.features[0].numeric?.count == 1)
        #expect(p.features[1].categorical?.values == ["DE", "éé\""])
        #expect(
            fail(#"{"amount": -Infinity, "country": "DE", "channel": "web"}"#)
                == #"d.ndjson:1: column "amount": not a finite number (beyond a double's range)"#)
    }
}
