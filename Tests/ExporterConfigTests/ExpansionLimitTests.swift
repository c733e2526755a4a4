import Foundation
import Testing

@testable import ExporterConfig

/// Lines `a0: &a0 [x, x, ...]`, `a1: &a1 [*a0, *a0, ...]`, ... up to `a<levels-1>`, each list `width`
/// long, indented by 10: a "billion laughs" of width^levels strings.
private func laughs(levels: Int, width: Int) -> String {
    var lines = ["          a0: &a0 [\(Array(repeating: "lol", count: width).joined(separator: ", "))]"]
    for level in 1..<levels {
        let items = Array(repeating: "*a\(level - 1)", count: width).joined(separator: ", ")
        lines.append("          a\(level): &a\(level) [\(items)]")
    }
    return lines.joined(separator: "\n")
}

@Suite("Configuration limits: file size and YAML alias expansion")
struct ExpansionLimitTests {
    @Test("an alias bomb under collector options is refused at its line, without expanding it")
    func aliasBomb() {
        // 9^7 = 4.8 million strings from 8 lines.
        let started = ContinuousClock.now
        let found = locatedErrors(withOptions(laughs(levels: 7, width: 9)))
        #expect(ContinuousClock.now - started < .seconds(2))
        #expect(
            found == [
                "14:15: models[0].collectors[0].options.a6: more than \(ConfigLimits.maxExpandedValues) values once "
                    + "its YAML aliases are expanded (the most a configuration may have)"
            ])
    }

    /// A key that is an alias of an alias-built list: the YAML library hashes mapping keys expanded to find duplicates,
    /// so three levels of a thousand (13 KB) took minutes, a reload hung and every later one behind it (a probe). Such
    /// keys (aliases, sequences or mappings holding one, explicit `?` keys) are refused before composing, at their
    /// place; a sequence or mapping key without an alias is left to the loader (it says which field it is in).
    @Test("a key that is an alias, a sequence or a mapping is refused at once, at its place")
    func complexKeys() {
        let bomb = laughs(levels: 3, width: 1000).replacingOccurrences(of: "          ", with: "")
        for (key, column) in [
            ("kk: {*a2 : 1}", 6), ("kk: {*a2: 1}", 6), ("kk: {*a2:1}", 6), ("*a2: 1", 1), ("[*a2]: 1", 5),
            ("kk: [[*a2]: 1]", 10), ("? *a2\n: 1", 1), ("kk: {{x: *a2}: 1}", 13),
        ] {
            let started = ContinuousClock.now
            let found = locatedErrors("models: []\n" + bomb + "\n" + key + "\n")
            #expect(ContinuousClock.now - started < .seconds(1), "\(key)")
            #expect(found.count == 1, "\(key)")
            #expect(found.first?.hasPrefix("5:\(column): : ") == true, "\(key): \(found)")
            #expect(found.first?.contains("as a mapping key") == true, "\(key)")
        }
        // Not keys: an IPv6 address in a plain value, quoted or commented or block text, an alias as a value.
        for text in [
            "upstream: http://[::1]:8080/x", "listen: [::1]:9748", #"a: "*b: c""#, "a: '[x]: y'", "a: 1  # *b: c",
            "a: |\n  *b: c\n  [x]: y\nc: d", "- a: >-\n    {x}: y\n  b: c", "a: &x 1\nb: *x", "a: [*x, *x]",
            "a: b *c:d", "[a, b]: 1", "{x: 1}: 2", "- |\n  see *note: here\n- b", "x:\n  - >\n    *y: z",
        ] {
            #expect(ComplexKeyScan.firstComplexKey(in: text) == nil, "\(text)")
        }
        // Linear in the text: a million nested flow collections with aliases inside (a flag per level was quadratic).
        let started = ContinuousClock.now
        let deep = String(repeating: "[", count: 1_000_000) + String(repeating: "*a, ", count: 200_000)
        #expect(ComplexKeyScan.firstComplexKey(in: deep) == nil)
        #expect(ContinuousClock.now - started < .seconds(5))
        // A key after a block scalar's text is scanned again: the sibling of a sequence entry's block scalar.
        #expect(ComplexKeyScan.firstComplexKey(in: "- a: |\n    text\n  *b: c")?.line == 3)
    }

    @Test("aliases nested deeper than the limit are refused")
    func aliasDepth() {
        let depth = ConfigLimits.maxAliasDepth + 1
        let found = locatedErrors(withOptions(laughs(levels: depth + 1, width: 1)))
        #expect(
            found == [
                "\(8 + depth):15: models[0].collectors[0].options.a\(depth): YAML aliases are nested more than "
                    + "\(ConfigLimits.maxAliasDepth) deep"
            ])
        #expect(locatedErrors(withOptions(laughs(levels: depth, width: 1))) == [])
    }

    @Test("a long string repeated through aliases is refused by its bytes")
    func aliasedBytes() {
        let long = String(repeating: "x", count: 100_000)
        let found = locatedErrors(
            withOptions(
                "          s: &s \(long)\n          t: [\(Array(repeating: "*s", count: 200).joined(separator: ", "))]")
        )
        #expect(
            found == [
                "9:14: models[0].collectors[0].options.t: more than \(ConfigLimits.maxExpandedBytes) bytes of text "
                    + "once its YAML aliases are expanded (the most a configuration may have)"
            ])
    }

    @Test("the whole document is bounded: an aliased list in every model counts each time")
    func aliasesOutsideOptions() {
        let versions = (0..<100).map { "v\($0)" }.joined(separator: ", ")
        var yaml = "models:\n  - {name: m0, task: regression, versions: &v [\(versions)]}\n"
        for i in 1..<10_000 { yaml += "  - {name: m\(i), task: regression, versions: *v}\n" }
        let found = locatedErrors(yaml)
        #expect(found.count == 1)
        #expect(found.first?.contains(": models[") == true, "\(found)")
        #expect(
            found.first?.hasSuffix("values once its YAML aliases are expanded (the most a configuration may have)")
                == true)
    }

    @Test("a file larger than the limit is refused before it is parsed")
    func fileSize() throws {
        let padding = String(repeating: "# padding\n", count: ConfigLimits.maxFileBytes / 10)
        let yaml = "models:\n  - {name: m, task: regression, versions: [v]}\n" + padding
        let message = "larger than \(ConfigLimits.maxFileBytes) bytes, the most a configuration file may have"
        #expect(locatedErrors(yaml) == ["0:0: : \(message)"])
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("big-\(UUID().uuidString).yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let thrown = #expect(throws: ConfigErrors.self) { try ConfigLoader.load(file: file.path) }
        #expect(thrown?.description == "\(file.path): \(message)")
        #expect(throws: ConfigErrors.self) { try WebConfigLoader.load(file: file.path) }
        // Just under the limit, the same document loads.
        let fits = String(yaml.utf8.prefix(ConfigLimits.maxFileBytes))!
        #expect(locatedErrors(fits) == [])
    }
}
