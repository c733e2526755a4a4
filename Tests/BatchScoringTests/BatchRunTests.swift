import Foundation
import Profiling
import Testing

@testable import BatchScoring

@Suite struct BatchRunTests {
    static let config = """
        models:
          - name: m
            task: binary_classification
            versions: [v1]
            classes: ["no", "yes"]
            positive_class: "yes"
            features:
              - {name: x, type: numeric}
              - {name: c, type: categorical, values: [A, B]}
            collectors:
              - service
              - quality
        """

    func run(_ predictions: String, labels: String? = nil, suffix: String = ".csv") throws -> BatchRun {
        let config = try temporaryFile(Self.config, suffix: ".yaml")
        let input = try temporaryFile(predictions, suffix: suffix)
        let labelFile = try labels.map { try temporaryFile($0, suffix: ".csv") }
        defer {
            for path in [config, input] + [labelFile].compactMap({ $0 }) {
                try? FileManager.default.removeItem(atPath: path)
            }
        }
        return try BatchRun(BatchRequest(configPath: config, model: "m", input: input, labels: labelFile))
    }

    /// A feature named like a column batch files read as the event's own (`score`) is valid for serve but cannot be
    /// read from a file: batch and profile refuse it, naming it. Before, every batch row was refused under a wrong
    /// reason (`missing_prediction` with a `prediction` feature).
    @Test func aFeatureNamedLikeAnEventColumnIsRefusedWithItsName() throws {
        let config = try temporaryFile(
            Self.config.replacingOccurrences(of: "{name: x, type: numeric}", with: "{name: score, type: numeric}"),
            suffix: ".yaml")
        let input = try temporaryFile("score,c,prediction\n1,A,yes\n", suffix: ".csv")
        defer { for path in [config, input] { try? FileManager.default.removeItem(atPath: path) } }
        let error = #expect(throws: ProfilingError.self) {
            try BatchRun(BatchRequest(configPath: config, model: "m", input: input))
        }
        #expect(
            error?.description.contains("feature \"score\" has the name of a column batch and profile files") == true)
        let profiled = #expect(throws: ProfilingError.self) { try Profiler.model(named: "m", in: config) }
        #expect(profiled?.description.contains("feature \"score\"") == true)
    }

    /// A numeric feature's CSV cell `True`/`False` (pandas' bool column) is 1 or 0, as NDJSON's and live traffic's
    /// booleans; it was refused, `"True" is not a number`.
    @Test func aCSVBooleanOfANumericFeatureIsOneOrZero() throws {
        let result = try run("x,c,prediction\nTrue,A,yes\nfalse,B,no\n")
        #expect(result.report.counts.rows == 2 && result.report.counts.accepted == 2)
    }

    /// A sensitive attribute written by pandas from a bool column (`True`/`False` in CSV, `true`/`false` in NDJSON) is
    /// the group `true`/`false` in both, as live; the CSV's rows were all `__other__` (the fairness section empty, and
    /// nothing said why). The report names an attribute's `__other__` predictions.
    @Test func csvBooleanGroupsReadAsLiveTrafficNamesThem() throws {
        let config = try temporaryFile(
            """
            models:
              - name: m
                task: binary_classification
                versions: [v1]
                classes: ["0", "1"]
                positive_class: "1"
                features: [{name: x, type: numeric}]
                sensitive_attributes: [{name: senior, groups: ["true", "false"]}]
                collectors: [service, {name: fairness, options: {min_group_observations: 1}}]
            """, suffix: ".yaml")
        var csv = "x,senior,prediction\n"
        var ndjson = ""
        for i in 0..<40 {
            csv += "\(i),\(i % 2 == 0 ? "True" : "False"),\(i % 3 == 0 ? 1 : 0)\n"
            ndjson += #"{"x": \#(i), "senior": \#(i % 2 == 0), "prediction": "\#(i % 3 == 0 ? 1 : 0)"}"# + "\n"
        }
        csv += "40,maybe,0\n"
        ndjson += #"{"x": 40, "senior": "maybe", "prediction": "0"}"# + "\n"
        let inputs = [try temporaryFile(csv, suffix: ".csv"), try temporaryFile(ndjson, suffix: ".ndjson")]
        defer { for path in [config] + inputs { try? FileManager.default.removeItem(atPath: path) } }
        let reports = try inputs.map { try BatchRun(BatchRequest(configPath: config, model: "m", input: $0)).report }
        #expect(!reports[0].fairness.isEmpty)
        #expect(reports[0].fairness == reports[1].fairness)
        #expect(reports[0].counts.otherGroups == ["senior": 1] && reports[1].counts.otherGroups == ["senior": 1])
        #expect(reports[0].text.contains("group __other__    senior: 1 (a value not among its groups, or none)"))
    }

    /// A batch with labels of more rows than the pending store's shares hold evenly: no prediction is evicted before
    /// its label (with max_pending raised to exactly the line count, the busiest of the 16 shards evicted: 281 of
    /// 100,000 rows; here, with max_pending 100, about 100 of 20,000).
    @Test func labelsOfALargeBatchAllJoin() throws {
        let config = try temporaryFile(Self.config + "\n    max_pending: 100\n", suffix: ".yaml")
        var predictions = "id,x,c,prediction\n"
        var labels = "id,label\n"
        for i in 0..<20_000 {
            predictions += "p\(i),\(i % 7),A,yes\n"
            labels += "p\(i),\(i % 2 == 0 ? "yes" : "no")\n"
        }
        let input = try temporaryFile(predictions, suffix: ".csv")
        let labelFile = try temporaryFile(labels, suffix: ".csv")
        defer { for path in [config, input, labelFile] { try? FileManager.default.removeItem(atPath: path) } }
        let report = try BatchRun(BatchRequest(configPath: config, model: "m", input: input, labels: labelFile)).report
        #expect(report.counts.labelsJoined == 20_000, "\(report.counts)")
        #expect((report.counts.labelsUnmatched ?? [:]).values.reduce(0, +) == 0, "\(report.counts)")
    }

    /// Flat NDJSON as Python writes it: `NaN` in a text column is missing (it was refused as beyond a double's range),
    /// a numeric feature's boolean is 1 or 0 (refused as not a number).
    @Test func flatNDJSONAsPythonWritesIt() throws {
        let result = try run(
            """
            {"id": "1", "x": true, "c": NaN, "prediction": "yes"}
            {"id": NaN, "x": false, "c": "B", "prediction": "no"}
            """, suffix: ".ndjson")
        #expect(result.report.counts.rows == 2 && result.report.counts.accepted == 2, "\(result.report.counts)")
    }

    /// A byte-order mark before the first NDJSON line is skipped, as profile skips it (the file was read as the events
    /// shape and refused at line 2), for both shapes.
    @Test func anNDJSONByteOrderMarkIsSkipped() throws {
        for text in [
            #"{"id": "1", "x": 1, "c": "A", "prediction": "yes"}"# + "\n" + #"{"id": "2", "x": 2, "prediction": "no"}"#,
            #"{"version": "v1", "features": {"x": 1}, "prediction": "yes"}"#,
        ] {
            let result = try run("\u{FEFF}" + text, suffix: ".ndjson")
            #expect(result.report.counts.accepted == Double(text.split(separator: "\n").count), "\(text)")
        }
    }

    @Test func csvPredictionsAndLabelsGiveCountsAndQuality() throws {
        let run = try run(
            "id,x,c,prediction\n1,0.5,A,yes\n2,1.5,B,no\n3,2,A,yes\n4,,B,\n5,1,A,no\n",
            labels: "id,label\n1,yes\n2,yes\n3,yes\n5,no\n9,no\n")
        let r = run.report
        #expect(r.counts.rows == 5)
        #expect(r.counts.accepted == 4)
        #expect(r.counts.rejected == ["missing_prediction": 1])
        #expect(r.counts.labelRows == 5)
        #expect(r.counts.labelsJoined == 4)
        #expect(r.counts.labelsUnmatched == ["unknown": 1])
        #expect(r.quality.count == 1)
        #expect(r.quality[0].figures["accuracy"] == 0.75)
        #expect(r.drift == nil && !r.driftDetected)
        let text = r.text
        #expect(text.contains("rows read          5"))
        #expect(
            text.split(separator: "\n").contains {
                $0.hasPrefix("v1 ") && $0.contains(" accuracy ") && $0.hasSuffix(" 0.75")
            })
        let rendered = String(decoding: run.render(), as: UTF8.self)
        #expect(rendered.contains("mlops_batch_rows{kind=\"predictions\",model=\"m\"} 5"))
        #expect(rendered.contains("mlops_model_accuracy{model=\"m\",version=\"v1\"} 0.75"))
        #expect(!rendered.contains("__unknown__"))
        #expect(rendered.contains("# TYPE mlops_batch_last_success_timestamp_seconds gauge"))
    }

    /// Inline labels are reported apart from the labels file's, and predictions recorded under `__other__` for a
    /// version or a class the model does not list are said. Before, inline joins were added to the file's ("200
    /// joined, 200 unmatched" for one set of labels given twice), and a misspelt class was said nowhere.
    @Test func inlineLabelsAndUnlistedVersionsAndClassesAreSaid() throws {
        let r = try run(
            "id,x,c,version,prediction,label\n1,0.5,A,v1,yes,yes\n2,1.5,B,v9,maybe,Noo\n3,2,A,v1,no,\n",
            labels: "id,label\n1,yes\n3,no\n"
        ).report
        #expect(r.counts.inlineLabelsJoined == 2)
        #expect(r.counts.labelsJoined == 1)  // 3; 1's own label joined it already
        #expect(r.counts.labelsUnmatched == ["unknown": 1])
        #expect(r.counts.otherVersions == 1 && r.counts.otherClasses == 1 && r.counts.otherLabelClasses == 1)
        let text = r.text
        #expect(text.contains("version __other__  1 (a version the model does not list)"))
        #expect(text.contains("class __other__    1 (a class the model does not list)"))
        #expect(text.contains("inline labels joined 2"))
        #expect(text.contains("label __other__    1 (a label class the model does not list, joined)"))
        let plain = try run("id,x,c,prediction\n1,0.5,A,yes\n").report
        #expect(
            plain.counts.otherVersions == nil && plain.counts.otherClasses == nil
                && plain.counts.inlineLabelsJoined == nil)
    }

    /// The report says what the figures that leave outcomes out were computed over, and counts duplicate ids (log
    /// loss over 2 of 3 outcomes read as if over 3; review).
    @Test func theReportSaysWhatFiguresLeaveOut() throws {
        let r = try run(
            "id,x,c,prediction,score\n1,0.5,A,yes,0.9\n2,1.5,B,no,1.7\n3,2,A,yes,0.6\n3,2,A,yes,0.6\n",
            labels: "id,label\n1,yes\n2,no\n3,yes\n"
        ).report
        let q = try #require(r.quality.first)
        #expect(q.outcomes == 3)
        #expect(q.figures["probability_outcomes"] == 2 && q.figures["probability_skipped"] == 1)
        #expect(r.counts.duplicateIDs == 1)
        #expect(r.text.contains("duplicate ids      1 (the last joins)"), "\(r.text)")
        #expect(r.text.contains("probability_outcomes"))
    }

    /// Label rows rejected are reported as the labels', not among the predictions' (they were: "rejected 2
    /// (missing_id 1, missing_label 1)" under the prediction rows, nothing under the labels; review).
    @Test func labelRejectionsAreTheLabelsOwn() throws {
        let r = try run(
            "id,x,c,prediction\n1,0.5,A,yes\n2,1.5,B,no\n3,2,A,yes\n4,,B,\n",
            labels: "id,label\n1,yes\n,no\n2,\n3,yes\n"
        ).report
        #expect(r.counts.rejected == ["missing_prediction": 1])
        #expect(r.counts.labelsRejected == ["missing_id": 1, "missing_label": 1])
        #expect(r.counts.labelsAccepted == 2)
        #expect(r.text.contains("labels rejected    2 (missing_id 1, missing_label 1)"), "\(r.text)")
    }

    /// A configuration file of model `m` (binary, classes "0" and "1") with `features` (YAML flow mappings) and the
    /// drift collector (PSI, verdicts from one observation), whose reference is the returned path (not written yet).
    func driftConfig(features: String...) throws -> (config: String, reference: String) {
        let reference = NSTemporaryDirectory() + "batch-\(UUID().uuidString).json"
        let config = try temporaryFile(
            """
            models:
              - name: m
                task: binary_classification
                versions: [v1]
                classes: ["0", "1"]
                positive_class: "1"
                reference: \(reference)
                features:
            \(features.map { "      - \($0)" }.joined(separator: "\n"))
                collectors:
                  - {name: drift, options: {method: psi, min_observations: 1}}
            """, suffix: ".yaml")
        return (config, reference)
    }

    /// A categorical cell reads as `mlops-exporter profile` reads it (`3.0` is `3`, `True` is `true`, as the same
    /// values sent as JSON are counted): a batch of the reference's own rows does not drift. Before, the profile read
    /// the CSV's spellings and the batch did too, while NDJSON (and live traffic) gave `3` and `true`.
    @Test func csvCategoriesReadAsTheProfileReadsThem() throws {
        let (config, reference) = try driftConfig(
            features: "{name: code, type: categorical}", "{name: flag, type: categorical}")
        let rows = (0..<60).map { i in "\([1.0, 2.0, 3.0][i % 3]),\(i % 4 == 0 ? "True" : "False"),\(i % 2).0" }
        let csv = try temporaryFile("code,flag,prediction\n" + rows.joined(separator: "\n") + "\n")
        let ndjson = try temporaryFile(
            (0..<60).map { i in
                "{\"code\": \([1.0, 2.0, 3.0][i % 3]), \"flag\": \(i % 4 == 0), \"prediction\": \(i % 2)}"
            }.joined(separator: "\n") + "\n", suffix: ".ndjson")
        defer { for path in [config, reference, csv, ndjson] { try? FileManager.default.removeItem(atPath: path) } }
        let written = try Profiler.run(
            Profiler.Request(configPath: config, model: "m", input: csv, output: reference))
        let fromNDJSON = try Profiler.run(
            Profiler.Request(configPath: config, model: "m", input: ndjson, output: reference))
        #expect(written.profile.features == fromNDJSON.profile.features)
        #expect(written.profile.features[1].categorical?.values == ["false", "true"])
        for input in [csv, ndjson] {
            let drift = try #require(
                try BatchRun(BatchRequest(configPath: config, model: "m", input: input, labels: nil)).report.drift)
            #expect(drift.features.map(\.score) == [0, 0] && drift.detected == false, "\(input): \(drift)")
            #expect(drift.outputs.map(\.statistic) == [0] && drift.outputs[0].detected == false, "\(input): \(drift)")
        }
    }

    /// A feature with no value in the batch (every cell empty) is in the report, with its missing count and no score,
    /// as `/metrics` shows it: it was left out, text and JSON, while the report said the batch drifted (review).
    @Test func aFeatureWithNoValueIsReportedWithItsMissingCount() throws {
        let (config, reference) = try driftConfig(features: "{name: x, type: numeric}", "{name: c, type: categorical}")
        let rows = (0..<60).map { i in "\(Double(i) / 10),\(["A", "B"][i % 2]),\(i % 2)" }
        let profileInput = try temporaryFile("x,c,prediction\n" + rows.joined(separator: "\n") + "\n")
        let batch = try temporaryFile(
            "x,c,prediction\n" + (0..<30).map { i in ",\(["A", "B"][i % 2]),\(i % 2)" }.joined(separator: "\n") + "\n")
        defer {
            for path in [config, reference, profileInput, batch] { try? FileManager.default.removeItem(atPath: path) }
        }
        _ = try Profiler.run(Profiler.Request(configPath: config, model: "m", input: profileInput, output: reference))
        let report = try BatchRun(BatchRequest(configPath: config, model: "m", input: batch, labels: nil)).report
        let drift = try #require(report.drift)
        #expect(drift.features.map(\.name) == ["x", "c"])
        let x = try #require(drift.features.first)
        #expect(x.observations == 0 && x.missing == 30 && x.score == nil && x.detected == nil && x.method == "psi")
        #expect(drift.features[1].observations == 30 && drift.features[1].score != nil)
        #expect(
            report.text.split(separator: "\n").contains { line in
                let cells = line.split(separator: " ")
                return cells.first == "x" && cells.contains("psi") && cells.last == "30"
            }, "\(report.text)")
    }

    @Test func ndjsonEventsAreTheIngestionAPIs() throws {
        let events = """
            {"id":"1","version":"v1","features":{"x":1,"c":"A"},"prediction":"yes","label":"yes"}
            {"version":"v1","features":{"x":"oops"},"prediction":"no"}
            {"features":{"x":1},"prediction":"no"}

            """
        let r = try run(events, suffix: ".ndjson").report
        #expect(r.counts.rows == 3)
        #expect(r.counts.accepted == 1)
        #expect(r.counts.rejected == ["wrong_type": 1, "missing_version": 1])
        #expect(r.quality.first?.figures["accuracy"] == 1)
    }

    @Test func flatNDJSONReadsLikeCSV() throws {
        let csv = try run(
            "id,x,c,prediction\n1,0.5,A,yes\n2,,B,no\n3,2,A,\n", labels: "id,label\n1,yes\n2,yes\n"
        ).report
        let flat = try run(
            """
            {"id": "1", "x": 0.5, "c": "A", "prediction": "yes"}

            {"id": 2, "x": NaN, "c": "B", "prediction": "no"}
            {"id": "3", "x": 2, "c": "A", "prediction": null}
            """, labels: "id,label\n1,yes\n2,yes\n", suffix: ".ndjson"
        ).report
        #expect(flat.counts == csv.counts)
        #expect(flat.quality == csv.quality)
        #expect {
            _ = try run(
                "{\"x\": 1, \"prediction\": \"yes\"}\n{\"x\": \"big\", \"prediction\": \"no\"}\n", suffix: ".ndjson")
        } throws: { error in
            let e = error as? ProfilingError
            return e?.line == 2 && e?.field == "column \"x\"" && e?.message == "\"big\" is not a number"
        }
    }

    /// A CSV error's column counts characters, as the NDJSON readers' do (it counted bytes: after `é€😀`, 9 bytes and
    /// 3 characters, column 11 where the field starts at character 5; a batch probe).
    @Test func aCSVColumnCountsCharacters() throws {
        #expect {
            _ = try run("id,x,c,prediction\né€😀,abc,A,yes\n")
        } throws: { error in
            let e = error as? ProfilingError
            return e?.line == 2 && e?.column == 5 && e?.field == "column \"x\""
        }
        #expect {
            _ = try run("id,x,c,prediction\né€😀,1,A\"B,yes\n")
        } throws: { error in
            (error as? ProfilingError)?.column == 8
        }
    }

    /// As `profile`: pandas' missing-value texts (`NA`, `NULL`, `<NA>`...) are missing numbers, `1e400` is out of
    /// range (it was "not a number"), CR-only line endings are refused as such (they read as one odd header).
    @Test func missingValueTextsOutOfRangeNumbersAndCROnlyLines() throws {
        let r = try run("id,x,c,prediction\n1,NA,A,yes\n2, NULL ,B,no\n3,<NA>,A,yes\n4,None,B,no\n").report
        #expect(r.counts.rows == 4 && r.counts.accepted == 4 && r.counts.rejected.isEmpty)
        #expect {
            _ = try run("id,x,c,prediction\n1,1e400,A,yes\n")
        } throws: { error in
            (error as? ProfilingError)?.message == "not a finite number (beyond a double's range)"
        }
        #expect {
            _ = try run("id,x,c,prediction\r1,1,A,yes\r")
        } throws: { error in
            (error as? ProfilingError)?.message == CSVLineEndings.bareCRMessage
        }
        #expect {
            _ = try run("id,x,c,prediction\n1,1,\"A\"\r2,1,A,yes\n")
        } throws: { error in
            (error as? ProfilingError)?.message == CSVLineEndings.bareCRMessage
        }
    }

    @Test func flatNDJSONIsReadAsStrictlyAsTheProfilesNDJSON() throws {
        // Foundation's decoder took a trailing comma, and a line with NaN went through JSON5 (comments, unquoted
        // keys): rows `profile` refuses were scored. Now the same reader as `profile`'s, with the column named.
        let first = "{\"x\": 1, \"c\": \"A\", \"prediction\": \"yes\"}\n"
        for (line, column, message) in [
            (
                "{\"x\": 2, \"c\": \"B\", \"prediction\": \"no\",}", 38,
                "a comma before \"}\" (trailing commas are not JSON)"
            ),
            ("{\"x\": NaN, c: \"B\", \"prediction\": \"no\"}", 12, nil),
            ("{\"x\": NaN, \"c\": \"B\", \"prediction\": \"no\"} // note", 42, nil),
            ("{\"x\": 2, \"x\": 3, \"c\": \"B\", \"prediction\": \"no\"}", nil, nil),
        ] as [(String, Int?, String?)] {
            #expect {
                _ = try run(first + line + "\n", suffix: ".ndjson")
            } throws: { error in
                guard let e = error as? ProfilingError, e.line == 2 else { return false }
                return (column == nil || e.column == column) && (message == nil || e.message == message)
            }
        }
        // The same duplicate on the first line: the flat reader's error too (it was read as an event, whose decoder
        // said the feature "is not a field of an ingestion event"; review).
        #expect {
            _ = try run("{\"x\": 2, \"x\": 3, \"c\": \"B\", \"prediction\": \"no\"}\n" + first, suffix: ".ndjson")
        } throws: { error in
            guard let e = error as? ProfilingError else { return false }
            return e.line == 1 && e.message.contains("twice") && !e.message.contains("not a field")
        }
    }

    @Test func flatNDJSONLinesAreNumberedRightAndNaNMayComeFirst() throws {
        // Line 2 cut short, at the end of the file: line 2 (the piece before it ended on a line feed, which had been
        // counted as a line of its own).
        #expect {
            _ = try run("{\"x\": 1, \"c\": \"A\", \"prediction\": \"yes\"}\n{\"x\": 2, \"c\": ", suffix: ".ndjson")
        } throws: { error in
            (error as? ProfilingError)?.line == 2
        }
        // Python's NaN in the first row: a flat row like any other (it was taken for an event and refused).
        let r = try run(
            "{\"x\": NaN, \"c\": \"A\", \"prediction\": \"yes\"}\n{\"x\": 1, \"c\": \"B\", \"prediction\": \"no\"}\n",
            suffix: ".ndjson"
        ).report
        #expect(r.counts.rows == 2 && r.counts.accepted == 2)
    }

    @Test(arguments: [
        // Unquoted, and quoted with a comma and a doubled quote before the bad byte: the column is the same.
        ("2,0.5,", 7), ("2,0.5,\"x,\"\"y", 13),
    ])
    func bytesThatAreNotUTF8AreBadInputNamedByLineAndColumn(before: String, column: Int) throws {
        // (Swift strings are UTF-8: the bad bytes are written as bytes.)
        let path = NSTemporaryDirectory() + "batch-\(UUID().uuidString).csv"
        let quote: [UInt8] = before.contains("\"") ? [0x22] : []
        try Data(
            Array("id,x,c,prediction\n1,0.5,A,yes\n\(before)".utf8) + [0xFF, 0x42] + quote + Array(",no\n".utf8)
        ).write(to: URL(fileURLWithPath: path))
        let config = try temporaryFile(Self.config, suffix: ".yaml")
        defer { for p in [path, config] { try? FileManager.default.removeItem(atPath: p) } }
        #expect {
            _ = try BatchRun(BatchRequest(configPath: config, model: "m", input: path, labels: nil))
        } throws: { error in
            let e = error as? ProfilingError
            // At the bad byte's line and column (the record's line alone before), in its column by name (before,
            // none: profile named the field).
            return e?.line == 3 && e?.column == column
                && e?.message == "column \"c\": invalid UTF-8 (byte 0xFF); the input must be UTF-8 text"
        }
    }

    @Test func bytesThatAreNotUTF8InALabelsFileAreNamedByColumn() throws {
        let path = NSTemporaryDirectory() + "labels-\(UUID().uuidString).csv"
        try Data(Array("id,label\n1,yes\n2,".utf8) + [0xC3] + Array("\n".utf8)).write(to: URL(fileURLWithPath: path))
        let config = try temporaryFile(Self.config, suffix: ".yaml")
        let input = try temporaryFile("id,x,c,prediction\n1,0.5,A,yes\n", suffix: ".csv")
        defer { for p in [path, config, input] { try? FileManager.default.removeItem(atPath: p) } }
        #expect {
            _ = try BatchRun(BatchRequest(configPath: config, model: "m", input: input, labels: path))
        } throws: { error in
            (error as? ProfilingError)?.message
                == "column \"label\": invalid UTF-8 (byte 0xC3); the input must be UTF-8 text"
        }
    }

    @Test func aLabelsColumnGivenTwiceIsRefused() throws {
        #expect {
            _ = try run("id,x,c,prediction\n1,0.5,A,yes\n", labels: "id,id,label\n1,2,yes\n")
        } throws: { error in
            (error as? ProfilingError)?.message == "column \"id\" appears twice"
        }
    }

    /// A batch reads its input more than once: a FIFO (or a pipe) would give each reader another part of the stream,
    /// or block in `open`; it is refused before it is opened.
    /// A FIFO, with an extension or without one (a process substitution, `--input <(…)`: it was refused for its
    /// extension, the message pointing at the wrong problem).
    @Test(arguments: [".csv", ""])
    func aFIFOInputIsRefused(suffix: String) throws {
        let fifo = NSTemporaryDirectory() + "batch-\(UUID().uuidString)" + suffix
        #expect(mkfifo(fifo, 0o600) == 0)
        let config = try temporaryFile(Self.config, suffix: ".yaml")
        defer { for path in [fifo, config] { try? FileManager.default.removeItem(atPath: path) } }
        #expect {
            _ = try BatchRun(BatchRequest(configPath: config, model: "m", input: fifo, labels: nil))
        } throws: { error in
            (error as? ProfilingError)?.message.contains("not a regular file") == true
        }
    }

    /// `--ignore-columns` names only columns the input has and the batch does not read (as `profile` checks them):
    /// a feature, or a name the input lacks, was ignored without a word.
    @Test(
        arguments: [
            (
                "x,c,prediction\n1,A,yes\n", ".csv", "x",
                #""x" is a feature of model m: it is read, it cannot be ignored (remove it from --ignore-columns)"#
            ),
            (
                "x,c,prediction\n1,A,yes\n", ".csv", "label",
                #""label" is the label column: it is read, it cannot be ignored (remove it from --ignore-columns)"#
            ),
            ("x,c,prediction\n1,A,yes\n", ".csv", "zz", #"the input has no column "zz" (header)"#),
            (
                #"{"x": 1, "c": "A", "prediction": "yes"}"# + "\n", ".ndjson", "zz",
                #"the input has no key "zz" (no line has it)"#
            ),
            (
                #"{"version": "v1", "features": {"x": 1, "c": "A"}, "prediction": "yes"}"# + "\n", ".ndjson", "zz",
                #"the input has no key "zz" (no line has it)"#
            ),
            (
                #"{"version": "v1", "features": {"x": 1, "c": "A"}, "prediction": "yes", "zz": 2}"# + "\n", ".ndjson",
                "zz", nil
            ),
            ("x,c,prediction,zz\n1,A,yes,3\n", ".csv", "zz", nil),
            (
                #"{"x": 1, "c": "A", "prediction": "yes"}"# + "\n" + #"{"x": 2, "c": "B", "prediction": "no", "zz": 1}"#
                    + "\n", ".ndjson", "zz", nil
            ),
        ] as [(String, String, String, String?)])
    func ignoredColumnsAreChecked(input: String, suffix: String, ignored: String, refusal: String?) throws {
        let config = try temporaryFile(Self.config, suffix: ".yaml")
        let file = try temporaryFile(input, suffix: suffix)
        defer { for path in [config, file] { try? FileManager.default.removeItem(atPath: path) } }
        let request = BatchRequest(configPath: config, model: "m", input: file, labels: nil, ignoreColumns: [ignored])
        guard let refusal else {
            #expect(try BatchRun(request).report.counts.rows >= 1)
            return
        }
        #expect {
            _ = try BatchRun(request)
        } throws: { error in
            (error as? ProfilingError)?.message == refusal
        }
    }

    /// An ingestion event's top-level key that is no event field is refused, naming its line, unless listed in
    /// `--ignore-columns` (as `profile` refuses it): the decoder skips unknown keys, so a misspelt `predicton` lost
    /// every prediction without a word.
    @Test func anEventKeyThatIsNoFieldIsRefused() throws {
        let events =
            #"{"version": "v1", "features": {"x": 1, "c": "A"}, "prediction": "yes"}"# + "\n"
            + #"{"version": "v1", "features": {"x": 2, "c": "B"}, "predicton": "no"}"# + "\n"
        let config = try temporaryFile(Self.config, suffix: ".yaml")
        let file = try temporaryFile(events, suffix: ".ndjson")
        defer { for path in [config, file] { try? FileManager.default.removeItem(atPath: path) } }
        #expect {
            _ = try BatchRun(BatchRequest(configPath: config, model: "m", input: file, labels: nil))
        } throws: { error in
            let e = error as? ProfilingError
            return e?.line == 2
                && e?.message.hasPrefix(#"key "predicton" is not a field of an ingestion event ("#) == true
        }
        let listed = try BatchRun(
            BatchRequest(configPath: config, model: "m", input: file, labels: nil, ignoreColumns: ["predicton"]))
        #expect(listed.report.counts.rows == 2)
    }

    /// A label event's key that is no label field is refused, naming its line, as the labels CSV refuses such a column
    /// and the predictions NDJSON such a key: a misspelt `timestmp` was accepted and its value lost unseen (review).
    @Test func aLabelEventKeyThatIsNoFieldIsRefused() throws {
        let config = try temporaryFile(Self.config, suffix: ".yaml")
        let input = try temporaryFile("id,x,c,prediction\n1,0.5,A,yes\n2,1.5,B,no\n")
        let good = try temporaryFile(
            #"{"id": "1", "label": "yes", "timestamp": 1}"# + "\n" + #"{"id": "2", "label": "no"}"# + "\n",
            suffix: ".ndjson")
        let bad = try temporaryFile(
            #"{"id": "1", "label": "yes"}"# + "\n" + #"{"id": "2", "label": "no", "timestmp": 1}"# + "\n",
            suffix: ".ndjson")
        defer { for path in [config, input, good, bad] { try? FileManager.default.removeItem(atPath: path) } }
        let joined = try BatchRun(BatchRequest(configPath: config, model: "m", input: input, labels: good))
        #expect(joined.report.counts.labelsJoined == 2)
        #expect {
            _ = try BatchRun(BatchRequest(configPath: config, model: "m", input: input, labels: bad))
        } throws: { error in
            let e = error as? ProfilingError
            return e?.file == bad && e?.line == 2
                && e?.message == #"key "timestmp" is not a field of a label event (id, label, timestamp)"#
        }
    }

    /// A number beyond a double's range is refused in any column, a categorical one too (it was the category "inf").
    @Test func aNumberBeyondADoubleIsRefused() throws {
        let config = try temporaryFile(Self.config, suffix: ".yaml")
        let file = try temporaryFile(#"{"x": 1, "c": 1e400, "prediction": "yes"}"# + "\n", suffix: ".ndjson")
        defer { for path in [config, file] { try? FileManager.default.removeItem(atPath: path) } }
        #expect {
            _ = try BatchRun(BatchRequest(configPath: config, model: "m", input: file, labels: nil))
        } throws: { error in
            (error as? ProfilingError)?.description
                == "\(file):1: column \"c\": not a finite number (beyond a double's range)"
        }
    }

    /// `--model-version` naming a version the model does not declare: refused (every row went to `__other__`).
    @Test func anUndeclaredModelVersionIsRefused() throws {
        let config = try temporaryFile(Self.config, suffix: ".yaml")
        let input = try temporaryFile("x,c,prediction\n1,A,yes\n", suffix: ".csv")
        defer { for path in [config, input] { try? FileManager.default.removeItem(atPath: path) } }
        #expect {
            _ = try BatchRun(
                BatchRequest(configPath: config, model: "m", input: input, labels: nil, defaultVersion: "v3"))
        } throws: { error in
            (error as? ProfilingError)?.message
                == #"--model-version "v3": model m declares the versions v1 (rows of another version count as __other__)"#
        }
        #expect(
            try BatchRun(BatchRequest(configPath: config, model: "m", input: input, labels: nil, defaultVersion: "v1"))
                .report.counts.rows == 1)
    }

    /// The batch's slice may leave a one-slice window at any moment: no run keeps it whole, so none gives figures.
    @Test func aRunLongerThanItsWindowKeepsTheBatchIsRefused() throws {
        let config = try temporaryFile(Self.config + "\n    window: {duration: 5s, slices: 1}\n", suffix: ".yaml")
        let input = try temporaryFile("id,x,c,prediction\n1,0.5,A,yes\n")
        defer { for path in [input, config] { try? FileManager.default.removeItem(atPath: path) } }
        #expect {
            _ = try BatchRun(BatchRequest(configPath: config, model: "m", input: input, labels: nil))
        } throws: { error in
            (error as? ProfilingError)?.message.contains("raise window.duration") == true
        }
    }

    @Test func badInputNamesFileLineAndColumn() throws {
        #expect {
            _ = try run("x,c,prediction\n1,A,yes\n2,B,no\nx2,A,yes\n")
        } throws: { error in
            let e = error as? ProfilingError
            return e?.line == 4 && e?.column == 1 && e?.field == "column \"x\""
                && e?.message == "\"x2\" is not a number"
        }
        #expect {
            _ = try run("{\"version\":\"v1\",\"prediction\":\"yes\"}\n  {\"version\": ]\n", suffix: ".ndjson")
        } throws: { error in
            let e = error as? ProfilingError
            return e?.line == 2 && (e?.column ?? 0) > 1 && e?.message.hasPrefix("invalid_json") == true
        }
        #expect {
            _ = try run("x,prediction\n1,yes\n")
        } throws: { error in
            (error as? ProfilingError)?.message.contains("column \"c\"") == true
        }
    }

    @Test func reportNumbersAndJSON() {
        #expect(BatchReport.number(3) == "3")
        #expect(BatchReport.number(0.123456789) == "0.123457")
        #expect(BatchReport.number(nil) == "-")
        #expect(BatchReport.number(.nan) == "NaN")
        let report = BatchReport(
            model: "m", input: "in.csv", labels: nil,
            counts: .init(rows: 1, accepted: 1, rejected: [:]),
            drift: .init(share: 0.5, detected: true, features: [], outputs: []), quality: [], fairness: [], skipped: [])
        #expect(report.driftDetected)
        #expect(report.json.contains("\"share\" : 0.5"))
        #expect(report.text.contains("DRIFT DETECTED"))
    }
}
