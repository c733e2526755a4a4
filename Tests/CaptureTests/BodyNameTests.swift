import Testing

@testable import Capture

@Suite("A route's model_pointer and version_pointer: a name in the request body")
struct BodyNameTests {
    private func name(_ pointer: String, _ body: String) throws -> String? {
        let finder = try BodyName(pointer: pointer)
        return Array(body.utf8).withUnsafeBytes { finder.name(in: $0) }
    }

    @Test("strings and numbers are names; anything else, or no such value, or not JSON, is none")
    func values() throws {
        #expect(try name("/model", #"{"model": "credit", "rows": [[1, 2]]}"#) == "credit")
        #expect(try name("/meta/model~1name", #"{"meta": {"model/name": "fr\u00e9"}}"#) == "fré")
        #expect(try name("/models/1", #"{"models": ["a", 42]}"#) == "42")
        #expect(try name("/model", #"{"model": null}"#) == nil)
        #expect(try name("/model", #"{"model": {"name": "x"}}"#) == nil)
        #expect(try name("/model", #"{"other": "x"}"#) == nil)
        #expect(try name("/model", #"{"model": "x""#) == nil)
        #expect(try name("/model", "") == nil)
    }

    @Test("a pointer names one value; a body of more than maxValues values is not read")
    func bounds() throws {
        #expect(throws: CaptureConfigError.self) { try BodyName(pointer: "/rows/*/model") }
        #expect(throws: CaptureConfigError.self) { try BodyName(pointer: "model") }
        let values = Array(repeating: "0", count: BodyName.maxValues).joined(separator: ",")
        #expect(try name("/model", #"{"model": "credit", "rows": [\#(values)]}"#) == nil)
        #expect(try name("/model", #"{"model": "credit", "rows": [0]}"#) == "credit")
    }
}
