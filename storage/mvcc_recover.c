/* mvcc_recover.c: rebuilding the index from the log at start-up, the revision → record table used
 * for history replay, and revision compaction of the index (shared by Compact and recovery). */
#include "alloc.h"
#include "le.h"
#include "mvcc_internal.h"
#include "replay_map.h"
#include "storage_io.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- the revision → record table ---------- */

/* During replay the places are listed (revision, place) and the table is built at the end from the
 * compaction revision up: the latest mark comes after the records it covers, so a dense table built
 * as records arrive would be sized by revisions long compacted away. */
static void list_replayed_place(mvcc *s, int64_t rev, log_place where) {
    if (s->n_replayed == s->cap_replayed) {
        s->cap_replayed = s->cap_replayed ? s->cap_replayed * 2 : 1024;
        s->replayed = xrealloc(s->replayed, s->cap_replayed * sizeof *s->replayed);
    }
    s->replayed[s->n_replayed++] = (replayed_place){rev, where};
}

int build_revision_table(mvcc *s, char *err, size_t errlen) {
    int64_t base = s->compact_revision > 2 ? s->compact_revision : 2, last = base;
    size_t above = 0;
    for (size_t i = 0; i < s->n_replayed; i++) {
        if (s->replayed[i].rev < base) continue;
        above++;
        if (s->replayed[i].rev > last) last = s->replayed[i].rev;
    }
    /* above the compaction every revision keeps its record: a far jump is a damaged log */
    if ((uint64_t)(last - base) > 2 * (uint64_t)above + 4096) {
        snprintf(err, errlen, "the log skips from revision %lld to %lld with %zu records between (damaged?)",
                 (long long)base, (long long)last, above);
        return -1;
    }
    s->replaying = false;
    assert(s->revs.n_blocks == 0); /* nothing is set while replaying */
    rev_table_init(&s->revs, base);
    for (size_t i = 0; i < s->n_replayed; i++)
        remember_revision_place(s, s->replayed[i].rev, s->replayed[i].where);
    free(s->replayed);
    s->replayed = NULL;
    s->n_replayed = s->cap_replayed = 0;
    return 0;
}

void remember_revision_place(mvcc *s, int64_t rev, log_place where) {
    if (s->replaying) return list_replayed_place(s, rev, where);
    rev_table_set(&s->revs, rev, value_place_of(where));
}

log_place revision_place(const mvcc *s, int64_t rev) {
    return value_log_place(rev_table_get(&s->revs, rev));
}

/* ---------- replay ---------- */

static void replay_delete(mvcc *s, keyhist *kh, const change *c, rev_entry *e, rev_entry *live) {
    if (!live) return; /* nothing to end: tolerate, as the write made it */
    e->flags = REV_TOMBSTONE;
    lease_track_delete(s, (mv_bytes){c->key, c->key_len}, live);
    keyhist_append(kh, e);
    s->live_bytes += keyhist_change_bytes(c->key_len, e);
    s->live_keys--;
}

static void replay_put(mvcc *s, keyhist *kh, const change *c, rev_entry *e, rev_entry *live,
                       log_place where) {
    e->lease = c->lease;
    e->create_revision = c->create_revision;
    e->version = c->version;
    e->value = (value_place){.segment = where.segment,
                             .length = (uint32_t)c->value_len,
                             .offset = (uint32_t)(where.offset + c->value_at)};
    lease_track_put(s, (mv_bytes){c->key, c->key_len}, live, e->lease);
    keyhist_append(kh, e);
    s->live_bytes += keyhist_change_bytes(c->key_len, e);
    if (!live) s->live_keys++;
}

static int replay_changes(mvcc *s, int64_t rev, const uint8_t *payload, size_t len, log_place where) {
    if (rev <= s->compact_revision) return -1; /* a compaction mark follows every record it covers */
    if (s->n_replayed && rev <= s->replayed[s->n_replayed - 1].rev)
        return -1; /* one record a revision, in order */
    change_iter it;
    change c;
    int got;
    change_iter_init(&it, payload, len);
    while ((got = change_next(&it, &c)) == 1) {
        keyhist *kh = replay_map_history(s->replay_keys, c.key, c.key_len);
        if (c.sub_rev > REV_SUB_MAX || where.offset + c.value_at > UINT32_MAX)
            return -1; /* no write makes these: rev_entry holds neither */
        rev_entry *newest = keyhist_newest(kh);
        if (newest && (newest->main_rev > rev || (newest->main_rev == rev && newest->sub_rev >= c.sub_rev)))
            return -1; /* histories only grow in revision order */
        rev_entry *live = keyhist_at(kh, rev);
        rev_entry e = {.main_rev = rev, .sub_rev = c.sub_rev};
        if (c.kind == CHANGE_DELETE)
            replay_delete(s, kh, &c, &e, live);
        else
            replay_put(s, kh, &c, &e, live, where);
    }
    if (got < 0) return -1;
    if (it.revoked_lease) lease_forget(s, it.revoked_lease);
    if (rev > s->revision) s->revision = rev;
    remember_revision_place(s, rev, where);
    return 0;
}

/* A compaction mark: the revision can never go back below it, and history below it is gone. */
static int replay_compaction(mvcc *s, const uint8_t *payload, size_t len) {
    if (len != 8) return -1;
    int64_t rev = le_i64(payload);
    if (rev <= s->compact_revision) return 0;
    if (s->compact_revision >= 0) s->live_bytes -= COMPACT_RECORD_BYTES;
    s->live_bytes += COMPACT_RECORD_BYTES;
    s->compact_revision = rev;
    if (s->revision < rev) s->revision = rev;
    return 0;
}

enum { PREFETCH_CHANGES = 4 };

void replay_peek(void *ctx, int type, const uint8_t *payload, size_t len) {
    mvcc *s = ctx;
    if (type != LOG_PUT && type != LOG_DELETE && type != LOG_TXN) return;
    change_iter it;
    change c;
    change_iter_init(&it, payload, len);
    for (int n = 0; n < PREFETCH_CHANGES && change_next(&it, &c) == 1; n++)
        replay_map_prefetch(s->replay_keys, c.key, c.key_len);
}

enum { RECORDS_PER_CLOCK_READ = 4096, REPORT_EVERY_US = 1000000 };

void note_replay_progress(mvcc *s, bool done) {
    struct replay_clock *c = &s->replay_clock;
    if (!s->opt.on_replay_progress || (!done && ++c->records % RECORDS_PER_CLOCK_READ)) return;
    uint64_t now = sio_now_us();
    if (now - c->started_us < REPORT_EVERY_US || (!done && now - c->reported_us < REPORT_EVERY_US)) return;
    c->reported_us = now;
    mv_replay_progress p = {.records = c->records,
                            .keys =
                                s->replay_keys ? replay_map_count(s->replay_keys) : bptree_count(s->index),
                            .revision = s->revision,
                            .seconds = (double)(now - c->started_us) / 1e6,
                            .done = done};
    s->opt.on_replay_progress(&p);
}

int replay_record(void *ctx, int type, int64_t revision, const uint8_t *payload, size_t len,
                  log_place where) {
    mvcc *s = ctx;
    note_replay_progress(s, false);
    switch (type) {
    case LOG_PUT:
    case LOG_DELETE:
    case LOG_TXN:
        return replay_changes(s, revision, payload, len, where);
    case LOG_COMPACT:
        return replay_compaction(s, payload, len);
    case LOG_LEASE_GRANT:
    case LOG_LEASE_REVOKE:
        return replay_lease_record(s, type, payload, len, where);
    case LOG_AUTH:
    case LOG_ALARMS:
    case LOG_DOWNGRADE:
        return replay_state_record(s, type, payload, len, where);
    default:
        return 0; /* index checkpoints and future record types carry nothing to replay */
    }
}

/* ---------- revision compaction of the index ---------- */

typedef struct emptied {
    uint8_t **keys;
    size_t *lens;
    size_t n, cap;
} emptied;

static void note_emptied(emptied *em, const uint8_t *key, size_t len) {
    if (em->n == em->cap) {
        em->cap = em->cap ? em->cap * 2 : 64;
        em->keys = xrealloc(em->keys, em->cap * sizeof *em->keys);
        em->lens = xrealloc(em->lens, em->cap * sizeof *em->lens);
    }
    em->keys[em->n] = xmalloc(len ? len : 1);
    memcpy(em->keys[em->n], key, len);
    em->lens[em->n++] = len;
}

static void remove_emptied(mvcc *s, emptied *em) {
    for (size_t i = 0; i < em->n; i++) {
        keyhist_free(bptree_remove(s->index, em->keys[i], em->lens[i]));
        free(em->keys[i]);
    }
    free(em->keys);
    free(em->lens);
}

static void set_cursor(mvcc *s, const uint8_t *key, size_t len) {
    free(s->prune_cursor);
    s->prune_cursor = key ? xmalloc(len + 1) : NULL;
    if (key) memcpy(s->prune_cursor, key, len);
    s->prune_cursor_len = len;
}

#define PRUNE_KEYS_PER_CLOCK_CHECK 256

/* Prunes keys from the cursor on; the cursor moves past them. True when the last key was done. */
static bool prune_some(mvcc *s, size_t max_keys) {
    emptied em = {0};
    bptree_iter it;
    bptree_seek(s->index, s->prune_cursor, s->prune_cursor_len, &it);
    size_t done = 0;
    for (; bptree_iter_valid(&it) && done < max_keys; bptree_iter_next(&it), done++) {
        bptree_iter_prefetch(&it, 8);
        size_t len;
        const uint8_t *key = bptree_iter_key(&it, &len);
        uint64_t dropped = 0;
        bool now_empty = keyhist_compact(bptree_iter_value(&it), s->prune_revision, len, &dropped);
        assert(dropped <= s->live_bytes);
        s->live_bytes -= dropped;
        if (now_empty) note_emptied(&em, key, len);
    }
    bool finished = !bptree_iter_valid(&it);
    if (!finished) {
        size_t len;
        const uint8_t *next = bptree_iter_key(&it, &len);
        set_cursor(s, next, len);
    }
    remove_emptied(s, &em);
    return finished;
}

bool index_prune(mvcc *s, uint64_t deadline_us) {
    if (!s->prune_revision) return true;
    if (s->exports_open) return false;                       /* an export reads the history as it was */
    if (rests_pin_below(s, s->prune_revision)) return false; /* a count in steps reads below it */
    do {
        if (prune_some(s, PRUNE_KEYS_PER_CLOCK_CHECK)) {
            rev_table_trim(&s->revs, s->prune_revision);
            s->prune_revision = 0;
            set_cursor(s, NULL, 0);
            return true;
        }
    } while (sio_now_us() < deadline_us);
    return false;
}

void compact_index(mvcc *s, int64_t rev) {
    assert(rev <= s->revision && rev >= s->prune_revision);
    s->prune_revision = rev; /* a newer compaction prunes the keys already done again: cheap */
    set_cursor(s, NULL, 0);
}

void compact_index_now(mvcc *s, int64_t rev) {
    compact_index(s, rev);
    while (!index_prune(s, UINT64_MAX))
        continue;
}
