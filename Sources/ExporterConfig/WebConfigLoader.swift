import Foundation
import Yams

/// Reads and validates the web configuration file (`--web.config.file`, exporter-toolkit format). Every
/// problem is reported as `file:line:column: field: message`, like ``ConfigLoader``; unknown fields are
/// errors, relative file paths resolve against the file's directory, and referenced files must be readable.
/// The file is bounded like the models' (``ConfigLimits``).
public enum WebConfigLoader {
    /// The highest bcrypt cost a `basic_auth_users` hash may have: `htpasswd -C`'s (a check at 17 takes seconds).
    public static let maxBcryptCost = 17

    /// What is wrong with `hash` as a `basic_auth_users` hash, nil when it is usable: a bcrypt hash (`$2y$`, `$2b$`
    /// or `$2a$`, a two-digit cost, 53 characters of bcrypt's base64) that bcrypt could have made (its last
    /// character), of cost at most ``maxBcryptCost``. The file's loader checks it, and `Exporter` a configuration
    /// built in code.
    public static func basicAuthHashProblem(_ hash: String) -> String? { WebReader.basicAuthHashProblem(hash) }

    /// Reads `path` and validates it.
    public static func load(file path: String) throws(ConfigErrors) -> WebConfiguration {
        let text = try ConfigLoader.read(path)
        let folder = (path as NSString).deletingLastPathComponent
        return try parse(text, file: path, baseDirectory: folder.isEmpty ? "." : folder)
    }

    /// Validates YAML `text`, naming `file` in errors. An empty document is the default configuration.
    public static func parse(
        _ text: String, file: String, baseDirectory: String = "."
    ) throws(ConfigErrors)
        -> WebConfiguration
    {
        guard let root = try ConfigLoader.compose(text, file: file) else { return WebConfiguration() }
        var reader = WebReader(reader: Reader(file: file, baseDirectory: baseDirectory, knownCollectors: []))
        let configuration = reader.configuration(root)
        if !reader.reader.errors.isEmpty { throw ConfigErrors(reader.reader.errors) }
        return configuration
    }
}

/// Walks the web configuration's YAML tree with the shared ``Reader`` helpers.
struct WebReader {
    var reader: Reader

    mutating func configuration(_ root: Node) -> WebConfiguration {
        var configuration = WebConfiguration()
        guard
            let fields = reader.mapping(
                root, "", allowed: ["tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"])
        else { return configuration }
        for (key, value) in fields {
            switch key {
            case "tls_server_config": configuration.tls = tls(value, key)
            case "http_server_config": httpServer(value, key, into: &configuration)
            case "rate_limit": configuration.rateLimit = rateLimit(value, key)
            default: configuration.basicAuthUsers = users(value, key)
            }
        }
        return configuration
    }

    // MARK: tls_server_config

    mutating func tls(_ node: Node, _ path: String) -> WebConfiguration.TLSServer? {
        let allowed = [
            "cert_file", "key_file", "cert", "key", "client_auth_type", "client_ca_file", "client_ca",
            "client_allowed_sans", "min_version", "max_version", "cipher_suites", "curve_preferences",
            "prefer_server_cipher_suites",
        ]
        guard let fields = reader.mapping(node, path, allowed: allowed) else { return nil }
        var values: [String: (node: Node, text: String)] = [:]
        var lists: [String: [String]] = [:]
        var preferServer = true
        var sans: [String] = []
        var sansNode: Node? = nil
        for (key, value) in fields {
            let field = "\(path).\(key)"
            switch key {
            case "cipher_suites":
                lists[key] = choices(value, field, from: WebConfiguration.cipherSuiteNames)
            case "curve_preferences":
                lists[key] = choices(value, field, from: WebConfiguration.curves)
            case "prefer_server_cipher_suites":
                if let flag = bool(value, field) { preferServer = flag }
            case "client_allowed_sans":
                sansNode = value
                sans = allowedSANs(value, field)
            default:
                if let text = reader.string(value, field) { values[key] = (value, text) }
            }
        }
        // A certificate and a key, each from a file or written here (exporter-toolkit's `cert`, `key`).
        let certFile = either(file: "cert_file", inline: "cert", values, path, in: node, holding: .certificate)
        let keyFile = either(file: "key_file", inline: "key", values, path, in: node, holding: .privateKey)
        var tls = WebConfiguration.TLSServer(certFile: certFile ?? "", keyFile: keyFile ?? "")
        tls.cert = values["cert_file"] == nil ? values["cert"]?.text : nil
        tls.key = values["key_file"] == nil ? values["key"]?.text : nil
        if values["client_ca_file"] != nil, let (caNode, _) = values["client_ca"] {
            reader.fail(caNode, "\(path).client_ca", "give client_ca_file or client_ca, not both")
        }
        tls.clientCAFile = values["client_ca_file"].flatMap {
            file($0, "\(path).client_ca_file", in: node, holding: .certificate)
        }
        if let (caNode, text) = values["client_ca"], values["client_ca_file"] == nil {
            if text.contains("-----BEGIN CERTIFICATE-----") {
                tls.clientCA = text
            } else {
                reader.fail(caNode, "\(path).client_ca", "holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
            }
        }
        tls.cipherSuites = lists["cipher_suites"] ?? []
        tls.curvePreferences = lists["curve_preferences"] ?? []
        tls.preferServerCipherSuites = preferServer
        if let (typeNode, written) = values["client_auth_type"] {
            let type = written == "RequireClientCert" ? "RequireAnyClientCert" : written
            if WebConfiguration.clientAuthTypes.contains(type) {
                tls.clientAuthType = type
            } else {
                reader.fail(
                    typeNode, "\(path).client_auth_type",
                    "unknown value \"\(written)\" (expected one of: \(WebConfiguration.clientAuthTypes.joined(separator: ", ")))"
                )
            }
        }
        let caNode = values["client_ca_file"]?.node ?? values["client_ca"]?.node
        if let caNode, tls.clientAuthType == "NoClientCert" {
            reader.fail(caNode, "\(path).client_ca_file", "client CAs are configured without a client_auth_type")
        }
        if ["RequireAndVerifyClientCert", "VerifyClientCertIfGiven"].contains(tls.clientAuthType) && caNode == nil {
            reader.fail(
                values["client_auth_type"]?.node, "\(path).client_ca_file",
                "required by client_auth_type \(tls.clientAuthType) (or client_ca)")
        }
        if let sansNode {
            if ["RequireAnyClientCert", "RequireAndVerifyClientCert"].contains(tls.clientAuthType) {
                tls.clientAllowedSANs = sans
            } else {
                reader.fail(
                    sansNode, "\(path).client_allowed_sans",
                    "needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert (a client could "
                        + "send no certificate to match)")
            }
        }
        let minimum = version(values["min_version"], "\(path).min_version")
        let maximum = version(values["max_version"], "\(path).max_version")
        if let minimum { tls.minVersion = minimum }
        tls.maxVersion = maximum
        if let maximum, let index = WebConfiguration.tlsVersions.firstIndex(of: maximum),
            index < WebConfiguration.tlsVersions.firstIndex(of: tls.minVersion)!
        {
            reader.fail(
                values["max_version"]?.node, "\(path).max_version", "\(maximum) is below min_version \(tls.minVersion)")
        }
        return certFile != nil && keyFile != nil ? tls : nil
    }

    /// What a PEM file named in `tls_server_config` must hold: a block whose label ends so (`CERTIFICATE`;
    /// `PRIVATE KEY`, `EC PRIVATE KEY`, `RSA PRIVATE KEY`).
    enum PEMContent: String {
        case certificate = "CERTIFICATE"
        case privateKey = "PRIVATE KEY"

        /// Whether `text` has a `-----BEGIN …-----` line of this content; and the label of the first block, if any.
        func found(in text: Substring) -> (holds: Bool, first: String?) {
            var first: String?
            for line in text.split(whereSeparator: \.isNewline) {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                guard trimmed.hasPrefix("-----BEGIN "), trimmed.hasSuffix("-----"), trimmed.count > 16 else { continue }
                let label = String(trimmed.dropFirst(11).dropLast(5))
                if label == rawValue || label.hasSuffix(" " + rawValue) { return (true, label) }
                if first == nil { first = label }
            }
            return (false, first)
        }
    }

    /// A readable file under `file`, or (nil path, "" returned) PEM text under `inline`; exactly one of them.
    private mutating func either(
        file fileKey: String, inline: String, _ values: [String: (node: Node, text: String)], _ path: String,
        in parent: Node, holding content: PEMContent
    ) -> String? {
        switch (values[fileKey], values[inline]) {
        case (.some, .some(let written)):
            reader.fail(written.node, "\(path).\(inline)", "give \(fileKey) or \(inline), not both")
            return nil
        case (nil, .some(let written)):
            guard written.text.contains("-----BEGIN ") else {
                // The value itself is never repeated: it may be a key.
                reader.fail(written.node, "\(path).\(inline)", "is not PEM text (no -----BEGIN line)")
                return nil
            }
            return ""
        default:
            return file(values[fileKey], "\(path).\(fileKey)", in: parent, alternative: inline, holding: content)
        }
    }

    /// `client_allowed_sans`: a list of names (no empty one, no NUL).
    private mutating func allowedSANs(_ node: Node, _ field: String) -> [String] {
        guard let items = reader.sequence(node, field) else { return [] }
        var out: [String] = []
        for (index, item) in items.enumerated() {
            guard let text = reader.string(item, "\(field)[\(index)]") else { continue }
            guard !text.isEmpty, !text.contains("\0") else {
                reader.fail(item, "\(field)[\(index)]", "must be a non-empty name without NUL")
                continue
            }
            out.append(text)
        }
        if out.isEmpty && items.isEmpty { reader.fail(node, field, "empty: no client could connect") }
        return out
    }

    /// The most of a certificate or key file read to check what it holds (a CA bundle of a thousand certificates is
    /// ~1.5 MB; a block past this is not looked for).
    static let pemCheckBytes = 4 << 20

    /// A readable file named by `entry`, resolved against the configuration's directory, holding `content` (a
    /// swapped certificate and key, or an empty CA file, was refused only when the server started, with OpenSSL's
    /// words, "PEM lib", and neither file, line nor field).
    private mutating func file(
        _ entry: (node: Node, text: String)?, _ field: String, in parent: Node, alternative: String? = nil,
        holding content: PEMContent
    ) -> String? {
        guard let (node, text) = entry else {
            reader.fail(
                parent, field,
                "missing (required in tls_server_config\(alternative.map { ", or \($0)" } ?? ""))")
            return nil
        }
        guard !text.isEmpty else {
            reader.fail(node, field, "must not be empty")
            return nil
        }
        let resolved = text.hasPrefix("/") ? text : reader.baseDirectory + "/" + text
        // A FIFO (or socket, or device) would block the open, and OpenSSL's later: a start or reload hung for ever with
        // the stop signals held back (a probe's `mkfifo` as cert_file: only SIGKILL ended it).
        if let kind = ConfigLoader.blockingKind(resolved) {
            reader.fail(node, field, "\(resolved) is \(kind), not a regular file: write it to a file first")
            return nil
        }
        guard FileManager.default.isReadableFile(atPath: resolved),
            let handle = FileHandle(forReadingAtPath: resolved)
        else {
            reader.fail(node, field, "cannot read file \(resolved)")
            return nil
        }
        let head = (try? handle.read(upToCount: Self.pemCheckBytes)) ?? nil
        try? handle.close()
        let pem = String(decoding: head ?? Data(), as: UTF8.self)
        let (holds, first) = content.found(in: pem[...])
        guard holds else {
            let kind = content == .certificate ? "certificate" : "private key"
            reader.fail(
                node, field,
                "\(resolved) holds no PEM \(kind) (-----BEGIN \(content.rawValue)-----)"
                    + (first.map { "; its first block is a \($0)" } ?? (pem.isEmpty ? "; it is empty" : "")))
            return nil
        }
        return resolved
    }

    private mutating func version(_ entry: (node: Node, text: String)?, _ field: String) -> String? {
        guard let (node, text) = entry else { return nil }
        guard WebConfiguration.tlsVersions.contains(text) else {
            reader.fail(
                node, field,
                "unknown TLS version \"\(text)\" (expected one of: \(WebConfiguration.tlsVersions.joined(separator: ", ")))"
            )
            return nil
        }
        return text
    }

    private mutating func choices(_ node: Node, _ field: String, from allowed: [String]) -> [String]? {
        guard let items = reader.sequence(node, field) else { return nil }
        var out: [String] = []
        for (index, item) in items.enumerated() {
            guard let text = reader.string(item, "\(field)[\(index)]") else { continue }
            guard allowed.contains(text) else {
                reader.fail(item, "\(field)[\(index)]", "unknown value \"\(text)\"")
                continue
            }
            out.append(text)
        }
        return out
    }

    private mutating func bool(_ node: Node, _ field: String) -> Bool? { reader.bool(node, field) }

    // MARK: http_server_config

    mutating func httpServer(_ node: Node, _ path: String, into configuration: inout WebConfiguration) {
        guard let fields = reader.mapping(node, path, allowed: ["http2", "headers"]) else { return }
        for (key, value) in fields {
            let field = "\(path).\(key)"
            if key == "http2" {
                if let flag = bool(value, field) { configuration.http2 = flag }
                continue
            }
            guard case .mapping(let headers) = value else {
                reader.fail(value, field, "expected a mapping of header names to values")
                continue
            }
            for (nameNode, valueNode) in headers {
                guard let name = reader.string(nameNode, field), let text = reader.string(valueNode, "\(field).\(name)")
                else { continue }
                guard
                    let canonical = WebConfiguration.allowedHeaders.first(where: {
                        $0.lowercased() == name.lowercased()
                    })
                else {
                    reader.fail(
                        nameNode, "\(field).\(name)",
                        "this header cannot be configured (allowed: \(WebConfiguration.allowedHeaders.joined(separator: ", ")))"
                    )
                    continue
                }
                // By bytes (RFC 9110 §5.5: a field value is visible characters, spaces and tabs): as `Character`s,
                // a CR LF pair is one, equal to neither CR nor LF, and such a value was taken, then sent on no
                // response (the server drops a field it cannot send).
                guard text.utf8.allSatisfy({ $0 == 0x09 || $0 >= 0x20 && $0 != 0x7F }) else {
                    reader.fail(
                        valueNode, "\(field).\(name)",
                        "must not contain CR, LF, NUL or another control character")
                    continue
                }
                // As exporter-toolkit: `X-Frame-Options: allowall` was served, where Go refuses the file.
                if let values = WebConfiguration.allowedHeaderValues[canonical], !values.contains(text) {
                    reader.fail(
                        valueNode, "\(field).\(name)",
                        "expected one of \(values.map { "\"\($0)\"" }.joined(separator: ", ")), not \"\(text)\"")
                    continue
                }
                configuration.headers.append(WebConfiguration.Header(name: canonical, value: text))
            }
        }
    }

    // MARK: rate_limit

    /// `{interval, burst}`; `interval: 0s` (or none) turns the limit off, as in exporter-toolkit. A burst of 0 with an
    /// interval refuses every request there (Go's limiter allows nothing): refused here as a mistake.
    mutating func rateLimit(_ node: Node, _ path: String) -> WebConfiguration.RateLimit? {
        guard let fields = reader.mapping(node, path, allowed: ["interval", "burst"]) else { return nil }
        var interval: Duration? = nil
        var burst = 0
        var burstNode: Node? = nil
        for (key, value) in fields {
            let field = "\(path).\(key)"
            if key == "interval" {
                // Go's duration syntax, as exporter-toolkit reads it (`time.ParseDuration`: `1.5s`, `500us`,
                // `1m30s`, `48h`; `0` or `0s` is off).
                guard let text = reader.string(value, field) else { continue }
                guard let parsed = DurationParser.parseGo(text), parsed >= .zero else {
                    reader.fail(value, field, "\"\(text)\" is not a duration (like 100ms, 1.5s, 1m30s, 2h)")
                    continue
                }
                interval = parsed
            } else {
                burstNode = value
                burst = reader.int(value, field, range: 0...1_000_000) ?? 1
            }
        }
        guard let interval, interval > .zero else { return nil }
        guard burst >= 1 else {
            reader.fail(
                burstNode ?? node, "\(path).burst",
                burstNode == nil
                    ? "required with an interval (the requests allowed at once; 0 would refuse every request)"
                    : "must be at least 1 (0 would refuse every request)")
            return nil
        }
        return WebConfiguration.RateLimit(interval: interval, burst: burst)
    }

    // MARK: basic_auth_users

    mutating func users(_ node: Node, _ path: String) -> [String: String] {
        guard case .mapping(let entries) = node else {
            reader.fail(node, path, "expected a mapping of user names to bcrypt hashes")
            return [:]
        }
        var users: [String: String] = [:]
        for (nameNode, hashNode) in entries {
            guard let name = reader.string(nameNode, path) else { continue }
            let field = "\(path).\(name)"
            guard !name.isEmpty, !name.contains(":") else {
                reader.fail(nameNode, field, "a user name must be non-empty and contain no ':'")
                continue
            }
            guard let hash = reader.string(hashNode, field) else { continue }
            if let problem = Self.basicAuthHashProblem(hash) {
                reader.fail(hashNode, field, problem)
                continue
            }
            users[name] = hash
        }
        return users
    }

    /// The characters a bcrypt hash can end with: those of bcrypt's base64 alphabet whose low 2 bits are zero.
    static let canonicalLast = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".enumerated()
        .filter { $0.offset % 4 == 0 }.map { String($0.element) }.joined()

    /// Whether a hash (``isBcryptHash(_:)``) ends as bcrypt writes it (``canonicalLast``).
    static func hasCanonicalEnd(_ hash: String) -> Bool {
        guard let last = hash.utf8.last else { return false }
        return canonicalLast.utf8.contains(last)
    }

    /// The highest bcrypt cost a configured hash may have (``WebConfigLoader/maxBcryptCost``).
    static let maxBcryptCost = WebConfigLoader.maxBcryptCost

    /// What is wrong with `hash` as a `basic_auth_users` hash, nil when it is usable: a bcrypt hash (`$2y$`, `$2b$`
    /// or `$2a$`, a two-digit cost, 53 characters of bcrypt's base64) that bcrypt could have made (its last
    /// character), of cost at most ``maxBcryptCost`` (``WebConfigLoader/basicAuthHashProblem(_:)``).
    static func basicAuthHashProblem(_ hash: String) -> String? {
        guard isBcryptHash(hash), let cost = bcryptCost(hash) else {
            return "expected a bcrypt hash ($2y$, $2b$ or $2a$, cost 04-\(maxBcryptCost), 60 characters)"
        }
        // bcrypt writes the last of its 31 characters from 4 bits, the rest zero: one that is not so is no
        // hash bcrypt made, and no password matches it (it was taken, and its user could never log in).
        guard hasCanonicalEnd(hash) else {
            return
                "not a hash bcrypt makes: its last character must be one of \(canonicalLast) (no password matches it)"
        }
        // Every check of an unknown user runs at the highest configured cost, and a bcrypt run cannot be stopped:
        // one request against a cost-31 hash held a core for days, and every uncached login got 503 meanwhile.
        guard cost <= maxBcryptCost else {
            return
                "bcrypt cost \(cost) is above \(maxBcryptCost) (htpasswd -C's highest): each step doubles a check's time, and cost \(maxBcryptCost) already takes seconds; make the hash again with htpasswd -nB -C 10 (or up to \(maxBcryptCost))"
        }
        return nil
    }

    /// The cost of a `$2?$NN$` hash: two ASCII digits (`Int` alone took `+5`, a cost crypt refuses: no password
    /// matched such a hash).
    static func bcryptCost(_ hash: String) -> Int? {
        let bytes = Array(hash.utf8)
        guard bytes.count >= 7, bytes[4] >= 0x30, bytes[4] <= 0x39, bytes[5] >= 0x30, bytes[5] <= 0x39 else {
            return nil
        }
        return Int(bytes[4] - 0x30) * 10 + Int(bytes[5] - 0x30)
    }

    /// `$2y$10$` + 53 characters of bcrypt's base64 alphabet.
    static func isBcryptHash(_ hash: String) -> Bool {
        let bytes = Array(hash.utf8)
        guard bytes.count == 60, hash.hasPrefix("$2y$") || hash.hasPrefix("$2b$") || hash.hasPrefix("$2a$"),
            bytes[6] == UInt8(ascii: "$"), let cost = bcryptCost(hash), (4...31).contains(cost)
        else { return false }
        return bytes[7...].allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "/"):
                true
            default: false
            }
        }
    }
}
