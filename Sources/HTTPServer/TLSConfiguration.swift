/// TLS settings for the server's listeners: certificate, client authentication, protocol versions,
/// cipher suites and groups. Files are read when a ``TLSContext`` is built (at ``HTTPServer/start()``
/// and on ``HTTPServer/reloadTLS(_:)``), so replacing a certificate on disk takes effect on reload.
public struct TLSConfiguration: Sendable, Equatable, CustomStringConvertible {
    /// A TLS protocol version.
    public enum Version: String, Sendable, Equatable, CaseIterable {
        case tls10 = "TLS10"
        case tls11 = "TLS11"
        case tls12 = "TLS12"
        case tls13 = "TLS13"
    }

    /// Whether and how clients authenticate with a certificate (the exporter-toolkit / Go names).
    public enum ClientAuth: String, Sendable, Equatable, CaseIterable {
        /// No client certificate is requested.
        case noClientCert = "NoClientCert"
        /// A certificate is requested but neither required nor verified.
        case requestClientCert = "RequestClientCert"
        /// A certificate is required but not verified.
        case requireAnyClientCert = "RequireAnyClientCert"
        /// A certificate is requested and, when sent, verified against the client CA.
        case verifyClientCertIfGiven = "VerifyClientCertIfGiven"
        /// A certificate verified against the client CA is required (mutual TLS).
        case requireAndVerifyClientCert = "RequireAndVerifyClientCert"
    }

    /// PEM certificate chain (leaf first); unused when ``certificatePEM`` is set.
    public var certificateFile: String
    /// PEM private key of the leaf certificate; unused when ``privateKeyPEM`` is set.
    public var privateKeyFile: String
    /// The certificate chain itself (PEM text), in place of ``certificateFile``.
    public var certificatePEM: String?
    /// The private key itself (PEM text), in place of ``privateKeyFile``. Never logged (``description`` leaves it
    /// out).
    public var privateKeyPEM: String?
    /// Client certificate policy. Default ``ClientAuth/noClientCert``.
    public var clientAuth: ClientAuth = .noClientCert
    /// PEM bundle of CAs that client certificates must chain to (required to verify them).
    public var clientCAFile: String?
    /// The client CAs themselves (PEM text), in place of ``clientCAFile``.
    public var clientCAPEM: String?
    /// When not empty, a client certificate must carry one of these subject alternative names (DNS name, email
    /// address, URI, or IP address as text), compared exactly, as exporter-toolkit's `client_allowed_sans`; only with
    /// ``ClientAuth/requireAnyClientCert`` or ``ClientAuth/requireAndVerifyClientCert``.
    public var allowedClientSANs: [String] = []
    /// Lowest protocol version accepted. Default TLS 1.2.
    public var minVersion: Version = .tls12
    /// Highest protocol version accepted; nil: the highest OpenSSL supports (TLS 1.3).
    public var maxVersion: Version?
    /// TLS 1.2 cipher suites by IANA name (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, as Go spells them);
    /// empty: OpenSSL's defaults. TLS 1.3 suites are not configurable (as in Go).
    public var cipherSuites: [String] = []
    /// Key-exchange groups in preference order (`X25519`, `CurveP256`, `CurveP384`, `CurveP521`);
    /// empty: OpenSSL's defaults.
    public var curvePreferences: [String] = []
    /// Prefer the server's cipher order over the client's. Default true.
    public var preferServerCipherSuites = true

    /// Creates a configuration with a certificate and key and the defaults above.
    public init(certificateFile: String, privateKeyFile: String) {
        self.certificateFile = certificateFile
        self.privateKeyFile = privateKeyFile
    }

    /// What is configured, without key material.
    public var description: String {
        "TLSConfiguration(certificate: \(certificatePEM == nil ? certificateFile : "inline"), key: "
            + "\(privateKeyPEM == nil ? privateKeyFile : "inline"), clientAuth: \(clientAuth.rawValue))"
    }

    /// The TLS 1.3 suites by their IANA names: accepted in ``cipherSuites`` and, as in Go, configuring nothing.
    public static let tls13CipherSuites: Set<String> = [
        "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
    ]

    /// The OpenSSL group names of the Go curve names accepted in ``curvePreferences``.
    public static let curveNames: [String: String] = [
        "X25519": "X25519", "CurveP256": "P-256", "CurveP384": "P-384", "CurveP521": "P-521",
    ]
}
