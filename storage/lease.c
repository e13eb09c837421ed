/* lease.c: the lease table: grants, revokes and the keys attached to each lease, kept in step with
 * every put and delete and persisted as log records. When a lease expires is the server's business
 * (src/api/svc_lease.c); revoking here deletes its keys in one revision. */
#include "alloc.h"
#include "le.h"
#include "mvcc_internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

typedef struct lease {
    int64_t id, ttl;
    log_place grant; /* where its grant record is: the only one log compaction copies forward */
    bptree *keys;    /* attached keys; values unused */
} lease;

static void id_key(int64_t id, uint8_t out[8]) {
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)((uint64_t)id >> (56 - 8 * i));
}

static lease *find_lease(const mvcc *s, int64_t id) {
    uint8_t k[8];
    id_key(id, k);
    return bptree_get(s->leases, k, 8);
}

static void free_lease(void *p) {
    lease *l = p;
    bptree_free(l->keys, NULL);
    free(l);
}

void leases_init(mvcc *s) {
    s->leases = bptree_new();
}

void leases_free(mvcc *s) {
    if (s->leases) bptree_free(s->leases, free_lease);
    s->leases = NULL;
}

bool mvcc_lease_exists(const mvcc *s, int64_t id) {
    return id == 0 || find_lease(s, id) != NULL;
}

int64_t mvcc_lease_ttl(const mvcc *s, int64_t id) {
    lease *l = find_lease(s, id);
    return l ? l->ttl : 0;
}

size_t mvcc_lease_count(const mvcc *s) {
    return bptree_count(s->leases);
}

static void add_lease(mvcc *s, int64_t id, int64_t ttl, log_place grant) {
    lease *l = xcalloc(1, sizeof *l);
    *l = (lease){.id = id, .ttl = ttl, .grant = grant, .keys = bptree_new()};
    uint8_t k[8];
    id_key(id, k);
    void *old = bptree_put(s->leases, k, 8, l);
    if (old)
        free_lease(old);
    else
        s->live_bytes += LEASE_RECORD_BYTES;
}

void lease_forget(mvcc *s, int64_t id) {
    uint8_t k[8];
    id_key(id, k);
    void *old = bptree_remove(s->leases, k, 8);
    if (!old) return;
    free_lease(old);
    assert(s->live_bytes >= LEASE_RECORD_BYTES);
    s->live_bytes -= LEASE_RECORD_BYTES;
}

bool lease_grant_is_live(const mvcc *s, int64_t id, log_place where) {
    lease *l = find_lease(s, id);
    return l && l->grant.segment == where.segment && l->grant.offset == where.offset;
}

void lease_grant_moved(mvcc *s, int64_t id, log_place from, log_place to) {
    lease *l = find_lease(s, id);
    if (l && l->grant.segment == from.segment && l->grant.offset == from.offset) l->grant = to;
}

void lease_track_put(mvcc *s, mv_bytes key, const rev_entry *before, int64_t id) {
    if (before && before->lease && before->lease != id) lease_track_delete(s, key, before);
    lease *l = id ? find_lease(s, id) : NULL;
    if (l) bptree_put(l->keys, key.data, key.len, l);
}

void lease_track_delete(mvcc *s, mv_bytes key, const rev_entry *before) {
    lease *l = before && before->lease ? find_lease(s, before->lease) : NULL;
    if (l) bptree_remove(l->keys, key.data, key.len);
}

static void id_payload(int64_t id, int64_t ttl, uint8_t out[16]) {
    le_put(out, (uint64_t)id, 8);
    le_put(out + 8, (uint64_t)ttl, 8);
}

int replay_lease_record(mvcc *s, int type, const uint8_t *payload, size_t len, log_place where) {
    if (len != 16) return -1;
    int64_t id = le_i64(payload);
    if (type == LOG_LEASE_GRANT)
        add_lease(s, id, le_i64(payload + 8), where);
    else
        lease_forget(s, id);
    return 0;
}

mv_err mvcc_lease_grant(mvcc *s, int64_t id, int64_t ttl) {
    if (find_lease(s, id)) return MV_ERR_LEASE_EXISTS;
    if (over_quota(s, 16)) return MV_ERR_NO_SPACE;
    uint8_t payload[16];
    id_payload(id, ttl, payload);
    log_place where = log_append(s->log, LOG_LEASE_GRANT, s->revision, payload, sizeof payload);
    add_lease(s, id, ttl, where);
    return MV_OK;
}

size_t mvcc_lease_keys(const mvcc *s, int64_t id, mv_arena *a, mv_bytes **keys) {
    lease *l = find_lease(s, id);
    size_t n = l ? bptree_count(l->keys) : 0, i = 0;
    *keys = arena_alloc(a, (n ? n : 1) * sizeof **keys);
    if (!l) return 0;
    bptree_iter it;
    for (bptree_seek(l->keys, NULL, 0, &it); bptree_iter_valid(&it); bptree_iter_next(&it)) {
        size_t len;
        const uint8_t *k = bptree_iter_key(&it, &len);
        uint8_t *copy = arena_alloc(a, len + 1);
        memcpy(copy, k, len);
        (*keys)[i++] = (mv_bytes){copy, len};
    }
    return i;
}

void mvcc_lease_foreach(const mvcc *s, mv_lease_fn fn, void *ctx) {
    bptree_iter it;
    for (bptree_seek(s->leases, NULL, 0, &it); bptree_iter_valid(&it); bptree_iter_next(&it)) {
        lease *l = bptree_iter_value(&it);
        fn(ctx, l->id, l->ttl);
    }
}

/* Deletes the lease's keys and ends the lease in one revision, as one record; a lease with no live
 * key makes no revision, and its end is a record of its own. */
static void revoke_with_keys(mvcc *s, int64_t id, mv_bytes *keys, size_t n, bool with_prev,
                             mv_delete_resp *out, mv_arena *a) {
    out->prev_kvs = arena_alloc(a, (n ? n : 1) * sizeof *out->prev_kvs);
    write_begin(s);
    for (size_t i = 0; i < n; i++) {
        keyhist *kh = bptree_get(s->index, keys[i].data, keys[i].len);
        rev_entry *live = kh ? keyhist_at(kh, read_revision(s)) : NULL;
        if (!live) continue;
        if (with_prev) fill_kv(s, &out->prev_kvs[out->n_prev_kvs++], keys[i], live, true, a);
        write_delete(s, keys[i], kh, live);
        out->deleted++;
    }
    bool in_record = write_has_changes(s);
    if (in_record) write_revoke_marker(s, id);
    write_finish(s);
    if (!in_record) {
        uint8_t payload[16];
        id_payload(id, 0, payload);
        log_append(s->log, LOG_LEASE_REVOKE, s->revision, payload, sizeof payload);
    }
    lease_forget(s, id);
}

void mvcc_lease_revoke(mvcc *s, int64_t id, bool with_prev, mv_result *out) {
    memset(out, 0, sizeof *out);
    out->arena = arena_new();
    out->resp.type = MV_OP_DELETE;
    if (!find_lease(s, id)) {
        out->err = MV_ERR_LEASE_NOT_FOUND;
        out->header_revision = s->revision;
        return;
    }
    mv_bytes *keys;
    size_t n = mvcc_lease_keys(s, id, out->arena, &keys);
    revoke_with_keys(s, id, keys, n, with_prev, &out->resp.u.del, out->arena);
    out->header_revision = s->revision;
    out->resp.header_revision = s->revision;
}

size_t durable_leases(const mvcc *s, mv_lease_info **out) {
    size_t n = 0;
    *out = xcalloc(bptree_count(s->leases) + 1, sizeof **out);
    bptree_iter it;
    for (bptree_seek(s->leases, NULL, 0, &it); bptree_iter_valid(&it); bptree_iter_next(&it)) {
        lease *l = bptree_iter_value(&it);
        if (log_place_durable(s->log, l->grant)) (*out)[n++] = (mv_lease_info){l->id, l->ttl};
    }
    return n;
}
