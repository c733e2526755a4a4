import Foundation
import Yams

/// Reading a configuration file (the models' or the web one) into a YAML node tree, within
/// ``ConfigLimits``.
extension ConfigLoader {
    /// The text of configuration file `path`, refused beyond ``ConfigLimits/maxFileBytes`` (only that
    /// much and one byte more is read).
    /// What `path` is when opening or reading it could block (a FIFO, a socket, a character device such as
    /// /dev/kmsg or a terminal): nil for anything else.
    static func blockingKind(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        switch info.st_mode & S_IFMT {
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        default: return nil
        }
    }

    static func read(_ path: String) throws(ConfigErrors) -> String {
        func failure(_ message: String) -> ConfigErrors {
            ConfigErrors([ConfigError(file: path, line: 0, column: 0, field: "", message: message)])
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw failure("cannot read: is a directory")
        }
        // A FIFO or socket would block the open until a writer comes, a device such as /dev/kmsg the read: a reload hung
        // for ever, and with it every later reload and the graceful stop.
        if let kind = Self.blockingKind(path) {
            throw failure("cannot read: \(kind), not a regular file: write it to a file first")
        }
        // Said as the batch's files are (`no such file`, `permission denied`): Foundation's text named the file
        // again ("The file doesn’t exist.", with a curly apostrophe).
        if access(path, R_OK) != 0 {
            let code = errno
            switch code {
            case ENOENT: throw failure("cannot read: no such file")
            case EACCES: throw failure("cannot read: permission denied")
            default: throw failure("cannot read: \(String(cString: strerror(code)).lowercased())")
            }
        }
        // Read with the system calls, so that a failure says its errno ("too many open files"): Foundation's
        // FileHandle said "The operation could not be completed. (NSCocoaErrorDomain error 256.)".
        let data: [UInt8]
        switch Self.readBytes(path, upTo: ConfigLimits.maxFileBytes + 1) {
        case .success(let bytes): data = bytes
        case .failure(let error):
            throw failure("cannot read: \(String(cString: strerror(error.code)).lowercased())")
        }
        guard data.count <= ConfigLimits.maxFileBytes else { throw failure(tooLarge) }
        guard let text = String(validating: data, as: UTF8.self) else {
            // Where: the line and column of the first byte that is no UTF-8 (before, the file alone was named).
            let bytes = data
            let index = InvalidUTF8Location.firstIndex(in: bytes, bytes.indices) ?? 0
            let at = InvalidUTF8Location.position(of: index, in: bytes, from: 0, line: 1)
            throw ConfigErrors([
                ConfigError(
                    file: path, line: at.line, column: at.column, field: "",
                    message: "cannot read: \(InvalidUTF8Location.describe(bytes[index])); the file must be UTF-8 text")
            ])
        }
        return text
    }

    /// The first `limit` bytes of the file at `path` (all of it when shorter), or the `errno` of the open or read
    /// that failed.
    static func readBytes(_ path: String, upTo limit: Int) -> Result<[UInt8], SystemErrno> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(SystemErrno(code: errno)) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while bytes.count < limit {
            let wanted = min(chunk.count, limit - bytes.count)
            let n = chunk.withUnsafeMutableBytes { readDescriptor(fd, $0.baseAddress, wanted) }
            if n > 0 {
                bytes.append(contentsOf: chunk[..<n])
            } else if n == 0 {
                break
            } else if errno != EINTR {
                return .failure(SystemErrno(code: errno))
            }
        }
        return .success(bytes)
    }

    /// An `errno` value, as an error.
    struct SystemErrno: Error {
        let code: Int32
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
        // Keys that are no names (an alias's above all) refused before YAML composes them: ``ComplexKeyScan``.
        if let key = ComplexKeyScan.firstComplexKey(in: text) {
            throw ConfigErrors([
                ConfigError(
                    file: file, line: key.line, column: key.column, field: "",
                    message:
                        "\(key.what) as a mapping key: a configuration's keys are names (an alias there is expanded to be "
                        + "compared with the other keys, without bound)")
            ])
        }
        let parser: Parser
        let root: Node?
        do {
            // No implicit tags are resolved: the readers look at scalars' text, and Yams would otherwise match
            // every mapping key against the tag patterns to check for duplicates (the slowest part).
            parser = try Parser(yaml: text, resolver: .basic)
            root = try parser.singleRoot()
        } catch {
            throw ConfigErrors([yamlError(error, file: file, text: text)])
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

/// `read(2)` (inside ``ConfigLoader`` the name is its own `read`).
private func readDescriptor(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(fd, buffer, count)
}
