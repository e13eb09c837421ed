/* sha256.h: SHA-256, needed because etcd's snapshot stream ends with a sha256 of the data that
 * etcdctl checks for. Since the server links OpenSSL for TLS, this is libcrypto's, behind the small
 * interface the callers had when it was written by hand. */
#ifndef CETCD_SHA256_H
#define CETCD_SHA256_H

#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_CTX: a plain struct, nothing to free (EVP allocates) */
#include <openssl/sha.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32

typedef struct sha256_ctx {
    SHA256_CTX c;
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t len);
void sha256_final(sha256_ctx *c, uint8_t out[SHA256_DIGEST_LEN]);
/* One-shot convenience. */
void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_LEN]);

#endif
