/// A minimal JSON writer: the fixture has no Foundation dependency, and doubles must travel bit-exactly.
///
/// Doubles are written as strings `"f64:<16 hex digits of the IEEE-754 bit pattern>"`, so NaN, the
/// infinities, -0.0 and subnormals survive unchanged and no decimal formatting (the thing under test)
/// is involved. Exact integers (bucket counts, integer counter totals) are plain JSON numbers.
enum JSON {
    case null
    case bool(Bool)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    /// The serialised document, UTF-8, with a trailing newline.
    func serialized() -> [UInt8] {
        var out: [UInt8] = []
        write(into: &out)
        out.append(UInt8(ascii: "\n"))
        return out
    }

    func write(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .uint(let n): out.append(contentsOf: String(n).utf8)
        case .double(let d): JSON.string(JSON.bits(d)).write(into: &out)
        case .string(let s): JSON.writeString(s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSON.writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                value.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// `f64:` and the 16 lowercase hex digits of the bit pattern.
    static func bits(_ d: Double) -> String {
        let hex = String(d.bitPattern, radix: 16)
        return "f64:" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    static func writeString(_ s: String, into out: inout [UInt8]) {
        let hexDigits = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0..<0x20:
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension JSON {
    /// An optional double, `null` when absent.
    static func optionalDouble(_ d: Double?) -> JSON { d.map { .double($0) } ?? .null }

    /// Label pairs as a JSON object, in the order given. A repeated name would make an ambiguous
    /// object, so it traps: the plans never produce one.
    static func labels(_ pairs: [(String, String)]) -> JSON {
        precondition(Set(pairs.map(\.0)).count == pairs.count, "repeated label name in \(pairs)")
        return .object(pairs.map { ($0.0, .string($0.1)) })
    }
}
