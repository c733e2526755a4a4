/// The web configuration file of `--web.config.file`, in the Prometheus exporter-toolkit format:
/// TLS for the listeners, HTTP server options, and users allowed in by basic authentication.
///
/// ```yaml
/// tls_server_config:
///   cert_file: server.crt
///   key_file: server.key
///   client_auth_type: RequireAndVerifyClientCert
///   client_ca_file: ca.crt
///   min_version: TLS12
/// http_server_config:
///   http2: true
///   headers:
///     Strict-Transport-Security: max-age=31536000
/// basic_auth_users:
///   prometheus: $2y$10$...   # bcrypt hash
/// rate_limit:
///   interval: 100ms
///   burst: 20
/// ```
public struct WebConfiguration: Sendable, Equatable {
    /// The `tls_server_config` section: when present, every listener speaks TLS.
    public struct TLSServer: Sendable, Equatable, CustomStringConvertible {
        /// PEM certificate chain, resolved against the configuration file's directory; empty with ``cert``.
        public var certFile: String
        /// PEM private key, resolved against the configuration file's directory; empty with ``key``.
        public var keyFile: String
        /// `cert`: the certificate chain written in the file (PEM), in place of `cert_file`.
        public var cert: String?
        /// `key`: the private key written in the file (PEM), in place of `key_file`. A secret: never logged.
        public var key: String?
        /// One of ``WebConfiguration/clientAuthTypes``. Default `NoClientCert`.
        public var clientAuthType: String = "NoClientCert"
        /// PEM CA bundle that client certificates must chain to.
        public var clientCAFile: String?
        /// `client_ca`: the client CAs written in the file (PEM), in place of `client_ca_file`.
        public var clientCA: String?
        /// `client_allowed_sans`: a client certificate must carry one of these subject alternative names.
        public var clientAllowedSANs: [String] = []
        /// Lowest TLS version (`TLS10` ... `TLS13`). Default `TLS12`.
        public var minVersion: String = "TLS12"
        /// Highest TLS version; nil: the highest available.
        public var maxVersion: String?
        /// TLS 1.2 cipher suites by Go/IANA name; empty: the library's defaults.
        public var cipherSuites: [String] = []
        /// Key-exchange curves (`X25519`, `CurveP256`, `CurveP384`, `CurveP521`); empty: the defaults.
        public var curvePreferences: [String] = []
        /// Prefer the server's cipher order. Default true.
        public var preferServerCipherSuites = true

        /// Creates the section with a certificate and key and the defaults above.
        public init(certFile: String, keyFile: String) {
            self.certFile = certFile
            self.keyFile = keyFile
        }

        /// Where the certificate and key come from and the client policy; never the key itself.
        public var description: String {
            "tls_server_config(cert: \(cert == nil ? certFile : "inline"), key: \(key == nil ? keyFile : "inline"), "
                + "client_auth_type: \(clientAuthType))"
        }
    }

    /// One response header from `http_server_config.headers`.
    public struct Header: Sendable, Equatable {
        /// The field name, as written in the file.
        public var name: String
        /// The field value.
        public var value: String

        /// Creates a header.
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// `rate_limit`: requests to the exporter's listeners (every path) at most one per `interval` on average, with
    /// bursts of up to `burst` (a token bucket, as exporter-toolkit's `rate.NewLimiter(rate.Every(interval),
    /// burst)`); beyond it, 429.
    public struct RateLimit: Sendable, Equatable {
        /// One request's share of time: the bucket gains a token per interval.
        public var interval: Duration
        /// The bucket's size: requests that may come at once after a quiet time (at least 1).
        public var burst: Int

        /// Creates the limit.
        public init(interval: Duration, burst: Int) {
            self.interval = interval
            self.burst = burst
        }
    }

    /// TLS for the listeners; nil: cleartext HTTP.
    public var tls: TLSServer?
    /// The `rate_limit` section; nil (absent, or `interval: 0s`): no limit.
    public var rateLimit: RateLimit?
    /// `http_server_config.http2`: offer HTTP/2 (ALPN `h2` with TLS, h2c in cleartext). Default true.
    public var http2 = true
    /// `http_server_config.headers`: added to every response.
    public var headers: [Header] = []
    /// `basic_auth_users`: user name to bcrypt hash; empty: no authentication.
    public var basicAuthUsers: [String: String] = [:]

    /// The configuration of an empty (or absent) file: cleartext, HTTP/2 on, no headers, no users.
    public init() {}

    /// The `client_auth_type` values (the names of Go's `tls.ClientAuthType`; `RequireClientCert`, exporter-toolkit's
    /// older name of `RequireAnyClientCert`, is read as that).
    public static let clientAuthTypes = [
        "NoClientCert", "RequestClientCert", "RequireAnyClientCert", "VerifyClientCertIfGiven",
        "RequireAndVerifyClientCert",
    ]

    /// The `min_version` / `max_version` values, lowest first.
    public static let tlsVersions = ["TLS10", "TLS11", "TLS12", "TLS13"]

    /// The `curve_preferences` values.
    public static let curves = ["X25519", "CurveP256", "CurveP384", "CurveP521"]

    /// The TLS 1.3 suites, which `cipher_suites` may name (Go's `tls.CipherSuites()` lists them, so exporter-toolkit
    /// takes them) but which, as in Go, configure nothing: every TLS 1.3 suite stays on.
    public static let tls13CipherSuiteNames = [
        "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
    ]

    /// The `cipher_suites` values: the suites Go knows, by their IANA names (TLS 1.0–1.2, then TLS 1.3's).
    public static let cipherSuiteNames = tls12CipherSuiteNames + tls13CipherSuiteNames

    /// The TLS 1.0–1.2 suites Go knows, by their IANA names.
    public static let tls12CipherSuiteNames = [
        "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_256_CBC_SHA",
        "TLS_RSA_WITH_AES_128_CBC_SHA256", "TLS_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ]

    /// The response headers `http_server_config.headers` may set (as in exporter-toolkit).
    public static let allowedHeaders = [
        "Cache-Control", "Content-Security-Policy", "Strict-Transport-Security", "X-Content-Type-Options",
        "X-Frame-Options", "X-XSS-Protection",
    ]

    /// The only values exporter-toolkit takes for some of ``allowedHeaders`` (compared exactly, as it does).
    public static let allowedHeaderValues = [
        "X-Content-Type-Options": ["nosniff"], "X-Frame-Options": ["deny", "sameorigin"],
    ]
}
