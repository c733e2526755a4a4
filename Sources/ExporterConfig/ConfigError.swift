/// One problem in a configuration file, located by file, line, column and field path
/// (`models[1].features[0].type`), with a one-line message.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file.
    public var file: String
    /// Line, from 1 (0 when unknown).
    public var line: Int
    /// Column, from 1 (0 when unknown).
    public var column: Int
    /// Path of the field at fault.
    public var field: String
    /// What is wrong.
    public var message: String

    /// Creates an error.
    public init(file: String, line: Int, column: Int, field: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.message = message
    }

    /// `file:line:column: field: message`.
    public var description: String {
        let location = line > 0 ? "\(file):\(line):\(column)" : file
        return field.isEmpty ? "\(location): \(message)" : "\(location): \(field): \(message)"
    }
}

/// Every problem found in a configuration file (loading does not stop at the first).
public struct ConfigErrors: Error, Sendable, Equatable, CustomStringConvertible {
    /// The problems, in file order.
    public var errors: [ConfigError]

    /// Creates the list.
    public init(_ errors: [ConfigError]) { self.errors = errors }

    /// One problem per line.
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
