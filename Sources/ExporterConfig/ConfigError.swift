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

    /// Creates an error. Control characters and line separators in `field` and `message` (which quote the
    /// file's keys and values) are escaped as in Swift literals (`\n`, `\u{1B}`), so that each error stays on
    /// one line and cannot drive a terminal.
    public init(file: String, line: Int, column: Int, field: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.field = Self.oneLine(field)
        self.message = Self.oneLine(message)
    }

    /// `text` with control characters and line or paragraph separators escaped.
    static func oneLine(_ text: String) -> String {
        func isBreaking(_ scalar: Unicode.Scalar) -> Bool {
            switch scalar.properties.generalCategory {
            case .control, .lineSeparator, .paragraphSeparator: true
            default: false
            }
        }
        guard text.unicodeScalars.contains(where: isBreaking) else { return text }
        var escaped = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isBreaking(scalar) {
                escaped.append(contentsOf: scalar.escaped(asASCII: true).unicodeScalars)
            } else {
                escaped.append(scalar)
            }
        }
        return String(escaped)
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

    /// Creates the list, in file order (by line and column; problems found at one place keep the order they were
    /// found in). The loader checks section by section, so it finds them in another order.
    public init(_ errors: [ConfigError]) {
        self.errors = errors.enumerated().sorted {
            ($0.element.line, $0.element.column, $0.offset) < ($1.element.line, $1.element.column, $1.offset)
        }.map(\.element)
    }

    /// One problem per line.
    public var description: String { errors.map(\.description).joined(separator: "\n") }

    /// The problems on one line, "; " between them, for a message that names `file` already: a problem in it reads
    /// `LINE:COLUMN: FIELD: MESSAGE` (or `MESSAGE`), one in another file (a reference) names that file.
    public static func describe(_ errors: ConfigErrors, in file: String) -> String {
        errors.errors.map { error in
            guard error.file == file else { return error.description }
            let location = error.line > 0 ? "\(error.line):\(error.column): " : ""
            return location + (error.field.isEmpty ? error.message : "\(error.field): \(error.message)")
        }.joined(separator: "; ")
    }
}
