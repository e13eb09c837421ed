/* keyhist.c: one key and its revision history: lookup at a revision, append, and compaction.
 * Entries are kept in revision order in one array, so lookups are a binary search; the key and a
 * history of one entry live in the keyhist itself, one allocation per key instead of three. */
#include "keyhist.h"
#include "alloc.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The index's memory per key rests on these (docs/architecture.md). */
_Static_assert(sizeof(rev_entry) == 48, "rev_entry grew");
_Static_assert(sizeof(keyhist) == 4 && sizeof(bkey) == 4, "keyhist header grew");
_Static_assert(sizeof(value_place) == 12, "value_place grew");

/* Where the entries (or the array's pointer) start: after the header and the key, 8-byte aligned. */
static size_t entries_offset(uint32_t key_len) {
    return (sizeof(keyhist) + sizeof(bkey) + (size_t)key_len + 7) & ~(size_t)7;
}

static bkey *key_of(const keyhist *kh) {
    return (bkey *)((uintptr_t)kh + sizeof(keyhist));
}

static uint8_t *entries_at(const keyhist *kh) {
    return (uint8_t *)kh + entries_offset(key_of(kh)->len);
}

keyhist *keyhist_new(const uint8_t *key, size_t len) {
    assert(len <= UINT32_MAX); /* keys come in requests, under 2 GiB */
    keyhist *kh = xcalloc(1, entries_offset((uint32_t)len) + sizeof(rev_entry));
    bkey *k = key_of(kh);
    k->len = (uint32_t)len;
    if (len) memcpy(k->bytes, key, len);
    return kh;
}

const bkey *keyhist_key(const keyhist *kh) {
    return key_of(kh);
}

const bkey *keyhist_key_of(const void *kh) {
    return key_of(kh);
}

/* Entries of an array: the power of two at or above count (count >= 2). */
static uint32_t capacity_for(uint32_t count) {
    assert(count >= 2 && count <= (1u << 31));
    return count <= 2 ? 2 : 1u << (32 - __builtin_clz(count - 1));
}

static bool inline_revs(const keyhist *kh) {
    return kh->count <= 1;
}

static rev_entry *array_of(const keyhist *kh) {
    rev_entry *many;
    memcpy(&many, entries_at(kh), sizeof many);
    return many;
}

static void set_array(keyhist *kh, rev_entry *many) {
    memcpy(entries_at(kh), &many, sizeof many);
}

/* The entries of kh; const-free because callers hand out pointers into them. */
static rev_entry *revs_of(const keyhist *kh) {
    return inline_revs(kh) ? (rev_entry *)entries_at(kh) : array_of(kh);
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
    if (!inline_revs(kh)) free(array_of(kh));
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
    rev_entry entry = *e; /* e may point into the entries that move */
    if (kh->count == UINT32_MAX / 2) {
        fprintf(stderr, "cetcd: fatal: a key holds 2^31 revisions since the last compaction\n");
        abort();
    }
    if (kh->count == 1) { /* out of the keyhist, into an array */
        rev_entry *many = xmalloc(capacity_for(2) * sizeof *many);
        many[0] = *(rev_entry *)entries_at(kh);
        set_array(kh, many);
    } else if (kh->count >= 2 && kh->count == capacity_for(kh->count)) {
        set_array(kh, xrealloc(array_of(kh), (size_t)capacity_for(kh->count + 1) * sizeof(rev_entry)));
    }
    kh->count++;
    rev_entry *slot = &revs_of(kh)[kh->count - 1];
    *slot = entry;
    return slot;
}

/* After count fell from `was`: back inside when one entry or none is left, else a smaller array
 * when its power of two went down. */
static void shrink_to_fit(keyhist *kh, uint32_t was) {
    if (was <= 1) return;
    rev_entry *many = array_of(kh);
    if (kh->count <= 1) {
        if (kh->count) *(rev_entry *)entries_at(kh) = many[0];
        free(many);
    } else if (capacity_for(kh->count) < capacity_for(was)) {
        set_array(kh, xrealloc(many, (size_t)capacity_for(kh->count) * sizeof *many));
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
        uint32_t was = kh->count;
        kh->count -= (uint32_t)keep_from;
        memmove(revs, revs + keep_from, (size_t)kh->count * sizeof *revs);
        shrink_to_fit(kh, was);
    }
    return kh->count == 0;
}
