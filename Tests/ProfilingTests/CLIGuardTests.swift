import Foundation
import Profiling
import Testing

/// `mlops-exporter profile` guards from the review: an output naming the input overwrote the training data, a device
/// or FIFO input was "permission denied" (even to root), a misspelt top-level key of an ingestion event
/// (`predicton`) was ignored (the flat form refuses unknown keys), and `--ignore-columns` naming a feature or a column
/// the input lacks was ignored silently.
@Suite struct CLIGuardTests {
    @Test func anOutputThatIsTheInputOrTheConfigurationIsRefusedBeforeWriting() throws {
        let w = try Workspace()
        let data = try w.write("data.csv", ProfilerTests.csv)
        try FileManager.default.createSymbolicLink(atPath: w.path("link.csv"), withDestinationPath: data)
        try FileManager.default.linkItem(atPath: data, toPath: w.path("hard.csv"))
        for output in ["data.csv", "./data.csv", "link.csv", "hard.csv"] {
            var request = w.request(input: "data.csv")
            request.output = w.dir.path + "/" + output
            #expect(
                w.failure(request)
                    == "\(request.output): cannot write: this is the input (\(data)); the profile would replace it: "
                    + "choose another --out")
        }
        var request = w.request(input: "link.csv")
        request.output = data
        #expect(w.failure(request).hasPrefix("\(data): cannot write: this is the input"))
        #expect(
            w.failure(w.request(input: "data.csv", output: "models.yaml"))
                == "\(w.path("models.yaml")): cannot write: this is the configuration (\(w.path("models.yaml"))); the "
                + "profile would replace it: choose another --out")
        #expect(try String(contentsOfFile: data, encoding: .utf8) == ProfilerTests.csv)
        #expect(w.failure(w.request(input: "data.csv", output: "ref.json")) == "no error")
    }

    @Test func aDeviceIsNotARegularFile() throws {
        let w = try Workspace()
        var request = w.request(input: "data.csv")
        request.input = "/dev/null"
        request.format = .csv
        #expect(
            w.failure(request)
                == "/dev/null: cannot read: not a regular file (a pipe, FIFO or device): write it to a file first")
    }

    @Test func anEventsUnknownTopLevelKeyIsRefused() throws {
        let line = #"{"version": "v1", "features": {"amount": 1, "country": "DE", "channel": "web"}, "predicton": 1}"#
        let fields =
            "id, timestamp, version, features, prediction, score, probabilities, latency_seconds, status, error_kind, "
            + "attributes, label"
        #expect(
            failure(line + "\n" + line, .ndjson, file: "d.ndjson")
                == #"d.ndjson:1: key "predicton" is not a field of an ingestion event ("# + fields
                + "); skip with --ignore-columns 'predicton'")
        #expect(failure(line, .ndjson, file: "d.ndjson", ignore: ["predicton"]) == "no error")
        let event =
            #"{"id": "1", "timestamp": 1, "version": "v1", "features": {"amount": 1, "country": "DE", "#
            + #""channel": "web"}, "prediction": "fraud", "score": 0.5, "probabilities": [0.5, 0.5], "#
            + #""latency_seconds": 0.1, "status": "ok", "error_kind": null, "attributes": {"gender": "f"}, "label": "fraud"}"#
        #expect(failure(event, .ndjson, file: "d.ndjson") == "no error")
    }

    @Test func ignoredColumnsMustBeInTheInputAndNotProfiled() {
        let csv = "amount,country,channel,zip\n1,DE,web,9\n"
        #expect(failure(csv, ignore: ["zip"]) == "no error")
        #expect(
            failure(csv, ignore: ["zip", "amount"])
                == #"data.csv: --ignore-columns: "amount" is a feature of model fraud: it is profiled, it cannot be "#
                + "ignored (remove it from --ignore-columns)")
        #expect(
            failure(csv, ignore: ["score"])
                == #"data.csv: --ignore-columns: "score" is the score column: it is profiled, it cannot be ignored "#
                + "(remove it from --ignore-columns)")
        #expect(
            failure(csv, ignore: ["zip", "zipcode"])
                == #"data.csv:1: --ignore-columns: the input has no column "zipcode" (header)"#)
        let ndjson =
            #"{"amount": 1, "country": "DE", "channel": "web"}"# + "\n"
            + #"{"amount": 2, "country": "DE", "channel": "web", "zip": 9}"#
        #expect(failure(ndjson, .ndjson, file: "d.ndjson", ignore: ["zip"]) == "no error")
        #expect(
            failure(ndjson, .ndjson, file: "d.ndjson", ignore: ["zip", "zipcode"])
                == #"d.ndjson: --ignore-columns: the input has no key "zipcode" (no line has it)"#)
        #expect(
            failure(ndjson, .ndjson, file: "d.ndjson", ignore: ["channel"])
                == #"d.ndjson: --ignore-columns: "channel" is a feature of model fraud: it is profiled, it cannot be "#
                + "ignored (remove it from --ignore-columns)")
    }
}
