/* testutil.h: small helpers for the heavy randomized suites: a check that only calls Check when it
 * fails (Check records every passing ck_assert, which slows loops of 100k steps), and a seeded
 * xorshift generator so failures replay. */
#ifndef CETCD_TESTUTIL_H
#define CETCD_TESTUTIL_H

#include <check.h>
#include <stdint.h>

#define REQUIRE(cond)                                                                                        \
    do {                                                                                                     \
        if (!(cond)) ck_abort_msg("%s:%d: requirement failed: %s", __FILE__, __LINE__, #cond);               \
    } while (0)

static uint64_t rng_state;

static inline uint64_t rng_next(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

#endif
