/* OpenSSL 3: TLS for the HTTP server. Function-like macros are wrapped in static inline helpers. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

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
