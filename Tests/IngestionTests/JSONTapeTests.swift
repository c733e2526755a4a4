import Ingestion
import Testing

private func tape(_ text: String) throws(JSONTapeError) -> (JSONTape, [UInt8]) {
    let bytes = Array(text.utf8)
    // The tape points into `bytes`: the callers keep the array alive alongside.
    let result = bytes.withUnsafeBufferPointer { buffer -> Result<JSONTape, JSONTapeError> in
        do throws(JSONTapeError) {
            return .success(try JSONTape(parsing: buffer))
        } catch {
            return .failure(error)
        }
    }
    return (try result.get(), bytes)
}

@Suite("JSON tape")
struct JSONTapeTests {
    @Test("members by key (escaped keys too, the last duplicate wins), elements skip nested subtrees")
    func navigation() throws {
        let (t, bytes) = try tape(#"{"a": [1, [2, {"x": 3}], "s\u00e9"], "b\/c": true, "a": null, "n": -1.5e2}"#)
        try withExtendedLifetime(bytes) {
            #expect(t.nodes[0].kind == .object && t.nodes[0].count == 4)
            let a = try #require(t.member(0, "a"))
            #expect(t.nodes[a].kind == .null)
            let first = t.members(0)[0].value
            #expect(t.elements(first).map { t.nodes[$0].kind } == [.number, .array, .string])
            #expect(t.string(t.elements(first)[2]) == "sé")
            #expect(t.member(0, "b/c").map { t.nodes[$0].flag } == true)
            let n = try #require(t.member(0, "n"))
            #expect(t.nodes[n].number == -150 && t.numberText(n) == "-1.5e2")
            #expect(t.member(0, "missing") == nil && t.member(first, "a") == nil)
        }
    }

    @Test(
        "syntax errors carry the offset",
        arguments: [("", 0), ("[1,]", 3), (#"{"a" 1}"#, 5), ("[1] 2", 4), ("[01]", 1)])
    func errors(text: String, offset: Int) {
        #expect(throws: JSONTapeError.self) { try tape(text) }
        do {
            _ = try tape(text)
        } catch {
            #expect(error.offset == offset)
        }
    }

    @Test("nesting is limited to 64 levels")
    func depth() throws {
        #expect(throws: Never.self) { try tape(String(repeating: "[", count: 64) + String(repeating: "]", count: 64)) }
        #expect(throws: JSONTapeError.self) {
            try tape(String(repeating: "[", count: 65) + String(repeating: "]", count: 65))
        }
    }

    @Test("a tape with a value bound refuses, while reading, a document with more values, and says so")
    func valueBound() throws {
        func parse(_ text: String, maxNodes: Int) -> Result<Int, JSONTapeError> {
            Array(text.utf8).withUnsafeBufferPointer { buffer in
                do throws(JSONTapeError) {
                    return .success(try JSONTape(parsing: buffer, maxNodes: maxNodes).nodes.count)
                } catch {
                    return .failure(error)
                }
            }
        }
        // [0,0,0]: 4 nodes; {"a":[1,2]}: root, key, array, 2 elements = 5.
        #expect(try parse("[0,0,0]", maxNodes: 4).get() == 4)
        #expect(try parse(#"{"a":[1,2]}"#, maxNodes: 5).get() == 5)
        for (text, bound) in [("[0,0,0]", 3), (#"{"a":[1,2]}"#, 4), ("[[[[0]]]]", 2)] {
            guard case .failure(let error) = parse(text, maxNodes: bound) else {
                Issue.record("\(text) with \(bound) nodes at most was accepted")
                continue
            }
            #expect(error.overLimit && error.message.contains("more than \(bound) values"), "\(text)")
        }
        // A syntax error within the bound is still a syntax error.
        guard case .failure(let error) = parse("[0,0,", maxNodes: 100) else {
            Issue.record("accepted")
            return
        }
        #expect(!error.overLimit)
    }

    @Test("a top-level tape keeps one node per nested container, still validates it, and bounds the root's count")
    func topLevel() throws {
        let text = #"{"a": [1, [2, {"x": 3}]], "b": {"c": "d"}, "n": 1}"#
        let bytes = Array(text.utf8)
        try bytes.withUnsafeBufferPointer { buffer in
            let t = try JSONTape(parsingTopLevel: buffer)
            #expect(t.nodes.count == 7)  // the root, then 3 keys and 3 values
            let a = try #require(t.member(0, "a"))
            #expect(t.nodes[a].kind == .array && t.nodes[a].count == 0 && t.nodes[a].next == a + 1)
            #expect(
                String(decoding: buffer[t.nodes[a].start..<t.nodes[a].end], as: UTF8.self) == #"[1, [2, {"x": 3}]]"#)
            let b = try #require(t.member(0, "b"))
            #expect(String(decoding: buffer[t.nodes[b].start..<t.nodes[b].end], as: UTF8.self) == #"{"c": "d"}"#)
            #expect(t.member(0, "n").map { t.nodes[$0].number } == 1)
            #expect(throws: Never.self) { try JSONTape(parsingTopLevel: buffer, maxCount: 3) }
            let error = #expect(throws: JSONTapeError.self) { try JSONTape(parsingTopLevel: buffer, maxCount: 2) }
            #expect(error?.overLimit == true)
        }
        for bad in [
            #"{"a": [1, 2,]}"#, #"{"a": {"b" 1}}"#,
            "[" + String(repeating: "[", count: 64) + String(repeating: "]", count: 65),
        ] {
            let badBytes = Array(bad.utf8)
            badBytes.withUnsafeBufferPointer { buffer in
                let error = #expect(throws: JSONTapeError.self) { try JSONTape(parsingTopLevel: buffer) }
                #expect(error?.overLimit == false, "a syntax error is not a bound")
            }
        }
    }
}
