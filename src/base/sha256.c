/* sha256.c: the SHA-256 of sha256.h, libcrypto's (OpenSSL is linked for TLS anyway; a hand-written
 * one was here before). */
#include "sha256.h"

void sha256_init(sha256_ctx *c) {
    SHA256_Init(&c->c);
}

void sha256_update(sha256_ctx *c, const void *data, size_t len) {
    SHA256_Update(&c->c, data, len);
}

void sha256_final(sha256_ctx *c, uint8_t out[SHA256_DIGEST_LEN]) {
    SHA256_Final(out, &c->c);
}

void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_LEN]) {
    SHA256(data, len, out);
}
