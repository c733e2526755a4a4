import ExporterConfig
import Foundation
import ModelMonitoring
import Testing

/// Categories that Swift's `String` calls equal (canonical equivalence) but whose bytes differ: `café` with a
/// precomposed `é` (NFC) and with `e` + U+0301 (NFD). pandas and live traffic (the drift collector's byte-level
/// `NameIndex`) keep them apart; the profile merged them into one dictionary key, so the profile's own rows drifted
/// live (PSI 2.6 in the review) and which spelling it named depended on the order of the rows.
@Suite struct CategoryBytesTests {
    static let nfc = "caf\u{E9}"
    static let nfd = "cafe\u{301}"

    static func model(values: [String]? = nil) -> ModelConfiguration {
        ModelConfiguration(
            name: "m", task: .regression, versions: ["v1"],
            features: [FeatureConfiguration(name: "c", kind: .categorical, values: values)], reference: "ref.json",
            collectors: [
                CollectorConfiguration(
                    name: "drift", options: ["method": .string("psi"), "min_observations": .number(1)])
            ])
    }

    /// 300 NFC, 300 NFD and 400 `tea`, in a seeded order.
    static let rows: [String] = {
        var rows =
            Array(repeating: nfc, count: 300) + Array(repeating: nfd, count: 300) + Array(repeating: "tea", count: 400)
        var state: UInt64 = 7
        for i in stride(from: rows.count - 1, to: 0, by: -1) {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            rows.swapAt(i, Int((state >> 33) % UInt64(i + 1)))
        }
        return rows
    }()

    static func profile(_ rows: [String], values: [String]? = nil) -> CategoricalProfile {
        var b = ProfileBuilder(model: model(values: values))
        for r in rows { b.add([.category(r), .absent, .absent]) }
        return b.build(model: "m", inputSHA256: "00").features[0].categorical!
    }

    /// The values' bytes: `CategoricalProfile`'s `==` compares `String`s, which would call the spellings equal.
    static func bytes(_ p: CategoricalProfile) -> [[UInt8]] { p.values.map { Array($0.utf8) } }

    @Test func spellingsAreCountedApartAsPandasDoes() {
        let p = Self.profile(Self.rows)
        // pandas' value_counts: tea 400, then the two spellings (300 each; ties in UTF-8 byte order: "e" < "é").
        #expect(Self.bytes(p) == [Array("tea".utf8), Array(Self.nfd.utf8), Array(Self.nfc.utf8)])
        #expect(p.counts == [400, 300, 300, 0])
    }

    @Test func theProfileDoesNotDependOnTheOrderOfTheRows() {
        // Sorted by bytes, not by `String` (which cannot tell the spellings apart): NFC, then tea; NFD, then tea.
        func first(_ spelling: String) -> [String] {
            let (a, b) = Self.rows.reduce(into: ([String](), [String]())) { parts, r in
                if r.utf8.elementsEqual(spelling.utf8) { parts.0.append(r) } else { parts.1.append(r) }
            }
            return a + b
        }
        let nfcFirst = Self.profile(first(Self.nfc))
        let nfdFirst = Self.profile(first(Self.nfd))
        #expect(Self.bytes(nfcFirst) == Self.bytes(nfdFirst) && nfcFirst.counts == nfdFirst.counts)
        #expect(Self.bytes(nfcFirst) == Self.bytes(Self.profile(Self.rows)))
    }

    /// A configured value matches its own bytes only, as live traffic is matched: the other spelling is `__other__`.
    @Test func configuredValuesMatchByBytes() {
        let p = Self.profile(Self.rows, values: [Self.nfc, "tea"])
        #expect(Self.bytes(p) == [Array(Self.nfc.utf8), Array("tea".utf8)])
        #expect(p.counts == [300, 400, 300])
    }

    /// The profile's own rows sent back live land in the same bins: no drift.
    @Test func theProfilesRowsSentBackDoNotDrift() throws {
        var b = ProfileBuilder(model: Self.model())
        for r in Self.rows { b.add([.category(r), .absent, .absent]) }
        let h = try Harness(
            monitor: ModelMonitor(), [Self.model()],
            references: ["ref.json": LoadedReference(profile: b.build(model: "m", inputSHA256: "00"), sha256: "00")])
        let m = h.model("m")
        for r in Self.rows {
            #expect(m.record(version: "v1", prediction: .number(0), features: ["c": .category(r)]) == nil)
        }
        #expect(h.value(#"mlops_feature_drift_score{feature="c",method="psi",model="m"}"#) == 0)
        #expect(h.value(#"mlops_feature_drift_detected{feature="c",method="psi",model="m"}"#) == 0)
        #expect(h.value(#"mlops_feature_bin_observations_total{bin="__other__",feature="c",model="m"}"#) == 0)
    }
}
