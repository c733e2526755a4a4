import Capture
import Dispatch
import Ingestion
import Synchronization
import Testing

/// The decoders against their pre-rewrite copy (Reference/ReferenceDecoder.swift) on random exchanges of random
/// shapes, valid and not: the same events, or the same failure reason and message.
@Suite struct RandomizedEquivalenceTests {
    /// Draws from ``SplitMix64``: the same exchanges on every run.
    struct Generator {
        var rng: SplitMix64
        mutating func next() -> UInt64 { rng.next() }
        mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func chance(_ percent: Int) -> Bool { int(100) < percent }
        mutating func pick<T>(_ list: [T]) -> T { list[int(list.count)] }
    }

    static let schemas: [Schema] = [
        try! Schema(
            task: .classification, classes: ["0", "1"],
            features: (0..<4).map { FeatureSpec("f\($0)", .numeric) }),
        try! Schema(
            task: .classification, classes: ["setosa", "versicolor", "virginica"],
            features: [FeatureSpec("a", .numeric), FeatureSpec("b", .categorical), FeatureSpec("c", .numeric)]),
        try! Schema(task: .regression, features: [FeatureSpec("x", .numeric), FeatureSpec("y", .numeric)]),
        try! Schema(task: .regression, features: [FeatureSpec("x", .numeric)]),
        try! Schema(task: .classification, classes: ["1", "2.5", "true"], features: [FeatureSpec("x", .categorical)]),
    ]

    /// A random scalar (or, rarely, a container).
    static func scalar(_ g: inout Generator) -> String {
        switch g.int(14) {
        case 0: return "null"
        case 1: return g.chance(50) ? "true" : "false"
        case 2: return "\"\(g.pick(["a", "0", "1", "setosa", "virginica", "x\\u0041", "2.5", "true"]))\""
        case 3: return g.pick(["1e400", "-0", "1.0", "2.5", "1E0", "0.0"])
        case 4: return g.chance(50) ? "[]" : "{}"
        case 5, 6: return "\(g.int(3))"
        case 7: return g.chance(50) ? "[\(g.int(2))]" : "{\"k\":1}"
        default: return "0.\(g.int(1000))"
        }
    }

    /// Mostly a number, sometimes any scalar.
    static func number(_ g: inout Generator) -> String { g.chance(85) ? "\(g.int(3)).\(g.int(10))" : scalar(&g) }

    static func list(_ count: Int, _ g: inout Generator, _ item: (inout Generator) -> String) -> String {
        "[" + (0..<count).map { _ in item(&g) }.joined(separator: ",") + "]"
    }

    static func name(_ schema: Schema, _ g: inout Generator) -> String {
        if g.chance(80) { return schema.features[g.int(schema.features.count)].name }
        return g.pick(["input-0", "other", "f\\u0030", "a\\u0062"])
    }

    /// v2 data of `count` leaves: flat, nested by rows, or off by one.
    static func tensorData(
        _ rows: Int, _ width: Int, _ g: inout Generator, _ leaf: (inout Generator) -> String
    )
        -> String
    {
        let count = rows * width + (g.chance(5) ? 1 : 0)
        if g.chance(30) && width > 0 && count == rows * width {
            return list(rows, &g) { g in list(width, &g, leaf) }
        }
        return list(count, &g, leaf)
    }

    static func tensor(
        _ name: String, _ rows: Int, _ width: Int, _ g: inout Generator, _ leaf: (inout Generator) -> String
    ) -> String {
        var members: [String] = []
        let shape = width == 1 && g.chance(50) ? "[\(rows)]" : "[\(rows),\(width)]"
        if !g.chance(3) { members.append("\"name\":\"\(name)\"") }
        if !g.chance(3) { members.append("\"shape\":\(g.chance(3) ? "[-1]" : shape)") }
        if !g.chance(3) {
            members.append(
                "\"datatype\":\"\(g.chance(70) ? "FP64" : g.pick(["FP32", "INT64", "BYTES", "BOOL", "X"]))\"")
        }
        if g.chance(5) { members.append(#""parameters":{"binary_data_size":8}"#) }
        if !g.chance(3) { members.append("\"data\":\(tensorData(rows, width, &g, leaf))") }
        if g.chance(5) { members.append("\"name\":\"\(name)\"") }
        let shuffled = g.chance(30) ? members.reversed() : members
        return "{" + shuffled.joined(separator: ",") + "}"
    }

    static func v2Exchange(_ schema: Schema, _ g: inout Generator) -> (String, String) {
        let rows = g.chance(5) ? 0 : 1 + g.int(4)
        var inputs: [String] = []
        if g.chance(50) {
            let width = schema.features.count + (g.chance(10) ? 1 : 0)
            inputs.append(tensor(g.chance(90) ? "input-0" : name(schema, &g), rows, width, &g, number))
        } else {
            for _ in 0..<(1 + g.int(4)) {
                let r = g.chance(2) ? rows + 1 : rows
                inputs.append(tensor(name(schema, &g), r, g.chance(10) ? 2 : 1, &g, number))
            }
        }
        var request = "{\"inputs\":[\(inputs.joined(separator: ","))]"
        if g.chance(5) { request += #","parameters":{"binary_data_output":\#(g.chance(50))}"# }
        if g.chance(5) { request += #","outputs":[{"name":"p","parameters":{"binary_data":\#(g.chance(50))}}]"# }
        request += "}"
        let classes = max(schema.classes.count, 1)
        var outputs: [String] = []
        for _ in 0..<(g.chance(5) ? 0 : 1 + g.int(3)) {
            let name = g.pick(["predict", "predict_proba", "score", "scores", "probabilities", "other"])
            let width = name.contains("prob") ? (g.chance(90) ? classes : 1) : (g.chance(80) ? 1 : classes)
            let r = g.chance(2) ? rows + 1 : rows
            outputs.append(tensor(name, r, width, &g) { g in g.chance(85) ? "0.\(g.int(10))" : scalar(&g) })
        }
        var response = "{\"outputs\":[\(outputs.joined(separator: ","))]"
        if g.chance(50) { response += ",\"model_version\":\(g.pick(["\"v1\"", "2", "null", "true", "[]"]))" }
        return (request, response + "}")
    }

    static func row(_ schema: Schema, _ g: inout Generator) -> String {
        let count = schema.features.count
        switch g.int(8) {
        case 0, 1:
            var members: [String] = []
            for _ in 0..<g.int(count + 2) { members.append("\"\(name(schema, &g))\":\(scalar(&g))") }
            return "{" + members.joined(separator: ",") + "}"
        case 2: return scalar(&g)
        default: return list(g.chance(90) ? count : count + 1, &g, scalar)
        }
    }

    static func prediction(_ schema: Schema, _ g: inout Generator) -> String {
        let classes = max(schema.classes.count, 1)
        switch g.int(8) {
        case 0: return list(g.chance(70) ? classes : 1, &g) { g in "0.\(g.int(10))" }
        case 1:
            var members: [String] = []
            if g.chance(50) { members.append("\"\(g.pick(["prediction", "label", "other"]))\":\(scalar(&g))") }
            if g.chance(40) { members.append("\"score\":\(scalar(&g))") }
            if g.chance(40) {
                let value =
                    g.chance(50)
                    ? list(classes, &g) { g in "0.\(g.int(10))" }
                    : "{" + schema.classes.map { "\"\($0)\":0.5" }.joined(separator: ",") + "}"
                members.append("\"probabilities\":\(value)")
            }
            return "{" + members.joined(separator: ",") + "}"
        default: return scalar(&g)
        }
    }

    static func v1Exchange(_ schema: Schema, _ g: inout Generator, mlflow: Bool) -> (String, String) {
        let rows = g.int(4)
        let rowList = list(rows, &g) { g in row(schema, &g) }
        let request: String
        switch g.int(mlflow ? 6 : 3) {
        case 0: request = "{\"instances\":\(rowList)}"
        case 1: request = "{\"inputs\":\(rowList)}"
        case 2:
            var columns: [String] = []
            for _ in 0..<g.int(3) {
                columns.append("\"\(name(schema, &g))\":\(list(g.chance(90) ? rows : rows + 1, &g, scalar))")
            }
            request = "{\"instances\":{\(columns.joined(separator: ","))}}"
        case 3: request = "{\"dataframe_records\":\(rowList)}"
        case 4:
            let names = schema.features.map { "\"\($0.name)\"" } + (g.chance(30) ? ["\"z\"", "7"] : [])
            let columns = g.chance(20) ? "" : "\"columns\":[\(names.joined(separator: ","))],"
            let data = list(rows, &g) { g in list(g.chance(90) ? names.count : 1, &g, scalar) }
            request = "{\"dataframe_split\":{\(columns)\"data\":\(g.chance(90) ? data : rowList)}}"
        default: request = "{\"other\":1}"
        }
        let predictions = list(g.chance(90) ? rows : rows + 1, &g) { g in prediction(schema, &g) }
        let response = mlflow && g.chance(30) ? predictions : "{\"predictions\":\(predictions)}"
        return (request, response)
    }

    /// With `reusing`, one decoder per configuration decodes every exchange drawn for it (its workspace, arrays and
    /// event, reused from exchange to exchange whatever their shapes and failures), and the events delivered are
    /// checked again at the end: an earlier exchange's copies are not changed by later ones.
    static func check(_ protocol: CaptureProtocol, seed: UInt64, iterations: Int, reusing: Bool = false) throws {
        var g = Generator(rng: SplitMix64(seed: seed))
        var succeeded = 0
        var decoders: [String: CaptureDecoder] = [:]
        var delivered:
            [(actual: Result<[PredictionEvent], CaptureError>, expected: Result<[PredictionEvent], CaptureError>)] = []
        for iteration in 0..<iterations {
            let schemaIndex = g.int(schemas.count)
            let schema = schemas[schemaIndex]
            let outputs =
                g.chance(20)
                ? OutputNames(prediction: g.pick(["predict", "score", "missing"])) : OutputNames()
            let (request, response) =
                `protocol` == .openInferenceV2
                ? v2Exchange(schema, &g) : v1Exchange(schema, &g, mlflow: `protocol` == .mlflow)
            var reference = ReferenceDecoder(protocol: `protocol`, schema: schema, outputs: outputs)
            let fewRows = g.chance(10)
            if fewRows { reference.maxRows = 2 }
            let key = "\(schemaIndex) \(outputs.prediction ?? "-") \(fewRows)"
            var decoder: CaptureDecoder
            if reusing, let kept = decoders[key] {
                decoder = kept
            } else {
                decoder = try CaptureDecoder(protocol: `protocol`, schema: schema, outputs: outputs)
                if fewRows { decoder.maxRows = 2 }
                if reusing { decoders[key] = decoder }
            }
            let expected = Result { () throws(CaptureError) in
                try reference.decode(Array(request.utf8), Array(response.utf8))
            }
            let actual = Result { () throws(CaptureError) in try decode(decoder, request, response) }
            if case .success = expected { succeeded += 1 }
            #expect(
                actual == expected, "iteration \(iteration): \(`protocol`) \(request) -> \(response)")
            if reusing { delivered.append((actual, expected)) }
        }
        // The generator must reach the decoders' success paths, not only their errors.
        #expect(succeeded > iterations / 20, "\(succeeded) of \(iterations) exchanges decoded")
        for (index, pair) in delivered.enumerated() where pair.actual != pair.expected {
            Issue.record("exchange \(index)'s events changed after it was decoded")
            break
        }
    }

    @Test func openInferenceV2() throws { try Self.check(.openInferenceV2, seed: 1, iterations: 4000) }
    @Test func kserveV1() throws { try Self.check(.kserveV1, seed: 2, iterations: 4000) }
    @Test func mlflow() throws { try Self.check(.mlflow, seed: 3, iterations: 4000) }

    @Test func openInferenceV2Reused() throws {
        try Self.check(.openInferenceV2, seed: 4, iterations: 4000, reusing: true)
    }
    @Test func kserveV1Reused() throws { try Self.check(.kserveV1, seed: 5, iterations: 4000, reusing: true) }
    @Test func mlflowReused() throws { try Self.check(.mlflow, seed: 6, iterations: 4000, reusing: true) }

    /// One decoder used by several threads at once (its workspace goes to one exchange at a time, the others decode
    /// in their own): every exchange gives the reference's events.
    @Test func concurrentExchanges() throws {
        let schema = Self.schemas[0]
        let decoder = try CaptureDecoder(protocol: .openInferenceV2, schema: schema)
        var g = Generator(rng: SplitMix64(seed: 7))
        let exchanges = (0..<400).map { _ in Self.v2Exchange(schema, &g) }
        let reference = ReferenceDecoder(protocol: .openInferenceV2, schema: schema, outputs: OutputNames())
        let expected = exchanges.map { request, response in
            Result { () throws(CaptureError) in try reference.decode(Array(request.utf8), Array(response.utf8)) }
        }
        let mismatches = Mismatches()
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for round in 0..<5 {
                for index in exchanges.indices where (index + thread + round) % 2 == 0 {
                    let (request, response) = exchanges[index]
                    let actual = Result { () throws(CaptureError) in try decode(decoder, request, response) }
                    if actual != expected[index] { mismatches.add(index) }
                }
            }
        }
        #expect(mismatches.first == nil, "exchange \(mismatches.first ?? -1) decoded differently")
    }

    /// The first exchange decoded differently by ``concurrentExchanges()``, from any thread.
    final class Mismatches: Sendable {
        private let index = Mutex<Int?>(nil)
        func add(_ value: Int) { index.withLock { $0 = $0 ?? value } }
        var first: Int? { index.withLock { $0 } }
    }
}
