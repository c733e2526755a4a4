import Foundation
import Testing

@testable import ExporterConfig

private func load(_ yaml: String) throws(ConfigErrors) -> ExporterConfiguration {
    try ConfigLoader.parse(yaml, file: "test.yaml")
}

/// The errors of an invalid document, as `line: field: message` strings.
private func problems(_ yaml: String) -> [String] {
    do {
        _ = try load(yaml)
        return []
    } catch {
        return error.errors.map { "\($0.line): \($0.field): \($0.message)" }
    }
}

@Suite("Configuration file")
struct ConfigLoaderTests {
    /// The pseudo-models' names are refused as model names: a model `__unrouted__` shared its proxy series with the
    /// requests no route matched (a probe read 3 for one routed request and two unrouted ones).
    @Test func reservedModelNamesAreRefused() {
        for (name, reason) in [
            ("__service__", "is reserved for service-wide SLOs"),
            ("__unknown__", "is reserved for requests to models that are not configured"),
            ("__unrouted__", "is reserved for proxied requests no route matched"),
        ] {
            #expect(
                locatedErrors("models:\n  - name: \(name)\n    task: regression\n    versions: [v1]\n")
                    == ["2:11: models[0].name: \"\(name)\" \(reason)"])
        }
    }

    /// YAML's null, unquoted, where a string goes: refused at its place. Before, `token: ~` set the token "~" (a secret
    /// the operator did not mean), `versions: [v1, null]` a version "null", `reference: null` a file named so (a probe).
    /// Quoted, it is the text.
    @Test func aNullWhereAStringGoesIsRefused() {
        let found = locatedErrors(
            "models:\n  - name: m\n    task: regression\n    versions: [v1, null]\n    token: ~\n")
        #expect(
            found == [
                "4:20: models[0].versions[1]: is null (YAML's `null`): leave the field out, or quote the text (\"null\")",
                "5:12: models[0].token: is null (YAML's `~`): leave the field out, or quote the text (\"~\")",
            ])
        #expect(
            locatedErrors(
                "models:\n  - name: m\n    task: regression\n    versions: [v1, \"null\"]\n    token: \"~x\"\n")
                == [])
    }

    @Test("the example configuration loads with every field")
    func example() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../examples/models.yaml")
        let config = try ConfigLoader.load(file: url.path)
        #expect(config.models.map(\.name) == ["fraud", "eta"])
        let fraud = try #require(config.model(named: "fraud"))
        #expect(fraud.task == .binaryClassification)
        #expect(fraud.versions == ["v1", "v2"])
        #expect(fraud.classes == ["legit", "fraud"] && fraud.positiveClass == "fraud")
        #expect(fraud.features.map(\.name) == ["amount", "account_age_days", "country", "channel"])
        #expect(
            fraud.features[2]
                == FeatureConfiguration(name: "country", kind: .categorical, values: ["US", "DE", "FR", "GB", "IN"]))
        #expect(
            fraud.sensitiveAttributes[0]
                == SensitiveAttribute(name: "gender", groups: ["female", "male"], privileged: "male"))
        #expect(fraud.window == WindowConfiguration(duration: .seconds(3600), slices: 12))
        #expect(fraud.latencyBuckets.first == 0.001 && fraud.latencyBuckets.count == 10)
        // Every SLO of the example reads a collector that runs (a review found quality, drift and fairness SLOs on
        // a model with only `service`: alerts that could never fire).
        #expect(fraud.collectors.map(\.name) == ["service", "drift", "quality", "fairness"])
        let eta = try #require(config.model(named: "eta"))
        #expect(eta.task == .regression && eta.classes.isEmpty)
        #expect(eta.window == WindowConfiguration(duration: .seconds(1800), slices: 6))
        #expect(eta.latencyBuckets == ModelConfiguration.defaultLatencyBuckets)
        #expect(eta.maxSeries == 10_000)
    }

    /// An SLO whose indicator reads a collector the model does not run is valid but said (check-config, rules and
    /// serve print it): the example configuration had quality, drift and fairness SLOs on a model running only
    /// `service`, whose alerts could never fire, and nothing said so.
    @Test("an SLO without the collector it reads is a warning")
    func sloWithoutItsCollectorIsAWarning() throws {
        let config = try load(
            """
            models:
              - name: m
                task: binary_classification
                versions: [v1]
                classes: ["0", "1"]
                positive_class: "1"
                features: [{name: a, type: numeric}]
                sensitive_attributes: [{name: g, groups: [x, y]}]
                collectors: [service, quality]
                slos:
                  - {type: availability, objective: 99.9, period: 28d}
                  - {type: quality, metric: accuracy, target: 0.9, window: 1h, objective: 95, period: 28d}
                  - {type: drift, objective: 95, period: 28d}
                  - {type: fairness, objective: 99, period: 28d}
            """)
        #expect(
            config.warnings.map { $0.split(separator: ":").prefix(5).joined(separator: ":") } == [
                "test.yaml:2:5: models[0] (m): sensitive_attributes", "test.yaml:2:5: models[0] (m): slos[2] (drift)",
                "test.yaml:2:5: models[0] (m): slos[3] (fairness)",
            ])
        #expect(config.warnings[1].hasSuffix("(add drift to its collectors)") == true)
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../examples/models.yaml")
        #expect(try ConfigLoader.load(file: url.path).warnings.isEmpty)
    }

    /// A reference profile without the drift collector, or sensitive attributes without fairness, is read by nothing
    /// (the default collectors are `service` alone): valid but said. Before, `check-config` called such a model valid
    /// and nothing said its drift or fairness was never computed.
    @Test("a reference without drift, or groups without fairness, is a warning")
    func unreadSectionsAreWarnings() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("warn-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = """
            models:
              - name: m
                task: binary_classification
                versions: [v1]
                classes: ["0", "1"]
                positive_class: "1"
                features: [{name: a, type: numeric}]
                sensitive_attributes: [{name: g, groups: [x, y]}]
                reference: ref.json

            """
        // Only readable here: the profile's contents are checked where the drift collector is built.
        try "{}".write(to: folder.appendingPathComponent("ref.json"), atomically: true, encoding: .utf8)
        func warnings(_ collectors: String) throws -> [String] {
            let file = folder.appendingPathComponent("m.yaml")
            try (model + "    collectors: \(collectors)\n").write(to: file, atomically: true, encoding: .utf8)
            return try ConfigLoader.load(file: file.path).warnings.map {
                String($0.split(separator: ":").prefix(5).joined(separator: ":").split(separator: "/").last!)
            }
        }
        // Each at its place in the file: the reference's, the model's entry (they named file and field only).
        #expect(
            try warnings("[service]") == [
                "m.yaml:9:16: models[0] (m): reference", "m.yaml:2:5: models[0] (m): sensitive_attributes",
            ])
        #expect(try warnings("[service, drift]") == ["m.yaml:2:5: models[0] (m): sensitive_attributes"])
        #expect(try warnings("[service, drift, fairness]").isEmpty)
    }

    /// Accepted before: an empty inline token (the model took no events at all), a NUL in a path (cut there at the
    /// system call: the storage landed in `st`). A feature named like a column batch and profile files read as the
    /// event's own stays valid for serve (live traffic nests features): batch and profile refuse it (BatchRunTests).
    @Test("an empty token and a NUL are refused with line and field; a feature named score is valid")
    func reservedNamesEmptyTokenAndNUL() {
        let found = problems(
            """
            models:
              - name: fraud
                task: binary_classification
                versions: [v1]
                classes: [a, b]
                positive_class: b
                token: ""
                features:
                  - {name: prediction, type: numeric}
                  - {name: amount, type: numeric}
                sensitive_attributes:
                  - {name: id, groups: [x, y]}
            storage: {path: "st\\0ate"}
            """)
        #expect(
            found == [
                "7: models[0].token: must not be empty (leave token out for a model without one)",
                "13: storage.path: contains a NUL character",
            ], "\(found)")
    }

    /// Valid before: state no machine could hold. `max_pending: 100000000` with quality made check-config abort on a
    /// 562 MB allocation and serve reach 11 GB; a reload to such a file killed the live exporter.
    @Test("a configuration whose models' state would pass 4 GiB is refused at the model that passes it")
    func stateMemoryIsBounded() {
        let model = { (name: String, pending: Int) in
            """
              - name: \(name)
                task: binary_classification
                versions: [v1]
                classes: [a, b]
                positive_class: b
                collectors: [service, quality]
                max_pending: \(pending)

            """
        }
        // The estimate is max_pending entries of ModelConfiguration.pendingEntryBytes, in MiB rounded up (the bytes per
        // entry were measured against a running exporter's resident memory: docs/security.md), plus the quality
        // window: per version (v1 and __other__) the 3 × 3 confusion cells, 4 sums, 10 calibration bins × 3 and 1,000
        // score bins × 2, 8 bytes each, in each of the 12 slices, the totals and the window's cached totals.
        let pendingBytes = 100_000_000 * ModelConfiguration.pendingEntryBytes
        let windowBytes = 2 * (3 * 3 + 4 + 3 * 10 + 2 * 1000) * (12 + 2) * 8
        let mib = { (bytes: Int) in (bytes + (1 << 20) - 1) >> 20 }
        #expect(
            problems("models:\n" + model("huge", 100_000_000)) == [
                "8: models[0].max_pending: the models' state would take an estimated \(mib(pendingBytes + windowBytes)) "
                    + "MiB (this model: pending predictions \(mib(pendingBytes)) MiB, drift windows 0 MiB, quality and "
                    + "fairness windows \(mib(windowBytes)) MiB), more than the limit of "
                    + "\(ConfigLimits.maxEstimatedStateBytes >> 20) MiB: lower max_pending or the window's slices (or the "
                    + "categorical values listed; drift's bin_series: false drops their series), or split the models over "
                    + "exporters"
            ])
        // Quality windows count (they did not: 40 models of 60 classes over 1,000 slices took 2.4 GB that the
        // estimate said was 5 MB): 61 × 61 confusion cells and 4 sums per version, 2 versions, 1,002 slices' worth.
        let perModel = (61 * 61 + 4) * 2 * 1002 * 8 + ModelConfiguration.pendingEntryBytes
        #expect(
            71 * perModel <= ConfigLimits.maxEstimatedStateBytes && 72 * perModel > ConfigLimits.maxEstimatedStateBytes)
        let classes = (0..<60).map { "c\($0)" }.joined(separator: ", ")
        let wide = (0..<73).map {
            "  - name: w\($0)\n    task: multiclass_classification\n    versions: [v1]\n    classes: [\(classes)]\n"
                + "    collectors: [service, quality]\n    max_pending: 1\n    window: {duration: 1h, slices: 1000}\n"
        }.joined()
        let refused = problems("models:\n" + wide)
        #expect(
            refused.count == 2
                && refused.allSatisfy { $0.contains("models[7") && $0.contains("].window: the models' state") }
                && refused[0].contains("models[71]"), "\(refused)")
        // Four times 10,000,000 pending pass 4 GiB where three do not: the fourth is refused, the fifth (small) fits.
        #expect(3 * 10_000_000 * ModelConfiguration.pendingEntryBytes <= ConfigLimits.maxEstimatedStateBytes)
        #expect(4 * 10_000_000 * ModelConfiguration.pendingEntryBytes > ConfigLimits.maxEstimatedStateBytes)
        let five = (0..<4).map { model("m\($0)", 10_000_000) }.joined() + model("small", 1000)
        let found = problems("models:\n" + five)
        #expect(
            found.count == 1 && found[0].hasPrefix("29: models[3].max_pending: the models' state would take"),
            "\(found)")
        #expect(problems("models:\n" + (0..<3).map { model("m\($0)", 10_000_000) }.joined()).isEmpty)
    }

    /// A categorical feature with many listed values takes 8 bytes a value in each drift slice and two bin series a
    /// value (their label sets built at start): the estimate counted a fixed 1,040 slots a column and no series, so
    /// 4 models of 40 such features over 168 slices, estimated at 307 MiB, took 2,048 MB (a review's measurement: a
    /// column (values + 1) × 8 bytes a slice, 600 bytes a series). Nine models of 10 features of 5,000 values over
    /// 1,000 slices pass 4 GiB by that layout where eight do not: the ninth is refused.
    @Test("the drift estimate grows with a categorical feature's listed values")
    func driftEstimateCountsListedValues() {
        let values = (0..<5000).map { "v\($0)" }
        let model = { (name: String) in
            ModelConfiguration(
                name: name, task: .regression, versions: ["v1"],
                features: (0..<10).map { FeatureConfiguration(name: "f\($0)", kind: .categorical, values: values) },
                window: WindowConfiguration(slices: 1000), collectors: [CollectorConfiguration(name: "drift")])
        }
        // The measured layout, a lower bound: per slice (and the totals, the window's cached totals) each column's
        // values and __other__, 8 bytes each; two series a bin (the values, __other__, missing), 600 bytes each.
        let measured = 10 * 5001 * 8 * 1002 + 2 * 10 * 5002 * 600
        let estimate = model("m").estimatedStateBytes.drift
        #expect(estimate >= measured && estimate < measured * 11 / 10, "\(estimate) against \(measured)")
        #expect(
            8 * estimate <= ConfigLimits.maxEstimatedStateBytes && 9 * estimate > ConfigLimits.maxEstimatedStateBytes)
        // The values listed once (a YAML anchor), or the file passes its 2 MiB bound.
        let listed = "&values [" + values.joined(separator: ", ") + "]"
        let file = (0..<9).map { m in
            "  - name: m\(m)\n    task: regression\n    versions: [v1]\n    features:\n"
                + (0..<10).map { f in
                    "      - {name: f\(f), type: categorical, values: \(m == 0 && f == 0 ? listed : "*values")}\n"
                }.joined() + "    collectors: [drift]\n    window: {duration: 1000h, slices: 1000}\n"
        }.joined()
        let refused = problems("models:\n" + file)
        #expect(
            refused.count == 1 && refused[0].contains("models[8].window: the models' state would take"), "\(refused)")
    }

    /// A byte that is no UTF-8 is named with its line and column (before: the file alone).
    @Test("a file that is not UTF-8 is refused at its first invalid byte")
    func invalidUTF8IsLocated() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("utf8-\(UUID().uuidString).yaml")
        try Data(Array("models:\n  - name: caf".utf8) + [0xE9] + Array("\n".utf8)).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let error = #expect(throws: ConfigErrors.self) { try ConfigLoader.load(file: file.path) }
        #expect(
            error?.errors.map { "\($0.line):\($0.column): \($0.message)" } == [
                "2:14: cannot read: invalid UTF-8 (byte 0xE9); the file must be UTF-8 text"
            ])
    }

    @Test("a read that fails says its errno, not Foundation's code")
    func readFailureSaysItsErrno() {
        // A regular file that opens and then fails to read (EIO at offset 0): before, the message was "cannot read:
        // The operation could not be completed. (NSCocoaErrorDomain error 256.)", also for EMFILE (a probe's reload
        // while the process was out of descriptors).
        let error = #expect(throws: ConfigErrors.self) { try ConfigLoader.load(file: "/proc/self/mem") }
        #expect(error?.errors.map(\.message) == ["cannot read: input/output error"])
    }

    @Test("every problem is reported with its line and field, not just the first")
    func manyErrors() {
        let found = problems(
            """
            models:
              - name: fraud
                task: binary_classifier
                versions: [v1, v1]
                classes: [a, b, c]
                positive_class: z
                features:
                  - {name: amount, type: float}
                  - {name: country, type: categorical}
                window: {duration: 1 hour, slices: 0}
                latency_buckets: [0.1, 0.05]
                collectors: [service, nope]
                colour: blue
            """)
        #expect(found.count == 9, "\(found)")
        // In file order (the loader finds them section by section: unknown fields first, before).
        let lines = found.map { Int($0.prefix { $0 != ":" }) ?? -1 }
        #expect(lines == lines.sorted(), "\(found)")
        #expect(found.contains { $0.hasPrefix("3: models[0].task: unknown task") })
        #expect(found.contains { $0.hasPrefix("4: models[0].versions[1]:") })
        #expect(found.contains { $0.hasPrefix("8: models[0].features[0].type:") })
        #expect(found.contains { $0.hasPrefix("9: models[0].features[1].values:") })
        #expect(found.contains { $0.hasPrefix("10: models[0].window.duration:") })
        #expect(found.contains { $0.hasPrefix("10: models[0].window.slices:") })
        #expect(found.contains { $0.hasPrefix("11: models[0].latency_buckets[1]:") })
        #expect(found.contains { $0.hasPrefix("12: models[0].collectors[1]: unknown collector \"nope\"") })
        #expect(found.contains { $0.hasPrefix("13: models[0].colour: unknown field") })
    }

    @Test(
        "task-specific rules",
        arguments: [
            (
                "task: binary_classification\n    versions: [v]\n    classes: [a, b]",
                "positive_class: required for binary classification"
            ),
            (
                "task: binary_classification\n    versions: [v]\n    classes: [a]\n    positive_class: a",
                "classes: binary classification needs exactly 2 classes"
            ),
            (
                "task: multiclass_classification\n    versions: [v]\n    classes: [a, b]",
                "classes: multiclass classification needs at least 3 classes"
            ),
            ("task: regression\n    versions: [v]\n    classes: [a, b]", "classes: a regression model has no classes"),
            (
                "task: regression",
                "versions: required: the versions to report separately (others become __other__), e.g. [default]"
            ),
            (
                "task: regression\n    versions: [__other__]",
                "versions[0]: \"__other__\" is reserved for values outside the list"
            ),
            // A reference profile not made yet: the message says how to make it.
            (
                "task: regression\n    versions: [v]\n    reference: /nonexistent/ref.json",
                "reference: cannot read \"/nonexistent/ref.json\" (make it from reference data: mlops-exporter profile "
                    + "--config FILE --model NAME --input DATA.csv --out /nonexistent/ref.json)"
            ),
        ])
    func taskRules(body: String, expected: String) {
        let found = problems("models:\n  - name: m\n    \(body)\n")
        #expect(found.contains { $0.hasSuffix(expected) }, "\(found)")
    }

    /// A key given twice is located at its second line and named by its whole field path (it was the mapping's first
    /// line, and `duplicate keys ["name"]` without a field; then the key alone, `task` for `models[0].task`: a probe).
    @Test func aDuplicateKeyIsLocatedWhereItIsRepeated() {
        #expect(
            problems("models:\n  - name: a\n    task: regression\n\n    # note\n    name: b\n")
                == ["6: models[0].name: key given twice in one mapping"])
        // In a flow mapping the key alone (its line is the mapping's).
        #expect(problems("models:\n  - {name: a, name: b}\n") == ["2: name: key given twice in one mapping"])
        // Lines as YAML counts them, a lone CR breaking one: splitting at LF only, a mapping placed past the last line
        // trapped (found by Fuzz/ config).
        #expect(
            problems("models:\r\r\r\r  - name: a\r    task: regression\r    name: b\r")
                == ["7: models[0].name: key given twice in one mapping"])
        #expect(
            problems("models:\r\n  - name: a\r\n    name: b\r\n") == [
                "3: models[0].name: key given twice in one mapping"
            ])
        // The second model, a compact sequence (dashes at the key's column), and a nested mapping.
        #expect(
            problems("models:\n- name: a\n  task: regression\n- name: b\n  task: regression\n  task: x\n")
                .contains("6: models[1].task: key given twice in one mapping"))
        #expect(
            problems(
                "models:\n  - name: a\n    task: regression\n    versions: [v1]\n    collectors:\n      - name: drift\n"
                    + "        options:\n          threshold: 0.1\n          threshold: 0.2\n"
            )
            .contains("9: models[0].collectors[0].options.threshold: key given twice in one mapping"))
        #expect(ConfigLoader.fieldPath(of: "a", line: 3, column: 3, in: "x:\n  y: 1\n  a: 2\n") == "x.a")
        #expect(ConfigLoader.fieldPath(of: "a", line: 1, column: 1, in: "a: 1\n") == "a")
        // Bounded work: 100 levels deep, each with 2,000 siblings above the key (lines × depth: 20 million looks).
        var deep = ""
        for level in 0..<100 {
            let indent = String(repeating: " ", count: 2 * level)
            for i in 0..<2_000 { deep += "\(indent)s\(i): 1\n" }
            deep += "\(indent)k\(level):\n"
        }
        deep += String(repeating: " ", count: 200) + "a: 1\n"
        let started = ContinuousClock.now
        let path = ConfigLoader.fieldPath(of: "a", line: 100 * 2_001 + 1, column: 201, in: deep)
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(path == nil || path?.hasSuffix("k99.a") == true)
    }

    @Test("YAML syntax errors and empty or wrong documents are located")
    func syntax() {
        #expect(problems("models: [\n  - name: x\n").first?.contains("invalid YAML") == true)
        // Found by Fuzz/ (config): a control character gave an unlocated error on three lines.
        #expect(problems("models:\r\n  -\u{17} name: m\n") == ["2: : invalid YAML: control characters are not allowed"])
        // Found by Fuzz/ (config): a value with line breaks, quoted in a message, spread it over several lines.
        #expect(
            problems("models:\n  - name: m\n    task: \"a\\nb\\u001B\"\n    versions: [v]\n").first?.hasPrefix(
                #"3: models[0].task: unknown task "a\nb\u{1B}""#) == true)
        // Nesting past libyaml's limit named the C call that sets it ("set with yaml_set_max_nest_level()").
        let deep =
            "models:\n  - name: m\n    x: " + String(repeating: "[", count: 1100) + String(repeating: "]", count: 1100)
        #expect(
            problems(deep + "\n").map { $0.drop { $0 != ":" } }
                == [": : invalid YAML: nested deeper than 1000 levels of mappings and sequences"])
        // An empty version is one problem, at its item (it was also "list at least one version", untrue).
        #expect(
            problems("models:\n  - name: m\n    task: regression\n    versions: [\"\"]\n")
                == ["4: models[0].versions[0]: must not be empty"])
        #expect(problems("") == ["0: : the file is empty"])
        #expect(problems("models: []\n") == [])  // zero models: a plain metrics server
        #expect(problems("- a\n") == ["1: : expected a mapping"])
        #expect(problems("other: 1\n").first?.hasPrefix("1: other: unknown field") == true)
    }

    @Test("names are restricted and unique")
    func names() {
        let dup = problems(
            "models:\n  - {name: m, task: regression, versions: [v]}\n  - {name: m, task: regression, versions: [v]}\n")
        #expect(dup == ["3: models[1].name: model \"m\" is configured twice"])
        let bad = problems("models:\n  - {name: \"a b\", task: regression, versions: [v]}\n")
        #expect(bad.first?.contains("model name \"a b\" must be 1-128 characters") == true)
        // Letters are ASCII letters: the message said "letters", and "Größe" was refused by it.
        let unicode = problems("models:\n  - {name: \"Größe\", task: regression, versions: [v]}\n")
        #expect(
            unicode == [
                #"2: models[0].name: model name "Größe" must be 1-128 characters of ASCII letters, digits, '_', '-' or '.'"#
            ])
        // "." and "..": path segments no browser keeps, so the model's page and URLs could not be reached.
        for dots in [".", ".."] {
            let refused = problems("models:\n  - {name: \"\(dots)\", task: regression, versions: [v]}\n")
            #expect(refused == ["2: models[0].name: model name \"\(dots)\" must not be only dots: it is part of URLs"])
        }
        #expect(problems("models:\n  - {name: \"...a\", task: regression, versions: [v]}\n").isEmpty)
    }

    @Test(
        "durations parse like Prometheus'",
        arguments: [
            ("30s", 30.0), ("5m", 300), ("1h30m", 5400), ("1d", 86400), ("250ms", 0.25), ("1w", 604_800),
            ("1y1w1d1h1m1s1ms", 32_230_861.001),
        ])
    func durations(text: String, seconds: Double) throws {
        let d = try #require(DurationParser.parse(text))
        #expect(abs(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 - seconds) < 1e-9)
    }

    /// Units repeated or out of order (`1h1h`, `30m1h`) are refused, as Prometheus refuses them: they were read as
    /// 2h and 1h30m (a config probe).
    @Test(
        "bad durations are refused",
        arguments: ["", "5", "m", "1x", "-1s", "1.5h", "1h 2m", "0s", "1h1h", "30m1h", "1s1m", "1ms1s", "1s1s"])
    func badDurations(text: String) {
        #expect(DurationParser.parse(text) == nil)
    }

    /// A zero duration is said to be zero, not "not a duration" (a config probe).
    @Test func aZeroWindowIsSaidToBeZero() {
        #expect(DurationParser.isZero("0s") && DurationParser.isZero("0h0m") && !DurationParser.isZero("0x"))
        let refused = problems("models:\n  - {name: m, task: regression, versions: [v], window: {duration: 0s}}\n")
        #expect(refused == ["2: models[0].window.duration: must be more than 0s"], "\(refused)")
    }

    @Test(
        "durations beyond Int64 milliseconds are refused (they trapped converting to Int64)",
        arguments: [
            "10000000000000000y", "300000000y", "9223372036854776s", String(repeating: "9", count: 400) + "s",
            "200000000y200000000y",
        ])
    func overlongDurations(text: String) {
        #expect(DurationParser.parse(text) == nil)
    }

    @Test("the longest duration that fits in Int64 milliseconds still parses")
    func longestDuration() throws {
        let d = try #require(DurationParser.parse("292000000y"))
        #expect(d == .seconds(9_208_512_000_000_000))
    }

    @Test("an overlong window or join_ttl in the file is a configuration error, not a trap")
    func overlongDurationsInTheFile() {
        let found = problems(
            """
            models:
              - name: m
                task: regression
                versions: [v]
                window: {duration: 10000000000000000y}
                join_ttl: 10000000000000000y
            """)
        #expect(
            found.contains { $0.hasPrefix("5: models[0].window.duration: \"10000000000000000y\" is not a duration") })
        #expect(found.contains { $0.hasPrefix("6: models[0].join_ttl: \"10000000000000000y\" is not a duration") })
    }

    @Test("token_file is read and trimmed; a missing one is an error")
    func tokenFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "s3cret\n".write(to: dir.appendingPathComponent("token"), atomically: true, encoding: .utf8)
        let yaml = "models:\n  - {name: m, task: regression, versions: [v], token_file: token}\n"
        let config = try ConfigLoader.parse(yaml, file: "x.yaml", baseDirectory: dir.path)
        #expect(config.models[0].token == "s3cret")
        let missing = "models:\n  - {name: m, task: regression, versions: [v], token_file: nope}\n"
        #expect(throws: ConfigErrors.self) { try ConfigLoader.parse(missing, file: "x.yaml", baseDirectory: dir.path) }
        // A token file over 64 KiB is refused before it is read (a 300 MB one took 900 MB and 12 s: config review).
        try Data(count: 70_000).write(to: dir.appendingPathComponent("big"))
        let big = "models:\n  - {name: m, task: regression, versions: [v], token_file: big}\n"
        do {
            _ = try ConfigLoader.parse(big, file: "x.yaml", baseDirectory: dir.path)
            Issue.record("a 70,000-byte token file was read")
        } catch {
            #expect(error.errors.contains { $0.message.contains("is larger than 65536 bytes") }, "\(error)")
        }
    }

    /// A configuration file that is a FIFO is refused at once: opening it blocked until a writer came, and a reload
    /// pointed at one hung for ever, with every later reload and the graceful stop (config review).
    @Test func aFIFOInTheConfigurationsPlaceIsRefusedAtOnce() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("models.yaml").path
        #expect(mkfifo(fifo, 0o600) == 0)
        do {
            _ = try ConfigLoader.load(file: fifo)
            Issue.record("a FIFO was read as a configuration")
        } catch {
            #expect(error.errors.first?.message == "cannot read: a FIFO, not a regular file: write it to a file first")
        }
    }

    @Test("collector options are kept as typed values")
    func collectorOptions() throws {
        let config = try load(
            """
            models:
              - name: m
                task: regression
                versions: [v]
                collectors:
                  - name: service
                    options: {threshold: 0.5, enabled: true, label: x, list: [1, two]}
            """)
        #expect(
            config.models[0].collectors[0].options == [
                "threshold": .number(0.5), "enabled": .bool(true), "label": .string("x"),
                "list": .list([.number(1), .string("two")]),
            ])
    }

    @Test("storage: lock_wait is read (default 10 s, 0s allowed) and checked against its range")
    func storageLockWait() throws {
        let models = "models:\n  - {name: m, task: regression, versions: [v]}\n"
        #expect(try load(models + "storage: {path: /s}\n").storage?.lockWait == .seconds(10))
        #expect(try load(models + "storage: {path: /s, lock_wait: 0s}\n").storage?.lockWait == .zero)
        #expect(try load(models + "storage: {path: /s, lock_wait: 2m}\n").storage?.lockWait == .seconds(120))
        #expect(problems(models + "storage: {path: /s, lock_wait: 2h}\n").count == 1)
        #expect(problems(models + "storage: {path: /s, lock_wait: soon}\n").count == 1)
        // A zero interval is out of range, not "not a duration" (storage review).
        #expect(
            problems(models + "storage: {path: /s, checkpoint_interval: 0s}\n").contains {
                $0.contains("storage.checkpoint_interval: must be between 1s and 1d")
            })
        // Every field's error is listed, not the first one only (a docs review: fixing one showed the next).
        let all = problems(models + "storage: {path: \"\", checkpoint_interval: 500ms, lock_wait: 2h}\n")
        #expect(all.count == 3, "\(all)")
        #expect(all.contains { $0.contains("storage.path: must not be empty") })
        #expect(all.contains { $0.contains("storage.checkpoint_interval:") })
        #expect(all.contains { $0.contains("storage.lock_wait:") })
        #expect(problems(models + "storage: {lock_wait: 2h}\n").count == 2)
    }
}
