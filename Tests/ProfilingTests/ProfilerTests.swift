import ExporterConfig
import Foundation
import ModelMonitoring
import Profiling
import Testing

/// A temporary folder with a configuration whose `reference` file does not exist yet.
struct Workspace {
    let dir: URL

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("mlops-profile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try write(
            "models.yaml",
            """
            models:
              - name: fraud
                task: binary_classification
                versions: [v1]
                classes: [legit, fraud]
                positive_class: fraud
                reference: ref.json
                features:
                  - {name: amount, type: numeric}
                  - {name: country, type: categorical}
                  - {name: channel, type: categorical, values: [web, app]}

            """)
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        try Data(text.utf8).write(to: dir.appendingPathComponent(name))
        return path(name)
    }

    func request(input: String, output: String = "ref.json", model: String = "fraud") -> Profiler.Request {
        Profiler.Request(
            configPath: path("models.yaml"), model: model, input: path(input), output: path(output),
            options: .init(bins: 3, fineBins: 10))
    }

    func failure(_ request: Profiler.Request) -> String {
        do {
            _ = try Profiler.run(request)
            return "no error"
        } catch {
            return error.description
        }
    }
}

@Suite struct ProfilerTests {
    static let csv = "amount,country,channel,prediction,score\n1,DE,web,fraud,0.9\n2,FR,app,legit,0.2\n,DE,web,legit,\n"

    /// A prediction of a class the model does not list is counted `__other__` and said (it was counted without a
    /// word, where `batch` says it).
    @Test func anUnlistedPredictedClassIsWarnedAbout() throws {
        let w = try Workspace()
        try w.write("data.csv", "amount,country,channel,prediction\n1,DE,web,fraud\n2,FR,app,maybe\n3,DE,web,legit\n")
        let summary = try Profiler.run(w.request(input: "data.csv"))
        #expect(
            summary.warnings == [
                "column prediction: 1 of 3 rows predict a class the model does not list (counted __other__, as live "
                    + "traffic's would be)"
            ])
        try w.write("ok.csv", Self.csv)
        #expect(try Profiler.run(w.request(input: "ok.csv", output: "ok.json")).warnings.isEmpty)
    }

    @Test func runWritesAProfileThatLoadsBack() throws {
        let w = try Workspace()
        try w.write("data.csv", Self.csv)
        let summary = try Profiler.run(w.request(input: "data.csv"))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: w.path("ref.json")))
        #expect(summary.profileSHA256 == SHA256.hex(Array(bytes)))
        #expect(summary.profile.inputSHA256 == SHA256.hex(Array(Self.csv.utf8)))
        #expect(
            summary.description
                == "\(w.path("ref.json")): model fraud, 3 rows, 3 features (+ prediction, score), input sha256 "
                + "\(summary.profile.inputSHA256), profile sha256 \(summary.profileSHA256)")
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("\"input_sha256\"") && text.contains("\"format\" : \"mlops-exporter.profile/v1\""))
        let model = try Profiler.model(named: "fraud", in: w.path("models.yaml"))
        let loaded = try ProfileLoader.load(path: w.path("ref.json"), model: model)
        #expect(loaded == summary.profile)
        #expect(loaded.feature(named: "amount")?.numeric?.fine.count == 10)
        #expect(
            loaded.feature(named: "country")?.categorical
                == CategoricalProfile(values: ["DE", "FR"], counts: [2, 1, 0]))
    }

    @Test func runErrors() throws {
        let w = try Workspace()
        try w.write("data.csv", Self.csv)
        #expect(w.failure(w.request(input: "nope.csv")) == "\(w.path("nope.csv")): cannot read: no such file")
        var folder = w.request(input: "data.csv")
        folder.input = w.dir.path
        folder.format = .ndjson
        #expect(w.failure(folder) == "\(w.dir.path): cannot read: is a directory")
        #expect(
            w.failure(w.request(input: "data.csv", model: "eta"))
                == "\(w.path("models.yaml")): no model \"eta\" (models: fraud)")
        try w.write("data.txt", Self.csv)
        #expect(
            w.failure(w.request(input: "data.txt"))
                == "\(w.path("data.txt")): cannot tell the format from the extension (use --format csv|ndjson)")
        var explicit = w.request(input: "data.txt")
        explicit.format = .csv
        #expect(w.failure(explicit) == "no error")
        #expect(
            w.failure(w.request(input: "data.csv", output: "no/ref.json"))
                == "\(w.path("no/ref.json")): cannot write: no such folder \"\(w.path("no"))\"")
        // A file the system will not let be replaced: one line, Foundation's sentence (it was a dump of the error's
        // fields: "Error Domain=NSCocoaErrorDomain Code=4 ... UserInfo={...}").
        var procRequest = w.request(input: "data.csv")
        procRequest.output = "/proc/version"
        let proc = w.failure(procRequest)
        #expect(
            proc.hasPrefix("/proc/version: cannot write: ") && !proc.contains("Domain") && !proc.contains("\n"),
            "\(proc)")
        try w.write("bad.yaml", "models: 3\n")
        var badConfig = w.request(input: "data.csv")
        badConfig.configPath = w.path("bad.yaml")
        #expect(w.failure(badConfig).hasPrefix("\(w.path("bad.yaml")): invalid configuration: "))
    }
}

@Suite struct ProfileLoaderTests {
    /// The message of loading `profile` (edited) as `ref.json` for the fraud model.
    func failure(_ edit: (inout ReferenceProfile) -> Void) throws -> String {
        var p = try profile(ProfilerTests.csv)
        edit(&p)
        return failure(text: String(decoding: try Profiler.encode(p), as: UTF8.self))
    }

    func failure(text: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mlops-ref-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("ref.json").path
        try? Data(text.utf8).write(to: URL(fileURLWithPath: path))
        do {
            _ = try ProfileLoader.load(path: path, model: fraud)
            return "no error"
        } catch {
            return error.description.replacingOccurrences(of: path, with: "ref.json")
        }
    }

    @Test func checksEveryField() throws {
        #expect(try failure { _ in } == "no error")
        #expect(try failure { $0.format = "v0" } == #"ref.json: format: "v0" is not "mlops-exporter.profile/v1""#)
        #expect(try failure { $0.model = "eta" } == #"ref.json: model: the profile is of model "eta", not "fraud""#)
        #expect(try failure { $0.features.remove(at: 1) } == #"ref.json: features: no profile for feature "country""#)
        #expect(
            try failure { $0.features[2] = $0.features[0] }
                == #"ref.json: features: no profile for feature "channel""#)
        #expect(
            try failure {
                $0.features[2] = ColumnProfile(name: "channel", missing: 0, numeric: $0.features[0].numeric!)
            }
                == "ref.json: features[2] (channel): expected a categorical profile")
        #expect(
            try failure {
                $0.features[0] = ColumnProfile(name: "amount", missing: 0, categorical: $0.features[1].categorical!)
            }
                == "ref.json: features[0] (amount): expected a numeric profile")
        #expect(
            try failure { $0.features[0].numeric!.counts.append(0) }
                == "ref.json: features[0] (amount): 5 counts for 1 edges (expected edges + 3)")
        #expect(
            try failure { $0.features[0].numeric!.fine = [] }
                == "ref.json: features[0] (amount): the fine histogram is empty")
        #expect(
            try failure { $0.features[0].numeric!.fine[0] += 1 }
                == "ref.json: features[0] (amount): fine sum to 3, not count 2")
        #expect(
            try failure { $0.features[0].numeric!.edges = [7] }
                == "ref.json: features[0] (amount): edges are not all strictly between min and max")
        #expect(
            try failure { $0.features[1].missing = 5 }
                == "ref.json: features[1] (country): 3 values and 5 missing are not the profile's 3 rows")
        #expect(
            try failure { $0.features[1].categorical!.counts.append(1) }
                == "ref.json: features[1] (country): 4 counts for 2 values (expected values + 1 for __other__)")
        #expect(
            try failure { $0.features[2].categorical!.values = ["web", "pos"] }
                == #"ref.json: features[2] (channel): values ["web", "pos"] differ from the configured ["web", "app"] (rebuild the profile)"#
        )
        #expect(
            try failure { $0.prediction = $0.features[0] }
                == "ref.json: prediction: expected a categorical profile")
    }

    /// A numeric column's distinct values (amount: 1 and 2, once each): absent in a profile written before them, else
    /// consistent with the column.
    @Test func listedValuesAreChecked() throws {
        let amount = "ref.json: features[0] (amount): "
        #expect(try profile(ProfilerTests.csv).features[0].numeric?.values == [1, 2])
        #expect(
            try failure {
                $0.features[0].numeric!.distinct = nil
                $0.features[0].numeric!.values = nil
                $0.features[0].numeric!.valueCounts = nil
            } == "no error")
        #expect(
            try failure { $0.features[0].numeric!.distinct = nil }
                == amount + "values without distinct (the number of distinct values)")
        #expect(
            try failure { $0.features[0].numeric!.distinct = 3 }
                == amount + "distinct 3 is not a number of distinct values among 2")
        #expect(
            try failure { $0.features[0].numeric!.values = nil }
                == amount + "values and value_counts are required with 2 distinct values")
        #expect(
            try failure { $0.features[0].numeric!.distinct = 1 }
                == amount + "2 values and 2 value_counts for distinct 1")
        #expect(
            try failure { $0.features[0].numeric!.values = [2, 1] }
                == amount + "values are not finite and strictly increasing")
        #expect(
            try failure { $0.features[0].numeric!.values = [1, 1.5] } == amount + "values do not run from min to max")
        #expect(
            try failure { $0.features[0].numeric!.valueCounts = [2, 0] } == amount + "a value_count is not positive")
        #expect(
            try failure { $0.features[0].numeric!.valueCounts = [1, 2] } == amount
                + "value_counts do not sum to count 2")
    }

    /// Counts whose sums overflow `Int` trapped while being checked (and so did a reload or `batch` reading them).
    @Test func countsWhoseSumsOverflowAreRefused() throws {
        #expect(
            try failure { $0.features[0].numeric!.counts = [Int.max, Int.max, Int.max, 0] }
                == "ref.json: features[0] (amount): counts sum to more than \(Int.max), not count 2")
        #expect(
            try failure { $0.features[0].numeric!.fine = [Int.max, Int.max] }
                == "ref.json: features[0] (amount): fine sum to more than \(Int.max), not count 2")
        #expect(
            try failure { $0.features[1].categorical!.counts = [Int.max, 1, 0] }
                == "ref.json: features[1] (country): counts sum to more than \(Int.max)")
        #expect(
            try failure { $0.features[1].missing = Int.max }
                == "ref.json: features[1] (country): 3 values and \(Int.max) missing are not the profile's 3 rows")
    }

    /// A categorical column listing `__other__` (the bin of every value outside the list) named two bins alike: `serve`,
    /// `check-config` and a reload trapped on it. `mlops-exporter profile` no longer writes one; an older or edited one
    /// is refused, naming the file and the column.
    @Test func aValueNamedOtherIsRefused() throws {
        #expect(
            try failure {
                $0.features[1].categorical = CategoricalProfile(values: ["DE", "__other__"], counts: [2, 1, 0])
            }
                == #"ref.json: features[1] (country): values[1] is "__other__", the name of the bin of every value "#
                + "outside the list (rebuild the profile: mlops-exporter profile counts such rows in it)")
        #expect(
            try failure { $0.prediction!.categorical!.values = ["__other__", "fraud"] }
                == #"ref.json: prediction: values[0] is "__other__", the name of the bin of every value "#
                + "outside the list (rebuild the profile: mlops-exporter profile counts such rows in it)")
        let rows = ProfilerTests.csv + "3,__other__,web,legit,0.5\n4,__other__,app,legit,0.5\n"
        #expect(
            try profile(rows).features[1].categorical == CategoricalProfile(values: ["DE", "FR"], counts: [2, 1, 2]))
    }

    /// Categorical values are compared byte for byte, as live values are matched: `String`'s `==` calls `café` in NFC
    /// and in NFD equal, so a profile naming the other spelling than the configuration passed, and live traffic in the
    /// configured spelling then all counted in `__other__`.
    @Test func categoricalValuesAreComparedByTheirBytes() throws {
        let (nfc, nfd) = ("caf\u{E9}", "cafe\u{301}")
        let model = ModelConfiguration(
            name: "m", task: .regression,
            features: [
                FeatureConfiguration(name: "c", kind: .categorical, values: [nfc]),
                FeatureConfiguration(name: "d", kind: .categorical),
            ])
        func failure(c: [String], d: [String]) throws -> String {
            let profile = ReferenceProfile(
                model: "m", rows: 1, inputSHA256: "",
                features: [
                    ColumnProfile(
                        name: "c", missing: 0,
                        categorical: CategoricalProfile(values: c, counts: c.map { _ in 0 } + [1])),
                    ColumnProfile(
                        name: "d", missing: 0,
                        categorical: CategoricalProfile(values: d, counts: d.map { _ in 0 } + [1])),
                ])
            do {
                _ = try ProfileLoader.load(bytes: try Profiler.encode(profile), path: "ref.json", model: model)
                return "no error"
            } catch {
                return error.description
            }
        }
        #expect(try failure(c: [nfc], d: [nfc, nfd]) == "no error")
        #expect(
            try failure(c: [nfd], d: [])
                == "ref.json: features[0] (c): values \([nfd]) differ from the configured \([nfc]) (rebuild the profile)"
        )
        #expect(
            try failure(c: [nfc], d: ["a", "b", "a"]) == #"ref.json: features[1] (d): values[2] "a" is listed twice"#)
        // A learned category longer than the bound would be a label value (a configured one is the configuration's).
        let long = String(repeating: "x", count: CategoryCounts.maxLearnedBytes + 1)
        #expect(
            try failure(c: [nfc], d: ["a", long]).hasPrefix(
                "ref.json: features[1] (d): values[1] is 1025 bytes long, more than the 1024 a learned category may have"
            ))
    }

    /// A profile is read whole at start and at every reload: one past the bound is refused before it is read.
    @Test func aProfileLargerThanTheBoundIsRefused() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("big-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(repeating: 0x20, count: 2048)))
        #expect {
            try Profiler.read(path, maxBytes: 1024)
        } throws: { error in
            (error as? ProfilingError)?.description
                == "\(path): cannot read: 2048 bytes, more than the 1024 a profile may have"
        }
    }

    /// Hand-edited columns that no data gives: they loaded, and drift compared live traffic with them.
    @Test func inconsistentColumnsAreRefused() throws {
        let amount = "ref.json: features[0] (amount): "
        #expect(try profile(ProfilerTests.csv).features[0].numeric?.counts == [0, 1, 1, 0])
        #expect(
            try failure {
                $0.features[0].numeric!.min = 2
                $0.features[0].numeric!.max = 1
                $0.features[0].numeric!.edges = []
                $0.features[0].numeric!.counts = [0, 2, 0]
            } == amount + "min 2.0 is above max 1.0")
        #expect(
            try failure { $0.features[0].numeric!.std = -1 }
                == amount + "std -1.0 is not a standard deviation (finite, not negative)")
        #expect(
            try failure { $0.features[0].numeric!.counts = [1, 0, 1, 0] }
                == amount
                + "counts[0] (underflow, below min) is 1 and counts[3] (overflow, above max) is 0: the reference's own "
                + "values are never there")
        #expect(
            try failure { $0.features[0].numeric!.counts = [0, 1, 0, 1] }
                == amount
                + "counts[0] (underflow, below min) is 0 and counts[3] (overflow, above max) is 1: the reference's own "
                + "values are never there")
        #expect(
            try failure { $0.features[0].numeric!.counts = [0, 0, 2, 0] }
                == amount + "counts[1] (the bin of min) or counts[2] (the bin of max) is 0: min and max are values of "
                + "the reference")
        #expect(
            try failure {
                $0.features[0].numeric!.max = 1
                $0.features[0].numeric!.mean = 1
                $0.features[0].numeric!.std = 0
                $0.features[0].numeric!.edges = []
                $0.features[0].numeric!.counts = [0, 2, 0]
            } == amount + "min equals max and fine[0] is not count 2: every value is in fine bin 0")
        #expect(
            try failure { $0.features[0].numeric!.mean = 1e308 } == amount
                + "mean 1e+308 is not between min 1.0 and max 2.0")
        #expect(try failure { $0.features[0].numeric!.std = 3 } == amount + "std 3.0 exceeds max − min (1.0)")
        #expect(
            try failure { $0.features[1].categorical!.values[1] = "" }
                == "ref.json: features[1] (country): values[1] is empty: an empty string is a missing value, never a category"
        )
        #expect(
            try failure { $0.features[0].numeric!.fine = [1, 0, 0, 0, 0, 0, 0, 1] }
                == "ref.json: score: 4 fine bins, where features[0] (amount) has 8 (a profile has one fine bin count)")
        #expect(
            try failure { $0.features[0].numeric!.fine = [2] + Array(repeating: 0, count: 1_000_000) }
                == amount + "1000001 fine bins, more than 1000000 (the most --fine-bins takes)")
    }

    /// What the builder writes passes those checks, rounding included (a constant column's mean is off by an ulp and its
    /// std not quite 0; values near ±Double.greatestFiniteMagnitude, subnormals).
    static let builtColumns: [[Double]] = [
        [0.1, 0.1, 0.1], [1e308, -1e308, 1e308], [-1e-300, 0, 1e-300],
        [.leastNonzeroMagnitude, .leastNonzeroMagnitude, 2 * .leastNonzeroMagnitude], [7], [-3.3, -3.3],
        (0..<1000).map { Double($0 % 11) / 10 }, (0..<500).map { 1e15 + Double($0) * 0.125 },
        (0..<300).map { sin(Double($0)) * 1e-200 },
    ]

    @Test(arguments: builtColumns)
    func builtProfilesPassTheChecks(values: [Double]) throws {
        let model = ModelConfiguration(
            name: "m", task: .regression, features: [FeatureConfiguration(name: "x", kind: .numeric)])
        let profile = ReferenceProfile(
            model: "m", rows: values.count, inputSHA256: "",
            features: [
                ColumnProfile(
                    name: "x", missing: 0, numeric: ProfileBuilder.numeric(values, bins: 10, fineBins: 1000))
            ])
        #expect(throws: Never.self) { try ProfileLoader.check(profile, model: model, file: "ref.json") }
    }

    @Test func malformedFiles() {
        // Where the JSON goes wrong, by line and column (before: "not a JSON reference profile", nowhere).
        #expect(failure(text: "{") == "ref.json:1:2: not a JSON reference profile: the file ends inside an object")
        #expect(
            failure(
                text:
                    "{\n  \"format\": \"mlops-reference/1\",\n  \"features\": [\n    {\"name\": \"é\", \"counts\": [0,")
                == "ref.json:4:32: key \"features.counts\": not a JSON reference profile: the file ends where a value should be"
        )
        #expect(
            failure(text: "{\"format\": 1} {}")
                == "ref.json:1:15: not a JSON reference profile: text after the JSON value")
        // A key given twice: Foundation's decoder took the first (`"model": "fraud"`) where Python's json takes the
        // last, so the two readers of one profile disagreed; refused at the second.
        #expect(
            failure(text: "{\"model\": \"fraud\",\n \"model\": \"other\"}")
                == "ref.json:2:2: key \"model\": not a JSON reference profile: appears twice in the object")
        #expect(failure(text: "{\"format\": 1}") == "ref.json: format: expected String")
        // A byte order mark (Windows editors) is skipped, as Foundation's decoder skips it, by the strict check too.
        #expect(failure(text: "\u{FEFF}{\"format\": 1}") == "ref.json: format: expected String")
        #expect(failure(text: "{\"format\": \"x\"}") == "ref.json: model: required, missing")
        #expect(throws: ProfilingError.self) { try ProfileLoader.load(path: "/nonexistent/ref.json", model: fraud) }
    }
}
