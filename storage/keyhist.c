/* keyhist.c: one key's revision history: lookup at a revision, append, and compaction.
 * Entries are kept in revision order in one array, so lookups are a binary search; a history of one
 * entry keeps it inside the keyhist itself, one allocation per key instead of two. */
#include "keyhist.h"
#include "alloc.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

keyhist *keyhist_new(void) {
    keyhist *kh = xcalloc(1, sizeof *kh);
    kh->revs = &kh->one;
    kh->capacity = 1;
    return kh;
}

static bool inline_revs(const keyhist *kh) {
    assert((kh->revs == &kh->one) == (kh->capacity == 1));
    return kh->revs == &kh->one;
}

void keyhist_free(void *p) {
    keyhist *kh = p;
    if (!kh) return;
    if (!inline_revs(kh)) free(kh->revs);
    free(kh);
}

rev_entry *keyhist_newest(const keyhist *kh) {
    return kh->count ? &kh->revs[kh->count - 1] : NULL;
}

/* Index of the newest entry with main_rev <= rev, or -1. */
static long newest_at_or_before(const keyhist *kh, int64_t rev) {
    long lo = 0, hi = (long)kh->count - 1, found = -1;
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        if (kh->revs[mid].main_rev <= rev) {
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
    if (i < 0 || (kh->revs[i].flags & REV_TOMBSTONE)) return NULL;
    return &kh->revs[i];
}

rev_entry *keyhist_append(keyhist *kh, const rev_entry *e) {
    /* a history only grows in (main, sub) revision order: lookups binary-search it */
    assert(kh->count == 0 || kh->revs[kh->count - 1].main_rev < e->main_rev ||
           (kh->revs[kh->count - 1].main_rev == e->main_rev && kh->revs[kh->count - 1].sub_rev < e->sub_rev));
    if (kh->count == kh->capacity) {
        uint32_t cap = kh->capacity * 2;
        rev_entry *grown;
        if (inline_revs(kh)) {
            grown = xmalloc((size_t)cap * sizeof *grown);
            memcpy(grown, &kh->one, sizeof kh->one);
        } else {
            grown = xrealloc(kh->revs, (size_t)cap * sizeof *grown);
        }
        kh->revs = grown;
        kh->capacity = cap;
    }
    kh->revs[kh->count] = *e;
    return &kh->revs[kh->count++];
}

static void shrink_to_fit(keyhist *kh) {
    if (inline_revs(kh)) return;
    if (kh->count <= 1) { /* back inside */
        if (kh->count) kh->one = kh->revs[0];
        free(kh->revs);
        kh->revs = &kh->one;
        kh->capacity = 1;
    } else if (kh->count * 4 < kh->capacity) {
        rev_entry *small = realloc(kh->revs, (size_t)kh->count * sizeof *small);
        if (small) {
            kh->revs = small;
            kh->capacity = kh->count;
        }
    }
}

uint64_t keyhist_change_bytes(size_t key_len, const rev_entry *e) {
    /* kind byte + key length + key, then lease, create, version, value length + value for a put */
    return 5 + key_len + ((e->flags & REV_TOMBSTONE) ? 0 : 28 + (uint64_t)e->value.length);
}

bool keyhist_holds(const keyhist *kh, const rev_entry *e, int64_t compact_rev) {
    assert(e >= kh->revs && e < kh->revs + kh->count);
    if (e->main_rev > compact_rev) return true;
    if (e->flags & REV_TOMBSTONE) return false;
    const rev_entry *next = e + 1;
    return next == kh->revs + kh->count || next->main_rev > compact_rev;
}

rev_entry *keyhist_find(const keyhist *kh, int64_t main_rev, uint32_t sub_rev) {
    long i = newest_at_or_before(kh, main_rev);
    for (; i >= 0 && kh->revs[i].main_rev == main_rev; i--)
        if (kh->revs[i].sub_rev == sub_rev) return &kh->revs[i];
    return NULL;
}

bool keyhist_compact(keyhist *kh, int64_t rev, size_t key_len, uint64_t *dropped_bytes) {
    long keep_from = newest_at_or_before(kh, rev);
    if (keep_from < 0) return kh->count == 0;
    if (kh->revs[keep_from].flags & REV_TOMBSTONE) keep_from++;
    for (long i = 0; i < keep_from; i++)
        *dropped_bytes += keyhist_change_bytes(key_len, &kh->revs[i]);
    if (keep_from > 0) {
        kh->count -= (uint32_t)keep_from;
        memmove(kh->revs, kh->revs + keep_from, (size_t)kh->count * sizeof *kh->revs);
        shrink_to_fit(kh);
    }
    return kh->count == 0;
}
