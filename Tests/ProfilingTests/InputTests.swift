import ExporterConfig
import Foundation
import ModelMonitoring
import Profiling
import Testing

/// The fraud model of the examples, with `country` learned from the reference.
let fraud = ModelConfiguration(
    name: "fraud", task: .binaryClassification, versions: ["v1"], classes: ["legit", "fraud"],
    positiveClass: "fraud",
    features: [
        FeatureConfiguration(name: "amount", kind: .numeric),
        FeatureConfiguration(name: "country", kind: .categorical),
        FeatureConfiguration(name: "channel", kind: .categorical, values: ["web", "app"]),
    ],
    sensitiveAttributes: [SensitiveAttribute(name: "gender", groups: ["f", "m"])])

func profile(
    _ text: String, _ format: InputFormat = .csv, file: String = "data.csv", ignore: [String] = []
) throws(ProfilingError) -> ReferenceProfile {
    try Profiler.profile(
        Array(text.utf8), file: file, format: format, model: fraud, options: .init(bins: 2, fineBins: 4),
        ignoreColumns: ignore)
}

/// The message of the error `text` raises.
func failure(
    _ text: String, _ format: InputFormat = .csv, file: String = "data.csv", ignore: [String] = []
) -> String {
    do {
        _ = try profile(text, format, file: file, ignore: ignore)
        return "no error"
    } catch {
        return error.description
    }
}

@Suite struct CSVTests {
    /// The missing-value texts pandas reads by default (R writes `NA`) are missing in a numeric column, not errors;
    /// a category may be called `NA`. `1e400` is out of range, not "not a number" (as NDJSON says it); a file with
    /// CR-only line endings is refused as such (it read as one line of odd column names).
    @Test func missingValueTextsOutOfRangeNumbersAndCROnlyLines() throws {
        let p = try profile("amount,country,channel\nNA,NA,web\n NULL ,DE,app\n<NA>,DE,web\nnan,FR,web\n2.5,FR,app\n")
        #expect(p.features[0].numeric?.count == 1 && p.features[0].missing == 4)
        #expect(p.features[1].missing == 0 && p.features[1].categorical?.values.contains("NA") == true)
        #expect(
            failure("amount,country,channel\n1e400,DE,web\n")
                == #"data.csv:2:1: column "amount": not a finite number (beyond a double's range)"#)
        #expect(
            failure("amount,country,channel\r1,DE,web\r")
                == "data.csv:1: field 3: a carriage return without a line feed outside quotes: lines must end with LF "
                + "or CRLF (CR-only line endings can be converted with tr '\\r' '\\n')")
        #expect(
            failure("amount,country,channel\r\n1,\"DE\"\r2,FR,web\r\n").hasSuffix(
                "lines must end with LF or CRLF (CR-only line endings can be converted with tr '\\r' '\\n')"))
    }

    /// Found by Fuzz/ (profiling): values near the largest Double made `std` NaN, and the profile could not be
    /// written as JSON.
    @Test func hugeValuesGiveAProfileThatIsWritten() throws {
        let p = try profile("amount,country,channel\n1e308,DE,web\n-1e308,FR,app\n1e308,DE,web\n")
        #expect(p.features[0].numeric?.mean.isFinite == true && p.features[0].numeric?.std.isFinite == true)
        #expect(throws: Never.self) { try Profiler.encode(p) }
    }

    @Test func quotedFieldsCRLFBlankLinesAndBOM() throws {
        let csv =
            "\u{FEFF}amount,country,channel,\"prediction\",id\r\n"
            + "1.5,\"DE\",web,fraud,\"a,b\"\r\n"
            + "\r\n"
            + "2,\"say \"\"hi\"\"\",app,legit,\"multi\nline\"\n"
            + " 3 ,\"\",,legit,x\n"
            + "nan,\"x\ny\",web,fraud,"
        let p = try profile(csv)
        #expect(p.rows == 4)
        #expect(p.features[0].numeric?.count == 3 && p.features[0].missing == 1)
        #expect(p.features[0].numeric?.mean == 6.5 / 3)
        #expect(
            p.features[1].categorical
                == CategoricalProfile(values: ["DE", "say \"hi\"", "x\ny"], counts: [1, 1, 1, 0]))
        #expect(p.features[1].missing == 1)
        #expect(p.features[2].categorical == CategoricalProfile(values: ["web", "app"], counts: [2, 1, 0]))
        #expect(p.features[2].missing == 1)
        #expect(p.prediction?.categorical == CategoricalProfile(values: ["legit", "fraud"], counts: [2, 2, 0]))
        #expect(p.score == nil)
        #expect(p.inputSHA256 == SHA256.hex(Array(csv.utf8)))
    }

    /// A cell's error names where the cell begins, line and character column, as `batch` does (it named the line
    /// alone): on its own line when a quoted field before it spans lines, the column counted in characters.
    @Test func cellErrorsNameTheirColumn() {
        #expect(
            failure("amount,country,channel\n1,DE,web\n12.5x,FR,app\n")
                == #"data.csv:3:1: column "amount": "12.5x" is not a number"#)
        #expect(
            failure("country,amount,channel\nDE,1,web\n\"Zürich\",abc,web\n")
                == #"data.csv:3:10: column "amount": "abc" is not a number"#)
        #expect(
            failure("country,channel,amount\n\"a\nbc\",web,abc\n")
                == #"data.csv:3:9: column "amount": "abc" is not a number"#)
        #expect(
            failure("country,channel,amount\nDE,web,\"1\n2\"\n")
                == #"data.csv:2:8: column "amount": "1\n2" is not a number"#)
    }

    @Test func lineNumbersCountEmbeddedNewlines() {
        let csv = "amount,country,channel\n1,\"a\nb\nc\",web\n\n2,DE,web\nabc,DE,web\n"
        #expect(failure(csv) == #"data.csv:7:1: column "amount": "abc" is not a number"#)
        #expect(failure("amount,country,channel\n1,DE\n") == "data.csv:2: 2 fields, the header has 3")
        #expect(failure("amount,country,channel\n1,DE,web,x\n") == "data.csv:2: 4 fields, the header has 3")
        #expect(
            failure("amount,country,channel\n1,\"DE,web\n")
                == "data.csv:2: column \"country\": a quoted field is not closed before the end")
        #expect(
            failure("amount,country,channel\n1,D\"E,web\n")
                == "data.csv:2: column \"country\": a quote inside an unquoted field")
        #expect(
            failure("amount,country,channel\n1,\"DE\"x,web\n")
                == "data.csv:2: column \"country\": text after a closing quote")
        #expect(
            failure("amount,country,channel\n\"1\n\"\"\t\\\u{1}\",DE,web\n")
                == #"data.csv:2:1: column "amount": "1\n\"\t\\\u0001" is not a number"#)
        #expect(
            failure("amount,country,channel\ninf,DE,web\n")
                == #"data.csv:2:1: column "amount": "inf" is an infinity: a value must be finite or missing"#)
        #expect(
            failure("amount,country,channel\n0x10,DE,web\n")
                == #"data.csv:2:1: column "amount": "0x10" is not a number"#)
    }

    @Test func headerProblems() {
        #expect(failure("") == "data.csv: the input is empty (no header, no data rows)")
        #expect(failure("\n\n") == "data.csv: the input is empty (no header, no data rows)")
        #expect(failure("amount,country,channel\n") == "data.csv: no data rows (only a header)")
        #expect(
            failure("country,channel\nDE,web\n")
                == #"data.csv:1: column "amount" (feature of model fraud) is missing from the header"#)
        #expect(
            failure("amount,country,channel,amount\n1,DE,web,2\n")
                == #"data.csv:1: column "amount" appears twice in the header"#)
        let unknown = failure("amount,country,channel,ammount,zip\n1,DE,web,1,2\n")
        #expect(
            unknown
                == #"data.csv:1: columns "ammount", "zip" are not features of model fraud (nor prediction, score, id, label, timestamp, version or a sensitive attribute); skip with --ignore-columns 'ammount,zip'"#
        )
        #expect(failure("amount,country,channel,zip\n1,DE,web,1\n", ignore: ["zip"]) == "no error")
        // pandas' DataFrame.to_csv() writes its index first, unnamed: the hint spells it '' and --ignore-columns ''
        // takes it (the hint printed nothing, and no argument could name the column).
        let pandas = ",amount,country,channel\n0,1,DE,web\n"
        #expect(failure(pandas).hasSuffix("skip with --ignore-columns ''"), "\(failure(pandas))")
        #expect(failure(pandas, ignore: ProfilingError.ignoredColumns("")) == "no error")
        #expect(
            ProfilingError.ignoredColumns(",x") == ["", "x"] && ProfilingError.ignoredColumns("x,") == ["x"]
                && ProfilingError.ignoreHint(["it's"]) == #"skip with --ignore-columns 'it'\''s'"#)
        #expect(
            failure("amount,country,channel,id,label,timestamp,version,gender,score\n1,DE,web,a,b,c,d,f,0.5\n")
                == "no error")
    }
}

@Suite struct NDJSONTests {
    @Test func flatObjectsAndEventsBothWork() throws {
        let ndjson = """
            {"amount": 1, "country": "DE", "channel": "web", "prediction": "fraud", "score": 0.9}
            {"id": "7", "version": "v1", "features": {"amount": 3, "country": 44, "channel": null}, "prediction": "legit", "attributes": {"gender": "f"}}

            {"features": {"amount": null, "country": true}, "score": 0.1}\r
            {"amount": 2.5, "country": "DE", "gender": "m"}
            {"amount": NaN, "country": "DE", "channel": "app"}
            """
        let p = try profile(ndjson, .ndjson, file: "data.ndjson")
        #expect(p.rows == 5)
        #expect(p.features[0].numeric?.count == 3 && p.features[0].missing == 2)
        #expect(p.features[1].categorical == CategoricalProfile(values: ["DE", "44", "true"], counts: [3, 1, 1, 0]))
        #expect(p.features[2].categorical == CategoricalProfile(values: ["web", "app"], counts: [1, 1, 0]))
        #expect(p.features[2].missing == 3)
        #expect(p.prediction?.categorical?.counts == [1, 1, 0] && p.prediction?.missing == 3)
        #expect(p.score?.numeric?.count == 2 && p.score?.missing == 3)
    }

    /// Found by Fuzz/ (profiling): a line with NaN and invalid UTF-8 went to Foundation's JSON5 reader, which
    /// traps on invalid UTF-8 in an unquoted key. The invalid byte is reported where it is.
    @Test func invalidUTF8NextToNaNIsReportedNotTrapped() {
        let line = Array(#"{"amount": NaN, "#.utf8) + [0xFF] + Array(#"ab": 1}"#.utf8)
        #expect(
            throws: ProfilingError(
                file: "d.ndjson", line: 1, column: 17,
                message: "invalid UTF-8 (byte 0xFF); the input must be UTF-8 text")
        ) {
            try Profiler.profile(line, file: "d.ndjson", format: .ndjson, model: fraud)
        }
    }

    @Test func errorsNameTheLine() {
        let ok = #"{"amount": 1, "country": "DE", "channel": "web"}"#
        func fail(_ text: String) -> String { failure(text, .ndjson, file: "d.ndjson") }
        #expect(
            fail("\(ok)\n{\"amount\": 1,\n") == #"d.ndjson:2:14: after key "amount": the line ends inside an object"#)
        #expect(fail("\(ok)\n\n[1]\n") == "d.ndjson:3: expected a JSON object, got an array")
        #expect(fail("\(ok)\n{\"amount\": \"abc\"}\n") == #"d.ndjson:2: column "amount": "abc" is not a number"#)
        #expect(
            fail("{\"amount\": Infinity, \"score\": NaN}")
                == #"d.ndjson:1: column "amount": not a finite number (beyond a double's range)"#)
        // A category given as 1e400: it was "inf is not a number"; the ingestion API and batch refuse it too.
        #expect(
            fail("{\"amount\": 1, \"country\": 1e400}")
                == #"d.ndjson:1: column "country": not a finite number (beyond a double's range)"#)
        // A boolean of a numeric column is 1 or 0, as live; a string is no number.
        #expect(fail("{\"amount\": \"true\"}") == #"d.ndjson:1: column "amount": "true" is not a number"#)
        #expect(
            fail("{\"country\": [1]}")
                == #"d.ndjson:1: column "country": an array is not a category (a string, number or boolean)"#)
        #expect(
            fail("\(ok)\n{\"features\": {\"amount\": 1, \"zip\": 1}}")
                == #"d.ndjson:2: key "zip" is not a feature of model fraud (nor prediction, score, id, label, timestamp, version or a sensitive attribute); skip with --ignore-columns 'zip'"#
        )
        #expect(
            fail("{\"amount\": 1, \"country\": \"DE\"}")
                == #"d.ndjson: key "channel" (feature of model fraud) is missing from the input (no line has it)"#)
        #expect(fail("\n  \n") == "d.ndjson: the input is empty (no data rows)")
    }
}
