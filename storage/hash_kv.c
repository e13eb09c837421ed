/* hash_kv.c: HashKV's logical hash of the history up to a revision, computed in slices so that a
 * store of millions of keys never holds the loop (issue 16): a job walks the index in key order from
 * a saved key, a few milliseconds at a time. A compaction during the job starts it again, since the
 * entries it would hash may go; new writes change nothing it hashes (their revisions are newer). */
#include "alloc.h"
#include "le.h"
#include "mvcc_internal.h"
#include "storage_io.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define KEYS_PER_CLOCK_CHECK 64

struct mv_hash_job {
    int64_t rev;         /* hashed revision */
    int64_t compact_rev; /* the compaction the walk started under */
    XXH3_state_t *h;
    uint8_t *next; /* the next key to visit (NULL: the first) */
    size_t next_len;
    bool done;
    uint64_t full; /* the digest, once done */
};

static void hash_entry(XXH3_state_t *h, mvcc *s, const uint8_t *key, size_t klen, const rev_entry *e,
                       mv_arena *a) {
    uint8_t meta[8 * 5 + 4];
    le_put(meta, klen, 8);
    le_put(meta + 8, (uint64_t)e->main_rev, 8);
    le_put(meta + 16, (uint64_t)e->create_revision, 8);
    le_put(meta + 24, (uint64_t)e->version, 8);
    le_put(meta + 32, (uint64_t)e->lease, 8);
    le_put(meta + 40, e->sub_rev | (uint64_t)(e->flags & REV_TOMBSTONE) << 31, 4);
    XXH3_64bits_update(h, meta, sizeof meta);
    XXH3_64bits_update(h, key, klen);
    if (e->flags & REV_TOMBSTONE) return;
    mv_bytes v = read_value(s, e, a);
    XXH3_64bits_update(h, v.data, v.len);
}

static void restart(mvcc *s, mv_hash_job *j) {
    XXH3_64bits_reset(j->h);
    j->compact_rev = s->compact_revision;
    free(j->next);
    j->next = NULL;
    j->next_len = 0;
}

mv_hash_job *mvcc_hash_kv_begin(mvcc *s, int64_t rev, mv_err *err) {
    if (rev <= 0) rev = s->revision;
    *err = check_read_revision(s, rev);
    if (*err != MV_OK) return NULL;
    mv_hash_job *j = xcalloc(1, sizeof *j);
    j->rev = rev;
    j->h = XXH3_createState();
    if (!j->h) out_of_memory();
    restart(s, j);
    return j;
}

/* Hashes up to n keys from the saved one; true when the index is done. */
static bool hash_some(mvcc *s, mv_hash_job *j, int n) {
    bptree_iter it;
    bptree_seek(s->index, j->next, j->next_len, &it);
    for (; n > 0 && bptree_iter_valid(&it); n--, bptree_iter_next(&it)) {
        bptree_iter_prefetch(&it, 8);
        size_t klen;
        const uint8_t *key = bptree_iter_key(&it, &klen);
        keyhist *kh = bptree_iter_value(&it);
        mv_arena *a = arena_new(); /* one key's values at a time */
        rev_entry *revs = keyhist_entries(kh);
        for (uint32_t i = 0; i < keyhist_count(kh) && revs[i].main_rev <= j->rev; i++)
            if (keyhist_holds(kh, &revs[i], j->compact_rev)) hash_entry(j->h, s, key, klen, &revs[i], a);
        arena_free(a);
    }
    if (!bptree_iter_valid(&it)) return true;
    size_t len;
    const uint8_t *next = bptree_iter_key(&it, &len);
    j->next = xrealloc(j->next, len ? len : 1);
    memcpy(j->next, next, len);
    j->next_len = len;
    return false;
}

mv_err mvcc_hash_kv_step(mvcc *s, mv_hash_job *j, uint64_t budget_us, bool *done) {
    *done = j->done;
    if (j->done) return MV_OK;
    if (s->compact_revision != j->compact_rev) { /* what the walk hashed may be gone: again */
        mv_err err = check_read_revision(s, j->rev);
        if (err != MV_OK) return err;
        restart(s, j);
    }
    uint64_t deadline = budget_us == UINT64_MAX ? UINT64_MAX : sio_now_us() + budget_us;
    do {
        if (hash_some(s, j, KEYS_PER_CLOCK_CHECK)) {
            j->full = XXH3_64bits_digest(j->h);
            j->done = *done = true;
            return MV_OK;
        }
    } while (sio_now_us() < deadline);
    return MV_OK;
}

void mvcc_hash_kv_result(const mv_hash_job *j, uint32_t *hash, int64_t *hash_rev, int64_t *compact_rev) {
    assert(j->done);
    *hash = (uint32_t)(j->full ^ (j->full >> 32));
    *hash_rev = j->rev;
    if (compact_rev) *compact_rev = j->compact_rev;
}

void mvcc_hash_kv_free(mv_hash_job *j) {
    if (!j) return;
    XXH3_freeState(j->h);
    free(j->next);
    free(j);
}

mv_err mvcc_hash_kv(mvcc *s, int64_t rev, uint32_t *hash, int64_t *hash_rev) {
    mv_err err;
    mv_hash_job *j = mvcc_hash_kv_begin(s, rev, &err);
    if (!j) return err;
    bool done = false;
    while (err == MV_OK && !done)
        err = mvcc_hash_kv_step(s, j, UINT64_MAX, &done);
    if (err == MV_OK) mvcc_hash_kv_result(j, hash, hash_rev, NULL);
    mvcc_hash_kv_free(j);
    return err;
}
