/* libxcrypt: crypt_rn verifies bcrypt ($2y$, $2b$, $2a$) and other modular-crypt hashes. */
#include <crypt.h>
