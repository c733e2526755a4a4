import Foundation
import Yams

/// Reading a configuration file (the models' or the web one) into a YAML node tree, within
/// ``ConfigLimits``.
extension ConfigLoader {
    /// The text of configuration file `path`, refused beyond ``ConfigLimits/maxFileBytes`` (only that
    /// much and one byte more is read).
    static func read(_ path: String) throws(ConfigErrors) -> String {
        func failure(_ message: String) -> ConfigErrors {
            ConfigErrors([ConfigError(file: path, line: 0, column: 0, field: "", message: message)])
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw failure("cannot read: is a directory")
        }
        let data: Data
        do {
            let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
            defer { try? handle.close() }
            data = try handle.read(upToCount: ConfigLimits.maxFileBytes + 1) ?? Data()
        } catch {
            throw failure("cannot read: \(reason(error))")
        }
        guard data.count <= ConfigLimits.maxFileBytes else { throw failure(tooLarge) }
        guard let text = String(validating: data, as: UTF8.self) else {
            // Where: the line and column of the first byte that is no UTF-8 (before, the file alone was named).
            let bytes = [UInt8](data)
            var parser = Unicode.UTF8.ForwardParser()
            var iterator = bytes.makeIterator()
            var index = 0
            while case .valid(let scalar) = parser.parseScalar(from: &iterator) { index += scalar.count }
            let lineStart = (bytes[..<index].lastIndex(of: UInt8(ascii: "\n")) ?? -1) + 1
            let line = 1 + bytes[..<index].count { $0 == UInt8(ascii: "\n") }
            let column = 1 + bytes[lineStart..<index].count { $0 & 0xC0 != 0x80 }
            let hex = String(bytes[Swift.min(index, bytes.count - 1)], radix: 16, uppercase: true)
            throw ConfigErrors([
                ConfigError(
                    file: path, line: line, column: column, field: "",
                    message:
                        "cannot read: invalid UTF-8 (byte 0x\(hex.count == 1 ? "0" : "")\(hex)); the file must be UTF-8 text"
                )
            ])
        }
        return text
    }

    static let tooLarge =
        "larger than \(ConfigLimits.maxFileBytes) bytes, the most a configuration file may have"

    /// The YAML node tree of `text` (`nil` when it holds no document), refused when the text is larger than
    /// ``ConfigLimits/maxFileBytes`` or when its expansion passes a limit of ``ConfigLimits`` (see
    /// ``ExpansionCheck``).
    static func compose(_ text: String, file: String) throws(ConfigErrors) -> Node? {
        guard text.utf8.count <= ConfigLimits.maxFileBytes else {
            throw ConfigErrors([ConfigError(file: file, line: 0, column: 0, field: "", message: tooLarge)])
        }
        let parser: Parser
        let root: Node?
        do {
            // No implicit tags are resolved: the readers look at scalars' text, and Yams would otherwise match
            // every mapping key against the tag patterns to check for duplicates (the slowest part).
            parser = try Parser(yaml: text, resolver: .basic)
            root = try parser.singleRoot()
        } catch {
            throw ConfigErrors([yamlError(error, file: file)])
        }
        guard let root else { return nil }
        var expansion = ExpansionCheck(file: file)
        do throws(ConfigError) {
            // The parser holds the anchors the check needs.
            try withExtendedLifetime(parser) { () throws(ConfigError) in try expansion.check(root) }
        } catch {
            throw ConfigErrors([error])
        }
        return root
    }
}
