import Testing

@testable import ExporterConfig

@Suite("Collector options")
struct CollectorOptionsTests {
    @Test("aliases in collector options are resolved, and every option keeps its location")
    func aliasesResolve() throws {
        let config = try ConfigLoader.parse(
            withOptions(
                """
                          defaults: &d {a: 1, b: [x, {c: true}]}
                          copy: *d
                          nested:
                            deep: {e: 2}
                """), file: "test.yaml")
        let collector = config.models[0].collectors[0]
        let defaults = ConfigValue.map(["a": .number(1), "b": .list([.string("x"), .map(["c": .bool(true)])])])
        #expect(
            collector.options == [
                "defaults": defaults, "copy": defaults, "nested": .map(["deep": .map(["e": .number(2)])]),
            ])
        #expect(collector.location == ConfigLocation(line: 6, column: 9))
        #expect(collector.location(ofOption: "defaults") == ConfigLocation(line: 8, column: 11))
        #expect(collector.location(ofOption: "defaults.a") == ConfigLocation(line: 8, column: 25))
        #expect(collector.location(ofOption: "copy") == ConfigLocation(line: 9, column: 11))
        #expect(collector.location(ofOption: "nested.deep.e") == ConfigLocation(line: 11, column: 20))
        #expect(collector.location(ofOption: "nested.deep.nope") == ConfigLocation(line: 11, column: 13))
        #expect(collector.location(ofOption: "nope") == collector.location)
        #expect(collector.location(ofOption: nil) == collector.location)
        // Locations take no part in equality: a model that only moved in the file is unchanged.
        #expect(collector == CollectorConfiguration(name: "service", options: collector.options))
    }

    @Test("an option name must be a string")
    func optionNames() {
        #expect(
            locatedErrors(withOptions("          [a, b]: 1\n          ok: 2"))
                == ["8:11: models[0].collectors[0].options: option names must be strings"])
    }
}
