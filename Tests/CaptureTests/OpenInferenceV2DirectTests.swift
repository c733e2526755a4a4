import Ingestion
import Testing

@testable import Capture

/// The direct (tape-free) v2 reader against the tape path forced on, on random exchanges built to be read directly
/// (compact and spaced bodies, both input forms, every number form, outputs in any order) and on their mutations:
/// the same events to the bit, or the same failure reason and message; and it must read most of them itself.
@Suite("Open Inference Protocol v2, read directly")
struct OpenInferenceV2DirectTests {
    /// The randomized equivalence tests' schemas and one of 20 numeric features (the proxy benchmark's).
    static let schemas: [Schema] =
        RandomizedEquivalenceTests.schemas + [
            try! Schema(
                task: .classification, classes: ["no", "yes"],
                features: (0..<20).map { FeatureSpec("x\($0)", .numeric) })
        ]

    /// Random JSON text for one exchange: whitespace between tokens or none.
    struct Writer {
        var g: RandomizedEquivalenceTests.Generator
        var spaced = false

        mutating func ws() -> String { spaced && g.chance(50) ? g.pick([" ", "\n", "  ", "\t", "\r\n "]) : "" }

        mutating func object(_ members: [(String, String)]) -> String {
            let body = members.map { "\(ws())\"\($0.0)\"\(ws()):\(ws())\($0.1)\(ws())" }.joined(separator: ",")
            return "{" + body + (members.isEmpty ? ws() : "") + "}"
        }

        mutating func array(_ items: [String]) -> String {
            "[" + items.map { "\(ws())\($0)\(ws())" }.joined(separator: ",") + (items.isEmpty ? ws() : "") + "]"
        }

        /// A number in one of JSON's forms, often one the tape path refuses as a value.
        mutating func number() -> String {
            switch g.int(40) {
            case 0: return "-0"
            case 1: return "1E3"
            case 2: return "2.5e-3"
            case 3: return "-1.25E+2"
            case 4: return "1e400"
            case 5: return "123456789012345678901234"
            case 6: return "0.1000000000000000055511151231257827"
            case 7: return "-0.0"
            case 8: return "9007199254740993"
            case 9..<20: return "\(g.int(100))"
            default: return "\(g.chance(20) ? "-" : "")\(g.int(10)).\(g.int(1000))"
            }
        }

        /// A probability: mostly in [0, 1].
        mutating func probability() -> String {
            g.chance(95) ? g.pick(["0", "1", "0.25", "0.5", "0.75", "1.0", "1e-1", "-0", "0.125"]) : number()
        }

        /// A feature value for `kind`: mostly what the tape path accepts.
        mutating func feature(_ kind: FeatureKind) -> String {
            if g.chance(4) { return "null" }
            if g.chance(3) { return g.chance(50) ? "true" : "false" }
            if kind == .categorical && g.chance(70) {
                return g.pick([#""eu""#, #""us""#, #""""#, #""a\"b""#, #""é""#, #""long category value, twenty+""#])
            }
            if g.chance(1) { return g.pick([#""1""#, "{}", #"{"k":[1]}"#]) }
            return number()
        }

        /// `rows` × `width` leaves, flat or nested by rows (or deeper).
        mutating func data(_ rows: Int, _ width: Int, _ leaf: (inout Writer) -> String) -> String {
            var values: [[String]] = []
            for _ in 0..<rows { values.append((0..<width).map { _ in leaf(&self) }) }
            switch g.int(4) {
            case 0: return array(values.map { array($0) })
            case 1 where width == 1: return array(values.map { array([array($0)]) })
            default: return array(values.flatMap { $0 })
            }
        }

        /// A tensor object, its members in any order, perhaps with parameters or a member of its own.
        mutating func tensor(
            _ name: String, _ shape: [Int], _ datatype: String, _ data: String
        ) -> String {
            var members: [(String, String)] = [
                ("name", "\"\(name)\""), ("shape", array(shape.map(String.init))), ("datatype", "\"\(datatype)\""),
                ("data", data),
            ]
            if g.chance(20) {
                members.append(("parameters", object([("content_type", g.chance(50) ? #""np""# : "null")])))
            }
            if g.chance(5) { members.append(("x-extra", array([number(), #""s""#, object([])]))) }
            if g.chance(40) { members.shuffle(using: &g.rng) }
            return object(members)
        }
    }

    /// The default output names, or (one time in five) names of its own.
    static func outputNames(_ g: inout RandomizedEquivalenceTests.Generator) -> OutputNames {
        g.chance(20)
            ? OutputNames(prediction: "label", score: ["confidence"], probabilities: ["probs", "p"]) : OutputNames()
    }

    /// A request, a response and what they were built as.
    struct Exchange {
        var request: String
        var response: String
        /// Built with one `[N, F]` input.
        var single = false
    }

    static func exchange(_ schema: Schema, _ outputs: OutputNames, _ w: inout Writer) -> Exchange {
        let rows = w.g.chance(3) ? 0 : 1 + w.g.int(w.g.chance(10) ? 12 : 3)
        let features = schema.features
        var inputs: [String] = []
        let single = w.g.chance(50)
        if single {
            let type = w.g.pick(["FP64", "FP32", "INT64", "BOOL", "UINT8"])
            let shape = w.g.chance(10) ? [rows, features.count, 1] : [rows, features.count]
            let data = w.data(rows, features.count) { w in w.feature(features[w.g.int(features.count)].kind) }
            inputs.append(w.tensor(w.g.pick(["input-0", "x", "predict"]), shape, type, data))
        } else {
            for feature in features where w.g.chance(85) {
                let type =
                    feature.kind == .categorical && w.g.chance(70)
                    ? "BYTES" : w.g.pick(["FP64", "FP32", "INT64", "BOOL", "UINT8"])
                let data = w.data(rows, 1) { w in w.feature(feature.kind) }
                inputs.append(w.tensor(feature.name, w.g.chance(50) ? [rows] : [rows, 1], type, data))
            }
            if w.g.chance(25) || inputs.isEmpty {
                let width = 1 + w.g.int(3)
                let data = w.data(rows, width) { w in w.number() }
                inputs.insert(w.tensor("MASK", [rows, width], "BOOL", data), at: w.g.int(inputs.count + 1))
            }
        }
        var request: [(String, String)] = [("inputs", w.array(inputs))]
        // The request's id names the rows; an empty one, or one that is no string, is none.
        if w.g.chance(20) {
            let id =
                w.g.chance(70)
                ? #""req-\#(w.g.int(100))""#
                : w.g.pick(["\"\"", "7", "null", #""a\"b""#, "[1]", "\"\(String(repeating: "x", count: 257))\""])
            request.append(("id", id))
        }
        if w.g.chance(15) {
            let flag = w.g.chance(10) ? "true" : "false"
            request.append(("parameters", w.object([("content_type", #""pd""#), ("binary_data_output", flag)])))
        }
        if w.g.chance(15) {
            let flag = w.g.chance(10) ? "true" : "false"
            let outputs = w.object([("name", #""predict""#), ("parameters", w.object([("binary_data", flag)]))])
            request.append(("outputs", w.array([outputs])))
        }
        if w.g.chance(40) { request.shuffle(using: &w.g.rng) }

        let classes = schema.classes
        var tensors: [String] = []
        let predictionName = outputs.prediction ?? "predict"
        if w.g.chance(90) {
            let width = schema.task == .classification && w.g.chance(10) ? classes.count : 1
            let data = w.data(rows, width) { w in
                if width > 1 { return w.probability() }
                if schema.task == .regression { return w.g.chance(95) ? w.number() : "null" }
                switch w.g.int(10) {
                case 0: return "\"\(w.g.pick(classes))\""
                case 1: return w.g.chance(50) ? "true" : "false"
                case 2: return w.number()
                default: return "\(w.g.pick(Array(classes.indices)))"
                }
            }
            tensors.append(w.tensor(predictionName, width > 1 ? [rows, width] : [rows], "INT64", data))
        }
        if schema.task == .classification && w.g.chance(50) {
            let name = w.g.pick(outputs.probabilities)
            let data = w.data(rows, classes.count) { w in w.probability() }
            tensors.append(w.tensor(name, [rows, classes.count], "FP64", data))
        }
        if w.g.chance(25) {
            let data = w.data(rows, 1) { w in w.g.chance(90) ? w.probability() : "null" }
            tensors.append(w.tensor(w.g.pick(outputs.score), [rows, 1], "FP32", data))
        }
        if w.g.chance(15) {
            let data = w.data(rows, 2) { w in w.feature(.categorical) }
            tensors.append(w.tensor("other", [rows, 2], "BYTES", data))
        }
        tensors.shuffle(using: &w.g.rng)
        var response: [(String, String)] = [("outputs", w.array(tensors))]
        if w.g.chance(60) {
            response.append(("model_version", w.g.pick([#""v1""#, #""2024-01-01""#, "3", "1.5", "null", "true"])))
        }
        if w.g.chance(30) { response.append(("model_name", #""m""#)) }
        if w.g.chance(20) { response.append(("id", #""d3b1""#)) }
        if w.g.chance(20) { response.append(("parameters", w.object([("content_type", #""np""#)]))) }
        if w.g.chance(40) { response.shuffle(using: &w.g.rng) }
        return Exchange(request: w.object(request), response: w.object(response), single: single)
    }

    /// The same exchange, damaged: cut short, a byte changed, a repeated or escaped key, a shape off by one row,
    /// bytes inserted or appended.
    static func mutate(_ exchange: Exchange, _ g: inout RandomizedEquivalenceTests.Generator) -> Exchange {
        var result = exchange
        let inRequest = g.chance(50)
        var bytes = Array((inRequest ? exchange.request : exchange.response).utf8)
        switch g.int(7) {
        case 0:
            bytes.removeLast(1 + g.int(bytes.count))
        case 1:
            bytes[g.int(bytes.count)] = g.pick(Array(#",:[]{}"01-.e xtn\"#.utf8) + [0, 0x80, 0xFF])
        case 2:
            let text = String(decoding: bytes, as: UTF8.self)
            let key = g.pick(["\"name\":", "\"data\":", "\"shape\":", "\"outputs\":", "\"inputs\":", "\"datatype\":"])
            let repeated = text.replacing(key, with: key + "null,\(key)", maxReplacements: 1)
            bytes = Array((g.chance(50) ? repeated : text.replacing(key, with: key + "1,\(key)")).utf8)
        case 3:
            let text = String(decoding: bytes, as: UTF8.self)
            let key = g.pick(["\"name\"", "\"data\"", "\"shape\"", "\"inputs\"", "\"outputs\"", "\"f0\"", "\"x\""])
            let escaped = "\"\\u00" + String(key.utf8.dropFirst().first!, radix: 16) + key.dropFirst(2)
            bytes = Array(text.replacing(key, with: escaped, maxReplacements: 1 + g.int(2)).utf8)
        case 4:
            let text = String(decoding: bytes, as: UTF8.self)
            bytes = Array(text.replacing("\"shape\":[", with: "\"shape\":[1\(g.int(3))", maxReplacements: 1).utf8)
        case 5:
            bytes.append(contentsOf: Array(g.pick([" x", ",", "]", "}", " {}", "\u{0}", "1"]).utf8))
        default:
            bytes.insert(contentsOf: Array(g.pick([" x", ",", "]", "}", "{}"]).utf8), at: g.int(bytes.count + 1))
        }
        if inRequest {
            result.request = String(decoding: bytes, as: UTF8.self)
        } else {
            result.response = String(decoding: bytes, as: UTF8.self)
        }
        return result
    }

    /// Whether the direct reader reads the exchange itself (its rows, or nil when it leaves it to the tape).
    static func directRows(_ decoder: CaptureDecoder, _ exchange: Exchange) -> Rows? {
        let request = Array(exchange.request.utf8)
        let response = Array(exchange.response.utf8)
        var rows = Rows(schema: decoder.schema)
        var shape = RequestShape()
        let read = request.withUnsafeBytes { req in
            response.withUnsafeBytes { resp in decoder.decodeOpenInferenceV2Directly(req, resp, &rows, &shape) }
        }
        return read ? rows : nil
    }

    /// `text` with numbers outside strings replaced by `make`'s (each at random, or `every` one): those in `data`
    /// arrays only (the leaves a replay reads afresh), or any (shapes too).
    static func renumber(
        _ text: String, _ g: inout RandomizedEquivalenceTests.Generator, dataOnly: Bool, every: Bool = false,
        _ make: () -> String
    ) -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        var i = 0
        var depth = 0
        // The depth of the `data` array being read (numbers deeper are leaves), and whether `"data":` was just read.
        var dataDepth: Int?
        var afterDataKey = false
        let numberBytes = Array("0123456789.eE+-".utf8)
        while i < bytes.count {
            let byte = bytes[i]
            if byte == UInt8(ascii: "\"") {
                var end = i + 1
                while end < bytes.count && bytes[end] != UInt8(ascii: "\"") {
                    end += bytes[end] == UInt8(ascii: "\\") ? 2 : 1
                }
                end = min(end + 1, bytes.count)
                afterDataKey = bytes[i..<end].elementsEqual(Array("\"data\"".utf8))
                out.append(contentsOf: bytes[i..<end])
                i = end
                continue
            }
            switch byte {
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if afterDataKey && byte == UInt8(ascii: "[") && dataDepth == nil { dataDepth = depth }
                afterDataKey = false
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                if dataDepth == depth { dataDepth = nil }
                depth -= 1
            case UInt8(ascii: ":"), UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                break
            default:
                afterDataKey = false
            }
            let isStart = byte == UInt8(ascii: "-") || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            guard isStart else {
                out.append(byte)
                i += 1
                continue
            }
            var end = i + 1
            while end < bytes.count, numberBytes.contains(bytes[end]) { end += 1 }
            if (!dataOnly || dataDepth != nil) && (every || g.chance(60)) {
                out.append(contentsOf: Array(make().utf8))
            } else {
                out.append(contentsOf: bytes[i..<end])
            }
            i = end
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test(
        "pairs of exchanges of one structure: the second, replayed, reads as the direct reader and the tape path read it"
    )
    func replayedRequests() throws {
        var w = Writer(g: RandomizedEquivalenceTests.Generator(rng: SplitMix64(seed: 61)))
        var replayed = 0
        var refused = 0
        var firstKept = 0
        for iteration in 0..<4_000 {
            let schema = Self.schemas[w.g.int(Self.schemas.count)]
            let outputs = Self.outputNames(&w.g)
            w.spaced = w.g.chance(30)
            var g = RandomizedEquivalenceTests.Generator(rng: SplitMix64(seed: UInt64(iteration) &+ 7))
            // A short plain number, what a replay reads; another writer's numbers for every form.
            func short() -> String {
                g.chance(80) ? "\(g.chance(10) ? "-" : "")\(g.int(100)).\(1 + g.int(999))" : "\(g.int(10))"
            }
            var other = Writer(g: RandomizedEquivalenceTests.Generator(rng: SplitMix64(seed: UInt64(iteration) &+ 99)))
            var first = Self.exchange(schema, outputs, &w)
            if w.g.chance(70) { first.request = Self.renumber(first.request, &w.g, dataOnly: true, every: true, short) }
            var second = first
            switch w.g.int(10) {
            case 0..<6: second.request = Self.renumber(first.request, &w.g, dataOnly: true, short)
            case 6: second.request = Self.renumber(first.request, &w.g, dataOnly: true) { other.number() }
            case 7: second.request = Self.renumber(first.request, &w.g, dataOnly: false, short)
            case 8: second = Self.mutate(second, &w.g)
            default: second = Self.exchange(schema, outputs, &w)
            }
            if w.g.chance(20) { second.response = Self.exchange(schema, outputs, &w).response }
            let decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: schema, outputs: outputs)
            var tape = decoder
            tape.readsV2Directly = false

            // The direct reader with one shape, as a workspace holds it: the first exchange, then the second.
            var rows = Rows(schema: schema)
            var shape = RequestShape()
            let a = (Array(first.request.utf8), Array(first.response.utf8))
            let b = (Array(second.request.utf8), Array(second.response.utf8))
            rows.begin()
            let firstRead = a.0.withUnsafeBytes { req in
                a.1.withUnsafeBytes { resp in decoder.decodeOpenInferenceV2Directly(req, resp, &rows, &shape) }
            }
            if firstRead && !shape.isEmpty { firstKept += 1 }
            var probe = Rows(schema: schema)
            var probeState = DirectV2State()
            let replays = b.0.withUnsafeBufferPointer { shape.replay($0, &probe, &probeState) }
            if !shape.isEmpty { if replays { replayed += 1 } else { refused += 1 } }
            rows.begin()
            let secondRead = b.0.withUnsafeBytes { req in
                b.1.withUnsafeBytes { resp in decoder.decodeOpenInferenceV2Directly(req, resp, &rows, &shape) }
            }
            let fresh = Self.directRows(decoder, second)
            #expect(secondRead == (fresh != nil), "\(iteration): \(first.request) then \(second.request)")
            if secondRead, let fresh {
                #expect(
                    "\(Self.summary(rows))" == "\(Self.summary(fresh))",
                    "\(iteration): \(first.request) then \(second.request)")
            }
            // The whole decoder (its workspace's shape): the second exchange's events are the tape path's.
            _ = try? decode(decoder, first.request, first.response)
            let actual = Result { () throws(CaptureError) in try decode(decoder, second.request, second.response) }
            let expected = Result { () throws(CaptureError) in try decode(tape, second.request, second.response) }
            #expect(
                actual == expected && "\(actual)" == "\(expected)",
                "\(iteration): \(first.request) then \(second.request) -> \(second.response)")
        }
        // Both ways are taken often: replays, and requests of another structure told apart.
        #expect(
            firstKept > 800 && replayed > 700 && refused > 300,
            "kept \(firstKept), replayed \(replayed), refused \(refused)")
    }

    @Test("a request is kept for replays up to 8 KiB and 1,024 feature leaves, the memory a workspace keeps bounded")
    func keptRequestsAreBounded() throws {
        let schema = Self.schemas.last!  // 20 numeric features
        let decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: schema, outputs: OutputNames())
        func kept(rows count: Int, id: String = "") -> Bool {
            let row = (0..<20).map { "\($0 % 10).5" }.joined(separator: ",")
            let data = Array(repeating: row, count: count).joined(separator: ",")
            let request = Array(
                #"{"id":"\#(id)","inputs":[{"name":"x","shape":[\#(count),20],"datatype":"FP64","data":[\#(data)]}]}"#
                    .utf8)
            let predictions = Array(repeating: "1", count: count).joined(separator: ",")
            let response = Array(
                #"{"outputs":[{"name":"predict","shape":[\#(count)],"datatype":"INT64","data":[\#(predictions)]}]}"#
                    .utf8)
            var rows = Rows(schema: schema)
            var shape = RequestShape()
            rows.begin()
            let read = request.withUnsafeBytes { req in
                response.withUnsafeBytes { decoder.decodeOpenInferenceV2Directly(req, $0, &rows, &shape) }
            }
            #expect(read)
            return !shape.isEmpty
        }
        #expect(kept(rows: 51))  // 1,020 leaves, 4.2 KB
        #expect(!kept(rows: 52))  // 1,040 leaves
        #expect(kept(rows: 1, id: String(repeating: "i", count: 8_000)))
        #expect(!kept(rows: 1, id: String(repeating: "i", count: 8_200)))  // over 8 KiB
    }

    /// What the direct reader left in `rows`: every value a delivery reads, printed exactly.
    static func summary(_ rows: Rows) -> String {
        var text = "\(rows.count) \(rows.exchangeID ?? "-")"
        for row in 0..<rows.count {
            let info = rows.info[row]
            text +=
                " | \(info.unknownFeatures) \(String(describing: info.prediction)) \(String(describing: info.predictionClass))"
            text +=
                " \(String(describing: info.score)) \(info.hasProbabilities) \(info.id ?? "-") \(info.version ?? "-")"
            for i in 0..<rows.featureCount { text += " \(rows.features[row * rows.featureCount + i])" }
            for i in 0..<rows.attributeCount { text += " \(rows.attributes[row * rows.attributeCount + i] ?? "-")" }
        }
        return text + " p\(rows.probabilities)"
    }

    @Test("random exchanges: the direct reader delivers what the tape path delivers, to the bit, and reads most")
    func differential() throws {
        var w = Writer(g: RandomizedEquivalenceTests.Generator(rng: SplitMix64(seed: 16)))
        let iterations = 6_000
        var intact = 0
        var intactRead = 0
        var mutatedRead = 0
        var intactAccepted = 0
        var readWith = (rows: 0, probabilities: 0, score: 0, single: 0, version: 0, spaced: 0)
        for iteration in 0..<iterations {
            let schema = Self.schemas[w.g.int(Self.schemas.count)]
            let outputs = Self.outputNames(&w.g)
            w.spaced = w.g.chance(40)
            var exchange = Self.exchange(schema, outputs, &w)
            let mutated = w.g.chance(30)
            if mutated { exchange = Self.mutate(exchange, &w.g) }
            var decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: schema, outputs: outputs)
            var reference = ReferenceDecoder(protocol: .openInferenceV2, schema: schema, outputs: outputs)
            if w.g.chance(5) {
                decoder.maxRows = 2
                reference.maxRows = 2
            }
            var tape = decoder
            tape.readsV2Directly = false
            #expect(decoder.readsV2Directly)
            let (request, response) = (exchange.request, exchange.response)
            let actual = Result { () throws(CaptureError) in try decode(decoder, request, response) }
            let expected = Result { () throws(CaptureError) in try decode(tape, request, response) }
            let old = Result { () throws(CaptureError) in
                try reference.decode(Array(request.utf8), Array(response.utf8))
            }
            // `==` takes -0 for 0; the descriptions print every Double exactly (shortest round trip, sign kept).
            #expect(actual == expected && "\(actual)" == "\(expected)", "\(iteration): \(request) -> \(response)")
            #expect(expected == old, "\(iteration): the tape path against the reference")
            let rows = Self.directRows(decoder, exchange)
            if rows != nil {
                // Read directly: the tape path accepts the exchange.
                #expect(throws: Never.self, "\(iteration): read directly, refused by the tape path") {
                    try expected.get()
                }
            }
            if mutated {
                mutatedRead += rows == nil ? 0 : 1
                continue
            }
            intact += 1
            let accepted = (try? expected.get()) != nil
            intactAccepted += accepted ? 1 : 0
            #expect(rows != nil || !accepted, "\(iteration): accepted by the tape path, not read directly: \(request)")
            guard let rows, let events = try? expected.get() else { continue }
            intactRead += 1
            readWith.rows += rows.count > 1 ? 1 : 0
            readWith.probabilities += events.contains { !$0.probabilities.isEmpty } ? 1 : 0
            readWith.score += events.contains { $0.score != nil } ? 1 : 0
            readWith.single += exchange.single ? 1 : 0
            readWith.version += events.contains { !$0.version.isEmpty } ? 1 : 0
            readWith.spaced += w.spaced ? 1 : 0
        }
        // Every intact exchange the tape path accepts is read directly (checked above), in every form, and they are
        // a large share.
        #expect(intactRead == intactAccepted && intactRead * 5 > intact * 2, "\(intactRead) of \(intact) read directly")
        #expect(mutatedRead > 0, "no mutated exchange read directly")
        let least = intactRead / 20
        #expect(readWith.rows > least && readWith.probabilities > least && readWith.score > least)
        #expect(readWith.single > least && readWith.version > least && readWith.spaced > least, "\(readWith)")
    }
}
