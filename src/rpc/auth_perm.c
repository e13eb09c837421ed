/* auth_perm.c: etcd's permission intervals (auth/range_perm_cache.go over pkg/adt's interval tree),
 * rule for rule: the same affine byte order, the same overlap test and the same "covered without a
 * gap" walk; a sorted array stands in for the tree, since a user's permissions are few. */
#include "auth_perm.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* adt.BytesAffineComparable: bytes order, except that the empty string is above everything. */
static int affine_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
    if (al == 0) return bl == 0 ? 0 : 1;
    if (bl == 0) return -1;
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c != 0) return c < 0 ? -1 : 1;
    return (al > bl) - (al < bl);
}

/* adt's Interval.Compare of q against p: -1 if q lies left of p, 1 if right of it, 0 if they overlap. */
static int ival_cmp(const auth_ival *q, const auth_ival *p) {
    int begin_begin = affine_cmp(q->begin, q->begin_len, p->begin, p->begin_len);
    int begin_end = affine_cmp(q->begin, q->begin_len, p->end, p->end_len);
    int end_begin = affine_cmp(q->end, q->end_len, p->begin, p->begin_len);
    if (begin_begin < 0 && end_begin <= 0) return -1;
    if (begin_end >= 0) return 1;
    return 0;
}

static uint8_t *copy_bytes(const uint8_t *p, size_t n, size_t extra) {
    uint8_t *out = xmalloc(n + extra + 1);
    if (n) memcpy(out, p, n);
    memset(out + n, 0, extra + 1);
    return out;
}

void auth_perm_set_add(auth_perm_set *s, const uint8_t *key, size_t key_len, const uint8_t *range_end,
                       size_t end_len) {
    auth_ival iv = {.begin = copy_bytes(key, key_len, 0), .begin_len = key_len};
    if (end_len == 0) { /* one key: [key, key+"\0") */
        iv.end = copy_bytes(key, key_len, 1);
        iv.end_len = key_len + 1;
    } else if (end_len == 1 && range_end[0] == 0) { /* from key on: the empty end, above all */
        iv.end = copy_bytes(NULL, 0, 0);
        iv.end_len = 0;
    } else {
        iv.end = copy_bytes(range_end, end_len, 0);
        iv.end_len = end_len;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 8;
        s->v = xrealloc(s->v, s->cap * sizeof *s->v);
    }
    size_t at = s->n; /* after every interval that does not begin above it: ties keep insertion order */
    while (at > 0 && affine_cmp(s->v[at - 1].begin, s->v[at - 1].begin_len, iv.begin, iv.begin_len) > 0)
        at--;
    memmove(&s->v[at + 1], &s->v[at], (s->n - at) * sizeof *s->v);
    s->v[at] = iv;
    s->n++;
}

void auth_perm_set_free(auth_perm_set *s) {
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].begin);
        free(s->v[i].end);
    }
    free(s->v);
    *s = (auth_perm_set){0};
}

/* IntervalTree.Intersects: some interval overlaps q. */
static bool intersects(const auth_perm_set *s, const auth_ival *q) {
    for (size_t i = 0; i < s->n; i++)
        if (ival_cmp(q, &s->v[i]) == 0) return true;
    return false;
}

/* IntervalTree.Contains: the intervals overlapping q, in begin order, join without a gap and reach
 * from q's begin to its end. */
static bool contains(const auth_perm_set *s, const auth_ival *q) {
    const auth_ival *first = NULL;
    const uint8_t *max_end = NULL;
    size_t max_end_len = 0;
    for (size_t i = 0; i < s->n; i++) {
        const auth_ival *p = &s->v[i];
        if (ival_cmp(q, p) != 0) continue;
        if (!first) {
            first = p;
            max_end = p->end, max_end_len = p->end_len;
            continue;
        }
        if (affine_cmp(max_end, max_end_len, p->begin, p->begin_len) < 0) return false; /* a gap */
        if (affine_cmp(p->end, p->end_len, max_end, max_end_len) > 0)
            max_end = p->end, max_end_len = p->end_len;
    }
    return first && affine_cmp(max_end, max_end_len, q->end, q->end_len) >= 0 &&
           affine_cmp(first->begin, first->begin_len, q->begin, q->begin_len) <= 0;
}

bool auth_perm_set_allows(const auth_perm_set *s, const uint8_t *key, size_t key_len,
                          const uint8_t *range_end, size_t end_len) {
    auth_ival q = {.begin = (uint8_t *)key, .begin_len = key_len};
    if (end_len == 0) { /* checkKeyPoint: the point [key, key+"\0") */
        uint8_t small[256];
        uint8_t *end = key_len < sizeof small ? small : xmalloc(key_len + 1);
        if (key_len) memcpy(end, key, key_len);
        end[key_len] = 0;
        q.end = end, q.end_len = key_len + 1;
        bool ok = intersects(s, &q);
        if (end != small) free(end);
        return ok;
    }
    /* checkKeyInterval: "\0" is open-ended, the empty end */
    if (!(end_len == 1 && range_end[0] == 0)) q.end = (uint8_t *)range_end, q.end_len = end_len;
    return contains(s, &q);
}

bool auth_perm_valid_range(const uint8_t *key, size_t key_len, const uint8_t *range_end, size_t end_len) {
    if (key_len == 0) return false;
    if (end_len == 0) return true;
    if (affine_cmp(key, key_len, range_end, end_len) < 0) return true;
    return end_len == 1 && range_end[0] == 0;
}
