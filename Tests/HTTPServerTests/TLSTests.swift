import Testing

@testable import HTTPServer

@Suite("TLS configuration")
struct TLSTests {
    @Test func unreadableFilesAreNamedInTheError() {
        let configuration = TLSConfiguration(
            certificateFile: "/nonexistent/server.crt", privateKeyFile: "/nonexistent/k")
        #expect {
            _ = try TLSContext(configuration, http2: true)
        } throws: { error in
            "\(error)".contains("cannot load certificate file /nonexistent/server.crt")
        }
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
