/* mvcc.c: the store's core: opening, the write in progress (one revision, one log record), Put,
 * DeleteRange, Compact and the commit. Ranges live in mvcc_range.c, Txn in mvcc_txn.c, start-up
 * replay in mvcc_recover.c. */
#include "alloc.h"
#include "le.h"
#include "mvcc_internal.h"
#include "replay_map.h"
#include "storage_io.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_QUOTA (2ULL * 1024 * 1024 * 1024)
#define DEFAULT_MAX_TXN_OPS 128

mvcc *mvcc_open(const char *dir, const mvcc_options *opt, char *err, size_t errlen) {
    mvcc *s = xcalloc(1, sizeof *s);
    s->opt = *opt;
    if (!s->opt.quota_bytes) s->opt.quota_bytes = DEFAULT_QUOTA;
    if (!s->opt.max_txn_ops) s->opt.max_txn_ops = DEFAULT_MAX_TXN_OPS;
    s->index = bptree_new_keyed(keyhist_key_of);
    leases_init(s);
    s->revision = 1;
    s->compact_revision = -1; /* as etcd: compacting at 0 works once on a new store */
    rev_table_init(&s->revs, 2);
    s->replaying = true;
    s->replay_keys = replay_map_new();
    s->replay_clock.started_us = s->replay_clock.reported_us = sio_now_us();
    log_options lo = {.fsync = opt->fsync, .segment_bytes = opt->segment_bytes, .peek = replay_peek};
    s->log = log_open(dir, &lo, replay_record, s, err, errlen);
    if (!s->log || build_revision_table(s, err, errlen) < 0) {
        mvcc_close(s);
        return NULL;
    }
    replay_map_load(s->replay_keys, s->index);
    s->replay_keys = NULL;
    if (s->compact_revision > 0) compact_index_now(s, s->compact_revision);
    note_replay_progress(s, true);
    if (s->opt.disk_reserve_bytes) mvcc_check_disk(s, NULL); /* unread on failure: the loop retries */
    assert(s->revision >= s->compact_revision);
    return s;
}

void mvcc_close(mvcc *s) {
    if (!s) return;
    assert(!s->rests_open); /* their owners end them first */
    log_compaction_free(s);
    if (s->log) log_close(s->log);
    bptree_free(s->index, keyhist_free);
    replay_map_free(s->replay_keys);
    leases_free(s);
    state_blobs_free(s);
    free(s->wb.payload);
    free(s->wb.pending);
    rev_table_free(&s->revs);
    free(s->replayed);
    free(s->prune_cursor);
    free(s);
}

int64_t mvcc_revision(const mvcc *s) {
    return s->revision;
}
int64_t mvcc_compact_revision(const mvcc *s) {
    return s->compact_revision;
}
int mvcc_index_compaction_step(mvcc *s, uint64_t budget_us) {
    return index_prune(s, sio_now_us() + budget_us) ? 0 : 1;
}
bool mvcc_index_compaction_pending(const mvcc *s) {
    return s->prune_revision != 0;
}
bool mvcc_has_batch(const mvcc *s) {
    return log_has_batch(s->log);
}
bool mvcc_wants_job(const mvcc *s) {
    return log_wants_job(s->log);
}
int mvcc_commit(mvcc *s) {
    return log_commit(s->log);
}
int mvcc_write_batch(mvcc *s, struct log_job **job) {
    return log_write_batch(s->log, job);
}
int mvcc_run_job(struct log_job *job) {
    return log_run_job(job);
}
void mvcc_sync_finished(mvcc *s, int rc) {
    log_sync_finished(s->log, rc);
}
uint64_t mvcc_db_size(const mvcc *s) {
    return log_total_bytes(s->log);
}
uint64_t mvcc_db_size_in_use(const mvcc *s) {
    return s->live_bytes;
}
uint64_t mvcc_key_count(const mvcc *s) {
    return s->live_keys;
}
uint64_t mvcc_fsync_count(const mvcc *s) {
    return log_fsync_count(s->log);
}

bool over_quota(const mvcc *s, size_t incoming) {
    return log_total_bytes(s->log) + incoming > s->opt.quota_bytes || disk_too_low(s, incoming);
}

void mvcc_on_revision(mvcc *s, mv_revision_hook fn, void *ctx) {
    s->on_revision = fn;
    s->on_revision_ctx = ctx;
}

mv_arena *mv_arena_new(void) {
    return arena_new();
}

void mv_arena_free(mv_arena *a) {
    arena_free(a);
}

void *mv_arena_alloc(mv_arena *a, size_t size) {
    return arena_alloc(a, size);
}

void mv_result_free(mv_result *r) {
    arena_free(r->arena);
    r->arena = NULL;
}

/* --- the write in progress --- */

static void payload_grow(write_batch *wb, size_t more) {
    size_t cap = wb->cap ? wb->cap : 256;
    while (cap < wb->len + more)
        cap *= 2;
    wb->payload = xrealloc(wb->payload, cap);
    wb->cap = cap;
}

static inline void payload_reserve(write_batch *wb, size_t more) {
    if (wb->len + more > wb->cap) payload_grow(wb, more);
}

static inline void payload_add(write_batch *wb, const void *p, size_t n) {
    if (n == 0) return; /* an empty value may come as a NULL pointer */
    payload_reserve(wb, n);
    memcpy(wb->payload + wb->len, p, n);
    wb->len += n;
}

/* Little-endian stores the compiler merges into one each (le_put's loop it leaves byte by byte). */
static inline void store_le32(uint8_t *b, uint32_t v) {
    b[0] = (uint8_t)v, b[1] = (uint8_t)(v >> 8), b[2] = (uint8_t)(v >> 16), b[3] = (uint8_t)(v >> 24);
}

static inline void store_le64(uint8_t *b, uint64_t v) {
    store_le32(b, (uint32_t)v);
    store_le32(b + 4, (uint32_t)(v >> 32));
}

/* A put change's bytes besides its key and value: type, key length, lease, create revision,
 * version, value length. */
#define PUT_HEAD_BYTES (1 + 4 + 3 * 8 + 4)

static inline void payload_u32(write_batch *wb, uint32_t v) {
    uint8_t b[4];
    le_put(b, v, 4);
    payload_add(wb, b, 4);
}

void write_begin(mvcc *s) {
    write_batch *wb = &s->wb;
    wb->active = true;
    wb->revision = s->revision + 1;
    wb->next_sub = 0;
    wb->len = 0;
    wb->n_pending = 0;
    wb->record_type = 0;
}

bool write_has_changes(const mvcc *s) {
    return s->wb.active && s->wb.next_sub > 0;
}

int64_t read_revision(const mvcc *s) {
    return write_has_changes(s) ? s->wb.revision : s->revision;
}

static void note_change_type(write_batch *wb, int type) {
    wb->record_type = wb->record_type == 0 || wb->record_type == type ? type : LOG_TXN;
}

static void *new_history(const uint8_t *key, size_t len) {
    return keyhist_new(key, len);
}

keyhist *history_for_write(mvcc *s, mv_bytes key) {
    bool created;
    return bptree_get_or_add(s->index, key.data, key.len, new_history, &created);
}

static void add_pending(write_batch *wb, keyhist *kh) {
    if (wb->n_pending == wb->cap_pending) {
        wb->cap_pending = wb->cap_pending ? wb->cap_pending * 2 : 8;
        wb->pending = xrealloc(wb->pending, wb->cap_pending * sizeof *wb->pending);
    }
    wb->pending[wb->n_pending++] = (pending_value){kh, keyhist_count(kh) - 1};
}

/* The sub-revision of the write's next change. A revision holds at most REV_SUB_MAX + 1 changes
 * (268M: far more keys than the memory of a machine holds, so no request reaches it). */
static uint32_t next_sub_rev(write_batch *wb) {
    if (wb->next_sub > REV_SUB_MAX) {
        fprintf(stderr, "cetcd: fatal: over %u changes in one revision\n", REV_SUB_MAX + 1);
        abort();
    }
    return wb->next_sub++;
}

void write_put(mvcc *s, mv_bytes key, mv_bytes value, int64_t lease, rev_entry *prev, bool *had_prev) {
    write_batch *wb = &s->wb;
    keyhist *kh = history_for_write(s, key);
    rev_entry *live = keyhist_at(kh, read_revision(s));
    *had_prev = live != NULL;
    if (live) *prev = *live;
    rev_entry e = {
        .main_rev = wb->revision, .sub_rev = next_sub_rev(wb), .lease = lease, .flags = REV_PENDING};
    e.create_revision = live ? live->create_revision : wb->revision;
    e.version = live ? live->version + 1 : 1;
    /* create revision and version are written out, so replay never depends on older history */
    payload_reserve(wb, PUT_HEAD_BYTES + key.len + value.len);
    uint8_t *p = wb->payload + wb->len;
    *p = CHANGE_PUT;
    store_le32(p + 1, (uint32_t)key.len);
    if (key.len) memcpy(p + 5, key.data, key.len);
    p += 5 + key.len;
    store_le64(p, (uint64_t)lease);
    store_le64(p + 8, (uint64_t)e.create_revision);
    store_le64(p + 16, (uint64_t)e.version);
    store_le32(p + 24, (uint32_t)value.len);
    wb->len += PUT_HEAD_BYTES + key.len;
    assert(wb->len <= UINT32_MAX); /* log_append takes no record over 4 GiB */
    e.value = (value_place){.offset = (uint32_t)wb->len, .length = (uint32_t)value.len};
    payload_add(wb, value.data, value.len);
    lease_track_put(s, key, live, lease);
    keyhist_append(kh, &e);
    s->live_bytes += keyhist_change_bytes(key.len, &e);
    add_pending(wb, kh);
    if (!live) s->live_keys++;
    note_change_type(wb, LOG_PUT);
}

void write_delete(mvcc *s, mv_bytes key, keyhist *kh, const rev_entry *live) {
    write_batch *wb = &s->wb;
    assert(kh && live && !(live->flags & REV_TOMBSTONE));
    lease_track_delete(s, key, live);
    payload_add(wb, &(uint8_t){CHANGE_DELETE}, 1);
    payload_u32(wb, (uint32_t)key.len);
    payload_add(wb, key.data, key.len);
    rev_entry e = {.main_rev = wb->revision, .sub_rev = next_sub_rev(wb), .flags = REV_TOMBSTONE};
    keyhist_append(kh, &e);
    s->live_bytes += keyhist_change_bytes(key.len, &e);
    s->live_keys--;
    note_change_type(wb, LOG_DELETE);
}

void write_revoke_marker(mvcc *s, int64_t id) {
    uint8_t marker[CHANGE_REVOKE_BYTES];
    change_encode_revoke(marker, id);
    payload_add(&s->wb, marker, sizeof marker);
}

void write_finish(mvcc *s) {
    write_batch *wb = &s->wb;
    wb->active = false;
    if (wb->next_sub == 0) return;
    log_place where = log_append(s->log, wb->record_type, wb->revision, wb->payload, wb->len);
    for (size_t i = 0; i < wb->n_pending; i++) {
        rev_entry *e = &keyhist_entries(wb->pending[i].kh)[wb->pending[i].entry];
        e->value = value_place_of((log_place){
            .segment = where.segment, .length = e->value.length, .offset = e->value.offset + where.offset});
        e->flags &= ~(uint32_t)REV_PENDING;
    }
    assert(wb->revision == s->revision + 1); /* revisions only grow, one per write */
    s->revision = wb->revision;
    remember_revision_place(s, wb->revision, where);
    if (s->on_revision) s->on_revision(s->on_revision_ctx, s->revision);
}

/* --- reading values --- */

_Noreturn void value_read_failed(void) {
    fprintf(stderr, "cetcd: fatal: cannot read a value back from the log\n");
    abort();
}

mv_bytes read_value(mvcc *s, const rev_entry *e, mv_arena *a) {
    mv_bytes v = {NULL, e->value.length};
    uint8_t *dst = arena_alloc_raw(a, e->value.length + 1); /* a value is read over it at once */
    dst[e->value.length] = 0;
    if (e->flags & REV_PENDING) {
        memcpy(dst, s->wb.payload + e->value.offset, e->value.length);
    } else if (e->value.length && log_read(s->log, value_log_place(e->value), dst) != 0) {
        value_read_failed();
    }
    v.data = dst;
    return v;
}

void fill_kv(mvcc *s, mv_kv *kv, mv_bytes key, const rev_entry *e, bool with_value, mv_arena *a) {
    uint8_t *k = arena_alloc_raw(a, key.len + 1);
    memcpy(k, key.data, key.len);
    k[key.len] = 0;
    kv->key = (mv_bytes){k, key.len};
    kv->create_revision = e->create_revision;
    kv->mod_revision = e->main_rev;
    kv->version = e->version;
    kv->lease = e->lease;
    kv->value = with_value ? read_value(s, e, a) : (mv_bytes){NULL, 0};
}

/* --- Put and DeleteRange --- */

static void result_init(mv_result *out, int type) {
    memset(out, 0, sizeof *out);
    out->arena = arena_new();
    out->resp.type = type;
}

/* Put and DeleteRange are one-op Txns: run it, then lift the op's response to the top. */
static void single_op_txn(mvcc *s, const mv_op *op, mv_result *out) {
    mv_txn_req txn = {.success = (mv_op *)op, .n_success = 1};
    mvcc_txn(s, &txn, out);
    if (out->err == MV_OK)
        out->resp = out->resp.u.txn->responses[0];
    else
        out->resp.type = op->type;
}

/* A put that keeps neither value nor lease, its lease checked: what its one-op txn does (the quota,
 * the change, prev_kv read before the write ends) without the txn's branches, passes and arrays. */
static void plain_put(mvcc *s, const mv_put_req *req, mv_result *out) {
    result_init(out, MV_OP_PUT);
    out->header_revision = s->revision;
    size_t bytes = req->key.len + req->value.len;
    if (bytes && over_quota(s, bytes)) { /* as mvcc_txn: an empty put is never over */
        out->err = MV_ERR_NO_SPACE;
        return;
    }
    rev_entry prev;
    bool had_prev;
    write_begin(s);
    write_put(s, req->key, req->value, req->lease, &prev, &had_prev);
    if (req->prev_kv && had_prev) {
        out->resp.u.put.prev_kv = arena_alloc(out->arena, sizeof *out->resp.u.put.prev_kv);
        fill_kv(s, out->resp.u.put.prev_kv, req->key, &prev, true, out->arena);
    }
    write_finish(s);
    out->header_revision = out->resp.header_revision = s->revision;
}

/* etcd's Put looks its lease up before the key that ignore_value or ignore_lease need; a Txn's put
 * checks them the other way round (mvcc_txn.c). */
void mvcc_put(mvcc *s, const mv_put_req *req, mv_result *out) {
    if (req->lease && !mvcc_lease_exists(s, req->lease)) {
        result_init(out, MV_OP_PUT);
        out->header_revision = s->revision;
        out->err = MV_ERR_LEASE_NOT_FOUND;
        return;
    }
    if (!req->ignore_value && !req->ignore_lease) return plain_put(s, req, out);
    mv_op op = {.type = MV_OP_PUT, .u.put = *req};
    single_op_txn(s, &op, out);
}

void mvcc_delete(mvcc *s, const mv_delete_req *req, mv_result *out) {
    mv_op op = {.type = MV_OP_DELETE, .u.del = *req};
    single_op_txn(s, &op, out);
}

void mvcc_range(mvcc *s, const mv_range_req *req, mv_result *out) {
    result_init(out, MV_OP_RANGE);
    int64_t rev = req->revision > 0 ? req->revision : s->revision;
    out->err = check_read_revision(s, rev);
    out->header_revision = s->revision;
    if (out->err == MV_OK) range_at(s, req, rev, out->arena, &out->resp.u.range);
}

/* --- Compact --- */

mv_err mvcc_compact(mvcc *s, int64_t rev, int64_t *header_revision) {
    *header_revision = s->revision;
    if (rev <= s->compact_revision) return MV_ERR_COMPACTED;
    if (rev > s->revision) return MV_ERR_FUTURE_REV;
    assert(s->revision >= rev);
    uint8_t payload[8];
    le_put(payload, (uint64_t)rev, 8);
    log_append(s->log, LOG_COMPACT, rev, payload, sizeof payload);
    if (s->compact_revision < 0) s->live_bytes += COMPACT_RECORD_BYTES; /* only the latest is kept */
    s->compact_revision = rev;
    log_compaction_restart(s); /* it holds pointers into histories that compaction may free */
    compact_index(s, rev);     /* readers see it at once; the entries go in slices */
    return MV_OK;
}
