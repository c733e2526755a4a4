import Foundation

/// A problem reading a reference input, a configuration or a profile: one line naming the file, the line
/// and column when they apply and the field or column, as `file:line[:column]: field: message`.
public struct ProfilingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file at fault.
    public var file: String
    /// Line, from 1 (0 when the problem is not on one line).
    public var line: Int
    /// Column within the line, in characters from 1 (0 when the problem is not at one place of the line).
    public var column: Int
    /// The column or field (`column "amount"`, `features[2] (country)`), empty when none.
    public var field: String
    /// What is wrong.
    public var message: String

    /// Creates an error.
    public init(file: String, line: Int = 0, column: Int = 0, field: String = "", message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.message = message
    }

    /// `file[:line[:column]]: [field: ]message`.
    public var description: String {
        let location = line > 0 ? (column > 0 ? "\(file):\(line):\(column)" : "\(file):\(line)") : file
        return field.isEmpty ? "\(location): \(message)" : "\(location): \(field): \(message)"
    }
}

extension ProfilingError {
    /// `skip with --ignore-columns 'a,b'`: the hint for input columns or keys that are not the model's, quoted for a
    /// shell so that it can be pasted as it is (an unnamed column, such as the index `pandas.DataFrame.to_csv`
    /// writes first, is `''`; the hint printed nothing before, which no argument could spell).
    public static func ignoreHint(_ names: [String]) -> String {
        "skip with --ignore-columns '" + names.joined(separator: ",").replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// The names of `--ignore-columns`: comma-separated, empty ones kept (`''` is the unnamed column, `,x` the
    /// unnamed one and `x`) but for a trailing comma (`x,` is `x`).
    public static func ignoredColumns(_ argument: String) -> [String] {
        var names = argument.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        while names.count > 1 && names.last == "" { names.removeLast() }
        return names
    }
}
