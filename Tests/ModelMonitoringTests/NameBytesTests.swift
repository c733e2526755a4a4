import ExporterConfig
import ModelMonitoring
import Testing

/// A version or model name that Swift's `String` calls equal to a configured one (canonical equivalence) but whose
/// UTF-8 bytes differ is not that one: the ingestion decoder matches classes and groups by bytes, and a label value
/// is its bytes. Before, `ve` + U+0301 (NFD) was counted under the configured `vé` (NFC), silently, while the same
/// spelling of a class went to `__other__` and was reported.
@Suite struct NameBytesTests {
    static let nfc = "v\u{E9}"
    static let nfd = "ve\u{301}"

    static func model(name: String = "m") -> ModelConfiguration {
        ModelConfiguration(
            name: name, task: .regression, versions: [nfc], collectors: [CollectorConfiguration(name: "service")])
    }

    @Test func aVersionInAnotherSpellingIsNotTheConfiguredOne() throws {
        let h = try Harness([Self.model()])
        let m = h.model("m")
        #expect(m.context.versionIndex(Self.nfc) == 0)
        #expect(m.context.versionIndex(Self.nfd) == 1)
        _ = m.record(version: Self.nfc, prediction: .number(1))
        _ = m.record(version: Self.nfd, prediction: .number(1))
        #expect(h.value(#"mlops_model_requests_total{model="m",status="ok",version="\#(Self.nfc)"}"#) == 1)
        #expect(h.value(#"mlops_model_requests_total{model="m",status="ok",version="__other__"}"#) == 1)
    }

    @Test func aModelNameInAnotherSpellingIsNotTheConfiguredModel() throws {
        let h = try Harness([Self.model(name: "caf\u{E9}")])
        #expect(h.monitor.model(named: "caf\u{E9}") != nil)
        #expect(h.monitor.model(named: "cafe\u{301}") == nil)
    }
}
