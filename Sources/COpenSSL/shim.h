/* OpenSSL 3: TLS for the HTTP server. Function-like macros are wrapped in static inline helpers. */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static inline int copenssl_ctx_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}

static inline int copenssl_ctx_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}

static inline long copenssl_ctx_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}

static inline int copenssl_ctx_set1_groups_list(SSL_CTX *ctx, const char *list) {
    return (int)SSL_CTX_set1_groups_list(ctx, list);
}

static inline long copenssl_ctx_set_options(SSL_CTX *ctx, long options) {
    return (long)SSL_CTX_set_options(ctx, (uint64_t)options);
}

/* Whether the cipher suite a handshake is negotiating may carry HTTP/2 (RFC 9113 §9.2.2 and Appendix A: TLS 1.3, or
 * TLS 1.2 with an AEAD suite and an ephemeral key exchange); 1 when none is chosen yet. */
static inline int copenssl_pending_cipher_allows_http2(const SSL *ssl) {
    const SSL_CIPHER *cipher = SSL_get_pending_cipher(ssl);
    if (cipher == NULL || SSL_version(ssl) >= TLS1_3_VERSION) return 1;
    int kx = SSL_CIPHER_get_kx_nid(cipher);
    return SSL_CIPHER_is_aead(cipher) && (kx == NID_kx_ecdhe || kx == NID_kx_dhe || kx == NID_kx_any);
}

/* A memory BIO that answers "retry" when empty (a handshake stepped off the event loop reads from one). */
static inline BIO *copenssl_retrying_memory_bio(void) {
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio != NULL) BIO_set_mem_eof_return(bio, -1);
    return bio;
}

/* A socket BIO on `fd` that does not close it. */
static inline BIO *copenssl_socket_bio(int fd) { return BIO_new_socket(fd, BIO_NOCLOSE); }

static inline int copenssl_tls1_2_version(void) { return TLS1_2_VERSION; }
static inline int copenssl_tls1_3_version(void) { return TLS1_3_VERSION; }
static inline int copenssl_tls1_1_version(void) { return TLS1_1_VERSION; }
static inline int copenssl_tls1_version(void) { return TLS1_VERSION; }

static inline long copenssl_mode_partial_write(void) {
    return SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS;
}

static inline long copenssl_op_no_renegotiation(void) { return (long)SSL_OP_NO_RENEGOTIATION; }

static inline long copenssl_op_ignore_unexpected_eof(void) { return (long)SSL_OP_IGNORE_UNEXPECTED_EOF; }
static inline long copenssl_op_server_preference(void) { return (long)SSL_OP_CIPHER_SERVER_PREFERENCE; }

/* PEM held in memory (the web configuration's inline `cert`, `key`, `client_ca`). An encrypted key is refused (no
 * passphrase prompt on the terminal). */
static int copenssl_no_passphrase(char *buf, int size, int rwflag, void *u) {
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}

/* The leaf certificate, then any further certificates of the PEM as its chain. 1 on success. */
static inline int copenssl_ctx_use_certificate_chain_pem(SSL_CTX *ctx, const char *pem, int length) {
    BIO *bio = BIO_new_mem_buf(pem, length);
    if (!bio) return 0;
    X509 *leaf = PEM_read_bio_X509_AUX(bio, NULL, copenssl_no_passphrase, NULL);
    int ok = leaf ? SSL_CTX_use_certificate(ctx, leaf) : 0;
    if (leaf) X509_free(leaf);
    if (ok == 1) {
        SSL_CTX_clear_chain_certs(ctx);
        X509 *ca;
        while ((ca = PEM_read_bio_X509(bio, NULL, copenssl_no_passphrase, NULL)) != NULL) {
            if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
                X509_free(ca);
                ok = 0;
                break;
            }
        }
        unsigned long last = ERR_peek_last_error();
        if (ok == 1 && ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE) ERR_clear_error();
    }
    BIO_free(bio);
    return ok == 1;
}

/* The private key of the PEM. 1 on success. */
static inline int copenssl_ctx_use_private_key_pem(SSL_CTX *ctx, const char *pem, int length) {
    BIO *bio = BIO_new_mem_buf(pem, length);
    if (!bio) return 0;
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, copenssl_no_passphrase, NULL);
    BIO_free(bio);
    if (!key) return 0;
    int ok = SSL_CTX_use_PrivateKey(ctx, key);
    EVP_PKEY_free(key);
    return ok == 1;
}

/* Adds every certificate of the PEM to the context's trust store and to the CA names sent to clients. Returns how
 * many were added (0: none, an error). */
static inline int copenssl_ctx_add_client_ca_pem(SSL_CTX *ctx, const char *pem, int length) {
    BIO *bio = BIO_new_mem_buf(pem, length);
    if (!bio) return 0;
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int added = 0;
    X509 *cert;
    while ((cert = PEM_read_bio_X509(bio, NULL, copenssl_no_passphrase, NULL)) != NULL) {
        if (X509_STORE_add_cert(store, cert) == 1 && SSL_CTX_add_client_CA(ctx, cert) == 1) added++;
        X509_free(cert);
    }
    ERR_clear_error();
    BIO_free(bio);
    return added;
}

/* Writes `n` in decimal at `out`; returns the characters written. */
static inline int copenssl_decimal(unsigned n, char *out) {
    char digits[10];
    int count = 0;
    do {
        digits[count++] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    for (int i = 0; i < count; i++) out[i] = digits[count - 1 - i];
    return count;
}

/* An IP address as Go's net.IP.String() writes it: dotted IPv4 (also for an IPv4-mapped IPv6 address), else IPv6
 * in RFC 5952 form (lower-case hex without leading zeros, the longest run of two or more zero groups as `::`). The
 * text is NUL-terminated in `out` (at least 46 bytes); returns its length, 0 for another size. (No socket header:
 * they clash with Glibc's module in this system module.) */
static inline int copenssl_ip_text(const unsigned char *ip, int n, char *out) {
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    int length = 0;
    int is_mapped = n == 16;
    for (int i = 0; is_mapped && i < 12; i++) is_mapped = ip[i] == mapped[i];
    if (n == 4 || is_mapped) {
        const unsigned char *v4 = n == 4 ? ip : ip + 12;
        for (int i = 0; i < 4; i++) {
            if (i > 0) out[length++] = '.';
            length += copenssl_decimal(v4[i], out + length);
        }
        out[length] = 0;
        return length;
    }
    if (n != 16) return 0;
    unsigned groups[8];
    for (int i = 0; i < 8; i++) groups[i] = (unsigned)ip[2 * i] << 8 | ip[2 * i + 1];
    int best = -1, best_length = 0;
    for (int i = 0; i < 8;) {
        if (groups[i] != 0) { i++; continue; }
        int j = i;
        while (j < 8 && groups[j] == 0) j++;
        if (j - i > best_length) { best = i; best_length = j - i; }
        i = j;
    }
    if (best_length < 2) best = -1;
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            out[length++] = ':';
            out[length++] = ':';
            i += best_length - 1;
            continue;
        }
        if (i > 0 && i != best + best_length) out[length++] = ':';
        int started = 0;
        for (int shift = 12; shift >= 0; shift -= 4) {
            unsigned digit = groups[i] >> shift & 0xf;
            if (digit != 0 || started || shift == 0) {
                out[length++] = hex[digit];
                started = 1;
            }
        }
    }
    out[length] = 0;
    return length;
}

/* Whether one of the certificate's subject alternative names (DNS, email, URI as written; IP addresses as text, as
 * Go prints them) is one of `allowed`: NUL-separated names ending with an empty one. */
static inline int copenssl_cert_has_allowed_san(X509 *cert, const char *allowed) {
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (!names) return 0;
    int found = 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(names) && !found; i++) {
        const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
        char text[48];
        const unsigned char *data = NULL;
        int length = 0;
        if (name->type == GEN_DNS || name->type == GEN_EMAIL || name->type == GEN_URI) {
            data = ASN1_STRING_get0_data(name->d.ia5);
            length = ASN1_STRING_length(name->d.ia5);
        } else if (name->type == GEN_IPADD) {
            length = copenssl_ip_text(ASN1_STRING_get0_data(name->d.ip), ASN1_STRING_length(name->d.ip), text);
            data = length > 0 ? (const unsigned char *)text : NULL;
        }
        if (!data) continue;
        for (const char *a = allowed; *a && !found;) {
            int k = 0;
            while (a[k]) k++;
            if (k == length) {
                int same = 1;
                for (int m = 0; m < k && same; m++) same = (unsigned char)a[m] == data[m];
                found = same;
            }
            a += k + 1;
        }
    }
    GENERAL_NAMES_free(names);
    return found;
}

/* The verify callback of `client_allowed_sans`: the context's app data is "1" (the chain is verified) or "0" (any
 * certificate, RequireAnyClientCert), then the allowed names as above. The client's own certificate (depth 0) must
 * carry one of them; the chain is judged as OpenSSL judged it, or accepted whatever it is for "0". */
static int copenssl_verify_allowed_sans(int preverify_ok, X509_STORE_CTX *store) {
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    const char *config = ssl ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;
    if (!config) return 0;
    int verifies = config[0] == '1';
    if (verifies && !preverify_ok) return 0;
    if (X509_STORE_CTX_get_error_depth(store) != 0) return 1;
    X509 *cert = X509_STORE_CTX_get_current_cert(store);
    if (cert && copenssl_cert_has_allowed_san(cert, config + 1)) return 1;
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

static inline SSL_verify_cb copenssl_verify_allowed_sans_callback(void) { return copenssl_verify_allowed_sans; }

static inline int copenssl_ctx_set_app_data(SSL_CTX *ctx, void *data) { return SSL_CTX_set_app_data(ctx, data); }
