/* sha256.h: SHA-256 (FIPS 180-4), needed because etcd's snapshot stream ends with a sha256 of the data
 * that etcdctl checks for; kept here so the server has no crypto library dependency. */
#ifndef CETCD_SHA256_H
#define CETCD_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32

typedef struct sha256_ctx {
    uint32_t h[8];
    uint64_t total; /* bytes hashed so far */
    uint8_t buf[64];
    size_t buf_len;
    bool ni; /* blocks go to the SHA extensions (sha256_ni.c) */
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t len);
void sha256_final(sha256_ctx *c, uint8_t out[SHA256_DIGEST_LEN]);
/* One-shot convenience. */
void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_LEN]);
/* Tests: contexts initialized after this use the portable block function only (or again the
 * fastest, when false). */
void sha256_force_portable(bool on);

/* sha256_ni.c: does this CPU have the SHA extensions; the block function on them. */
bool sha256_ni_usable(void);
void sha256_ni_blocks(uint32_t h[8], const uint8_t *p, size_t n, const uint32_t k[64]);

#endif
