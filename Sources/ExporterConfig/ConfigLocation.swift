import Yams

/// A place in a configuration file: line and column, from 1 (columns count characters).
public struct ConfigLocation: Sendable, Hashable {
    /// Line, from 1.
    public var line: Int
    /// Column, from 1.
    public var column: Int

    /// Creates a location.
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    /// Where `node` is written, if known.
    init?(_ node: Node) {
        guard let mark = node.mark else { return nil }
        self.init(line: mark.line, column: mark.column)
    }
}
