#include <zlib.h>

/* deflateInit2 is a macro; gzip framing needs windowBits 15 + 16. */
static inline int czlib_deflate_init_gzip(z_streamp s, int level) {
    return deflateInit2(s, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}

/* inflateInit2 with automatic gzip/zlib header detection (windowBits 15 + 32). */
static inline int czlib_inflate_init_auto(z_streamp s) {
    return inflateInit2(s, 15 + 32);
}
