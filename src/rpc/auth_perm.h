/* auth_perm.h: a user's key permissions as etcd's auth store checks them (auth/range_perm_cache.go): the
 * intervals its roles grant for reading or writing, and whether they allow a requested key or range.
 * Logic only, no state, so it is tested alone (tests/unit/test_auth_perm.c); auth_gate.c keeps one
 * read and one write set per user. */
#ifndef CETCD_AUTH_PERM_H
#define CETCD_AUTH_PERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* [begin, end) in etcd's "affine" byte order, where an empty byte string is above every key (so an
 * empty end is open-ended). Each interval owns its bytes. */
typedef struct auth_ival {
    uint8_t *begin, *end;
    size_t begin_len, end_len;
} auth_ival;

/* Intervals sorted by begin, ties in insertion order (the in-order walk of etcd's interval tree). */
typedef struct auth_perm_set {
    auth_ival *v;
    size_t n, cap;
} auth_perm_set;

/* Adds one granted permission as etcd's getMergedPerms does: an empty range_end is the single key
 * [key, key+"\0"), range_end "\0" is every key from key on, anything else [key, range_end). */
void auth_perm_set_add(auth_perm_set *s, const uint8_t *key, size_t key_len, const uint8_t *range_end,
                       size_t end_len);
void auth_perm_set_free(auth_perm_set *s);

/* etcd's isRangeOpPermitted: with an empty range_end, whether some interval holds the key; otherwise
 * whether the intervals together cover [key, range_end) without a gap (range_end "\0": every key from
 * key on). */
bool auth_perm_set_allows(const auth_perm_set *s, const uint8_t *key, size_t key_len,
                          const uint8_t *range_end, size_t end_len);

/* etcd 3.5's isValidPermissionRange, checked when a permission is granted: a key, and a range_end that
 * is empty (one key), "\0" (open-ended) or above the key. */
bool auth_perm_valid_range(const uint8_t *key, size_t key_len, const uint8_t *range_end, size_t end_len);

#endif
