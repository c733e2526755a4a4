import COpenSSL
import Glibc

/// An OpenSSL `SSL_CTX` built from a ``TLSConfiguration``: certificate and key loaded and checked,
/// client verification, version range, ciphers, groups, and ALPN selection (`h2` when HTTP/2 is
/// enabled, else `http/1.1`).
///
/// Immutable once built and shared by every connection accepted while it is current (OpenSSL contexts
/// are thread-safe for creating connections); a reload builds a new one, and connections keep the
/// context they started with. Errors name the file or field at fault, never key material.
final class TLSContext: @unchecked Sendable {
    let context: OpaquePointer
    /// The `client_allowed_sans` list the verify callback reads (the context's app data), freed with the context.
    private var allowedSANs: UnsafeMutablePointer<CChar>?

    init(_ configuration: TLSConfiguration, http2: Bool) throws(HTTPServerError) {
        // OpenSSL's socket BIO writes with write(2), which raises SIGPIPE on a reset peer.
        signal(SIGPIPE, SIG_IGN)
        guard let context = SSL_CTX_new(TLS_server_method()) else {
            throw Self.error("cannot create an OpenSSL context")
        }
        self.context = context
        ERR_clear_error()
        // Resumed sessions need a session id context whenever client certificates are asked for: without one OpenSSL
        // answers every resumption attempt with an internal_error alert (nginx's and Go's session caches failed their
        // second connection). One per context: a reload builds a new one, whose cache and ticket keys are new too,
        // so no session outlives the client policy it was made under.
        let sessionContext = Array("mlops-exporter".utf8)
        _ = SSL_CTX_set_session_id_context(context, sessionContext, UInt32(sessionContext.count))
        // A key file, or inline key, protected by a passphrase is refused (no prompt on the terminal).
        SSL_CTX_set_default_passwd_cb(context, copenssl_no_passphrase)
        // TLS 1.0 and 1.1 sign their handshakes with SHA-1 and MD5, which OpenSSL's security level 1 and above (the
        // distributions' default) refuse: asked for by `min_version`, they were accepted and every such client failed
        // (counted `tls_no_shared_cipher`). As in Go, the versions asked for are served: level 0, for these only.
        if configuration.minVersion == .tls10 || configuration.minVersion == .tls11 {
            SSL_CTX_set_security_level(context, 0)
        }
        let certificateName = configuration.certificatePEM == nil ? "file \(configuration.certificateFile)" : "(cert)"
        let keyName = configuration.privateKeyPEM == nil ? "file \(configuration.privateKeyFile)" : "(key)"
        if let pem = configuration.certificatePEM {
            guard Self.withPEM(pem, { copenssl_ctx_use_certificate_chain_pem(context, $0, $1) }) == 1 else {
                throw Self.error("cannot load the certificate \(certificateName)")
            }
        } else {
            guard SSL_CTX_use_certificate_chain_file(context, configuration.certificateFile) == 1 else {
                throw Self.error("cannot load certificate file \(configuration.certificateFile)")
            }
        }
        if let pem = configuration.privateKeyPEM {
            guard Self.withPEM(pem, { copenssl_ctx_use_private_key_pem(context, $0, $1) }) == 1 else {
                throw Self.error("cannot load the key \(keyName)")
            }
        } else {
            guard SSL_CTX_use_PrivateKey_file(context, configuration.privateKeyFile, SSL_FILETYPE_PEM) == 1 else {
                throw Self.error("cannot load key file \(configuration.privateKeyFile)")
            }
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            throw Self.error("key \(keyName) does not match certificate \(certificateName)")
        }
        try configureClientAuth(configuration)
        guard copenssl_ctx_set_min_proto_version(context, Self.openSSLVersion(configuration.minVersion)) == 1,
            copenssl_ctx_set_max_proto_version(context, configuration.maxVersion.map(Self.openSSLVersion) ?? 0) == 1
        else {
            throw Self.error("unsupported TLS version range")
        }
        if !configuration.cipherSuites.isEmpty {
            // TLS 1.3's suites configure nothing, as in Go (every one stays on). Named alone, no TLS 1.0-1.2 suite is
            // left: as in Go, such handshakes fail (here, TLS 1.3 is the least version).
            let older = configuration.cipherSuites.filter { !TLSConfiguration.tls13CipherSuites.contains($0) }
            if older.isEmpty {
                guard copenssl_ctx_set_min_proto_version(context, copenssl_tls1_3_version()) == 1 else {
                    throw Self.error("cipher_suites: TLS 1.3 is not available")
                }
            } else {
                let list = try Self.openSSLCipherList(older)
                guard SSL_CTX_set_cipher_list(context, list) == 1 else {
                    throw Self.error("cipher_suites: none of the suites is usable")
                }
            }
        }
        if !configuration.curvePreferences.isEmpty {
            var groups: [String] = []
            for curve in configuration.curvePreferences {
                guard let group = TLSConfiguration.curveNames[curve] else {
                    throw HTTPServerError(.invalidConfiguration, "curve_preferences: unknown curve \(curve)")
                }
                groups.append(group)
            }
            guard copenssl_ctx_set1_groups_list(context, groups.joined(separator: ":")) == 1 else {
                throw Self.error("curve_preferences: OpenSSL rejected \(configuration.curvePreferences)")
            }
        }
        var options = copenssl_op_no_renegotiation() | copenssl_op_ignore_unexpected_eof()
        if configuration.preferServerCipherSuites { options |= copenssl_op_server_preference() }
        _ = copenssl_ctx_set_options(context, options)
        _ = copenssl_ctx_set_mode(context, copenssl_mode_partial_write())
        SSL_CTX_set_alpn_select_cb(
            context, Self.selectProtocol, UnsafeMutableRawPointer(bitPattern: http2 ? 2 : 1))
    }

    deinit {
        SSL_CTX_free(context)
        allowedSANs?.deallocate()
    }

    /// Calls `body` with the PEM text's bytes and length (OpenSSL reads them through a memory BIO).
    private static func withPEM(_ pem: String, _ body: (UnsafePointer<CChar>, Int32) -> Int32) -> Int32 {
        var bytes = Array(pem.utf8CString)
        bytes.removeLast()  // the NUL: the length says where the text ends
        guard !bytes.isEmpty, bytes.count < Int(Int32.max) else { return 0 }
        return bytes.withUnsafeBufferPointer { body($0.baseAddress!, Int32($0.count)) }
    }

    private func configureClientAuth(_ configuration: TLSConfiguration) throws(HTTPServerError) {
        if let caFile = configuration.clientCAFile {
            guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1 else {
                throw Self.error("cannot load client CA file \(caFile)")
            }
            if let names = SSL_load_client_CA_file(caFile) { SSL_CTX_set_client_CA_list(context, names) }
        } else if let pem = configuration.clientCAPEM {
            guard Self.withPEM(pem, { copenssl_ctx_add_client_ca_pem(context, $0, $1) }) > 0 else {
                throw Self.error("client_ca holds no certificate")
            }
        }
        let acceptAny: SSL_verify_cb = { _, _ in 1 }
        switch configuration.clientAuth {
        case .noClientCert:
            SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        case .requestClientCert:
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, acceptAny)
        case .requireAnyClientCert:
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, acceptAny)
        case .verifyClientCertIfGiven:
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        case .requireAndVerifyClientCert:
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
        }
        let verifies =
            configuration.clientAuth == .verifyClientCertIfGiven
            || configuration.clientAuth == .requireAndVerifyClientCert
        if verifies && configuration.clientCAFile == nil && configuration.clientCAPEM == nil {
            throw HTTPServerError(
                .invalidConfiguration, "client_auth_type \(configuration.clientAuth.rawValue) needs a client CA file")
        }
        if !configuration.allowedClientSANs.isEmpty {
            // The list goes to C as NUL-separated names ending with an empty one: an empty name ended it early, a NUL
            // inside one split it (the web configuration refuses both; a library user's list is checked here).
            guard configuration.allowedClientSANs.allSatisfy({ !$0.isEmpty && !$0.utf8.contains(0) }) else {
                throw HTTPServerError(.invalidConfiguration, "client_allowed_sans: a name is empty or holds a NUL")
            }
            let chainVerified: Bool
            switch configuration.clientAuth {
            case .requireAnyClientCert: chainVerified = false
            case .requireAndVerifyClientCert: chainVerified = true
            default:
                throw HTTPServerError(
                    .invalidConfiguration,
                    "client_allowed_sans needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert")
            }
            // "1" or "0", then each name and its NUL, then an empty name.
            var list: [CChar] = [CChar(UInt8(ascii: chainVerified ? "1" : "0"))]
            for name in configuration.allowedClientSANs {
                list += name.utf8.map { CChar(bitPattern: $0) } + [0]
            }
            list.append(0)
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: list.count)
            buffer.initialize(from: list, count: list.count)
            allowedSANs = buffer
            _ = copenssl_ctx_set_app_data(context, buffer)
            SSL_CTX_set_verify(
                context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, copenssl_verify_allowed_sans_callback())
        }
    }

    /// Creates the per-connection `SSL` object on `fileDescriptor`.
    func makeConnection(fileDescriptor: Int32) -> OpaquePointer? {
        guard let ssl = SSL_new(context) else { return nil }
        SSL_set_fd(ssl, fileDescriptor)
        SSL_set_accept_state(ssl)
        return ssl
    }

    // MARK: - ALPN

    /// Picks `h2` (when the context's argument says HTTP/2 is on) or `http/1.1` from the client's list; a client
    /// that offers protocols but neither of those is refused with the `no_application_protocol` alert (RFC 7301
    /// §3.2; as Go's server and nginx do) instead of being answered in a protocol it did not ask for. Over a TLS 1.2
    /// suite HTTP/2 must not use (RFC 9113 §9.2.2: not AEAD, or no ephemeral key exchange: `ECDHE-RSA-AES128-SHA`
    /// was served with `h2`), a client that also offers `http/1.1` gets it; one that offers only `h2` still gets `h2`
    /// (as before). `out` points into the client's own list (`input`), which outlives the callback.
    private static let selectProtocol: SSL_CTX_alpn_select_cb_func = { ssl, out, outLength, input, inputLength, arg in
        let http2Enabled = Int(bitPattern: arg) == 2
        guard let input else { return SSL_TLSEXT_ERR_NOACK }
        let http2 = http2Enabled && (ssl.map { copenssl_pending_cipher_allows_http2($0) != 0 } ?? true)
        var onlyHTTP2: (UnsafePointer<UInt8>, UInt8)?
        var http11: (UnsafePointer<UInt8>, UInt8)?
        var index = 0
        let count = Int(inputLength)
        while index < count {
            let length = Int(input[index])
            let start = index + 1
            guard length > 0, start + length <= count else { break }
            let name = UnsafeBufferPointer(start: input + start, count: length)
            if http2Enabled && name.elementsEqual("h2".utf8) {
                if http2 {
                    out!.pointee = input + start
                    outLength!.pointee = UInt8(length)
                    return SSL_TLSEXT_ERR_OK
                }
                onlyHTTP2 = onlyHTTP2 ?? (input + start, UInt8(length))
            }
            if http11 == nil && name.elementsEqual("http/1.1".utf8) { http11 = (input + start, UInt8(length)) }
            index = start + length
        }
        if let (pointer, length) = http11 ?? onlyHTTP2 {
            out!.pointee = pointer
            outLength!.pointee = length
            return SSL_TLSEXT_ERR_OK
        }
        return SSL_TLSEXT_ERR_ALERT_FATAL  // no common protocol: OpenSSL sends no_application_protocol
    }

    // MARK: - Helpers

    static func openSSLVersion(_ version: TLSConfiguration.Version) -> Int32 {
        switch version {
        case .tls10: copenssl_tls1_version()
        case .tls11: copenssl_tls1_1_version()
        case .tls12: copenssl_tls1_2_version()
        case .tls13: copenssl_tls1_3_version()
        }
    }

    /// Maps IANA suite names (as Go and exporter-toolkit spell them) to an OpenSSL cipher list.
    static func openSSLCipherList(_ names: [String]) throws(HTTPServerError) -> String {
        guard let probe = SSL_CTX_new(TLS_server_method()) else { throw error("cannot create an OpenSSL context") }
        defer { SSL_CTX_free(probe) }
        _ = SSL_CTX_set_cipher_list(probe, "ALL")
        var known: [String: String] = [:]
        if let ciphers = SSL_CTX_get_ciphers(probe) {
            for index in 0..<OPENSSL_sk_num(ciphers) {
                let cipher = OpaquePointer(OPENSSL_sk_value(ciphers, index))
                if let standard = SSL_CIPHER_standard_name(cipher), let name = SSL_CIPHER_get_name(cipher) {
                    known[String(cString: standard)] = String(cString: name)
                }
            }
        }
        var list: [String] = []
        for name in names {
            guard let openSSLName = known[name] else {
                throw HTTPServerError(.invalidConfiguration, "cipher_suites: unknown or unsupported suite \(name)")
            }
            list.append(openSSLName)
        }
        return list.joined(separator: ":")
    }

    /// An error with OpenSSL's reason for the last failure appended (error strings carry no key material).
    static func error(_ message: String) -> HTTPServerError {
        let code = ERR_peek_last_error()
        ERR_clear_error()
        guard code != 0, let reason = ERR_reason_error_string(code) else {
            return HTTPServerError(.invalidConfiguration, message)
        }
        return HTTPServerError(.invalidConfiguration, "\(message): \(String(cString: reason))")
    }
}
