import Foundation
import Testing

@testable import HTTPServer

@Suite("TLS configuration")
struct TLSTests {
    /// A folder holding a self-signed P-256 certificate `c.pem` and its key `k.pem`, made by openssl.
    static func selfSignedCertificate() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            folder.path + "/k.pem", "-out", folder.path + "/c.pem", "-days", "1", "-subj", "/CN=t",
        ]
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        try #require(openssl.terminationStatus == 0)
        return folder
    }

    @Test func unreadableFilesAreNamedInTheError() {
        let configuration = TLSConfiguration(
            certificateFile: "/nonexistent/server.crt", privateKeyFile: "/nonexistent/k")
        #expect {
            _ = try TLSContext(configuration, http2: true)
        } throws: { error in
            "\(error)".contains("cannot load certificate file /nonexistent/server.crt")
        }
    }

    /// `allowedClientSANs` goes to C as NUL-separated names ending with an empty one: an empty name ended the list
    /// early, a NUL inside one split it into two allowed names. Refused for a library user as the web configuration
    /// refuses them.
    @Test(arguments: [["scraper", ""], ["a\u{0}b"]])
    func anEmptyOrNULNameInTheAllowedSANsIsRefused(_ names: [String]) throws {
        let folder = try Self.selfSignedCertificate()
        defer { try? FileManager.default.removeItem(at: folder) }
        var configuration = TLSConfiguration(
            certificateFile: folder.path + "/c.pem", privateKeyFile: folder.path + "/k.pem")
        configuration.clientAuth = .requireAnyClientCert
        configuration.allowedClientSANs = ["scraper"]
        _ = try TLSContext(configuration, http2: true)
        configuration.allowedClientSANs = names
        #expect {
            _ = try TLSContext(configuration, http2: true)
        } throws: { error in
            "\(error)".contains("client_allowed_sans: a name is empty or holds a NUL")
        }
    }

    /// TLS 1.3's suites may be named, as Go (and so exporter-toolkit) takes them, and configure nothing (they were
    /// refused, "unknown or unsupported suite"): named alone, no older suite is left, so TLS 1.3 is the least version.
    @Test func tls13SuitesAreTakenAndConfigureNothing() throws {
        let folder = try Self.selfSignedCertificate()
        defer { try? FileManager.default.removeItem(at: folder) }
        var configuration = TLSConfiguration(
            certificateFile: folder.path + "/c.pem", privateKeyFile: folder.path + "/k.pem")
        configuration.cipherSuites = ["TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"]
        _ = try TLSContext(configuration, http2: true)
        configuration.cipherSuites = ["TLS_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]
        _ = try TLSContext(configuration, http2: true)
    }

    @Test func cipherSuitesAreMappedFromIANANames() throws {
        #expect(
            try TLSContext.openSSLCipherList(["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]) == "ECDHE-RSA-AES128-GCM-SHA256"
        )
        #expect(throws: HTTPServerError.self) { try TLSContext.openSSLCipherList(["TLS_NOT_A_SUITE"]) }
    }

    @Test func handshakeFailuresHaveAFewReasons() {
        #expect(TLSTransport.handshakeReason("http request") == "tls_http_request")
        #expect(TLSTransport.handshakeReason("peer did not return a certificate") == "tls_no_client_certificate")
        #expect(TLSTransport.handshakeReason("certificate verify failed") == "tls_bad_client_certificate")
        #expect(TLSTransport.handshakeReason("unsupported protocol") == "tls_protocol_version")
        #expect(TLSTransport.handshakeReason("no shared cipher") == "tls_no_shared_cipher")
        #expect(TLSTransport.handshakeReason("no application protocol") == "tls_no_application_protocol")
        #expect(TLSTransport.handshakeReason(nil) == "tls_handshake_failed")
        for reason in ["http request", "x", "no shared cipher", "no application protocol"] {
            #expect(HTTPServer.tlsErrorReasons.contains(TLSTransport.handshakeReason(reason)))
        }
    }
}
