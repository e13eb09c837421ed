/* mvcc_recover.c: rebuilding the index from the log at start-up, the revision → record table used
 * for history replay, and revision compaction of the index (shared by Compact and recovery). */
#include "le.h"
#include "mvcc_internal.h"

#include <stdlib.h>
#include <string.h>

void remember_revision_place(mvcc *s, int64_t rev, log_place where) {
    size_t slot = (size_t)(rev - s->rev_base);
    if (rev < s->rev_base) return;
    if (slot >= s->cap_rev_places) {
        size_t cap = s->cap_rev_places ? s->cap_rev_places * 2 : 1024;
        while (cap <= slot)
            cap *= 2;
        s->rev_places = realloc(s->rev_places, cap * sizeof *s->rev_places);
        if (!s->rev_places) abort();
        memset(s->rev_places + s->cap_rev_places, 0, (cap - s->cap_rev_places) * sizeof *s->rev_places);
        s->cap_rev_places = cap;
    }
    s->rev_places[slot] = where;
    if (slot + 1 > s->n_rev_places) s->n_rev_places = slot + 1;
}

/* Applies one change of a replayed record; returns bytes consumed, 0 if malformed. */
static size_t replay_change(mvcc *s, int64_t rev, uint32_t sub, const uint8_t *p, size_t left,
                            log_place where, size_t at) {
    if (left < 5) return 0;
    uint8_t kind = p[0];
    uint32_t klen = le_u32(p + 1);
    size_t used = 5 + (size_t)klen;
    if (used > left) return 0;
    mv_bytes key = {p + 5, klen};
    keyhist *kh = history_for_write(s, key);
    rev_entry *live = keyhist_at(kh, rev);
    rev_entry e = {.main_rev = rev, .sub_rev = sub};
    if (kind == CHANGE_DELETE) {
        if (!live) return used; /* nothing to end: tolerate, as the write made it */
        e.flags = REV_TOMBSTONE;
        lease_track_delete(s, key, live);
        keyhist_append(kh, &e);
        s->live_bytes += keyhist_change_bytes(key.len, &e);
        s->live_keys--;
        return used;
    }
    if (kind != CHANGE_PUT || used + 28 > left) return 0;
    e.lease = le_i64(p + used);
    e.create_revision = le_i64(p + used + 8);
    e.version = le_i64(p + used + 16);
    uint32_t vlen = le_u32(p + used + 24);
    used += 28;
    if (used + vlen > left) return 0;
    e.value = (log_place){.segment = where.segment, .length = vlen, .offset = where.offset + at + used};
    lease_track_put(s, key, live, e.lease);
    keyhist_append(kh, &e);
    s->live_bytes += keyhist_change_bytes(key.len, &e);
    if (!live) s->live_keys++;
    return used + vlen;
}

static int replay_changes(mvcc *s, int64_t rev, const uint8_t *payload, size_t len, log_place where) {
    size_t at = 0;
    uint32_t sub = 0;
    while (at < len) {
        size_t used = replay_change(s, rev, sub++, payload + at, len - at, where, at);
        if (!used) return -1;
        at += used;
    }
    if (rev > s->revision) s->revision = rev;
    remember_revision_place(s, rev, where);
    return 0;
}

int replay_record(void *ctx, int type, int64_t revision, const uint8_t *payload, size_t len,
                  log_place where) {
    mvcc *s = ctx;
    switch (type) {
    case LOG_PUT:
    case LOG_DELETE:
    case LOG_TXN:
        return replay_changes(s, revision, payload, len, where);
    case LOG_COMPACT:
        if (len != 8) return -1;
        if (le_i64(payload) > s->compact_revision) s->compact_revision = le_i64(payload);
        return 0;
    case LOG_LEASE_GRANT:
    case LOG_LEASE_REVOKE:
        return replay_lease_record(s, type, payload, len);
    default:
        return 0; /* index checkpoints and future record types carry nothing to replay */
    }
}

typedef struct emptied {
    uint8_t **keys;
    size_t *lens;
    size_t n, cap;
} emptied;

static void note_emptied(emptied *em, const uint8_t *key, size_t len) {
    if (em->n == em->cap) {
        em->cap = em->cap ? em->cap * 2 : 64;
        em->keys = realloc(em->keys, em->cap * sizeof *em->keys);
        em->lens = realloc(em->lens, em->cap * sizeof *em->lens);
        if (!em->keys || !em->lens) abort();
    }
    em->keys[em->n] = malloc(len ? len : 1);
    if (!em->keys[em->n]) abort();
    memcpy(em->keys[em->n], key, len);
    em->lens[em->n++] = len;
}

void compact_index(mvcc *s, int64_t rev) {
    emptied em = {0};
    bptree_iter it;
    for (bptree_seek(s->index, NULL, 0, &it); bptree_iter_valid(&it); bptree_iter_next(&it)) {
        size_t len;
        const uint8_t *key = bptree_iter_key(&it, &len);
        uint64_t dropped = 0;
        bool now_empty = keyhist_compact(bptree_iter_value(&it), rev, len, &dropped);
        s->live_bytes -= dropped;
        if (!now_empty) continue;
        note_emptied(&em, key, len);
    }
    for (size_t i = 0; i < em.n; i++) {
        keyhist_free(bptree_remove(s->index, em.keys[i], em.lens[i]));
        free(em.keys[i]);
    }
    free(em.keys);
    free(em.lens);
}
