import Ingestion
import Testing

@testable import Capture

@Suite("Large batches")
struct LargeBatchTests {
    @Test("v2: 5,000 rows of 20 features in one [N, 20] input, every value where it belongs")
    func largeV2() throws {
        let features = (0..<20).map { FeatureSpec("f\($0)", .numeric) }
        let schema = try Schema(task: .classification, classes: ["0", "1"], features: features)
        let decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: schema)
        let n = 5_000
        let data = (0..<n * 20).map { String($0) }.joined(separator: ",")
        let request = #"{"inputs": [{"name": "x", "shape": [\#(n), 20], "datatype": "FP64", "data": [\#(data)]}]}"#
        let predictions = (0..<n).map { String($0 % 2) }.joined(separator: ",")
        let response =
            #"{"outputs": [{"name": "predict", "shape": [\#(n)], "datatype": "INT64", "data": [\#(predictions)]}]}"#
        let events = try decode(decoder, request, response)
        #expect(events.count == n)
        for (row, event) in events.enumerated() where row % 499 == 0 || row == n - 1 {
            #expect(numbers(event) == (0..<20).map { Double(row * 20 + $0) })
            #expect(event.prediction == .label(row % 2 == 0 ? "0" : "1"))
            #expect(event.predictionClass == row % 2)
        }
    }

    @Test("v1: 10,000 object rows, the default limit, decoded; one more is too many")
    func largeV1() throws {
        let decoder = try CaptureDecoder(protocol: .kserveV1, schema: binarySchema())
        func exchange(_ n: Int) -> (String, String) {
            let rows = (0..<n).map { #"{"age": \#($0), "region": "r\#($0 % 7)"}"# }.joined(separator: ",")
            let predictions = (0..<n).map { $0 % 3 == 0 ? "1" : "0" }.joined(separator: ",")
            return (#"{"instances": [\#(rows)]}"#, #"{"predictions": [\#(predictions)]}"#)
        }
        let (request, response) = exchange(10_000)
        let events = try decode(decoder, request, response)
        #expect(events.count == 10_000)
        #expect(events[9_999].features == [.number(9_999), .missing, .category("r3")])
        #expect(events[9_999].prediction == .label("1"))
        let (more, moreResponse) = exchange(10_001)
        #expect(failure(decoder, more, moreResponse) == .tooManyRows)
    }

    @Test("a big exchange's rows are not kept by the decoder after it; a small one's are, for the next")
    func bigExchangesAreNotKept() throws {
        let features = (0..<20).map { FeatureSpec("f\($0)", .numeric) }
        let schema = try Schema(task: .classification, classes: ["0", "1"], features: features)
        let decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: schema)
        func exchange(_ n: Int) -> (String, String) {
            let data = (0..<n * 20).map { String($0) }.joined(separator: ",")
            let predictions = (0..<n).map { String($0 % 2) }.joined(separator: ",")
            return (
                #"{"inputs": [{"name": "x", "shape": [\#(n), 20], "datatype": "FP64", "data": [\#(data)]}]}"#,
                #"{"outputs": [{"name": "p", "shape": [\#(n)], "datatype": "INT64", "data": [\#(predictions)]}]}"#
            )
        }
        func keptValues() -> Int {
            guard let box = decoder.scratch.take() else {
                Issue.record("the workspace is taken")
                return -1
            }
            defer { decoder.scratch.give(box) }
            let rows = box._withUnsafeGuaranteedRef { $0.workspace.pointee.rows }
            return rows.features.count + rows.info.count + rows.attributes.count
        }
        let (small, smallResponse) = exchange(1)
        #expect(try decode(decoder, small, smallResponse).count == 1)
        #expect(keptValues() == 21)  // 20 features and the row's info, written in place next time
        let (big, bigResponse) = exchange(500)
        #expect(try decode(decoder, big, bigResponse).count == 500)
        #expect(keptValues() == 0)  // 10,500 values > Workspace.keptValues: freed
        #expect(try decode(decoder, small, smallResponse).count == 1)
        #expect(keptValues() == 21)
    }
}
