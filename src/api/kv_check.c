/* kv_check.c: the checks etcd's gRPC layer (v3rpc key.go) makes before a KV request reaches the store:
 * each request's own fields, a Txn's op count, its duplicate keys (checkIntervals, rule for rule) and
 * its nesting depth, measured on the wire before the recursive protobuf decoder runs. */
#include "kv_check.h"
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

/* Deeper Txn nesting is always "too many operations" for etcd's default limit. */
#define MAX_TXN_DEPTH 256

static mv_bytes pb_bytes(ProtobufCBinaryData b) {
    return (mv_bytes){b.data, b.len};
}

static int bytes_cmp(mv_bytes a, mv_bytes b) {
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.data, b.data, n) : 0;
    if (c != 0) return c;
    return (a.len > b.len) - (a.len < b.len);
}

/* ---------- validation, as etcd's v3rpc key.go ---------- */

etcd_err kv_check_range(const Etcdserverpb__RangeRequest *r) {
    if (r->key.len == 0) return ETCD_ERR_EMPTY_KEY;
    if ((unsigned)r->sort_order > ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND)
        return ETCD_ERR_INVALID_SORT_OPTION;
    if ((unsigned)r->sort_target > ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VALUE)
        return ETCD_ERR_INVALID_SORT_OPTION;
    return KV_VALID;
}

etcd_err kv_check_put(const Etcdserverpb__PutRequest *r) {
    if (r->key.len == 0) return ETCD_ERR_EMPTY_KEY;
    if (r->ignore_value && r->value.len != 0) return ETCD_ERR_VALUE_PROVIDED;
    if (r->ignore_lease && r->lease != 0) return ETCD_ERR_LEASE_PROVIDED;
    return KV_VALID;
}

etcd_err kv_check_delete(const Etcdserverpb__DeleteRangeRequest *r) {
    return r->key.len == 0 ? ETCD_ERR_EMPTY_KEY : KV_VALID;
}

static etcd_err check_op(const Etcdserverpb__RequestOp *op, long long max_ops) {
    switch (op->request_case) {
    case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
        return kv_check_range(op->request_range);
    case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
        return kv_check_put(op->request_put);
    case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
        return kv_check_delete(op->request_delete_range);
    case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
        return kv_check_txn(op->request_txn, max_ops);
    default: /* an empty operation */
        return ETCD_ERR_KEY_NOT_FOUND;
    }
}

/* Each branch may hold max_ops operations; a nested txn gets what its parent's widest list left over. */
etcd_err kv_check_txn(const Etcdserverpb__TxnRequest *r, long long max_ops) {
    size_t opc = r->n_compare;
    if (opc < r->n_success) opc = r->n_success;
    if (opc < r->n_failure) opc = r->n_failure;
    if ((long long)opc > max_ops) return ETCD_ERR_TOO_MANY_OPS;
    for (size_t i = 0; i < r->n_compare; i++)
        if (r->compare[i]->key.len == 0) return ETCD_ERR_EMPTY_KEY;
    long long left = max_ops - (long long)opc;
    for (size_t i = 0; i < r->n_success; i++) {
        etcd_err e = check_op(r->success[i], left);
        if (e != KV_VALID) return e;
    }
    for (size_t i = 0; i < r->n_failure; i++) {
        etcd_err e = check_op(r->failure[i], left);
        if (e != KV_VALID) return e;
    }
    return KV_VALID;
}

/* etcd serves a txn of ranges only as a read; anything else is a write. */
bool kv_txn_is_read_only(const Etcdserverpb__TxnRequest *r) {
    for (size_t i = 0; i < r->n_success; i++)
        if (r->success[i]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE) return false;
    for (size_t i = 0; i < r->n_failure; i++)
        if (r->failure[i]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE) return false;
    return true;
}

/* ---------- duplicate keys in a txn: etcd's checkIntervals, rule for rule ---------- */

typedef struct key_vec {
    mv_bytes *v;
    size_t n, cap;
} key_vec;

/* A deleted key ([key] when range_end is empty) or range [key, range_end), compared as plain bytes:
 * so a delete with range_end "\0" (every key >= key) never overlaps a put here, as in etcd. */
typedef struct del_span {
    mv_bytes key, range_end;
} del_span;

typedef struct span_vec {
    del_span *v;
    size_t n, cap;
} span_vec;

static bool key_vec_has(const key_vec *s, mv_bytes k) {
    for (size_t i = 0; i < s->n; i++)
        if (bytes_cmp(s->v[i], k) == 0) return true;
    return false;
}

static void key_vec_add(key_vec *s, mv_bytes k) {
    if (key_vec_has(s, k)) return;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->v = xrealloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = k;
}

static void span_vec_add(span_vec *d, del_span sp) {
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->v = xrealloc(d->v, d->cap * sizeof *d->v);
    }
    d->v[d->n++] = sp;
}

static bool span_hits(const del_span *sp, mv_bytes k) {
    if (sp->range_end.len == 0) return bytes_cmp(sp->key, k) == 0;
    return bytes_cmp(sp->key, k) <= 0 && bytes_cmp(k, sp->range_end) < 0;
}

static bool spans_hit(const span_vec *d, mv_bytes k) {
    for (size_t i = 0; i < d->n; i++)
        if (span_hits(&d->v[i], k)) return true;
    return false;
}

static void interval_sets_free(key_vec *puts, span_vec *dels) {
    free(puts->v);
    free(dels->v);
    *puts = (key_vec){0};
    *dels = (span_vec){0};
}

static bool check_intervals(Etcdserverpb__RequestOp **ops, size_t n, key_vec *puts, span_vec *dels);

/* A nested txn's puts must not meet earlier puts or deletes of this level; its then/else branches
 * may put the same key, since only one of them runs. Its deletes then join this level's. */
static bool merge_nested_txn(const Etcdserverpb__TxnRequest *t, key_vec *puts, span_vec *dels) {
    key_vec then_puts = {0}, else_puts = {0};
    span_vec then_dels = {0}, else_dels = {0};
    bool ok = check_intervals(t->success, t->n_success, &then_puts, &then_dels) &&
              check_intervals(t->failure, t->n_failure, &else_puts, &else_dels);
    for (size_t i = 0; ok && i < then_puts.n; i++) {
        mv_bytes k = then_puts.v[i];
        ok = !key_vec_has(puts, k) && !spans_hit(dels, k);
        key_vec_add(puts, k);
    }
    for (size_t i = 0; ok && i < else_puts.n; i++) {
        mv_bytes k = else_puts.v[i];
        ok = !(key_vec_has(puts, k) && !key_vec_has(&then_puts, k)) && !spans_hit(dels, k);
        key_vec_add(puts, k);
    }
    for (size_t i = 0; ok && i < then_dels.n; i++)
        span_vec_add(dels, then_dels.v[i]);
    for (size_t i = 0; ok && i < else_dels.n; i++)
        span_vec_add(dels, else_dels.v[i]);
    interval_sets_free(&then_puts, &then_dels);
    interval_sets_free(&else_puts, &else_dels);
    return ok;
}

/* Fills puts/dels with the keys put and ranges deleted by ops (nested txns included); false if a put
 * meets another put or a delete in a way etcd refuses. */
static bool check_intervals(Etcdserverpb__RequestOp **ops, size_t n, key_vec *puts, span_vec *dels) {
    for (size_t i = 0; i < n; i++) {
        if (ops[i]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE) continue;
        const Etcdserverpb__DeleteRangeRequest *d = ops[i]->request_delete_range;
        span_vec_add(dels, (del_span){pb_bytes(d->key), pb_bytes(d->range_end)});
    }
    for (size_t i = 0; i < n; i++) {
        if (ops[i]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN) continue;
        if (!merge_nested_txn(ops[i]->request_txn, puts, dels)) return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (ops[i]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT) continue;
        mv_bytes k = pb_bytes(ops[i]->request_put->key);
        if (key_vec_has(puts, k) || spans_hit(dels, k)) return false;
        key_vec_add(puts, k);
    }
    return true;
}

bool kv_branch_has_duplicates(Etcdserverpb__RequestOp **ops, size_t n) {
    key_vec puts = {0};
    span_vec dels = {0};
    bool ok = check_intervals(ops, n, &puts, &dels);
    interval_sets_free(&puts, &dels);
    return !ok;
}

/* ---------- Txn nesting depth, measured on the wire before decoding ---------- */

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* Reads one field's tag and, for length-delimited fields, its body; other fields are skipped. */
static bool next_field(const uint8_t **p, const uint8_t *end, uint64_t *field, const uint8_t **body,
                       size_t *body_len) {
    uint64_t tag, n;
    if (!read_varint(p, end, &tag)) return false;
    *field = tag >> 3;
    *body = NULL;
    switch (tag & 7) {
    case 0:
        return read_varint(p, end, &n);
    case 1:
    case 5: {
        size_t width = (tag & 7) == 1 ? 8 : 4;
        if ((size_t)(end - *p) < width) return false;
        *p += width;
        return true;
    }
    case 2:
        if (!read_varint(p, end, &n) || n > (uint64_t)(end - *p)) return false;
        *body = *p;
        *body_len = (size_t)n;
        *p += n;
        return true;
    default: /* groups: never part of etcd's messages */
        return false;
    }
}

static kv_depth_scan scan_txn(const uint8_t *p, size_t len, int depth);

/* A RequestOp: field 4 is a nested TxnRequest. */
static kv_depth_scan scan_request_op(const uint8_t *p, size_t len, int depth) {
    const uint8_t *end = p + len;
    while (p < end) {
        uint64_t field;
        const uint8_t *body;
        size_t body_len = 0;
        if (!next_field(&p, end, &field, &body, &body_len)) return KV_SCAN_MALFORMED;
        if (field == 4 && body) {
            kv_depth_scan s = scan_txn(body, body_len, depth + 1);
            if (s != KV_SCAN_OK) return s;
        }
    }
    return KV_SCAN_OK;
}

/* A TxnRequest: fields 2 (success) and 3 (failure) are RequestOps. */
static kv_depth_scan scan_txn(const uint8_t *p, size_t len, int depth) {
    if (depth > MAX_TXN_DEPTH) return KV_SCAN_TOO_DEEP;
    const uint8_t *end = p + len;
    while (p < end) {
        uint64_t field;
        const uint8_t *body;
        size_t body_len = 0;
        if (!next_field(&p, end, &field, &body, &body_len)) return KV_SCAN_MALFORMED;
        if ((field == 2 || field == 3) && body) {
            kv_depth_scan s = scan_request_op(body, body_len, depth);
            if (s != KV_SCAN_OK) return s;
        }
    }
    return KV_SCAN_OK;
}

kv_depth_scan kv_scan_txn_depth(const uint8_t *msg, size_t len) {
    return scan_txn(msg, len, 0);
}
