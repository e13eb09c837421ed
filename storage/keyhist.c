/* keyhist.c: one key's revision history: lookup at a revision, append, and compaction.
 * Entries are kept in revision order in one array, so lookups are a binary search; a history of one
 * entry keeps it inside the keyhist itself, one allocation per key instead of two. */
#include "keyhist.h"
#include "alloc.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The index's memory per key rests on these (docs/architecture.md): a 56-byte keyhist is a 64-byte
 * malloc chunk. */
_Static_assert(sizeof(rev_entry) == 48, "rev_entry grew");
_Static_assert(sizeof(keyhist) == 56, "keyhist grew");
_Static_assert(sizeof(value_place) == 12, "value_place grew");

keyhist *keyhist_new(void) {
    keyhist *kh = xcalloc(1, sizeof *kh);
    kh->capacity = 1;
    return kh;
}

static bool inline_revs(const keyhist *kh) {
    assert(kh->capacity >= 1 && kh->count <= kh->capacity);
    return kh->capacity == 1;
}

/* The entries of kh; const-free because callers hand out pointers into them. */
static rev_entry *revs_of(const keyhist *kh) {
    keyhist *k = (keyhist *)kh;
    return inline_revs(kh) ? &k->revs.one : k->revs.many;
}

rev_entry *keyhist_entries(keyhist *kh) {
    return revs_of(kh);
}

value_place value_place_of(log_place where) {
    if (where.offset > UINT32_MAX) { /* no segment is written that large: a damaged data dir */
        fprintf(stderr, "cetcd: a value lies past 4 GiB into log segment %" PRIu32 "\n", where.segment);
        abort();
    }
    return (value_place){.segment = where.segment, .length = where.length, .offset = (uint32_t)where.offset};
}

void keyhist_free(void *p) {
    keyhist *kh = p;
    if (!kh) return;
    if (!inline_revs(kh)) free(kh->revs.many);
    free(kh);
}

rev_entry *keyhist_newest(const keyhist *kh) {
    return kh->count ? &revs_of(kh)[kh->count - 1] : NULL;
}

/* Index of the newest entry with main_rev <= rev, or -1. */
static long newest_at_or_before(const keyhist *kh, int64_t rev) {
    const rev_entry *revs = revs_of(kh);
    long lo = 0, hi = (long)kh->count - 1, found = -1;
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        if (revs[mid].main_rev <= rev) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}

rev_entry *keyhist_at(const keyhist *kh, int64_t rev) {
    long i = newest_at_or_before(kh, rev);
    rev_entry *e = i < 0 ? NULL : &revs_of(kh)[i];
    return e && !(e->flags & REV_TOMBSTONE) ? e : NULL;
}

rev_entry *keyhist_append(keyhist *kh, const rev_entry *e) {
    /* a history only grows in (main, sub) revision order: lookups binary-search it */
    const rev_entry *last = keyhist_newest(kh);
    assert(!last || last->main_rev < e->main_rev ||
           (last->main_rev == e->main_rev && last->sub_rev < e->sub_rev));
    if (kh->count == kh->capacity) {
        uint32_t cap = kh->capacity * 2;
        rev_entry *grown;
        if (inline_revs(kh)) {
            grown = xmalloc((size_t)cap * sizeof *grown);
            grown[0] = kh->revs.one;
        } else {
            grown = xrealloc(kh->revs.many, (size_t)cap * sizeof *grown);
        }
        kh->revs.many = grown;
        kh->capacity = cap;
    }
    revs_of(kh)[kh->count] = *e;
    return &revs_of(kh)[kh->count++];
}

static void shrink_to_fit(keyhist *kh) {
    if (inline_revs(kh)) return;
    if (kh->count <= 1) { /* back inside */
        rev_entry *many = kh->revs.many;
        if (kh->count) kh->revs.one = many[0];
        free(many);
        kh->capacity = 1;
    } else if (kh->count * 4 < kh->capacity) {
        rev_entry *small = realloc(kh->revs.many, (size_t)kh->count * sizeof *small);
        if (small) {
            kh->revs.many = small;
            kh->capacity = kh->count;
        }
    }
}

uint64_t keyhist_change_bytes(size_t key_len, const rev_entry *e) {
    /* kind byte + key length + key, then lease, create, version, value length + value for a put */
    return 5 + key_len + ((e->flags & REV_TOMBSTONE) ? 0 : 28 + (uint64_t)e->value.length);
}

bool keyhist_holds(const keyhist *kh, const rev_entry *e, int64_t compact_rev) {
    const rev_entry *revs = revs_of(kh);
    assert(e >= revs && e < revs + kh->count);
    if (e->main_rev > compact_rev) return true;
    if (e->flags & REV_TOMBSTONE) return false;
    const rev_entry *next = e + 1;
    return next == revs + kh->count || next->main_rev > compact_rev;
}

rev_entry *keyhist_find(const keyhist *kh, int64_t main_rev, uint32_t sub_rev) {
    rev_entry *revs = revs_of(kh);
    for (long i = newest_at_or_before(kh, main_rev); i >= 0 && revs[i].main_rev == main_rev; i--)
        if (revs[i].sub_rev == sub_rev) return &revs[i];
    return NULL;
}

bool keyhist_compact(keyhist *kh, int64_t rev, size_t key_len, uint64_t *dropped_bytes) {
    rev_entry *revs = revs_of(kh);
    long keep_from = newest_at_or_before(kh, rev);
    if (keep_from < 0) return kh->count == 0;
    if (revs[keep_from].flags & REV_TOMBSTONE) keep_from++;
    for (long i = 0; i < keep_from; i++)
        *dropped_bytes += keyhist_change_bytes(key_len, &revs[i]);
    if (keep_from > 0) {
        kh->count -= (uint32_t)keep_from;
        memmove(revs, revs + keep_from, (size_t)kh->count * sizeof *revs);
        shrink_to_fit(kh);
    }
    return kh->count == 0;
}
