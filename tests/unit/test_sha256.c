/* test_sha256.c: unit tests of src/base/sha256.c (our FIPS 180-4 code) against known digests:
 * the FIPS 180-4 / NIST examples, the padding boundaries (55, 56 and 64 bytes, digests from Python's
 * hashlib), that feeding the data in pieces of any size gives the same digest as one call, and that
 * the SHA-extension blocks (sha256_ni.c) agree with the portable ones. */
#include "sha256.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hex(const uint8_t d[SHA256_DIGEST_LEN], char out[2 * SHA256_DIGEST_LEN + 1]) {
    for (int i = 0; i < SHA256_DIGEST_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check_digest(const void *data, size_t len, const char *want) {
    uint8_t d[SHA256_DIGEST_LEN];
    char got[2 * SHA256_DIGEST_LEN + 1];
    sha256(data, len, d);
    hex(d, got);
    ck_assert_str_eq(got, want);
}

/* n copies of byte c, malloc'd. */
static uint8_t *repeated(char c, size_t n) {
    uint8_t *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    memset(p, c, n);
    return p;
}

START_TEST(test_nist_vectors) {
    check_digest("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check_digest("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_digest(two_blocks, strlen(two_blocks),
                 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *long_msg =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklm"
        "nopqrlmnopqrsmnopqrstnopqrstu";
    check_digest(long_msg, strlen(long_msg),
                 "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}
END_TEST

START_TEST(test_million_a) {
    uint8_t *a = repeated('a', 1000000);
    check_digest(a, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}
END_TEST

/* 55 bytes leave room for the padding in one block; 56 do not; 64 fill a block exactly. */
START_TEST(test_padding_boundaries) {
    uint8_t *a = repeated('a', 64);
    check_digest(a, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    check_digest(a, 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    check_digest(a, 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
    free(a);
}
END_TEST

/* The snapshot stream hashes chunk by chunk: every split must give the one-shot digest. */
START_TEST(test_incremental_equals_one_shot) {
    uint8_t data[1000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 31 + 7);
    uint8_t want[SHA256_DIGEST_LEN];
    sha256(data, sizeof data, want);
    static const size_t steps[] = {1, 3, 55, 56, 63, 64, 65, 127, 999};
    for (size_t s = 0; s < sizeof steps / sizeof *steps; s++) {
        sha256_ctx c;
        sha256_init(&c);
        for (size_t off = 0; off < sizeof data; off += steps[s]) {
            size_t n = sizeof data - off < steps[s] ? sizeof data - off : steps[s];
            sha256_update(&c, data + off, n);
        }
        uint8_t got[SHA256_DIGEST_LEN];
        sha256_final(&c, got);
        ck_assert_msg(memcmp(got, want, sizeof want) == 0, "pieces of %zu bytes", steps[s]);
    }
}
END_TEST

/* The portable block function on its own, where the SHA extensions would otherwise take the blocks. */
START_TEST(test_portable_vectors) {
    sha256_force_portable(true);
    check_digest("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    uint8_t *a = repeated('a', 1000000);
    check_digest(a, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
    sha256_force_portable(false);
}
END_TEST

/* sha256_ni.c against the portable code: random data of every length up to 4 KiB, and 1 MiB fed in
 * uneven pieces. On a CPU without the extensions both are the portable code. */
START_TEST(test_extensions_agree_with_portable) {
    enum { MAX = 1 << 20 };
    uint8_t *data = malloc(MAX);
    uint64_t x = 0x243f6a8885a308d3ull;
    for (size_t i = 0; i < MAX; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        data[i] = (uint8_t)x;
    }
    uint8_t fast[SHA256_DIGEST_LEN], slow[SHA256_DIGEST_LEN];
    for (size_t len = 0; len <= 4096; len++) {
        sha256(data, len, fast);
        sha256_force_portable(true);
        sha256(data, len, slow);
        sha256_force_portable(false);
        ck_assert_msg(memcmp(fast, slow, sizeof fast) == 0, "length %zu", len);
    }
    sha256_ctx c;
    sha256_init(&c);
    for (size_t off = 0, step = 1; off < MAX; off += step, step = step * 3 % 70001 + 1)
        sha256_update(&c, data + off, off + step > MAX ? MAX - off : step);
    sha256_final(&c, fast);
    sha256_force_portable(true);
    sha256(data, MAX, slow);
    sha256_force_portable(false);
    ck_assert(memcmp(fast, slow, sizeof fast) == 0);
    free(data);
}
END_TEST

Suite *sha256_suite(void) {
    Suite *s = suite_create("sha256");
    TCase *tc = tcase_create("digests");
    tcase_add_test(tc, test_nist_vectors);
    tcase_add_test(tc, test_million_a);
    tcase_add_test(tc, test_padding_boundaries);
    tcase_add_test(tc, test_incremental_equals_one_shot);
    tcase_add_test(tc, test_portable_vectors);
    tcase_add_test(tc, test_extensions_agree_with_portable);
    suite_add_tcase(s, tc);
    return s;
}
