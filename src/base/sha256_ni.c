/* sha256_ni.c: SHA-256's block function on the x86 SHA extensions, which hash a snapshot several times
 * faster than the portable code in sha256.c (a snapshot streams its whole store through it). Chosen at
 * run time by sha256_ni_usable; tests compare it with the portable code on random input. */
#include "sha256.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

bool sha256_ni_usable(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    bool ssse3 = c & (1u << 9), sse41 = c & (1u << 19);
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return ssse3 && sse41 && (b & (1u << 29)); /* leaf 7 EBX bit 29: SHA */
}

/* The state as the instructions want it: one register of A, B, E, F (A in the top lane) and one of
 * C, D, G, H. Each group of four rounds adds its constants to four message words; a message word
 * past the 16th is made from earlier ones by sha256msg1 (the sigma0 part), an add of W[t-7], and
 * sha256msg2 (the sigma1 part). */
__attribute__((target("sha,sse4.1,ssse3"))) void sha256_ni_blocks(uint32_t h[8], const uint8_t *p, size_t n,
                                                                  const uint32_t k[64]) {
    const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);   /* big-endian words */
    __m128i abcd = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h), 0xB1);       /* b a d c */
    __m128i efgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(h + 4)), 0x1B); /* h g f e */
    __m128i abef = _mm_alignr_epi8(abcd, efgh, 8);
    __m128i cdgh = _mm_blend_epi16(efgh, abcd, 0xF0);
    for (; n > 0; n--, p += 64) {
        __m128i abef_in = abef, cdgh_in = cdgh, m[4];
        for (int g = 0; g < 16; g++) {
            if (g < 4) {
                m[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)), swap);
            } else { /* m[g & 3] holds group g-4; the others g-3, g-2 and g-1 in turn */
                __m128i t = _mm_sha256msg1_epu32(m[g & 3], m[(g + 1) & 3]);
                t = _mm_add_epi32(t, _mm_alignr_epi8(m[(g + 3) & 3], m[(g + 2) & 3], 4));
                m[g & 3] = _mm_sha256msg2_epu32(t, m[(g + 3) & 3]);
            }
            __m128i wk = _mm_add_epi32(m[g & 3], _mm_loadu_si128((const __m128i *)(k + 4 * g)));
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0E));
        }
        abef = _mm_add_epi32(abef, abef_in);
        cdgh = _mm_add_epi32(cdgh, cdgh_in);
    }
    __m128i ab_ef = _mm_shuffle_epi32(abef, 0x1B); /* a b e f from the bottom lane */
    __m128i gh_cd = _mm_shuffle_epi32(cdgh, 0xB1); /* g h c d */
    _mm_storeu_si128((__m128i *)h, _mm_blend_epi16(ab_ef, gh_cd, 0xF0));
    _mm_storeu_si128((__m128i *)(h + 4), _mm_alignr_epi8(gh_cd, ab_ef, 8));
}

#else
#include <stdlib.h>

bool sha256_ni_usable(void) {
    return false;
}

void sha256_ni_blocks(uint32_t h[8], const uint8_t *p, size_t n, const uint32_t k[64]) {
    (void)h, (void)p, (void)n, (void)k;
    abort(); /* never called: sha256_ni_usable is false on this machine */
}

#endif
