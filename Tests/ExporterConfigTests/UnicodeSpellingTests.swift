import Testing

@testable import ExporterConfig

/// Names and values that Swift's `String` calls equal (canonical equivalence) but whose UTF-8 bytes differ: `vé` with
/// a precomposed `é` (NFC) and with `e` + U+0301 (NFD). Events are matched byte for byte, so a configuration that
/// lists both, or names one of them where the list holds the other, is refused with a message that says so (before:
/// "listed twice" for two strings that print the same and, for `positive_class`, nothing, while the event's class
/// never matched).
@Suite struct UnicodeSpellingTests {
    static let nfc = "v\u{E9}"
    static let nfd = "ve\u{301}"

    @Test func twoSpellingsOfAVersionAreNamedAsSuch() {
        let problems = fileProblems(
            """
            models:
              - {name: m, task: regression, versions: ["\(Self.nfc)", "\(Self.nfd)"]}
            """)
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.first?.hasPrefix("models[0].versions[1]: ") == true, "\(problems)")
        #expect(problems.first?.contains("two Unicode normalizations") == true, "\(problems)")
    }

    @Test func theSameSpellingTwiceIsListedTwice() {
        let problems = fileProblems(
            """
            models:
              - {name: m, task: regression, versions: ["\(Self.nfc)", "\(Self.nfc)"]}
            """)
        #expect(problems == [#"models[0].versions[1]: "\#(Self.nfc)" is listed twice"#])
    }

    @Test func aPositiveClassInAnotherSpellingIsRefused() {
        let problems = fileProblems(
            """
            models:
              - {name: m, task: binary_classification, versions: [v], classes: ["\(Self.nfc)", "no"],
                 positive_class: "\(Self.nfd)"}
            """)
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.first?.hasPrefix("models[0].positive_class: ") == true, "\(problems)")
        #expect(problems.first?.contains("another Unicode normalization") == true, "\(problems)")
    }

    @Test func aPrivilegedGroupInAnotherSpellingIsRefused() {
        let problems = fileProblems(
            """
            models:
              - name: m
                task: binary_classification
                versions: [v]
                classes: ["yes", "no"]
                positive_class: "yes"
                sensitive_attributes: [{name: g, groups: ["\(Self.nfc)", "b"], privileged: "\(Self.nfd)"}]
            """)
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.first?.contains("another Unicode normalization") == true, "\(problems)")
    }
}
