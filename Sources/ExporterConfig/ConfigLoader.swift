import Exposition
import Foundation
import Yams

/// Reads and validates the configuration file. Every problem is reported with its file, line, column and
/// field path; loading goes on after a problem, so one run lists them all. A file beyond one of
/// ``ConfigLimits`` (size, YAML alias expansion, list length) is refused with the place where it passes.
public enum ConfigLoader {
    /// Collector names every model may use without further registration.
    public static let builtInCollectors: Set<String> = ["service", "drift", "quality", "fairness", "llm"]

    /// Reads `path` and validates it. `knownCollectors` are the collector names that exist in this
    /// process (built-in plus user-registered). With `referencesMustExist` false, a model's `reference`
    /// file need not exist yet (for `mlops-exporter profile`, which writes it).
    public static func load(
        file path: String, knownCollectors: Set<String> = builtInCollectors, referencesMustExist: Bool = true,
        upstreamCheck: UpstreamCheck? = nil, listenOverlap: ListenOverlap? = nil
    ) throws(ConfigErrors) -> ExporterConfiguration {
        let text = try read(path)
        let folder = (path as NSString).deletingLastPathComponent
        return try parse(
            text, file: path, baseDirectory: folder.isEmpty ? "." : folder, knownCollectors: knownCollectors,
            referencesMustExist: referencesMustExist, upstreamCheck: upstreamCheck, listenOverlap: listenOverlap)
    }

    /// ``load(file:knownCollectors:referencesMustExist:upstreamCheck:)`` that hands back what it could read beside the
    /// problems it found, instead of throwing them: the configuration without the models that have problems. For
    /// `check-config`, which builds the models it could read, so that their collector options' problems are listed
    /// with the file's (a model with a problem hid every other model's option errors). Throws only when nothing could
    /// be read (the file unreadable, not YAML, empty).
    public static func loadReadable(
        file path: String, knownCollectors: Set<String> = builtInCollectors, upstreamCheck: UpstreamCheck? = nil,
        listenOverlap: ListenOverlap? = nil
    ) throws(ConfigErrors) -> (configuration: ExporterConfiguration, problems: [ConfigError]) {
        let text = try read(path)
        let folder = (path as NSString).deletingLastPathComponent
        return try parseReadable(
            text, file: path, baseDirectory: folder.isEmpty ? "." : folder, knownCollectors: knownCollectors,
            referencesMustExist: true, upstreamCheck: upstreamCheck, listenOverlap: listenOverlap)
    }

    /// Checks the proxy's upstream host and port as the file is read (a reload resolves a changed upstream here, so
    /// that one that does not resolve refuses the reload, located); the problem, or nil. The loader itself resolves
    /// nothing (`check-config` validates files for hosts that resolve only where they are deployed).
    public typealias UpstreamCheck = @Sendable (_ host: String, _ port: Int) -> String?

    /// Whether two listen addresses (each valid) cannot both be bound, as the server binds them: `proxy.listen`'s are
    /// checked against each other as the file is read (an overlap passed check-config and stopped `serve`, without
    /// file or line). The loader knows no sockets: without it, overlaps are left to the start.
    public typealias ListenOverlap = @Sendable (_ first: String, _ second: String) -> Bool

    /// Validates YAML `text`, naming `file` in errors; relative paths resolve against `baseDirectory`.
    /// `referencesMustExist` as in ``load(file:knownCollectors:referencesMustExist:)``.
    public static func parse(
        _ text: String, file: String, baseDirectory: String = ".", knownCollectors: Set<String> = builtInCollectors,
        referencesMustExist: Bool = true, upstreamCheck: UpstreamCheck? = nil, listenOverlap: ListenOverlap? = nil
    ) throws(ConfigErrors) -> ExporterConfiguration {
        let (configuration, problems) = try parseReadable(
            text, file: file, baseDirectory: baseDirectory, knownCollectors: knownCollectors,
            referencesMustExist: referencesMustExist, upstreamCheck: upstreamCheck, listenOverlap: listenOverlap)
        if !problems.isEmpty { throw ConfigErrors(problems) }
        return configuration
    }

    /// ``parse(_:file:baseDirectory:knownCollectors:referencesMustExist:upstreamCheck:)``'s configuration (the models
    /// with problems left out) and problems.
    static func parseReadable(
        _ text: String, file: String, baseDirectory: String, knownCollectors: Set<String>,
        referencesMustExist: Bool, upstreamCheck: UpstreamCheck?, listenOverlap: ListenOverlap? = nil
    ) throws(ConfigErrors) -> (configuration: ExporterConfiguration, problems: [ConfigError]) {
        var reader = Reader(file: file, baseDirectory: baseDirectory, knownCollectors: knownCollectors)
        reader.referencesMustExist = referencesMustExist
        reader.upstreamCheck = upstreamCheck
        reader.listenOverlap = listenOverlap
        guard let root = try compose(text, file: file) else {
            throw ConfigErrors([ConfigError(file: file, line: 0, column: 0, field: "", message: "the file is empty")])
        }
        let configuration = reader.configuration(root)
        return (configuration, reader.errors)
    }

    /// libyaml's `problem` in the user's terms: its nesting limit names the C call that sets it ("Maximum nesting level
    /// reached, set with yaml_set_max_nest_level()"), which a user of the exporter cannot make.
    static func userFacing(_ problem: String) -> String {
        problem.hasPrefix("Maximum nesting level reached")
            ? "nested deeper than \(libyamlMaximumNesting) levels of mappings and sequences" : problem
    }

    /// libyaml's default nesting limit (`yaml_set_max_nest_level`, not changed by Yams).
    static let libyamlMaximumNesting = 1000

    static func yamlError(_ error: any Error, file: String, text: String = "") -> ConfigError {
        if let y = error as? YamlError {
            switch y {
            case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
                .composer(_, let problem, let mark, _):
                return ConfigError(
                    file: file, line: mark.line, column: mark.column, field: "",
                    message: "invalid YAML: \(userFacing(problem))")
            case .duplicatedKeysInMapping(let duplicates, let context):
                // Yams marks the mapping; the key's second line is where the user looks (it was the mapping's start).
                let key = duplicates.sorted().first ?? ""
                let second = secondOccurrence(
                    of: key, inBlockMappingAt: context.mark.line, column: context.mark.column, in: text)
                let at = second ?? (context.mark.line, context.mark.column)
                // The whole field path where the block mapping's lines tell it (`models[0].task`, not `task`).
                let field = second.flatMap { fieldPath(of: key, line: $0.line, column: $0.column, in: text) } ?? key
                return ConfigError(
                    file: file, line: at.line, column: at.column, field: field,
                    message: duplicates.count == 1
                        ? "key given twice in one mapping"
                        : "key given twice in one mapping (and \(duplicates.sorted().dropFirst().map { "\"\($0)\"" }.joined(separator: ", ")))"
                )
            case .reader(let problem, let offset, _, let yaml):
                // Input libyaml refuses to read (control characters, invalid UTF-8): Yams' description would
                // quote the line over three lines.
                let (line, column) = offset.map { location(ofCharacter: $0, in: yaml) } ?? (0, 0)
                return ConfigError(
                    file: file, line: line, column: column, field: "", message: "invalid YAML: \(problem)")
            default: break
            }
        }
        return ConfigError(file: file, line: 0, column: 0, field: "", message: "invalid YAML: \(error)")
    }

    /// Where `key` is given a second time in the block mapping whose first key is at `line`:`column` (from 1): the
    /// lines from there at that indentation, until one less indented; nil when not found so (a flow mapping, quoting).
    static func secondOccurrence(
        of key: String, inBlockMappingAt line: Int, column: Int, in text: String
    )
        -> (line: Int, column: Int)?
    {
        guard line > 0, column > 0, !key.isEmpty else { return nil }
        // Lines as YAML counts them: a CR alone breaks one too (splitting at LF only, a mapping's line past the
        // last one trapped: found by Fuzz/ config).
        let lines = yamlLines(text)
        guard line - 1 < lines.count else { return nil }
        var seen = 0
        for index in (line - 1)..<lines.count {
            let bytes = Array(lines[index])
            let indentation = bytes.prefix { $0 == UInt8(ascii: " ") }.count
            let blank = indentation == bytes.count || bytes[indentation] == UInt8(ascii: "#")
            if blank { continue }
            // The mapping's first line may start with `- ` before its key; later ones are indented to the key.
            if index > line - 1 && indentation < column - 1 { return nil }
            guard bytes.count >= column - 1 + key.utf8.count + 1, indentation <= column - 1 else { continue }
            let rest = bytes[(column - 1)...]
            guard rest.starts(with: Array(key.utf8)) else { continue }
            let after = rest.dropFirst(key.utf8.count).drop { $0 == UInt8(ascii: " ") }
            guard after.first == UInt8(ascii: ":") else { continue }
            seen += 1
            if seen == 2 { return (index + 1, column) }
        }
        return nil
    }

    /// The field path (`models[0].task`) of block mapping key `key` at `line`:`column` (from 1), read from the lines
    /// above it as block YAML lays them out: each less indented `name:` line is a parent mapping's key, each `- ` a
    /// sequence entry counted among its siblings. Nil where the layout is not plain block style (flow collections,
    /// explicit or quoted keys), so that the caller falls back to the key alone.
    static func fieldPath(of key: String, line: Int, column: Int, in text: String) -> String? {
        let lines = yamlLines(text).map { layout(Array($0)) }
        guard line >= 1, line <= lines.count else { return nil }
        var parts = [key]  // innermost first
        var index = line - 1
        // The column of the node whose parent is sought: a key's, or a sequence entry's dash (`inSequence`).
        var at = column - 1
        var inSequence = false
        var reachedTop = false
        // Lines looked at, bounded: a 2 MiB file of short lines nested deep would otherwise cost lines × depth.
        var budget = 4_000_000
        // Each step moves up a line or out to a less indented column: bounded by the text's size.
        for _ in 0...(lines.count + text.utf8.count) {
            guard let here = lines[index] else { return nil }
            // An entry marker before the node on its own line: the node is that sequence entry (or in it); its index
            // is the number of entries of the same sequence above.
            if let dash = here.dashes.last(where: { $0 < at }) {
                var count = 0
                for k in stride(from: index - 1, through: 0, by: -1) {
                    budget -= 1
                    if budget < 0 { return nil }
                    guard let other = lines[k] else { continue }
                    let first = other.dashes.first ?? other.keyColumn
                    if first < dash || (first == dash && other.dashes.first != dash) { break }
                    if other.dashes.contains(dash) { count += 1 }
                }
                parts.append("[\(count)]")
                at = dash
                inSequence = true
                continue
            }
            if at == 0 && !inSequence {
                reachedTop = true
                break
            }
            // Upward: deeper lines and siblings are passed; the line opening the sequence entry this mapping is in,
            // or the parent key (less indented; for a sequence, at its dashes' column too), ends the search.
            var next: Int?
            for k in stride(from: index - 1, through: 0, by: -1) {
                budget -= 1
                if budget < 0 { return nil }
                guard let other = lines[k] else { continue }
                let first = other.dashes.first ?? other.keyColumn
                if !inSequence, let last = other.dashes.last, last < at, other.keyColumn >= at {
                    next = k
                    break
                }
                if first > at || (first == at && (inSequence ? !other.dashes.isEmpty : other.dashes.isEmpty)) {
                    continue
                }
                guard let name = other.key, other.keyColumn <= at else { return nil }
                parts.append(name)
                at = other.keyColumn
                inSequence = false
                next = k
                break
            }
            guard let found = next else { return nil }
            index = found
        }
        guard reachedTop else { return nil }
        var path = ""
        for part in parts.reversed() { path += part.hasPrefix("[") || path.isEmpty ? part : "." + part }
        return path
    }

    /// A line's block layout: the columns of its `- ` entry markers, then the column of what follows them and, when
    /// that is a plain `name:` key, its name. Nil for a blank or comment line.
    static func layout(_ bytes: [UInt8]) -> (dashes: [Int], keyColumn: Int, key: String?)? {
        var i = 0
        var dashes: [Int] = []
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: " ") {
                i += 1
            } else if bytes[i] == UInt8(ascii: "-") && (i + 1 == bytes.count || bytes[i + 1] == UInt8(ascii: " ")) {
                dashes.append(i)
                i += 1
            } else {
                break
            }
        }
        guard i < bytes.count, bytes[i] != UInt8(ascii: "#") else { return dashes.isEmpty ? nil : (dashes, i, nil) }
        // A plain key: text up to a `:` followed by a space or the line's end (no quote, flow or `?` first).
        let opening: [UInt8] = [
            UInt8(ascii: "{"), UInt8(ascii: "["), UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "?"),
        ]
        guard !opening.contains(bytes[i]) else { return (dashes, i, nil) }
        var j = i
        while j < bytes.count {
            if bytes[j] == UInt8(ascii: ":") && (j + 1 == bytes.count || bytes[j + 1] == UInt8(ascii: " ")) { break }
            j += 1
        }
        guard j < bytes.count else { return (dashes, i, nil) }
        let name = String(decoding: bytes[i..<j], as: UTF8.self).trimmingCharacters(in: .whitespaces)
        return (dashes, i, name.isEmpty ? nil : name)
    }

    /// The lines of `text` as YAML counts them: a lone CR breaks one too, CRLF is one break.
    static func yamlLines(_ text: String) -> [ArraySlice<UInt8>] {
        var lines: [ArraySlice<UInt8>] = []
        let all = Array(text.utf8)
        var start = 0
        var at = 0
        while at < all.count {
            if all[at] == 0x0A || all[at] == 0x0D {
                lines.append(all[start..<at])
                if all[at] == 0x0D && at + 1 < all.count && all[at + 1] == 0x0A { at += 1 }  // CRLF: one break
                start = at + 1
            }
            at += 1
        }
        lines.append(all[start...])
        return lines
    }

    /// Line and column (from 1) of the character `offset` characters into `text`.
    static func location(ofCharacter offset: Int, in text: String) -> (line: Int, column: Int) {
        let before = text.prefix(offset)
        let line = 1 + before.count { $0.isNewline }
        return (line, 1 + before.reversed().prefix { !$0.isNewline }.count)
    }
}

/// Walks the YAML tree, building typed values and collecting errors.
struct Reader {
    let file: String
    let baseDirectory: String
    let knownCollectors: Set<String>
    var referencesMustExist = true
    var upstreamCheck: ConfigLoader.UpstreamCheck?
    var listenOverlap: ConfigLoader.ListenOverlap?
    /// Model names the exporter's own series use as `model` label values, and what for.
    static let reservedModelNames = [
        ExporterConfiguration.serviceModelName: "service-wide SLOs",
        ExporterConfiguration.unknownModelName: "requests to models that are not configured",
        ExporterConfiguration.unroutedModelName: "proxied requests no route matched",
    ]
    var errors: [ConfigError] = []
    /// Names of models listed in the file that have errors (left out of the configuration): a route naming one says
    /// so, instead of calling it unknown.
    var invalidModelNames: Set<String> = []
    /// Models listed with errors elsewhere whose name and latency buckets were read: the service-wide latency SLO's
    /// threshold is checked against their buckets too, so that one run reports that problem with the others.
    var refusedModelsWithBuckets: [ModelConfiguration] = []

    /// `path` resolved against ``baseDirectory``; as given when absolute or when there is no base directory
    /// (a configuration built in code: relative to the working directory).
    func resolve(_ path: String) -> String {
        path.hasPrefix("/") || baseDirectory.isEmpty ? path : baseDirectory + "/" + path
    }

    mutating func fail(_ node: Node?, _ field: String, _ message: String) {
        errors.append(
            ConfigError(
                file: file, line: node?.mark?.line ?? 0, column: node?.mark?.column ?? 0, field: field,
                message: message))
    }

    // MARK: Shapes

    /// The value of `key` in the mapping `node` (nil when absent or not a mapping), reporting nothing.
    static func member(_ node: Node, _ key: String) -> Node? {
        guard case .mapping(let m) = node else { return nil }
        return m.first { $0.key.string == key }?.value
    }

    mutating func mapping(_ node: Node, _ field: String, allowed: [String]) -> [(key: String, value: Node)]? {
        guard case .mapping(let m) = node else {
            fail(node, field, "expected a mapping")
            return nil
        }
        var out: [(String, Node)] = []
        for (k, v) in m {
            guard let key = k.string else {
                fail(k, field, "keys must be strings")
                continue
            }
            if !allowed.contains(key) {
                fail(
                    k, field.isEmpty ? key : "\(field).\(key)",
                    "unknown field (expected one of: \(allowed.joined(separator: ", ")))")
                continue
            }
            out.append((key, v))
        }
        return out
    }

    /// The items of list `node`, at most ``ConfigLimits/maxListItems``.
    mutating func sequence(_ node: Node, _ field: String) -> [Node]? {
        guard case .sequence(let s) = node else {
            fail(node, field, "expected a list")
            return nil
        }
        guard s.count <= ConfigLimits.maxListItems else {
            fail(node, field, "\(s.count) items, more than \(ConfigLimits.maxListItems) (the most a list may have)")
            return nil
        }
        return Array(s)
    }

    mutating func string(_ node: Node, _ field: String) -> String? {
        guard case .scalar(let s) = node else {
            fail(node, field, "expected a string")
            return nil
        }
        // A NUL ends a path at the system call (`st\0ate` made a directory `st`): no field takes one.
        guard !s.string.unicodeScalars.contains("\u{0}") else {
            fail(node, field, "contains a NUL character")
            return nil
        }
        // YAML's null, unquoted: no value, not the text (`token: ~` set the token "~", `versions: [v1, null]` a version
        // "null", `reference: null` a file of that name; a probe).
        if s.style == .plain, ["~", "null", "Null", "NULL"].contains(s.string) {
            fail(
                node, field, "is null (YAML's `\(s.string)`): leave the field out, or quote the text (\"\(s.string)\")")
            return nil
        }
        return s.string
    }

    mutating func strings(
        _ node: Node, _ field: String, unique: Bool = true, maxBytes: Int = ConfigLimits.maxLabelValueBytes
    ) -> [String]? {
        guard let items = sequence(node, field) else { return nil }
        var out: [String] = []
        var seen = Set<String>()
        for (i, item) in items.enumerated() {
            guard let s = string(item, "\(field)[\(i)]") else { continue }
            if s.isEmpty {
                fail(item, "\(field)[\(i)]", "must not be empty")
                continue
            }
            if s == "__other__" {
                fail(item, "\(field)[\(i)]", "\"__other__\" is reserved for values outside the list")
                continue
            }
            if s.utf8.count > maxBytes {
                fail(
                    item, "\(field)[\(i)]",
                    "\(s.utf8.count) bytes long: at most \(maxBytes) (it is a label value of its series)"
                )
                continue
            }
            if unique, case (false, let earlier) = seen.insert(s) {
                fail(item, "\(field)[\(i)]", Self.listedTwice(s, earlier: earlier))
                continue
            }
            out.append(s)
        }
        return out
    }

    /// The message for `s` listed after `earlier`, its equal under Swift's `String` comparison: the same text, or the
    /// same in another Unicode normalization (`café` in NFC and in NFD), which looks the same but is another label
    /// value, and which events would have to spell byte for byte.
    static func listedTwice(_ s: String, earlier: String) -> String {
        if earlier.sameBytes(s) { return "\"\(s)\" is listed twice" }
        return "\"\(s)\" is listed twice, in two Unicode normalizations (their UTF-8 bytes differ, so they would be "
            + "two label values that look the same): keep one"
    }

    /// Why `s` is not one of `list` (named `what`), byte for byte as events are matched, or nil when it is.
    static func notListed(_ s: String, in list: [String], _ what: String) -> String? {
        if list.contains(where: { $0.sameBytes(s) }) { return nil }
        if list.contains(s) {
            return "\"\(s)\" is one of the \(what) only in another Unicode normalization (its UTF-8 bytes differ): "
                + "spell it as the \(what) do"
        }
        return "\"\(s)\" is not one of the \(what)"
    }

    mutating func int(_ node: Node, _ field: String, range: ClosedRange<Int>) -> Int? {
        guard case .scalar(let s) = node, let v = Int(s.string) else {
            fail(node, field, "expected a whole number")
            return nil
        }
        guard range.contains(v) else {
            fail(node, field, "must be between \(range.lowerBound) and \(range.upperBound)")
            return nil
        }
        return v
    }

    /// A YAML boolean (`true`, `false`, and YAML 1.1's spellings as Yams reads them).
    mutating func bool(_ node: Node, _ field: String) -> Bool? {
        guard case .scalar(let scalar) = node, let value = Bool.construct(from: scalar) else {
            fail(node, field, "expected true or false")
            return nil
        }
        return value
    }

    mutating func number(_ node: Node, _ field: String) -> Double? {
        guard case .scalar(let s) = node, let v = Double(s.string), v.isFinite else {
            fail(node, field, "expected a finite number")
            return nil
        }
        return v
    }

    mutating func name(_ node: Node, _ field: String, what: String) -> String? {
        guard let s = string(node, field) else { return nil }
        let ok =
            !s.isEmpty && s.count <= 128
            && s.unicodeScalars.allSatisfy {
                $0.isASCII
                    && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_-.".unicodeScalars.contains($0))
            }
        guard ok, s != "__other__" else {
            fail(node, field, "\(what) \"\(s)\" must be 1-128 characters of ASCII letters, digits, '_', '-' or '.'")
            return nil
        }
        return s
    }

    static func mebibytes(_ bytes: Int) -> Int { (bytes + (1 << 20) - 1) >> 20 }

    // MARK: Document

    mutating func configuration(_ root: Node) -> ExporterConfiguration {
        var models: [ModelConfiguration] = []
        guard
            let fields = mapping(
                root, "",
                allowed: ["models", "alerting", "service_slos", "storage", "cloudevents", "proxy", "remote_write"])
        else {
            return ExporterConfiguration(models: [], source: file)
        }
        guard let modelsNode = fields.first(where: { $0.key == "models" })?.value else {
            fail(root, "models", "required: the list of models to monitor")
            return ExporterConfiguration(models: [], source: file)
        }
        guard let items = sequence(modelsNode, "models") else { return ExporterConfiguration(models: [], source: file) }
        var names = Set<String>()
        var services: [String: String] = [:]
        var stateBytes = 0
        // Every model whose latency buckets are known, valid or not (a service-wide latency SLO's threshold must be a
        // bucket of each).
        var fleet: [ModelConfiguration] = []
        // Every name listed, of refused models too: a name given twice is reported with the models' other problems
        // (it was checked only when both models were valid, so a second run showed it).
        var listed = Set<String>()
        for (i, item) in items.enumerated() {
            let model = model(item, "models[\(i)]")
            var name = model?.name
            if model == nil, case .scalar(let s)? = Self.member(item, "name") {
                invalidModelNames.insert(s.string)
                name = s.string
            }
            if let name, !listed.insert(name).inserted {
                fail(item, "models[\(i)].name", "model \"\(name)\" is configured twice")
                continue
            }
            guard let model else { continue }
            names.insert(model.name)
            fleet.append(model)
            if let capture = model.capture {
                let service = capture.inferenceService ?? model.name
                if let owner = services[service] {
                    let captureNode = Self.member(item, "capture")
                    fail(
                        captureNode.flatMap { Self.member($0, "inference_service") } ?? captureNode ?? item,
                        "models[\(i)].capture.inference_service",
                        "InferenceService \"\(service)\"\(capture.inferenceService == nil ? " (the model's name)" : ""), already used by model \"\(owner)\""
                    )
                    invalidModelNames.insert(model.name)
                    continue
                }
                services[service] = model.name
            }
            let estimate = model.estimatedStateBytes
            let total = stateBytes + estimate.pending + estimate.drift + estimate.windows
            if total > ConfigLimits.maxEstimatedStateBytes {
                let field = estimate.pending >= estimate.drift + estimate.windows ? "max_pending" : "window"
                fail(
                    Self.member(item, field) ?? item, "models[\(i)].\(field)",
                    "the models' state would take an estimated \(Self.mebibytes(total)) MiB (this model: pending "
                        + "predictions \(Self.mebibytes(estimate.pending)) MiB, drift windows "
                        + "\(Self.mebibytes(estimate.drift)) MiB, quality and fairness windows "
                        + "\(Self.mebibytes(estimate.windows)) MiB), more than the limit of "
                        + "\(Self.mebibytes(ConfigLimits.maxEstimatedStateBytes)) MiB: lower max_pending or the window's "
                        + "slices (or the categorical values listed; drift's bin_series: false drops their series), or "
                        + "split the models over exporters")
                invalidModelNames.insert(model.name)
                continue
            }
            stateBytes = total
            models.append(model)
        }
        checkLLMNames(models, items: items)
        var configuration = ExporterConfiguration(models: models, source: file)
        if let a = fields.first(where: { $0.key == "alerting" })?.value {
            configuration.alerting = alerting(a, "alerting") ?? configuration.alerting
        }
        if let s = fields.first(where: { $0.key == "service_slos" })?.value {
            let refused = refusedModelsWithBuckets.filter { !names.contains($0.name) }
            configuration.serviceSLOs = slos(
                s, "service_slos", model: ExporterConfiguration.serviceModel, fleet: fleet + refused)
        }
        checkSLONamesAcrossModels(configuration, root: root)
        if let s = fields.first(where: { $0.key == "storage" })?.value { configuration.storage = storage(s, "storage") }
        if let c = fields.first(where: { $0.key == "cloudevents" })?.value {
            configuration.cloudEvents = cloudEvents(c, "cloudevents") ?? configuration.cloudEvents
        }
        if let r = fields.first(where: { $0.key == "remote_write" })?.value {
            configuration.remoteWrite = remoteWrite(r, "remote_write")
        }
        if let p = fields.first(where: { $0.key == "proxy" })?.value {
            configuration.proxy = proxy(p, "proxy", models: models)
        }
        return configuration
    }

    /// The generated rules name a group per SLO `mlops-slo-<model>-<slo>`, and a Sloth spec an SLO
    /// `<model>-<slo>` (`service-<slo>` for a service-wide one): names may hold `-`, so two SLOs of different models
    /// (`fraud-eu`'s `availability`, `fraud`'s `eu-availability`) could get the same one, which Prometheus refuses (a
    /// group repeated in a file) and Sloth merges. Refused here, naming the second.
    mutating func checkSLONamesAcrossModels(_ configuration: ExporterConfiguration, root: Node) {
        var groups: [String: String] = [:]
        var specs: [String: String] = [:]
        for (model, slo) in configuration.allSLOs {
            let isService = model.name == ExporterConfiguration.serviceModelName
            let owner = isService ? "service SLO \"\(slo.name)\"" : "SLO \"\(slo.name)\" of model \"\(model.name)\""
            let path = isService ? "service_slos" : "models[\(model.name)].slos"
            let group = "\(model.name)-\(slo.name)"
            let spec = "\(isService ? "service" : model.name)-\(slo.name)"
            if let other = groups[group] ?? specs[spec] {
                fail(
                    root, path,
                    "\(owner) gets the same rule group or Sloth name as \(other) (\"\(spec)\"): rename one of them")
                continue
            }
            groups[group] = owner
            specs[spec] = owner
        }
    }

    static let modelFields = [
        "name", "task", "versions", "classes", "positive_class", "features", "sensitive_attributes", "reference",
        "window", "latency_buckets", "collectors", "token", "token_file", "max_series", "join_ttl", "max_pending",
        "slos", "capture", "llm",
    ]

    mutating func model(_ node: Node, _ path: String) -> ModelConfiguration? {
        guard let fields = mapping(node, path, allowed: Self.modelFields) else { return nil }
        let errorsBefore = errors.count
        func value(_ key: String) -> Node? { fields.first { $0.key == key }?.value }
        var name: String?
        if let n = value("name") {
            name = self.name(n, "\(path).name", what: "model name")
            if let dots = name, dots.allSatisfy({ $0 == "." }) {
                // The name is a path segment (`/models/{name}`, the ingestion API's URLs), and "." or ".." is one no
                // browser or URL library keeps: its page and API could not be reached.
                fail(n, "\(path).name", "model name \"\(dots)\" must not be only dots: it is part of URLs")
                name = nil
            } else if let purpose = Self.reservedModelNames[name ?? ""] {
                fail(n, "\(path).name", "\"\(name ?? "")\" is reserved for \(purpose)")
                name = nil
            }
        } else {
            fail(node, "\(path).name", "required")
        }
        var task: ModelTask?
        if let t = value("task") {
            if let s = string(t, "\(path).task") {
                task = ModelTask(rawValue: s)
                if task == nil {
                    fail(
                        t, "\(path).task",
                        "unknown task \"\(s)\" (expected one of: \(ModelTask.allCases.map(\.rawValue).joined(separator: ", ")))"
                    )
                }
            }
        } else {
            fail(node, "\(path).task", "required (\(ModelTask.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        var m = ModelConfiguration(name: name ?? "", task: task ?? .regression)
        if let v = value("versions") {
            if let versions = strings(v, "\(path).versions") {
                m.versions = versions
                // Only for a list that is empty (`[""]` is refused at its item, not again as no version at all).
                if versions.isEmpty && v.sequence?.isEmpty != false {
                    fail(v, "\(path).versions", "list at least one version")
                }
            }
        } else {
            fail(
                node, "\(path).versions",
                "required: the versions to report separately (others become __other__), e.g. [default]"
            )
        }
        // Classes (not checked against the task when the list itself was refused)
        let classesNode = value("classes")
        var classesRead = true
        if let c = classesNode {
            let classes = strings(c, "\(path).classes")
            m.classes = classes ?? []
            classesRead = classes != nil
        }
        if let p = value("positive_class") { m.positiveClass = string(p, "\(path).positive_class") }
        switch task {
        case .binaryClassification?:
            if m.classes.count != 2 && classesRead {
                fail(classesNode ?? node, "\(path).classes", "binary classification needs exactly 2 classes")
            }
            if let p = m.positiveClass {
                if classesRead, let problem = Self.notListed(p, in: m.classes, "classes") {
                    fail(value("positive_class"), "\(path).positive_class", problem)
                }
            } else {
                fail(node, "\(path).positive_class", "required for binary classification")
            }
        case .multiclassClassification?:
            if m.classes.count < 3 && classesRead {
                fail(classesNode ?? node, "\(path).classes", "multiclass classification needs at least 3 classes")
            }
            if let p = value("positive_class") {
                fail(p, "\(path).positive_class", "only binary classification has a positive class")
            }
        case .regression?, .textGeneration?:
            let kind = task == .regression ? "a regression" : "a text_generation"
            if let c = classesNode { fail(c, "\(path).classes", "\(kind) model has no classes") }
            if let p = value("positive_class") {
                fail(p, "\(path).positive_class", "\(kind) model has no classes")
            }
        case nil: break
        }
        if let r = value("reference"), let s = string(r, "\(path).reference") {
            let resolved = resolve(s)
            if referencesMustExist && !FileManager.default.isReadableFile(atPath: resolved) {
                // Most often not made yet: say how (`profile` reads this configuration, the file need not exist).
                fail(
                    r, "\(path).reference",
                    "cannot read \"\(resolved)\" (make it from reference data: mlops-exporter profile --config FILE "
                        + "--model NAME --input DATA.csv --out \(s))")
            }
            m.reference = resolved
        }
        if let f = value("features"), let items = sequence(f, "\(path).features") {
            var names = Set<String>()
            for (i, item) in items.enumerated() {
                guard let feature = feature(item, "\(path).features[\(i)]", hasReference: m.reference != nil) else {
                    continue
                }
                if !names.insert(feature.name).inserted {
                    fail(item, "\(path).features[\(i)].name", "feature \"\(feature.name)\" is listed twice")
                    continue
                }
                m.features.append(feature)
            }
        }
        if let a = value("sensitive_attributes"), let items = sequence(a, "\(path).sensitive_attributes") {
            var names = Set<String>()
            for (i, item) in items.enumerated() {
                guard let attribute = attribute(item, "\(path).sensitive_attributes[\(i)]") else { continue }
                if !names.insert(attribute.name).inserted {
                    fail(
                        item, "\(path).sensitive_attributes[\(i)].name",
                        "attribute \"\(attribute.name)\" is listed twice")
                    continue
                }
                m.sensitiveAttributes.append(attribute)
            }
        }
        if let w = value("window") { m.window = window(w, "\(path).window") ?? m.window }
        var bucketsRead = true
        if let b = value("latency_buckets") {
            let read = buckets(b, "\(path).latency_buckets")
            bucketsRead = read != nil
            m.latencyBuckets = read ?? m.latencyBuckets
        }
        if let c = value("collectors") { m.collectors = collectors(c, "\(path).collectors") }
        if let t = value("token") {
            m.token = string(t, "\(path).token")
            if value("token_file") != nil { fail(t, "\(path).token", "give token or token_file, not both") }
            // An empty token matched no `Authorization`: the model took no events at all.
            if m.token?.trimmingCharacters(in: .whitespaces).isEmpty == true {
                fail(t, "\(path).token", "must not be empty (leave token out for a model without one)")
            }
        }
        if let t = value("token_file"), let p = string(t, "\(path).token_file") {
            let resolved = resolve(p)
            var info = stat()
            // A token is short: a big file (300 MB took 900 MB and 12 s to load, at every reload too) or one that
            // would block (a FIFO) is refused before it is read.
            if stat(resolved, &info) == 0, info.st_mode & S_IFMT == S_IFREG,
                info.st_size > ConfigLimits.maxTokenFileBytes
            {
                fail(t, "\(path).token_file", "\"\(resolved)\" is larger than \(ConfigLimits.maxTokenFileBytes) bytes")
            } else if let kind = ConfigLoader.blockingKind(resolved) {
                fail(t, "\(path).token_file", "\"\(resolved)\" is \(kind), not a regular file")
            } else if let content = try? String(contentsOfFile: resolved, encoding: .utf8),
                content.utf8.count <= ConfigLimits.maxTokenFileBytes
            {
                let token = content.trimmingCharacters(in: .whitespacesAndNewlines)
                if token.isEmpty { fail(t, "\(path).token_file", "\"\(resolved)\" is empty") } else { m.token = token }
            } else {
                fail(t, "\(path).token_file", "cannot read \"\(resolved)\"")
            }
        }
        if let s = value("max_series") {
            m.maxSeries = int(s, "\(path).max_series", range: 1...10_000_000) ?? m.maxSeries
        }
        if let t = value("join_ttl"), let s = string(t, "\(path).join_ttl") {
            if let d = DurationParser.parse(s), d >= .seconds(1) {
                m.joinTTL = d
            } else {
                fail(t, "\(path).join_ttl", "\"\(s)\" is not a duration of at least 1s (like 30m, 24h, 7d)")
            }
        }
        if let n = value("max_pending") {
            m.maxPending = int(n, "\(path).max_pending", range: 0...100_000_000) ?? m.maxPending
        }
        if let l = value("llm") {
            m.llm = llm(l, "\(path).llm", model: m)
            // The section implies its collector.
            if m.llm != nil && !m.collectors.contains(where: { $0.name == "llm" }) {
                m.collectors.append(CollectorConfiguration(name: "llm"))
            }
        }
        // After llm: the ttft, tpot and goodput SLOs check its buckets and objectives.
        if let s = value("slos") {
            m.slos = slos(s, "\(path).slos", model: m, llmRefused: value("llm") != nil && m.llm == nil)
        }
        if let c = value("capture") { m.capture = capture(c, "\(path).capture", model: m) }
        m.locations = ModelLocations(
            entry: ConfigLocation(node), reference: value("reference").flatMap(ConfigLocation.init),
            capture: value("capture").flatMap(ConfigLocation.init))
        guard errors.count == errorsBefore else {
            if bucketsRead && name != nil { refusedModelsWithBuckets.append(m) }
            return nil
        }
        return m
    }

    mutating func feature(_ node: Node, _ path: String, hasReference: Bool) -> FeatureConfiguration? {
        guard let fields = mapping(node, path, allowed: ["name", "type", "values"]) else { return nil }
        func value(_ key: String) -> Node? { fields.first { $0.key == key }?.value }
        guard let n = value("name") else {
            fail(node, "\(path).name", "required")
            return nil
        }
        guard let name = self.name(n, "\(path).name", what: "feature name") else { return nil }
        guard let t = value("type") else {
            fail(node, "\(path).type", "required (numeric or categorical)")
            return nil
        }
        guard let typeName = string(t, "\(path).type") else { return nil }
        guard let kind = FeatureKind(rawValue: typeName) else {
            fail(t, "\(path).type", "unknown type \"\(typeName)\" (expected numeric or categorical)")
            return nil
        }
        var values: [String]?
        if let v = value("values") {
            if kind == .numeric {
                fail(v, "\(path).values", "only categorical features list values")
                return nil
            }
            values = strings(v, "\(path).values", maxBytes: ConfigLimits.maxCategoryBytes)
            if values?.isEmpty == true { fail(v, "\(path).values", "list at least one value") }
        } else if kind == .categorical && !hasReference {
            fail(
                node, "\(path).values",
                "a categorical feature needs its values, or a reference profile to learn them from")
            return nil
        }
        return FeatureConfiguration(name: name, kind: kind, values: values)
    }

    mutating func attribute(_ node: Node, _ path: String) -> SensitiveAttribute? {
        guard let fields = mapping(node, path, allowed: ["name", "groups", "privileged"]) else { return nil }
        func value(_ key: String) -> Node? { fields.first { $0.key == key }?.value }
        guard let n = value("name") else {
            fail(node, "\(path).name", "required")
            return nil
        }
        guard let name = self.name(n, "\(path).name", what: "attribute name") else { return nil }
        guard let g = value("groups") else {
            fail(node, "\(path).groups", "required: the groups to compare")
            return nil
        }
        guard let groups = strings(g, "\(path).groups") else { return nil }
        if groups.count < 2 {
            fail(g, "\(path).groups", "list at least two groups")
            return nil
        }
        var privileged: String?
        if let p = value("privileged") {
            privileged = string(p, "\(path).privileged")
            if let privileged, let problem = Self.notListed(privileged, in: groups, "groups") {
                fail(p, "\(path).privileged", problem)
                return nil
            }
        }
        return SensitiveAttribute(name: name, groups: groups, privileged: privileged)
    }

    mutating func window(_ node: Node, _ path: String) -> WindowConfiguration? {
        guard let fields = mapping(node, path, allowed: ["duration", "slices"]) else { return nil }
        var w = WindowConfiguration()
        for (key, value) in fields {
            switch key {
            case "duration":
                guard let s = string(value, "\(path).duration") else { continue }
                guard let d = DurationParser.parse(s) else {
                    fail(
                        value, "\(path).duration",
                        DurationParser.isZero(s)
                            ? "must be more than 0s" : "\"\(s)\" is not a duration (like 30s, 5m, 1h30m, 1d)")
                    continue
                }
                w.duration = d
            default:
                w.slices = int(value, "\(path).slices", range: 1...1000) ?? w.slices
            }
        }
        if w.duration / w.slices < .seconds(1) {
            fail(node, path, "each slice (duration / slices) must last at least 1s")
            return nil
        }
        return w
    }

    mutating func buckets(_ node: Node, _ path: String) -> [Double]? {
        guard let items = sequence(node, path) else { return nil }
        var out: [Double] = []
        for (i, item) in items.enumerated() {
            guard let v = number(item, "\(path)[\(i)]") else { return nil }
            guard v > 0 else {
                fail(item, "\(path)[\(i)]", "latency bounds must be positive")
                return nil
            }
            if let last = out.last, !(last < v) {
                fail(item, "\(path)[\(i)]", "bounds must increase strictly (\(last) then \(v))")
                return nil
            }
            out.append(v)
        }
        if out.isEmpty {
            fail(node, path, "list at least one bound")
            return nil
        }
        return out
    }

    mutating func collectors(_ node: Node, _ path: String) -> [CollectorConfiguration] {
        guard let items = sequence(node, path) else { return [] }
        var out: [CollectorConfiguration] = []
        var names = Set<String>()
        for (i, item) in items.enumerated() {
            let field = "\(path)[\(i)]"
            var config: CollectorConfiguration?
            var nameNode = item
            switch item {
            case .scalar(let s):
                config = CollectorConfiguration(name: s.string)
            case .mapping:
                guard let fields = mapping(item, field, allowed: ["name", "options"]) else { continue }
                guard let n = fields.first(where: { $0.key == "name" })?.value, let name = string(n, "\(field).name")
                else {
                    fail(item, "\(field).name", "required")
                    continue
                }
                nameNode = n
                var collector = CollectorConfiguration(name: name)
                if let o = fields.first(where: { $0.key == "options" })?.value {
                    options(o, "\(field).options", into: &collector)
                }
                config = collector
            default:
                fail(item, field, "expected a collector name or {name, options}")
            }
            guard var config else { continue }
            config.location = ConfigLocation(item)
            guard knownCollectors.contains(config.name) else {
                fail(
                    nameNode, field,
                    "unknown collector \"\(config.name)\" (known: \(knownCollectors.sorted().joined(separator: ", ")))")
                continue
            }
            if !names.insert(config.name).inserted {
                fail(nameNode, field, "collector \"\(config.name)\" is listed twice")
                continue
            }
            out.append(config)
        }
        return out
    }
}
