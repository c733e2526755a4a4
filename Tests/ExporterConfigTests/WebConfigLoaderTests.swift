import Foundation
import Testing

@testable import ExporterConfig

/// The errors of an invalid web configuration, as `line:column: field: message` strings.
private func webProblems(_ yaml: String, directory: String = ".") -> [String] {
    do {
        _ = try WebConfigLoader.parse(yaml, file: "web.yml", baseDirectory: directory)
        return []
    } catch {
        return error.errors.map { "\($0.line):\($0.column): \($0.field): \($0.message)" }
    }
}

@Suite("Web configuration file")
struct WebConfigLoaderTests {
    static let hash = "$2y$04$Q.iuDQ/WjcjA1gUDRIeH9OYhdWJx/vtjFyc0ypSQiWk58jsVizjjK"

    /// A directory holding `server.crt`, `server.key` and `ca.crt` with PEM blocks of their kinds (the loader checks
    /// each is readable and holds its kind; the blocks' contents are the TLS context's to check), and an empty
    /// `empty.pem`.
    static let directory: String = {
        let path = NSTemporaryDirectory() + "web-config-tests-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, label) in [
            ("server.crt", "CERTIFICATE"), ("server.key", "EC PRIVATE KEY"), ("ca.crt", "CERTIFICATE"),
        ] {
            let pem = "-----BEGIN \(label)-----\nAAAA\n-----END \(label)-----\n"
            _ = FileManager.default.createFile(atPath: path + "/" + name, contents: Data(pem.utf8))
        }
        _ = FileManager.default.createFile(atPath: path + "/empty.pem", contents: Data())
        return path
    }()

    @Test func anEmptyFileIsTheDefault() throws {
        let web = try WebConfigLoader.parse("", file: "web.yml")
        #expect(web == WebConfiguration())
        #expect(web.http2 && web.tls == nil && web.basicAuthUsers.isEmpty)
    }

    @Test func everyFieldIsRead() throws {
        let yaml = """
            tls_server_config:
              cert_file: server.crt
              key_file: server.key
              client_auth_type: RequireAndVerifyClientCert
              client_ca_file: ca.crt
              min_version: TLS13
              max_version: TLS13
              cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
              curve_preferences: [X25519, CurveP256]
              prefer_server_cipher_suites: false
            http_server_config:
              http2: false
              headers:
                x-frame-options: deny
                Strict-Transport-Security: max-age=31536000
            basic_auth_users:
              prom: "\(Self.hash)"
            """
        let web = try WebConfigLoader.parse(yaml, file: "web.yml", baseDirectory: Self.directory)
        let tls = try #require(web.tls)
        #expect(tls.certFile == Self.directory + "/server.crt")
        #expect(tls.keyFile == Self.directory + "/server.key")
        #expect(tls.clientCAFile == Self.directory + "/ca.crt")
        #expect(tls.clientAuthType == "RequireAndVerifyClientCert")
        #expect(tls.minVersion == "TLS13" && tls.maxVersion == "TLS13")
        #expect(tls.cipherSuites == ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"])
        #expect(tls.curvePreferences == ["X25519", "CurveP256"])
        #expect(!tls.preferServerCipherSuites)
        #expect(!web.http2)
        #expect(
            web.headers == [
                .init(name: "X-Frame-Options", value: "deny"),
                .init(name: "Strict-Transport-Security", value: "max-age=31536000"),
            ])
        #expect(web.basicAuthUsers == ["prom": Self.hash])
    }

    /// A header value with a CR LF pair, or another control character, is refused as one with a lone CR or LF is: a
    /// CR LF pair is one Swift `Character`, equal to neither, and such a value was taken, then sent on no response
    /// (a web-port probe).
    @Test(arguments: [#""private\r\nX-Injected: 1""#, #""private\n""#, #""a\u0001b""#, #""a\u007Fb""#])
    func aHeaderValueWithAControlCharacterIsRefused(value: String) {
        #expect(
            webProblems("http_server_config:\n  headers:\n    Cache-Control: \(value)\n") == [
                "3:20: http_server_config.headers.Cache-Control: must not contain CR, LF, NUL or another control character"
            ])
        #expect(webProblems("http_server_config:\n  headers:\n    Cache-Control: \"private,\tmax-age=0\"\n").isEmpty)
    }

    /// A FIFO as a TLS file: refused at once. Before, the open blocked until a writer came: `serve` hung at start (or
    /// at a reload) with the stop signals held back, and only SIGKILL ended it (a probe).
    @Test func aFIFOAsATLSFileIsRefusedAtOnce() throws {
        let fifo = Self.directory + "/fifo-\(UInt32.random(in: 0...UInt32.max)).pem"
        #expect(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        let started = ContinuousClock.now
        let found = webProblems(
            "tls_server_config:\n  cert_file: \(fifo)\n  key_file: server.key\n", directory: Self.directory)
        #expect(ContinuousClock.now - started < .seconds(2))
        #expect(
            found == [
                "2:14: tls_server_config.cert_file: \(fifo) is a FIFO, not a regular file: write it to a file first"
            ])
    }

    @Test func errorsNameLineColumnAndField() {
        let directory = Self.directory
        #expect(
            webProblems("tls_server_config:\n  cert_file: server.crt\n  key_fil: x\n", directory: directory) == [
                "2:3: tls_server_config.key_file: missing (required in tls_server_config, or key)",
                "3:3: tls_server_config.key_fil: unknown field (expected one of: cert_file, key_file, cert, key, client_auth_type, client_ca_file, client_ca, client_allowed_sans, min_version, max_version, cipher_suites, curve_preferences, prefer_server_cipher_suites)",
            ])
        #expect(
            webProblems("tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n", directory: directory)
                == ["2:14: tls_server_config.cert_file: cannot read file \(directory)/missing.crt"])
        #expect(
            webProblems(
                "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: Always\n",
                directory: directory
            ).first?.hasPrefix("4:21: tls_server_config.client_auth_type: unknown value") == true)
        #expect(
            webProblems(
                "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n",
                directory: directory) == [
                    "4:21: tls_server_config.client_ca_file: required by client_auth_type RequireAndVerifyClientCert (or client_ca)"
                ])
        #expect(
            webProblems(
                "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS13\n  max_version: TLS12\n",
                directory: directory) == ["5:16: tls_server_config.max_version: TLS12 is below min_version TLS13"])
        #expect(
            webProblems(
                "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: SSL3\n",
                directory: directory)
                == [
                    "4:16: tls_server_config.min_version: unknown TLS version \"SSL3\" (expected one of: TLS10, TLS11, TLS12, TLS13)"
                ])
        #expect(
            webProblems("basic_auth_users:\n  prom: plaintext\n") == [
                "2:9: basic_auth_users.prom: expected a bcrypt hash ($2y$, $2b$ or $2a$, cost 04-17, 60 characters)"
            ])
        // A well-formed hash of a cost no check can finish in reasonable time (a request against cost 31 held a core
        // for days); 17, htpasswd -C's highest, is taken.
        let salt = String(repeating: "a", count: 52) + "e"
        #expect(
            webProblems("basic_auth_users:\n  prom: $2y$31$\(salt)\n") == [
                "2:9: basic_auth_users.prom: bcrypt cost 31 is above 17 (htpasswd -C's highest): each step doubles a check's time, and cost 17 already takes seconds; make the hash again with htpasswd -nB -C 10 (or up to 17)"
            ])
        #expect(webProblems("basic_auth_users:\n  prom: $2y$18$\(salt)\n").count == 1)
        #expect(webProblems("basic_auth_users:\n  prom: $2y$17$\(salt)\n").isEmpty)
        // `Int` read `+5` as 5: crypt refuses that cost, so no password ever matched and nothing said why.
        #expect(
            webProblems("basic_auth_users:\n  prom: $2y$+5$\(salt)\n") == [
                "2:9: basic_auth_users.prom: expected a bcrypt hash ($2y$, $2b$ or $2a$, cost 04-17, 60 characters)"
            ])
        #expect(
            webProblems("http_server_config:\n  http2: maybe\n") == [
                "2:10: http_server_config.http2: expected true or false"
            ])
        #expect(
            webProblems("http_server_config:\n  headers:\n    Set-Cookie: a=b\n").first?.hasPrefix(
                "3:5: http_server_config.headers.Set-Cookie: this header cannot be configured") == true)
        // A certificate file where the key belongs, a key where the CA belongs, an empty CA file: named with file,
        // line and field (they were refused at the server's start with OpenSSL's "PEM lib" and no position).
        #expect(
            webProblems(
                "tls_server_config:\n  cert_file: server.crt\n  key_file: server.crt\n", directory: Self.directory)
                == [
                    "3:13: tls_server_config.key_file: \(Self.directory)/server.crt holds no PEM private key (-----BEGIN PRIVATE KEY-----); its first block is a CERTIFICATE"
                ])
        #expect(
            webProblems(
                "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: empty.pem\n",
                directory: Self.directory)
                == [
                    "5:19: tls_server_config.client_ca_file: \(Self.directory)/empty.pem holds no PEM certificate (-----BEGIN CERTIFICATE-----); it is empty"
                ])
        // The values exporter-toolkit takes for these two (`allowall` was served, where Go refuses the file).
        #expect(
            webProblems("http_server_config:\n  headers:\n    X-Frame-Options: allowall\n") == [
                #"3:22: http_server_config.headers.X-Frame-Options: expected one of "deny", "sameorigin", not "allowall""#
            ])
        #expect(
            webProblems("http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n") == [
                #"3:29: http_server_config.headers.X-Content-Type-Options: expected one of "nosniff", not "sniff""#
            ])
        #expect(webProblems("http_server_config:\n  headers:\n    X-Frame-Options: sameorigin\n").isEmpty)
        // TLS 1.3's suites, as Go's tls.CipherSuites() lists them (they were "unknown value").
        #expect(
            webProblems(
                "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
                directory: Self.directory
            ).isEmpty)
        #expect(webProblems("tls_config: {}\n").first?.hasPrefix("1:1: tls_config: unknown field") == true)
        #expect(webProblems("a: [\n").first?.contains("invalid YAML") == true)
        #expect(webProblems("a: b\n\u{0}") == ["2:1: : invalid YAML: control characters are not allowed"])
    }

    /// exporter-toolkit's fields beyond the files: inline `cert`, `key`, `client_ca`, `client_allowed_sans`, the
    /// older `RequireClientCert`, `rate_limit`. Before, each was an unknown field and the exporter did not start with
    /// a web configuration shared with Go exporters.
    @Test func toolkitFieldsBeyondTheFilesAreRead() throws {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        let key = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"
        func quoted(_ text: String) -> String { "|\n" + text.split(separator: "\n").map { "    \($0)\n" }.joined() }
        let text =
            "tls_server_config:\n  cert: \(quoted(pem))  key: \(quoted(key))  client_auth_type: RequireClientCert\n"
            + "  client_ca: \(quoted(pem))  client_allowed_sans: [scraper.example, 10.0.0.1]\n"
            + "rate_limit: {interval: 250ms, burst: 5}\n"
        let web = try WebConfigLoader.parse(text, file: "web.yml")
        let tls = try #require(web.tls)
        #expect(tls.cert == pem && tls.key == key && tls.certFile.isEmpty && tls.keyFile.isEmpty)
        #expect(tls.clientCA == pem && tls.clientCAFile == nil)
        #expect(tls.clientAuthType == "RequireAnyClientCert")
        #expect(tls.clientAllowedSANs == ["scraper.example", "10.0.0.1"])
        #expect(web.rateLimit == WebConfiguration.RateLimit(interval: .milliseconds(250), burst: 5))
        #expect(try WebConfigLoader.parse("rate_limit: {interval: 0s, burst: 0}\n", file: "w").rateLimit == nil)
        #expect(
            webProblems("tls_server_config:\n  cert: \(quoted(pem))  key: secret-not-pem\n") == [
                "6:8: tls_server_config.key: is not PEM text (no -----BEGIN line)"
            ])
        #expect(
            webProblems(
                "tls_server_config:\n  cert_file: server.crt\n  cert: \(quoted(pem))  key_file: server.key\n",
                directory: Self.directory) == ["3:9: tls_server_config.cert: give cert_file or cert, not both"])
        #expect(
            webProblems(
                "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                    + "  client_allowed_sans: [a]\n", directory: Self.directory)
                == [
                    "4:24: tls_server_config.client_allowed_sans: needs client_auth_type RequireAnyClientCert or "
                        + "RequireAndVerifyClientCert (a client could send no certificate to match)"
                ])
        #expect(
            webProblems("rate_limit: {interval: 1s, burst: 0}\n") == [
                "1:35: rate_limit.burst: must be at least 1 (0 would refuse every request)"
            ])
        #expect(
            webProblems("rate_limit: {interval: soon, burst: 2}\n").first?.hasPrefix("1:24: rate_limit.interval")
                == true)
        // Go's duration syntax, as exporter-toolkit reads it (before, `1.5s`, `500us`, `1m0.5s` and `48h` were refused
        // and a web configuration shared with Go exporters stopped the exporter from starting).
        let durations: [(String, Int64)] = [
            ("1.5s", 1_500_000_000), ("500us", 500_000), ("2.5m", 150_000_000_000), ("1m0.5s", 60_500_000_000),
            ("48h", 172_800_000_000_000), ("1h30m", 5_400_000_000_000), ("100ms", 100_000_000), (".5s", 500_000_000),
        ]
        for (text, nanoseconds) in durations {
            #expect(DurationParser.parseGo(text) == .nanoseconds(nanoseconds), "\(text)")
            let parsed = try WebConfigLoader.parse("rate_limit: {interval: \(text), burst: 3}\n", file: "w")
            #expect(parsed.rateLimit?.interval == .nanoseconds(nanoseconds), "\(text)")
        }
        for text in ["", "s", "1", "1.2.3s", "1d", "5 s", "1e3s", "-"] {
            #expect(DurationParser.parseGo(text) == nil, "\(text)")
        }
        #expect(
            webProblems("rate_limit: {interval: -1s, burst: 2}\n").first?.hasPrefix("1:24: rate_limit.interval")
                == true)
    }

    @Test func bcryptHashShapes() {
        #expect(WebReader.isBcryptHash(Self.hash))
        #expect(WebReader.isBcryptHash("$2b$" + Self.hash.dropFirst(4)))
        #expect(!WebReader.isBcryptHash("$2y$03$" + Self.hash.dropFirst(7)))
        #expect(!WebReader.isBcryptHash("$1$" + Self.hash.dropFirst(3)))
        #expect(!WebReader.isBcryptHash(String(Self.hash.dropLast())))
        // bcrypt's last character carries 4 bits: one with the low 2 set matches no password (it was taken, and its
        // user could never log in).
        #expect(WebReader.hasCanonicalEnd(Self.hash))
        let noHash = String(Self.hash.dropLast()) + "L"
        #expect(WebReader.isBcryptHash(noHash) && !WebReader.hasCanonicalEnd(noHash))
        #expect(
            webProblems("basic_auth_users:\n  prom: '\(noHash)'\n") == [
                "2:9: basic_auth_users.prom: not a hash bcrypt makes: its last character must be one of .CGKOSWaeimquy26 (no password matches it)"
            ])
    }
}
