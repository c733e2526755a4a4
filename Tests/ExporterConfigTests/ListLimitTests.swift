import Foundation
import Testing

@testable import ExporterConfig

/// A YAML flow list of `count` items made by `item` from their index.
private func list(_ count: Int, _ item: (Int) -> String) -> String {
    "[" + (0..<count).map(item).joined(separator: ", ") + "]"
}

/// A document with every kind of list, each `length(kind)` long: models, and in the first model versions,
/// classes, features, categorical values, sensitive attributes, groups, collectors, latency buckets and SLOs.
private func document(_ length: (String) -> Int) -> String {
    let features = list(length("features")) {
        $0 == 0
            ? "{name: f, type: categorical, values: \(list(length("values")) { "x\($0)" })}"
            : "{name: f\($0), type: numeric}"
    }
    let attributes = list(length("sensitive_attributes")) {
        $0 == 0 ? "{name: a, groups: \(list(length("groups")) { "g\($0)" })}" : "{name: a\($0), groups: [p, q]}"
    }
    return """
        models:
          - name: big
            task: multiclass_classification
            versions: \(list(length("versions")) { "v\($0)" })
            classes: \(list(length("classes")) { "c\($0)" })
            features: \(features)
            sensitive_attributes: \(attributes)
            collectors: \(list(length("collectors")) { $0 == 0 ? "service" : "drift" })
            latency_buckets: \(list(length("latency_buckets")) { "\($0 + 1)" })
            slos: \(list(length("slos")) { "{name: s\($0), type: availability, objective: 99}" })

        """ + (1..<length("models")).map { "  - {name: m\($0), task: regression, versions: [v]}\n" }.joined()
}

@Suite("Configuration limits: list sizes and duplicates", .serialized)
struct ListLimitTests {
    /// The kinds of list and the field path of each in ``document(_:)``.
    static let kinds = [
        ("versions", "models[0].versions"), ("classes", "models[0].classes"), ("features", "models[0].features"),
        ("values", "models[0].features[0].values"), ("sensitive_attributes", "models[0].sensitive_attributes"),
        ("groups", "models[0].sensitive_attributes[0].groups"), ("collectors", "models[0].collectors"),
        ("latency_buckets", "models[0].latency_buckets"), ("slos", "models[0].slos"), ("models", "models"),
    ]

    @Test("a list at the maximum loads, its duplicate check in linear time", arguments: kinds.map(\.0))
    func atMaximum(kind: String) throws {
        let maximum = ConfigLimits.maxListItems
        // Three of every other list; one collector, as a second would be a duplicate.
        let yaml = document { $0 == kind ? maximum : $0 == "collectors" ? 1 : 3 }
        let started = ContinuousClock.now
        let found = locatedErrors(yaml)
        let elapsed = ContinuousClock.now - started
        #expect(elapsed < .seconds(2), "a sanity bound, far above the time it takes: \(elapsed)")
        // Collectors at the maximum are the same few names: only the duplicates are errors, one per item.
        #expect(found.count == (kind == "collectors" ? maximum - 2 : 0), "\(found.prefix(3))")
    }

    @Test(
        "a list over the maximum is refused at its place, without an error per item",
        arguments: kinds)
    func overMaximum(kind: String, field: String) {
        let over = ConfigLimits.maxListItems + 1
        let yaml = document { $0 == kind ? over : $0 == "collectors" ? 1 : 3 }
        // Where the list begins: its `[`, or the first `-` of the models.
        let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
        let key = kind == "models" ? "  -" : "\(kind): ["
        let line = lines.firstIndex { $0.contains(key) }! + 1
        let column = lines[line - 1].distance(
            from: lines[line - 1].startIndex, to: lines[line - 1].range(of: key)!.upperBound)
        let message = "\(over) items, more than \(ConfigLimits.maxListItems) (the most a list may have)"
        #expect(locatedErrors(yaml) == ["\(line):\(column): \(field): \(message)"])
    }

    /// A label value listed in the file is at most 256 bytes: a 5 KiB version with the quality collector's
    /// `score_bins: 100000` took 1.7 GB to check (one label set per bin), a 1.9 MiB one 3.9 GB with the defaults.
    @Test("a listed label value longer than 256 bytes is refused, located")
    func longLabelValues() {
        let long = String(repeating: "v", count: 257)
        let most = String(repeating: "w", count: 256)
        // A categorical value as long as `profile` learns (1,024 bytes) is listed; one more is not.
        let category = String(repeating: "c", count: 1025)
        let yaml = """
            models:
              - name: m
                task: binary_classification
                versions: [\(most), \(long)]
                classes: [a, "\(String(repeating: "é", count: 129))"]
                positive_class: a
                features: [{name: f, type: categorical, values: [x, \(long), \(category)]}]
                sensitive_attributes: [{name: s, groups: [p, \(long)]}]
            """
        // Where each refused item (or its list) begins: its line, and the column of its first character.
        let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
        func at(_ line: Int, _ text: String) -> String {
            let range = lines[line - 1].range(of: text)!
            return "\(line):\(lines[line - 1].distance(from: lines[line - 1].startIndex, to: range.lowerBound) + 1)"
        }
        let message = "bytes long: at most 256 (it is a label value of its series)"
        #expect(
            locatedErrors(yaml) == [
                "\(at(4, long)): models[0].versions[1]: 257 \(message)",
                // The list without it is then one short.
                "\(at(5, "[")): models[0].classes: binary classification needs exactly 2 classes",
                "\(at(5, "\"")): models[0].classes[1]: 258 \(message)",
                "\(at(7, category)): models[0].features[0].values[2]: 1025 bytes long: at most 1024 (it is a label value of its series)",
                "\(at(8, "[p")): models[0].sensitive_attributes[0].groups: list at least two groups",
                "\(at(8, long)): models[0].sensitive_attributes[0].groups[1]: 257 \(message)",
            ])
    }

    @Test("duplicates are still found in every list of names")
    func duplicates() {
        let found = locatedErrors(
            """
            models:
              - name: m
                task: multiclass_classification
                versions: [v1, v1]
                classes: [a, b, c, a]
                features: [{name: f, type: numeric}, {name: f, type: numeric}]
                sensitive_attributes: [{name: s, groups: [p, q, p]}, {name: s, groups: [p, q]}]
                collectors: [service, service]
                slos: [{type: availability, objective: 99}, {type: availability, objective: 98}]
            """)
        #expect(
            found == [
                #"4:20: models[0].versions[1]: "v1" is listed twice"#,
                #"5:24: models[0].classes[3]: "a" is listed twice"#,
                #"6:42: models[0].features[1].name: feature "f" is listed twice"#,
                #"7:53: models[0].sensitive_attributes[0].groups[2]: "p" is listed twice"#,
                #"7:58: models[0].sensitive_attributes[1].name: attribute "s" is listed twice"#,
                #"8:27: models[0].collectors[1]: collector "service" is listed twice"#,
                #"9:49: models[0].slos[1].name: SLO "availability" is defined twice for this model (name it)"#,
            ])
    }
}
