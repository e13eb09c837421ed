/* mvcc_txn.c: Txn as etcd runs it: the branch of every (nested) txn is chosen first on the state
 * before the txn, the chosen requests are checked, then applied under one revision with sub-revisions.
 * Put and DeleteRange are one-op Txns, so this is the only place that writes. */
#include "alloc.h"
#include "mvcc_internal.h"

#include <stdlib.h>
#include <string.h>

/* The chosen branches of a txn and its nested txns, in depth-first order (etcd's "txn path"). */
typedef struct txn_path {
    bool *taken; /* first the inline room: most txns (every Put and DeleteRange) nest no txn */
    size_t n, cap, next;
    bool inline_taken[16];
} txn_path;

static void path_push(txn_path *p, bool v) {
    if (p->n == p->cap) {
        size_t cap = p->cap * 2;
        bool *grown = xmalloc(cap);
        memcpy(grown, p->taken, p->n);
        if (p->taken != p->inline_taken) free(p->taken);
        p->taken = grown;
        p->cap = cap;
    }
    p->taken[p->n++] = v;
}

typedef struct compare_ctx {
    mvcc *s;
    const mv_compare *c;
    bool ok, any;
} compare_ctx;

static int compare_int(int64_t a, int64_t b) {
    return a < b ? -1 : a > b;
}

static bool result_holds(int result, int cmp) {
    switch (result) {
    case MV_CMP_EQUAL:
        return cmp == 0;
    case MV_CMP_NOT_EQUAL:
        return cmp != 0;
    case MV_CMP_GREATER:
        return cmp > 0;
    case MV_CMP_LESS:
        return cmp < 0;
    default:
        return true;
    }
}

static int compare_value_bytes(mvcc *s, const rev_entry *e, mv_bytes want) {
    mv_arena *a = arena_new();
    mv_bytes v = read_value(s, e, a);
    size_t n = v.len < want.len ? v.len : want.len;
    int c = n ? memcmp(v.data, want.data, n) : 0;
    if (!c) c = v.len < want.len ? -1 : v.len > want.len;
    arena_free(a);
    return c;
}

static int compare_entry(mvcc *s, const mv_compare *c, const rev_entry *e) {
    switch (c->target) {
    case MV_CMP_VALUE:
        return compare_value_bytes(s, e, c->value);
    case MV_CMP_CREATE:
        return compare_int(e->create_revision, c->number);
    case MV_CMP_MOD:
        return compare_int(e->main_rev, c->number);
    case MV_CMP_VERSION:
        return compare_int(e->version, c->number);
    case MV_CMP_LEASE:
        return compare_int(e->lease, c->number);
    default:
        return 0;
    }
}

static bool compare_one_key(void *ctx, mv_bytes key, keyhist *kh, rev_entry *e) {
    (void)kh;
    (void)key;
    compare_ctx *cc = ctx;
    cc->any = true;
    cc->ok = result_holds(cc->c->result, compare_entry(cc->s, cc->c, e));
    return cc->ok;
}

/* A compare holds when it holds for every key in its range; a missing key counts as all zeros,
 * except for VALUE, which then always fails (etcd's rule). */
static bool compare_holds(mvcc *s, const mv_compare *c) {
    compare_ctx cc = {s, c, true, false};
    for_each_live(s, c->key, c->range_end, s->revision, compare_one_key, &cc);
    if (cc.any) return cc.ok;
    if (c->target == MV_CMP_VALUE) return false;
    return result_holds(c->result, compare_int(0, c->number));
}

static bool compares_hold(mvcc *s, const mv_txn_req *t) {
    for (size_t i = 0; i < t->n_compare; i++)
        if (!compare_holds(s, &t->compare[i])) return false;
    return true;
}

static void choose_path(mvcc *s, const mv_txn_req *t, txn_path *p) {
    bool ok = compares_hold(s, t);
    path_push(p, ok);
    const mv_op *ops = ok ? t->success : t->failure;
    size_t n = ok ? t->n_success : t->n_failure;
    for (size_t i = 0; i < n; i++)
        if (ops[i].type == MV_OP_TXN && ops[i].u.txn) choose_path(s, ops[i].u.txn, p);
}

/* --- checks before anything is written --- */

static bool key_is_live(mvcc *s, mv_bytes key) {
    keyhist *kh = bptree_get(s->index, key.data, key.len);
    return kh && keyhist_at(kh, s->revision);
}

/* etcd's checkRequestPut: a put that keeps the value or lease needs the key, then its lease must exist. */
static mv_err check_put(mvcc *s, const mv_put_req *p) {
    if ((p->ignore_value || p->ignore_lease) && !key_is_live(s, p->key)) return MV_ERR_KEY_NOT_FOUND;
    if (p->lease && !mvcc_lease_exists(s, p->lease)) return MV_ERR_LEASE_NOT_FOUND;
    return MV_OK;
}

/* etcd's checkRequestRange: any revision but 0 must lie in [first, current], where first is the
 * compacted revision (-1 before any compaction), so a negative revision passes only until then. */
static mv_err check_range_rev(mvcc *s, const mv_range_req *r) {
    return r->revision == 0 ? MV_OK : check_read_revision(s, r->revision);
}

typedef struct prev_kv_bytes {
    uint64_t bytes, max;
} prev_kv_bytes;

static bool count_prev_kv(void *ctx, mv_bytes key, keyhist *kh, rev_entry *e) {
    (void)kh;
    prev_kv_bytes *c = ctx;
    c->bytes += key.len + e->value.length + sizeof(mv_kv) + 48; /* as a range's kv_bytes */
    return c->bytes <= c->max;
}

/* A delete's prev_kvs would take more than its budget: refused before anything is deleted (etcd
 * has no such limit; it deletes and then fails to send the reply). */
static mv_err check_delete(mvcc *s, const mv_delete_req *d) {
    if (!d->prev_kv || !d->max_bytes) return MV_OK;
    prev_kv_bytes c = {0, d->max_bytes};
    for_each_live(s, d->key, d->range_end, read_revision(s), count_prev_kv, &c);
    return c.bytes > c.max ? MV_ERR_REPLY_TOO_LARGE : MV_OK;
}

typedef enum check_pass { CHECK_PUTS, CHECK_RANGES, CHECK_DELETES } check_pass;

/* One of etcd's two passes over the chosen path (checkRequests): every put first, then every range,
 * so a bad put anywhere is reported before a bad range revision anywhere; then cetcd's own check of
 * the deletes' reply size, which etcd does not make. */
static mv_err check_ops(mvcc *s, const mv_txn_req *t, txn_path *p, check_pass pass, size_t *put_bytes) {
    bool ok = p->taken[p->next++];
    const mv_op *ops = ok ? t->success : t->failure;
    size_t n = ok ? t->n_success : t->n_failure;
    for (size_t i = 0; i < n; i++) {
        mv_err err = MV_OK;
        const mv_op *op = &ops[i];
        if (op->type == MV_OP_RANGE && pass == CHECK_RANGES) {
            err = check_range_rev(s, &op->u.range);
        } else if (op->type == MV_OP_PUT && pass == CHECK_PUTS) {
            err = check_put(s, &op->u.put);
            *put_bytes += op->u.put.key.len + op->u.put.value.len;
        } else if (op->type == MV_OP_DELETE && pass == CHECK_DELETES) {
            err = check_delete(s, &op->u.del);
        } else if (op->type == MV_OP_TXN && op->u.txn) {
            err = check_ops(s, op->u.txn, p, pass, put_bytes);
        }
        if (err != MV_OK) return err;
    }
    return MV_OK;
}

static mv_err check_path(mvcc *s, const mv_txn_req *t, txn_path *p, size_t *put_bytes) {
    p->next = 0;
    mv_err err = check_ops(s, t, p, CHECK_PUTS, put_bytes);
    if (err != MV_OK) return err;
    p->next = 0;
    err = check_ops(s, t, p, CHECK_RANGES, put_bytes);
    if (err != MV_OK) return err;
    p->next = 0;
    return check_ops(s, t, p, CHECK_DELETES, put_bytes);
}

/* --- applying --- */

static void apply_txn(mvcc *s, const mv_txn_req *t, txn_path *p, mv_txn_resp *out, mv_arena *a);

static void apply_range(mvcc *s, const mv_range_req *r, mv_arena *a, mv_range_resp *out) {
    int64_t rev = r->revision > 0 ? r->revision : read_revision(s);
    range_at(s, r, rev, a, out);
}

static void apply_put(mvcc *s, const mv_put_req *p, mv_arena *a, mv_put_resp *out) {
    mv_bytes value = p->value;
    int64_t lease = p->lease;
    if (p->ignore_value || p->ignore_lease) { /* else write_put alone looks the key up */
        keyhist *kh = bptree_get(s->index, p->key.data, p->key.len);
        rev_entry *live = kh ? keyhist_at(kh, read_revision(s)) : NULL;
        if (p->ignore_value && live) value = read_value(s, live, a);
        if (p->ignore_lease && live) lease = live->lease;
    }
    rev_entry prev;
    bool had_prev;
    write_put(s, p->key, value, lease, &prev, &had_prev);
    if (p->prev_kv && had_prev) {
        out->prev_kv = arena_alloc(a, sizeof *out->prev_kv);
        fill_kv(s, out->prev_kv, p->key, &prev, true, a);
    }
}

/* A key a delete removes: its history and live entry stay where they are until its tombstone is
 * written (appending to another key's history moves nothing of this one). */
typedef struct doomed_key {
    mv_bytes key;
    keyhist *kh;
    rev_entry *live;
} doomed_key;

typedef struct doomed {
    doomed_key *keys;
    size_t n, cap;
    mv_arena *arena;
    bool with_prev;
    mv_kv *prev;
    size_t n_prev, cap_prev;
} doomed;

static bool collect_doomed(void *ctx, mv_bytes key, keyhist *kh, rev_entry *e) {
    doomed *d = ctx;
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->keys = xrealloc(d->keys, d->cap * sizeof *d->keys);
    }
    d->keys[d->n++] = (doomed_key){key, kh, e};
    if (d->with_prev) {
        if (d->n_prev == d->cap_prev) {
            d->cap_prev = d->cap_prev ? d->cap_prev * 2 : 8;
            mv_kv *grown = arena_alloc(d->arena, d->cap_prev * sizeof *grown);
            if (d->n_prev) memcpy(grown, d->prev, d->n_prev * sizeof *grown);
            d->prev = grown;
        }
        fill_kv(NULL, &d->prev[d->n_prev], key, e, false, d->arena);
        d->prev[d->n_prev++].value = (mv_bytes){NULL, 0};
    }
    return true;
}

static void apply_delete(mvcc *s, const mv_delete_req *r, mv_arena *a, mv_delete_resp *out) {
    doomed d = {.arena = a, .with_prev = r->prev_kv};
    for_each_live(s, r->key, r->range_end, read_revision(s), collect_doomed, &d);
    /* values of prev_kvs are read before the tombstones are written (prev[i] is keys[i]'s) */
    for (size_t i = 0; i < d.n_prev; i++)
        d.prev[i].value = read_value(s, d.keys[i].live, a);
    /* the keys are the tree's: writing tombstones never removes index entries */
    for (size_t i = 0; i < d.n; i++) {
        if (i + 8 < d.n) __builtin_prefetch(d.keys[i + 8].kh, 1); /* each a cache miss: several in flight */
        write_delete(s, d.keys[i].key, d.keys[i].kh, d.keys[i].live);
    }
    out->deleted = (int64_t)d.n;
    out->prev_kvs = d.prev;
    out->n_prev_kvs = d.n_prev;
    free(d.keys);
}

static void apply_op(mvcc *s, const mv_op *op, txn_path *p, mv_op_resp *r, mv_arena *a) {
    r->type = op->type;
    switch (op->type) {
    case MV_OP_RANGE:
        apply_range(s, &op->u.range, a, &r->u.range);
        break;
    case MV_OP_PUT:
        apply_put(s, &op->u.put, a, &r->u.put);
        break;
    case MV_OP_DELETE:
        apply_delete(s, &op->u.del, a, &r->u.del);
        break;
    case MV_OP_TXN:
        r->u.txn = arena_alloc(a, sizeof *r->u.txn);
        if (op->u.txn) apply_txn(s, op->u.txn, p, r->u.txn, a);
        break;
    }
    r->header_revision = read_revision(s);
}

static void apply_txn(mvcc *s, const mv_txn_req *t, txn_path *p, mv_txn_resp *out, mv_arena *a) {
    bool ok = p->taken[p->next++];
    const mv_op *ops = ok ? t->success : t->failure;
    size_t n = ok ? t->n_success : t->n_failure;
    out->succeeded = ok;
    out->n_responses = n;
    out->responses = arena_alloc(a, (n ? n : 1) * sizeof *out->responses);
    for (size_t i = 0; i < n; i++)
        apply_op(s, &ops[i], p, &out->responses[i], a);
}

void mvcc_txn(mvcc *s, const mv_txn_req *req, mv_result *out) {
    memset(out, 0, sizeof *out);
    out->arena = arena_new();
    out->resp.type = MV_OP_TXN;
    out->header_revision = s->revision;
    txn_path path = {.cap = sizeof path.inline_taken};
    path.taken = path.inline_taken;
    choose_path(s, req, &path);
    size_t put_bytes = 0;
    out->err = check_path(s, req, &path, &put_bytes);
    if (out->err == MV_OK && put_bytes && over_quota(s, put_bytes)) out->err = MV_ERR_NO_SPACE;
    if (out->err == MV_OK) {
        path.next = 0;
        out->resp.u.txn = arena_alloc(out->arena, sizeof *out->resp.u.txn);
        write_begin(s);
        apply_txn(s, req, &path, out->resp.u.txn, out->arena);
        write_finish(s);
        out->header_revision = s->revision;
        out->resp.header_revision = s->revision;
    }
    if (path.taken != path.inline_taken) free(path.taken);
}
