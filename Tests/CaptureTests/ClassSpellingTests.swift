import Capture
import Ingestion
import Testing

/// A captured class label that Swift's `String` calls equal to a configured class (canonical equivalence) but whose
/// UTF-8 bytes differ is not that class, as the ingestion decoder reads it: before, the capture's `String`-keyed table
/// counted `c` + U+0327 (NFD) as the configured `ç` (NFC), where the ingestion API counts it `__other__` and says so.
@Suite struct ClassSpellingTests {
    static let schema = try! Schema(
        task: .classification, classes: ["\u{E7}", "b"], features: [FeatureSpec("x", .numeric)])

    @Test(arguments: ["\u{E7}", "\\u00e7"])
    func kserveV1(_ nfc: String) throws {
        let decoder = try CaptureDecoder(protocol: .kserveV1, schema: Self.schema)
        let events = try decode(
            decoder, #"{"instances": [[1], [2], [3]]}"#, #"{"predictions": ["\#(nfc)", "c\#u{327}", "c\u0327"]}"#)
        #expect(events.map(\.predictionClass) == [0, nil, nil])
    }

    @Test func openInferenceV2() throws {
        let decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: Self.schema)
        let events = try decode(
            decoder, #"{"inputs": [{"name": "x", "shape": [3, 1], "datatype": "FP64", "data": [1, 2, 3]}]}"#,
            #"{"outputs": [{"name": "p", "shape": [3], "datatype": "BYTES", "data": ["\#u{E7}", "c\#u{327}", "c\u0327"]}]}"#
        )
        #expect(events.map(\.predictionClass) == [0, nil, nil])
    }
}
