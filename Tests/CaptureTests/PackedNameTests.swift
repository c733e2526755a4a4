import Ingestion
import Testing

@testable import Capture

/// ``Scanner/packed(_:)-swift.method``, which the direct reader looks datatypes up by: a name of up to 8 bytes
/// packs as its text does, and only equal names pack alike.
@Suite("Packed names")
struct PackedNameTests {
    static func packed(_ json: String) -> UInt64 {
        let bytes = Array(json.utf8)
        return bytes.withUnsafeBufferPointer { buffer in
            var scanner = Scanner(buffer)
            let token = try! scanner.string()
            return scanner.packed(token)
        }
    }

    @Test("every datatype is found as itself and nothing else is")
    func datatypes() {
        let keys = Tensor.datatypeKeys
        #expect(Set(keys).count == Tensor.datatypes.count && !keys.contains(0))
        for (i, name) in Tensor.datatypes.enumerated() {
            #expect(keys.firstIndex(of: Self.packed("\"\(name)\"")) == i, "\(name)")
        }
        for other in ["", "FP6", "FP644", "fp64", "BYTES ", "INT8\u{20}", "BYTESBYTES", "é", "UINT1", "F"] {
            #expect(!keys.contains(Self.packed("\"\(other)\"")), "\(other)")
            #expect(Tensor.isBytes(packed: Self.packed("\"\(other)\"")) == nil, "\(other)")
        }
        // The direct reader's switch over the packed names as constants says the same as the keys.
        for (i, name) in Tensor.datatypes.enumerated() {
            #expect(Tensor.isBytes(packed: keys[i]) == (name.description == "BYTES"), "\(name)")
        }
    }
}
