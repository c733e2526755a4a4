import ExporterConfig
import Foundation
import ModelMonitoring

#if canImport(Glibc)
    import Glibc
#endif

/// `mlops-exporter profile`: reads a model's reference data (CSV or NDJSON), builds its
/// ``ReferenceProfile`` with a ``ProfileBuilder`` and writes it as JSON.
///
/// Input columns (CSV header names, NDJSON keys: top-level keys of flat objects, the keys of `features`
/// in ingestion events) must be the model's features, `prediction`, `score`, `id`, `label`, `timestamp`,
/// `version` or a sensitive attribute's name; any other is an error unless listed in `ignoreColumns`
/// (a typo in a feature name must not silently profile nothing). Every configured feature must be a CSV
/// column, or a key on at least one NDJSON line; a feature absent from some lines is missing there. An ingestion
/// event's top-level keys must be event fields (``PredictionEventFields``) or listed in `ignoreColumns`. Each name
/// of `ignoreColumns` must be in the input (a CSV column, a key of some NDJSON line) and must not be profiled (a
/// feature, `prediction`, `score`). The output must not be the input or the configuration (the same file, through
/// links or other spellings of its path): that is refused before anything is read.
///
/// Memory: the whole input file is read (its SHA-256 is part of the profile), plus the builder's values
/// of numeric columns (see ``ProfileBuilder``).
public enum Profiler {
    /// The longest line (NDJSON) or record (CSV) that `profile` and `batch` hold whole while they read it: 64 MiB
    /// (a file without line breaks would otherwise take the memory).
    public static let maxRecordBytes = 64 << 20

    /// `bytes` as a message says a bound: in MiB when whole ones, otherwise in bytes.
    public static func bound(_ bytes: Int) -> String {
        bytes >= 1 << 20 && bytes % (1 << 20) == 0 ? "\(bytes >> 20) MiB" : "\(bytes) bytes"
    }

    /// What to profile and where to write it.
    public struct Request: Sendable, Equatable {
        /// The configuration file.
        public var configPath: String
        /// The model's name in it.
        public var model: String
        /// The reference input file.
        public var input: String
        /// Where to write the profile (JSON).
        public var output: String
        /// The input format; `nil` to infer it from the input's extension.
        public var format: InputFormat?
        /// Bins and vocabulary.
        public var options: ProfileBuilder.Options
        /// Input columns to skip although they are not the model's (each must be in the input, none profiled).
        public var ignoreColumns: [String]

        /// Creates a request.
        public init(
            configPath: String, model: String, input: String, output: String, format: InputFormat? = nil,
            options: ProfileBuilder.Options = ProfileBuilder.Options(), ignoreColumns: [String] = []
        ) {
            self.configPath = configPath
            self.model = model
            self.input = input
            self.output = output
            self.format = format
            self.options = options
            self.ignoreColumns = ignoreColumns
        }
    }

    /// What a run wrote.
    public struct Summary: Sendable, Equatable, CustomStringConvertible {
        /// The profile written.
        public var profile: ReferenceProfile
        /// The output file.
        public var output: String
        /// SHA-256 (hex) of the profile file's bytes (what `mlops_model_info` reports).
        public var profileSHA256: String

        /// What the profile cannot do, one line each: a feature without a single value in the input (all missing)
        /// gives drift nothing to compare with, so its live values are never scored. Not an error (the data may be
        /// so), but said, as the exporter says nothing of it later. (A reference without predictions or scores is
        /// common: their columns are not warned about.)
        /// So is a classifier's prediction of a class the model does not list, counted `__other__` (as `batch` says
        /// it; the profile counted it without a word, a config probe).
        public var warnings: [String] {
            var lines = profile.features.filter { $0.count == 0 }.map {
                "column \($0.name): no value in the input's \(profile.rows) rows (all missing): drift never scores "
                    + "this column (its live values are only counted in mlops_feature_window_observations)"
            }
            if let p = profile.prediction, let c = p.categorical, let unlisted = c.counts.last, unlisted > 0,
                c.counts.count == c.values.count + 1
            {
                lines.append(
                    "column \(p.name): \(unlisted) of \(profile.rows) rows predict a class the model does not list "
                        + "(counted \(ModelContext.other), as live traffic's would be)")
            }
            return lines
        }

        /// One line: output, model, rows, features, both hashes.
        public var description: String {
            let extra = [profile.prediction, profile.score].compactMap { $0?.name }
            let outputs = extra.isEmpty ? "" : " (+ \(extra.joined(separator: ", ")))"
            return
                "\(output): model \(profile.model), \(profile.rows) rows, \(profile.features.count) features\(outputs), "
                + "input sha256 \(profile.inputSHA256), profile sha256 \(profileSHA256)"
        }
    }

    /// Loads the configuration, profiles the input and writes the profile.
    public static func run(_ request: Request) throws(ProfilingError) -> Summary {
        let model = try self.model(named: request.model, in: request.configPath)
        guard let format = request.format ?? InputFormat(path: request.input) else {
            throw ProfilingError(
                file: request.input, message: "cannot tell the format from the extension (use --format csv|ndjson)")
        }
        // Before anything is read: the profile must not replace its own data (or the configuration).
        for (path, what) in [(request.input, "the input"), (request.configPath, "the configuration")]
        where sameFile(request.output, path) {
            throw ProfilingError(
                file: request.output,
                message: "cannot write: this is \(what) (\(path)); the profile would replace it: choose another --out")
        }
        let bytes = try read(request.input)
        let profile = try self.profile(
            bytes, file: request.input, format: format, model: model, options: request.options,
            ignoreColumns: request.ignoreColumns)
        let encoded = try encode(profile, file: request.output)
        try write(encoded, to: request.output)
        return Summary(profile: profile, output: request.output, profileSHA256: SHA256.hex(encoded))
    }

    /// The profile of input `bytes` (named `file` in errors) for `model`.
    public static func profile(
        _ bytes: [UInt8], file: String, format: InputFormat, model: ModelConfiguration,
        options: ProfileBuilder.Options = ProfileBuilder.Options(), ignoreColumns: [String] = []
    ) throws(ProfilingError) -> ReferenceProfile {
        var builder = ProfileBuilder(model: model, options: options)
        let mapping = ColumnMapping(file: file, model: model, builder: builder, ignoring: ignoreColumns)
        switch format {
        case .csv: try InputReader.csv(bytes, mapping: mapping, into: &builder)
        case .ndjson: try InputReader.ndjson(bytes, mapping: mapping, into: &builder)
        }
        return builder.build(model: model.name, inputSHA256: SHA256.hex(bytes))
    }

    /// The profile as JSON: sorted keys, pretty-printed, ending with a newline.
    public static func encode(_ profile: ReferenceProfile, file: String = "profile") throws(ProfilingError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        do {
            return Array(try encoder.encode(profile)) + [UInt8(ascii: "\n")]
        } catch {
            throw ProfilingError(file: file, message: "cannot encode the profile: \(error)")
        }
    }

    /// Model `name` of configuration file `path` (whose reference files need not exist yet).
    public static func model(named name: String, in path: String) throws(ProfilingError) -> ModelConfiguration {
        let configuration: ExporterConfiguration
        do {
            configuration = try ConfigLoader.load(file: path, referencesMustExist: false)
        } catch {
            throw ProfilingError(
                file: path, message: "invalid configuration: " + ConfigErrors.describe(error, in: path))
        }
        guard let model = configuration.model(named: name) else {
            let known = configuration.models.map(\.name).joined(separator: ", ")
            throw ProfilingError(file: path, message: "no model \"\(name)\" (models: \(known))")
        }
        if let clash = model.fileColumnClash { throw ProfilingError(file: path, message: clash) }
        return model
    }

    /// Whether `a` and `b` name one existing file (the same device and inode, through links and relative paths alike).
    public static func sameFile(_ a: String, _ b: String) -> Bool {
        var x = stat()
        var y = stat()
        guard stat(a, &x) == 0, stat(b, &y) == 0 else { return false }
        return x.st_dev == y.st_dev && x.st_ino == y.st_ino
    }

    /// The bytes of `path`: a `ProfilingError` naming it when it is missing, a directory, not a regular file (a pipe, a
    /// FIFO, a device such as `/dev/null`; reported as "permission denied" before, even to root), larger than
    /// `maxBytes` (a profile's bound, ``ProfileLoader/maxProfileBytes``; reference data has none), or unreadable.
    public static func read(_ path: String, maxBytes: Int = .max) throws(ProfilingError) -> [UInt8] {
        // Opened non-blocking, then judged by what is open (a FIFO checked by name first, then put in the file's
        // place, blocked the open until a writer came); read straight into the array (a `Data` turned into one held
        // the file twice).
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            let reason =
                errno == EACCES
                ? "permission denied" : errno == ENOENT ? "no such file" : String(cString: strerror(errno))
            throw ProfilingError(file: path, message: "cannot read: \(reason)")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw ProfilingError(file: path, message: "cannot read: \(String(cString: strerror(errno)))")
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw ProfilingError(file: path, message: "cannot read: is a directory")
        default:
            throw ProfilingError(
                file: path,
                message: "cannot read: not a regular file (a pipe, FIFO or device): write it to a file first")
        }
        if Int(info.st_size) > maxBytes {
            throw ProfilingError(
                file: path, message: "cannot read: \(info.st_size) bytes, more than the \(maxBytes) a profile may have")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(info.st_size) + 1)
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else {
                throw ProfilingError(file: path, message: "cannot read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { return bytes }
            guard bytes.count + n <= maxBytes else {
                throw ProfilingError(
                    file: path, message: "cannot read: more than the \(maxBytes) bytes a profile may have")
            }
            bytes.append(contentsOf: chunk[0..<n])
        }
    }

    /// Writes `bytes` to `path`: through a symbolic link to its target, which is replaced atomically (a temporary file
    /// renamed over it) keeping its permission bits; straight into anything that is not a regular file (a FIFO, a
    /// device); into this process's own descriptor for `/dev/stdout`, `/dev/stderr`, `/dev/fd/N` and
    /// `/proc/self/fd/N` (resolved, they name the file the shell opened, `>> app.log`, which a rename would replace).
    /// Before, the rename replaced the link itself, or the device node (`--out /dev/null` as root turned the system's
    /// /dev/null into a file), and a replaced file lost its mode.
    public static func write(_ bytes: [UInt8], to given: String) throws(ProfilingError) {
        if let fd = standardDescriptor(given) { return try writeAll(bytes, to: fd, named: given) }
        let path = URL(fileURLWithPath: given).resolvingSymlinksInPath().path
        var info = stat()
        let exists = stat(path, &info) == 0
        if exists && info.st_mode & S_IFMT != S_IFREG {
            return try writeDirectly(bytes, to: path, named: given)
        }
        let folder = (path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.isEmpty ? "." : folder, isDirectory: &isDirectory),
            isDirectory.boolValue
        else {
            throw ProfilingError(file: path, message: "cannot write: no such folder \"\(folder)\"")
        }
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
            if exists { chmod(path, info.st_mode & 0o7777) }
        } catch {
            // Foundation's sentence, not its description (a dump of the error's fields: "Error Domain=NSCocoaErrorDomain
            // Code=4 ... UserInfo={...}", for `--out /proc/version`).
            let reason =
                FileManager.default.isWritableFile(atPath: folder.isEmpty ? "." : folder)
                ? error.localizedDescription : "permission denied"
            throw ProfilingError(file: path, message: "cannot write: \(reason)")
        }
    }

    /// The descriptor a path of this process's own descriptors names (`/dev/stdout`, `/dev/stderr`, `/dev/fd/N`,
    /// `/proc/self/fd/N`), if it is one.
    static func standardDescriptor(_ path: String) -> Int32? {
        switch path {
        case "/dev/stdout": return 1
        case "/dev/stderr": return 2
        default:
            for prefix in ["/dev/fd/", "/proc/self/fd/"] where path.hasPrefix(prefix) {
                return Int32(path.dropFirst(prefix.count))
            }
            return nil
        }
    }

    /// Writes `bytes` into the existing non-regular file at `path` (a FIFO, a device: opened for writing, never
    /// truncated); errors name `name`, as given.
    private static func writeDirectly(_ bytes: [UInt8], to path: String, named name: String) throws(ProfilingError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ProfilingError(file: name, message: "cannot write: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        try writeAll(bytes, to: fd, named: name)
    }

    /// Writes all of `bytes` to `fd`; errors name `name`.
    private static func writeAll(_ bytes: [UInt8], to fd: Int32, named name: String) throws(ProfilingError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ProfilingError(file: name, message: "cannot write: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }
}

/// `read(2)` (inside ``Profiler``, `read` names its own method).
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(fd, buffer, count)
}
