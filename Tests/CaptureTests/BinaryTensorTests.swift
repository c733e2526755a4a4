import Capture
import Ingestion
import Testing

/// The v2 binary tensor extension (tritonclient's default for inputs; outputs when asked and the server honours it):
/// a JSON header, then each binary tensor's raw bytes. Each body is decoded as its JSON form is.
@Suite("Open Inference Protocol v2: binary tensor extension")
struct BinaryTensorTests {
    /// `header` followed by `parts`' bytes.
    func body(_ header: String, _ parts: [UInt8]...) -> [UInt8] { Array(header.utf8) + parts.flatMap { $0 } }

    func le<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    }

    func strings(_ values: [String]) -> [UInt8] {
        values.flatMap { le([UInt32($0.utf8.count)]) + Array($0.utf8) }
    }

    func binary(_ name: String, _ shape: [Int], _ type: String, _ size: Int) -> String {
        #"{"name": "\#(name)", "shape": \#(shape), "datatype": "\#(type)", "parameters": {"binary_data_size": \#(size)}}"#
    }

    func json(_ name: String, _ shape: [Int], _ type: String, _ data: String) -> String {
        #"{"name": "\#(name)", "shape": \#(shape), "datatype": "\#(type)", "data": [\#(data)]}"#
    }

    /// The events' features, predictions, probabilities, scores and versions, compared field by field.
    func expectSame(_ a: [PredictionEvent], _ b: [PredictionEvent], _ comment: Comment) {
        #expect(a.count == b.count, comment)
        for (x, y) in zip(a, b) {
            #expect(x.features == y.features, comment)
            #expect(x.prediction == y.prediction, comment)
            #expect(x.probabilities == y.probabilities, comment)
            #expect(x.score == y.score, comment)
            #expect(x.version == y.version, comment)
        }
    }

    @Test("inputs per feature (INT64, FP32, BYTES) and binary outputs read as their JSON form")
    func perFeatureInputsAndOutputs() throws {
        let decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: binarySchema())
        let incomes: [Float] = [0.1, 52_000.5]
        let request = body(
            #"{"id": "r1", "inputs": [\#(binary("age", [2], "INT64", 16)), \#(binary("income", [2, 1], "FP32", 8)), "#
                + #"\#(binary("region", [2], "BYTES", 4 + 5 + 4 + 6))], "outputs": [{"name": "predict", "#
                + #""parameters": {"binary_data": true}}]}"#,
            le([Int64(41), -3]), le(incomes.map(\.bitPattern)), strings(["north", "s\"uth\u{1}"]))
        let response = body(
            #"{"model_name": "m", "model_version": "7", "outputs": [\#(binary("predict", [2], "INT64", 16)), "#
                + #"\#(binary("predict_proba", [2, 2], "FP64", 32))]}"#,
            le([Int64(1), 0]), le([0.25, 0.75, 0.875, 0.125].map(\.bitPattern)))
        let jsonRequest =
            #"{"inputs": [\#(json("age", [2], "INT64", "41, -3")), "#
            + #"\#(json("income", [2, 1], "FP32", "\(Double(incomes[0])), \(Double(incomes[1]))")), "#
            + #"\#(json("region", [2], "BYTES", #""north", "s\"uth\u0001""#))]}"#
        let jsonResponse =
            #"{"model_version": "7", "outputs": [\#(json("predict", [2], "INT64", "1, 0")), "#
            + #"\#(json("predict_proba", [2, 2], "FP64", "0.25, 0.75, 0.875, 0.125"))]}"#
        let events = try decode(decoder, bytes: request, response)
        expectSame(events, try decode(decoder, jsonRequest, jsonResponse), "per-feature inputs")
        #expect(events.map(\.prediction) == [.label("1"), .label("0")])
        #expect(numbers(events[0]) == [41, Double(Float(0.1)), nil])
        #expect(events[1].features[2] == .category("s\"uth\u{1}"))
        #expect(events.map(\.probabilities) == [[0.25, 0.75], [0.875, 0.125]])
    }

    @Test("one [N, F] input in feature order, of each numeric datatype; NaN is a missing value")
    func singleInputOfEachDatatype() throws {
        let decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: regressionSchema())
        let response = #"{"outputs": [\#(json("y", [2], "FP64", "1.5, 2.5"))]}"#
        let cases: [(type: String, bytes: [UInt8], json: String)] = [
            ("FP64", le([0.1, -2, 3e300, Double.nan].map(\.bitPattern)), "0.1, -2, 3e300, null"),
            ("FP32", le([Float(0.3), 4, -5.5, 6].map(\.bitPattern)), "\(Double(Float(0.3))), 4, -5.5, 6"),
            ("FP16", le([Float16(0.5), 1.25, -2, 65504].map(\.bitPattern)), "0.5, 1.25, -2, 65504"),
            // BF16: a float's upper half (1.0 = 0x3F80, -2.5 = 0xC020, 3.140625 = 0x4049, 0).
            ("BF16", le([UInt16(0x3F80), 0xC020, 0x4049, 0]), "1, -2.5, 3.140625, 0"),
            ("INT8", le([Int8(-128), 127, 0, -1]), "-128, 127, 0, -1"),
            ("INT16", le([Int16(-30000), 2, 3, 4]), "-30000, 2, 3, 4"),
            ("INT32", le([Int32.min, 2, 3, 4]), "\(Int32.min), 2, 3, 4"),
            ("INT64", le([Int64(1) << 40, 2, 3, 4]), "\(Int64(1) << 40), 2, 3, 4"),
            ("UINT8", le([UInt8(255), 2, 3, 4]), "255, 2, 3, 4"),
            ("UINT16", le([UInt16(65535), 2, 3, 4]), "65535, 2, 3, 4"),
            ("UINT32", le([UInt32.max, 2, 3, 4]), "\(UInt32.max), 2, 3, 4"),
            ("UINT64", le([UInt64(1) << 60, 2, 3, 4]), "\(UInt64(1) << 60), 2, 3, 4"),
        ]
        for c in cases {
            let request = body(#"{"inputs": [\#(binary("x", [2, 2], c.type, c.bytes.count))]}"#, c.bytes)
            let events = try decode(decoder, bytes: request, Array(response.utf8))
            let expected = try decode(decoder, #"{"inputs": [\#(json("x", [2, 2], c.type, c.json))]}"#, response)
            expectSame(events, expected, "\(c.type)")
            #expect(events.count == 2, "\(c.type)")
        }
        // NaN (FP64's last value) is missing, as null is.
        let request = body(#"{"inputs": [\#(binary("x", [1, 2], "FP64", 16))]}"#, le([1.0, .nan].map(\.bitPattern)))
        let events = try decode(decoder, bytes: request, Array(#"{"outputs": [\#(json("y", [1], "FP64", "1"))]}"#.utf8))
        #expect(events[0].features == [.number(1), .missing])
    }

    @Test("docs/proxy.md's example: one row of two FP32 features and a binary INT64 answer")
    func docsExample() throws {
        let schema = try Schema(
            task: .classification, classes: ["0", "1"],
            features: [FeatureSpec("a", .numeric), FeatureSpec("b", .numeric)])
        let decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: schema)
        let hex = { (text: String) in
            stride(from: 0, to: text.count, by: 2).map {
                UInt8(text.dropFirst($0).prefix(2), radix: 16)!
            }
        }
        let request = body(
            #"{"inputs":[{"name":"input-0","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}"#,
            hex("cdcc0c3f0000c0bf"))
        let response = body(
            #"{"model_name":"m","outputs":[{"name":"predict","shape":[1],"datatype":"INT64","#
                + #""parameters":{"binary_data_size":8}}]}"#, hex("0100000000000000"))
        let events = try decode(decoder, bytes: request, response)
        #expect(events.count == 1)
        #expect(numbers(events[0]) == [Double(Float(0.55)), -1.5])
        #expect(events[0].prediction == .label("1"))
    }

    @Test("binary data that is all whitespace bytes, and whitespace between the JSON and the data")
    func whitespaceBytes() throws {
        let decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: regressionSchema())
        let response = Array(#"{"outputs": [\#(json("y", [1], "FP64", "1"))]}"#.utf8)
        // 0x20202020 and 0x0A0A0A0A are floats whose bytes are all JSON whitespace.
        let header = #"{"inputs": [\#(binary("x", [1, 2], "FP32", 8))]}"#
        let data = le([UInt32(0x2020_2020), 0x0A0A_0A0A])
        for request in [body(header, data), body(header + " \n", data)] {
            let events = try decode(decoder, bytes: request, response)
            #expect(
                numbers(events[0]) == [Double(Float(bitPattern: 0x2020_2020)), Double(Float(bitPattern: 0x0A0A_0A0A))])
        }
    }

    @Test("sizes that do not add up or fit their tensor, data given twice, no data: shape_mismatch")
    func mismatches() throws {
        let decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: regressionSchema())
        let response = Array(#"{"outputs": [\#(json("y", [1], "FP64", "1"))]}"#.utf8)
        let two = le([1.0, 2.0].map(\.bitPattern))
        let requests: [[UInt8]] = [
            // 16 bytes declared, 8 sent (the header then looks 8 bytes longer than it is).
            body(#"{"inputs": [\#(binary("x", [1, 2], "FP64", 16))]}"#, Array(two[..<8])),
            // 16 bytes declared and sent, for a [1, 3] tensor of 24.
            body(#"{"inputs": [\#(binary("x", [1, 3], "FP64", 16))]}"#, two),
            // Both data and binary_data_size.
            body(
                #"{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2], "#
                    + #""parameters": {"binary_data_size": 16}}]}"#, two),
            // binary_data_size and no bytes at all.
            body(#"{"inputs": [\#(binary("x", [1, 2], "FP64", 16))]}"#),
            // Not an integer.
            body(
                #"{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "#
                    + #""parameters": {"binary_data_size": 16.5}}]}"#, two),
            // A BYTES element longer than the tensor's bytes, and bytes left after the elements.
            body(#"{"inputs": [\#(binary("x", [1, 2], "BYTES", 8))]}"#, le([UInt32(9), 0])),
            body(#"{"inputs": [\#(binary("x", [1, 2], "BYTES", 12))]}"#, le([UInt32(0), 0, 0])),
        ]
        for (i, request) in requests.enumerated() {
            #expect(throws: CaptureError.self, "case \(i)") { try decode(decoder, bytes: request, response) }
            do {
                _ = try decode(decoder, bytes: request, response)
            } catch {
                #expect(error.reason == .shapeMismatch, "case \(i): \(error)")
            }
        }
    }

    @Test("more binary values than the decoder takes: too_many_rows, before they are written as JSON")
    func tooManyValues() throws {
        var decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: regressionSchema())
        decoder.maxRows = 1
        let count = decoder.maxValues + 1
        let request = body(
            #"{"inputs": [\#(binary("x", [count / 2 + 1, 2], "UINT8", (count / 2 + 1) * 2))]}"#,
            [UInt8](repeating: 1, count: (count / 2 + 1) * 2))
        do {
            _ = try decode(decoder, bytes: request, Array(#"{"outputs": []}"#.utf8))
            Issue.record("decoded")
        } catch {
            #expect(error.reason == .tooManyRows, "\(error)")
        }
    }

    @Test("BYTES: UTF-8 kept, invalid bytes U+FFFD, quotes and control bytes escaped")
    func bytesText() throws {
        let schema = try Schema(task: .regression, features: [FeatureSpec("c", .categorical)])
        let decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: schema)
        let response = Array(#"{"outputs": [\#(json("y", [6], "FP64", "1, 1, 1, 1, 1, 1"))]}"#.utf8)
        let values: [[UInt8]] = [
            Array("é€😀".utf8), [0x61, 0xFF, 0x62], [0xE2, 0x82], [0xED, 0xA0, 0x80], Array("q\"b\\\n".utf8),
            [0xC0, 0xAF],
        ]
        let data = values.flatMap { le([UInt32($0.count)]) + $0 }
        let request = body(#"{"inputs": [\#(binary("c", [6], "BYTES", data.count))]}"#, data)
        let events = try decode(decoder, bytes: request, response)
        #expect(
            events.map(\.features) == [
                [.category("é€😀")], [.category("a\u{FFFD}b")], [.category("\u{FFFD}\u{FFFD}")],
                [.category("\u{FFFD}\u{FFFD}\u{FFFD}")], [.category("q\"b\\\n")], [.category("\u{FFFD}\u{FFFD}")],
            ])
    }

    @Test("binary tensors whose JSON text would pass maxBinaryTextBytes: too_many_rows, while it is written")
    func textBound() throws {
        let schema = try Schema(task: .regression, features: [FeatureSpec("c", .categorical)])
        var decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: schema)
        decoder.maxBinaryTextBytes = 10_000
        let response = Array(#"{"outputs": [\#(json("y", [1], "FP64", "1"))]}"#.utf8)
        // 2,000 control bytes are 12,000 bytes of text; 1,000 are 6,000 (taken).
        for (size, refused) in [(2000, true), (1000, false)] {
            let element = [UInt8](repeating: 1, count: size)
            let data = le([UInt32(size)]) + element
            let request = body(#"{"inputs": [\#(binary("c", [1], "BYTES", data.count))]}"#, data)
            do {
                let events = try decode(decoder, bytes: request, response)
                #expect(!refused && events.count == 1, "\(size)")
            } catch {
                #expect(refused && error.reason == .tooManyRows, "\(size): \(error)")
            }
        }
        // Fixed-size values too: 8,192 FP16 values of 65504 are ~57,000 bytes of text.
        var regression = try CaptureDecoder(protocol: .openInferenceV2, schema: regressionSchema())
        regression.maxBinaryTextBytes = 10_000
        let halves = le([UInt16](repeating: Float16(65504).bitPattern, count: 8192))
        let request = body(#"{"inputs": [\#(binary("x", [4096, 2], "FP16", halves.count))]}"#, halves)
        #expect(throws: CaptureError.self) {
            try decode(regression, bytes: request, Array(#"{"outputs": []}"#.utf8))
        }
    }

    @Test("decodingCost: a body over 2 KiB with binary_data_size weighs 12 times its size; others their size")
    func decodingCost() {
        let binary =
            Array(#"{"inputs":[{"parameters":{"binary_data_size":3000}}]}"#.utf8) + [UInt8](repeating: 0, count: 3000)
        let json = Array(#"{"inputs":[{"data":["#.utf8) + [UInt8](repeating: 0x31, count: 3000)
        let small = Array(#"{"parameters":{"binary_data_size":8}}"#.utf8) + [UInt8](repeating: 0, count: 8)
        #expect(binary.withUnsafeBytes { BinaryTensorBody.decodingCost($0) } == binary.count * 12)
        #expect(json.withUnsafeBytes { BinaryTensorBody.decodingCost($0) } == json.count)
        #expect(small.withUnsafeBytes { BinaryTensorBody.decodingCost($0) } == small.count)
    }
}
