/// A JSON value, as one line of NDJSON parses to (``StrictJSONParser``).
package enum JSONValue: Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// How the value reads in an error message.
    package var shown: String {
        switch self {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .number(let x): "\(x)"
        case .string(let s): ColumnMapping.quoted(s)
        case .array: "an array"
        case .object: "an object"
        }
    }
}
