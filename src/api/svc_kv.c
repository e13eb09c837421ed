/* svc_kv.c: the KV service (Range, Put, DeleteRange, Txn, Compact): decodes each request, validates it
 * as etcd's gRPC layer does (same checks, same order, same errors), runs it on the store and encodes
 * the answer with etcd's response headers, including the per-operation headers inside a Txn. */
#include "svc_kv.h"
#include "alarms.h"
#include "auth_checks.h"
#include "config.h"
#include "errors.h"
#include "header.h"
#include "kv_check.h"
#include "kv_range_steps.h"
#include "kv_wire.h"
#include "metrics.h"
#include "rpc.pb-c.h"
#include "store.h"
#include <stdio.h>

#include "alloc.h"
#include "budget.h"
#include "pb_wire.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_TXN_OPS 128
/* ---------- memory: every allocation made for one call, freed together ---------- */

typedef struct alloc_list {
    void **ptrs;
    size_t n, cap;
} alloc_list;

/* Zeroed memory that lives until list_free. */
static void *list_alloc(alloc_list *l, size_t size) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->ptrs = xrealloc(l->ptrs, l->cap * sizeof *l->ptrs);
    }
    void *p = calloc(1, size ? size : 1);
    if (!p) out_of_memory();
    l->ptrs[l->n++] = p;
    return p;
}

static void list_free(alloc_list *l) {
    for (size_t i = 0; i < l->n; i++)
        free(l->ptrs[i]);
    free(l->ptrs);
    *l = (alloc_list){0};
}

/* ---------- small helpers ---------- */

static mv_bytes mv_from_pb(ProtobufCBinaryData b) {
    return (mv_bytes){b.data, b.len};
}

static ProtobufCBinaryData pb_from_mv(mv_bytes b) {
    return (ProtobufCBinaryData){b.len, (uint8_t *)b.data};
}

static size_t max_txn_ops(void) {
    return g_config.max_txn_ops ? g_config.max_txn_ops : DEFAULT_MAX_TXN_OPS;
}

/* etcd checks the size of write requests (those that go through its raft log), not of reads. */
static bool write_too_large(size_t len) {
    return g_config.max_request_bytes != 0 && len > g_config.max_request_bytes;
}

/* ---------- protobuf requests → storage requests ---------- */

static void range_from_pb(mv_range_req *out, const Etcdserverpb__RangeRequest *r) {
    *out = (mv_range_req){
        .key = mv_from_pb(r->key),
        .range_end = mv_from_pb(r->range_end),
        .limit = r->limit,
        .revision = r->revision,
        .sort_order = (int)r->sort_order,
        .sort_target = (int)r->sort_target,
        .keys_only = r->keys_only,
        .count_only = r->count_only,
        .min_mod_revision = r->min_mod_revision,
        .max_mod_revision = r->max_mod_revision,
        .min_create_revision = r->min_create_revision,
        .max_create_revision = r->max_create_revision,
        .max_bytes = reply_budget(),
    };
}

static void put_from_pb(mv_put_req *out, const Etcdserverpb__PutRequest *r) {
    *out = (mv_put_req){
        .key = mv_from_pb(r->key),
        .value = mv_from_pb(r->value),
        .lease = r->lease,
        .prev_kv = r->prev_kv,
        .ignore_value = r->ignore_value,
        .ignore_lease = r->ignore_lease,
    };
}

static void delete_from_pb(mv_delete_req *out, const Etcdserverpb__DeleteRangeRequest *r) {
    *out = (mv_delete_req){
        .key = mv_from_pb(r->key),
        .range_end = mv_from_pb(r->range_end),
        .prev_kv = r->prev_kv,
        .max_bytes = reply_budget(),
    };
}

/* As etcd: the number compared is the one the target names; a mismatched union field reads as 0. */
static void compare_from_pb(mv_compare *out, const Etcdserverpb__Compare *c) {
    Etcdserverpb__Compare__TargetUnionCase u = c->target_union_case;
    *out = (mv_compare){.result = (int)c->result,
                        .target = (int)c->target,
                        .key = mv_from_pb(c->key),
                        .range_end = mv_from_pb(c->range_end)};
    switch (c->target) {
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION:
        out->number = u == ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION ? c->version : 0;
        break;
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE:
        out->number = u == ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION ? c->create_revision : 0;
        break;
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD:
        out->number = u == ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION ? c->mod_revision : 0;
        break;
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE:
        out->number = u == ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE ? c->lease : 0;
        break;
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE:
        if (u == ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE) out->value = mv_from_pb(c->value);
        break;
    default:
        break;
    }
}

static mv_txn_req *txn_from_pb(alloc_list *mem, const Etcdserverpb__TxnRequest *r);

static void op_from_pb(alloc_list *mem, mv_op *out, const Etcdserverpb__RequestOp *op) {
    switch (op->request_case) {
    case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
        out->type = MV_OP_RANGE;
        range_from_pb(&out->u.range, op->request_range);
        break;
    case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
        out->type = MV_OP_PUT;
        put_from_pb(&out->u.put, op->request_put);
        break;
    case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
        out->type = MV_OP_DELETE;
        delete_from_pb(&out->u.del, op->request_delete_range);
        break;
    default: /* validation leaves only nested txns */
        out->type = MV_OP_TXN;
        out->u.txn = txn_from_pb(mem, op->request_txn);
        break;
    }
}

static mv_op *ops_from_pb(alloc_list *mem, Etcdserverpb__RequestOp **ops, size_t n) {
    mv_op *out = list_alloc(mem, n * sizeof *out);
    for (size_t i = 0; i < n; i++)
        op_from_pb(mem, &out[i], ops[i]);
    return out;
}

static mv_txn_req *txn_from_pb(alloc_list *mem, const Etcdserverpb__TxnRequest *r) {
    mv_txn_req *t = list_alloc(mem, sizeof *t);
    t->n_compare = r->n_compare;
    t->compare = list_alloc(mem, r->n_compare * sizeof *t->compare);
    for (size_t i = 0; i < r->n_compare; i++)
        compare_from_pb(&t->compare[i], r->compare[i]);
    t->n_success = r->n_success;
    t->success = ops_from_pb(mem, r->success, r->n_success);
    t->n_failure = r->n_failure;
    t->failure = ops_from_pb(mem, r->failure, r->n_failure);
    return t;
}

/* ---------- storage results → protobuf responses ---------- */

static void kv_to_pb(Mvccpb__KeyValue *out, const mv_kv *kv) {
    mvccpb__key_value__init(out);
    out->key = pb_from_mv(kv->key);
    out->value = pb_from_mv(kv->value);
    out->create_revision = kv->create_revision;
    out->mod_revision = kv->mod_revision;
    out->version = kv->version;
    out->lease = kv->lease;
}

static Mvccpb__KeyValue **kvs_to_pb(alloc_list *mem, const mv_kv *kvs, size_t n) {
    if (n == 0) return NULL;
    Mvccpb__KeyValue *items = list_alloc(mem, n * sizeof *items);
    Mvccpb__KeyValue **ptrs = list_alloc(mem, n * sizeof *ptrs);
    for (size_t i = 0; i < n; i++) {
        kv_to_pb(&items[i], &kvs[i]);
        ptrs[i] = &items[i];
    }
    return ptrs;
}

static void range_resp_to_pb(alloc_list *mem, Etcdserverpb__RangeResponse *out, const mv_range_resp *r) {
    out->n_kvs = r->n_kvs;
    out->kvs = kvs_to_pb(mem, r->kvs, r->n_kvs);
    out->more = r->more;
    out->count = r->count;
}

static void put_resp_to_pb(alloc_list *mem, Etcdserverpb__PutResponse *out, const mv_put_resp *r,
                           bool want_prev) {
    if (!want_prev || !r->prev_kv) return;
    out->prev_kv = list_alloc(mem, sizeof *out->prev_kv);
    kv_to_pb(out->prev_kv, r->prev_kv);
}

static void delete_resp_to_pb(alloc_list *mem, Etcdserverpb__DeleteRangeResponse *out,
                              const mv_delete_resp *r, bool want_prev) {
    out->deleted = r->deleted;
    if (!want_prev) return;
    out->n_prev_kvs = r->n_prev_kvs;
    out->prev_kvs = kvs_to_pb(mem, r->prev_kvs, r->n_prev_kvs);
}

/* Inside a txn etcd gives each range/put/delete response a header holding only the revision that
 * operation saw: the txn's start revision, or start+1 once the txn has changed something. A nested
 * txn's own header is empty. */
typedef struct txn_revs {
    int64_t start;
    bool changed;
} txn_revs;

static bool txn_resp_changes(const mv_txn_resp *t) {
    for (size_t i = 0; i < t->n_responses; i++) {
        const mv_op_resp *r = &t->responses[i];
        if (r->type == MV_OP_PUT || (r->type == MV_OP_DELETE && r->u.del.deleted > 0)) return true;
        if (r->type == MV_OP_TXN && r->u.txn && txn_resp_changes(r->u.txn)) return true;
    }
    return false;
}

static Etcdserverpb__ResponseHeader *nested_header(alloc_list *mem, int64_t rev) {
    Etcdserverpb__ResponseHeader *h = list_alloc(mem, sizeof *h);
    etcdserverpb__response_header__init(h);
    h->revision = rev;
    return h;
}

static void txn_resp_to_pb(alloc_list *mem, Etcdserverpb__TxnResponse *out, const mv_txn_req *req,
                           const mv_txn_resp *resp, txn_revs *revs);

/* req is the request op this response answers, or NULL if the shapes disagree. */
static Etcdserverpb__ResponseOp *op_resp_to_pb(alloc_list *mem, const mv_op *req, const mv_op_resp *r,
                                               txn_revs *revs) {
    Etcdserverpb__ResponseOp *op = list_alloc(mem, sizeof *op);
    etcdserverpb__response_op__init(op);
    if (req && req->type != r->type) req = NULL;
    switch (r->type) {
    case MV_OP_RANGE: {
        Etcdserverpb__RangeResponse *rr = list_alloc(mem, sizeof *rr);
        etcdserverpb__range_response__init(rr);
        rr->header = nested_header(mem, revs->start + revs->changed);
        range_resp_to_pb(mem, rr, &r->u.range);
        op->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE;
        op->response_range = rr;
        break;
    }
    case MV_OP_PUT: {
        Etcdserverpb__PutResponse *pr = list_alloc(mem, sizeof *pr);
        etcdserverpb__put_response__init(pr);
        revs->changed = true;
        pr->header = nested_header(mem, revs->start + 1);
        put_resp_to_pb(mem, pr, &r->u.put, req ? req->u.put.prev_kv : true);
        op->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT;
        op->response_put = pr;
        break;
    }
    case MV_OP_DELETE: {
        Etcdserverpb__DeleteRangeResponse *dr = list_alloc(mem, sizeof *dr);
        etcdserverpb__delete_range_response__init(dr);
        if (r->u.del.deleted > 0) revs->changed = true;
        dr->header = nested_header(mem, revs->start + revs->changed);
        delete_resp_to_pb(mem, dr, &r->u.del, req ? req->u.del.prev_kv : true);
        op->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE;
        op->response_delete_range = dr;
        break;
    }
    default: {
        Etcdserverpb__TxnResponse *tr = list_alloc(mem, sizeof *tr);
        etcdserverpb__txn_response__init(tr);
        tr->header = nested_header(mem, 0);
        if (r->u.txn) txn_resp_to_pb(mem, tr, req ? req->u.txn : NULL, r->u.txn, revs);
        op->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN;
        op->response_txn = tr;
        break;
    }
    }
    return op;
}

/* Fills succeeded and responses (not the header). req may be NULL. */
static void txn_resp_to_pb(alloc_list *mem, Etcdserverpb__TxnResponse *out, const mv_txn_req *req,
                           const mv_txn_resp *resp, txn_revs *revs) {
    const mv_op *ops = NULL;
    size_t n_ops = 0;
    if (req) {
        ops = resp->succeeded ? req->success : req->failure;
        n_ops = resp->succeeded ? req->n_success : req->n_failure;
    }
    out->succeeded = resp->succeeded;
    out->n_responses = resp->n_responses;
    out->responses = list_alloc(mem, resp->n_responses * sizeof *out->responses);
    for (size_t i = 0; i < resp->n_responses; i++)
        out->responses[i] = op_resp_to_pb(mem, i < n_ops ? &ops[i] : NULL, &resp->responses[i], revs);
}

/* ---------- requests: each answers through a reply_sink, so gRPC and the JSON gateway share them ----------
 */

static void sink_fail(const reply_sink *out, etcd_err e) {
    out->fail(out->ctx, etcd_err_code(e), etcd_err_message(e));
}

/* Answers a failed store call with its error; a quota failure raises the NOSPACE alarm, as in etcd. */
static bool store_failed(const reply_sink *out, const mv_result *res) {
    if (res->err == MV_OK) return false;
    if (res->err == MV_ERR_NO_SPACE) alarm_raise_nospace();
    if (res->err == MV_ERR_REPLY_TOO_LARGE)
        out->fail(out->ctx, GRPC_RESOURCE_EXHAUSTED, reply_budget_message());
    else
        sink_fail(out, etcd_err_from_mv(res->err));
    return true;
}

/* A range of the result left its kvs out: the reply would pass the request's budget (budget.h). */
static bool txn_too_large(const mv_txn_resp *t) {
    for (size_t i = 0; t && i < t->n_responses; i++) {
        const mv_op_resp *r = &t->responses[i];
        if (r->type == MV_OP_RANGE && r->u.range.too_large) return true;
        if (r->type == MV_OP_TXN && txn_too_large(r->u.txn)) return true;
    }
    return false;
}

static bool over_budget(const reply_sink *out, bool too_large) {
    if (too_large) out->fail(out->ctx, GRPC_RESOURCE_EXHAUSTED, reply_budget_message());
    return too_large;
}

/* The sink takes encoded replies (gRPC): the store picks the keys, kv_range_steps.c packs the reply. */
static void range_encoded(const mv_range_req *mreq, const reply_sink *out) {
    mv_result res = {0};
    mv_range_rest *rest;
    mvcc_range_select(g_store, mreq, &res, &rest);
    if (!store_failed(out, &res) && !over_budget(out, res.resp.u.range.too_large)) {
        metrics_kv(1, 0, 0);
        kv_range_reply(&res, rest, out);
    } else {
        mvcc_range_rest_end(rest);
    }
    mv_result_free(&res);
}

void kv_range_exec(const ProtobufCMessage *msg, size_t len, const reply_sink *out) {
    (void)len;
    const Etcdserverpb__RangeRequest *req = (const Etcdserverpb__RangeRequest *)msg;
    etcd_err e = kv_check_range(req);
    auth_who who;
    if (e == KV_VALID) e = auth_resolve(rpc_current_caller(), &who);
    if (e == KV_VALID) e = auth_check_range(&who, req);
    if (e != KV_VALID) return sink_fail(out, e);
    static mv_count_cache *counts; /* g_store's, for the server's life: each page of a list counts on */
    if (!counts) counts = mv_count_cache_new();
    mv_range_req mreq;
    range_from_pb(&mreq, req);
    mreq.counts = counts;
    if (rpc_sink_takes_encoded(out)) return range_encoded(&mreq, out);
    mv_result res = {0};
    mvcc_range(g_store, &mreq, &res);
    if (!store_failed(out, &res) && !over_budget(out, res.resp.u.range.too_large)) {
        alloc_list mem = {0};
        Etcdserverpb__ResponseHeader hdr;
        Etcdserverpb__RangeResponse resp = ETCDSERVERPB__RANGE_RESPONSE__INIT;
        response_header_fill(&hdr, res.header_revision);
        resp.header = &hdr;
        range_resp_to_pb(&mem, &resp, &res.resp.u.range);
        metrics_kv(1, 0, 0);
        out->reply(out->ctx, &resp.base);
        list_free(&mem);
    }
    mv_result_free(&res);
}

/* Put and DeleteRange pass etcd's gate in its order: the request's own checks, the token, the write
 * size, the NOSPACE alarm (which refuses a Put, never a DeleteRange), then the caller's permission. */
static etcd_err validate_write(const ProtobufCMessage *msg, size_t len, bool is_put) {
    const Etcdserverpb__PutRequest *put = (const Etcdserverpb__PutRequest *)msg;
    const Etcdserverpb__DeleteRangeRequest *del = (const Etcdserverpb__DeleteRangeRequest *)msg;
    etcd_err e = is_put ? kv_check_put(put) : kv_check_delete(del);
    auth_who who;
    if (e == KV_VALID) e = auth_resolve(rpc_current_caller(), &who);
    if (e == KV_VALID && write_too_large(len)) e = ETCD_ERR_REQUEST_TOO_LARGE;
    if (e == KV_VALID && is_put && alarm_nospace_active()) e = ETCD_ERR_NO_SPACE;
    if (e == KV_VALID) e = is_put ? auth_check_put(&who, put) : auth_check_delete(&who, del);
    return e;
}

/* Answers a Put or DeleteRange that the store ran; prev_kv is the request's. */
static void reply_write(const reply_sink *out, const mv_result *res, bool is_put, bool prev_kv) {
    if (is_put && rpc_sink_takes_encoded(out) && !(prev_kv && res->resp.u.put.prev_kv)) {
        uint8_t msg[PUT_REPLY_MAX_BYTES];
        size_t len = put_reply_pack(msg, res->header_revision);
        metrics_kv(0, 1, 0);
        return rpc_sink_reply_encoded(out, msg, len);
    }
    alloc_list mem = {0};
    Etcdserverpb__ResponseHeader hdr;
    response_header_fill(&hdr, res->header_revision);
    if (is_put) {
        Etcdserverpb__PutResponse resp = ETCDSERVERPB__PUT_RESPONSE__INIT;
        resp.header = &hdr;
        put_resp_to_pb(&mem, &resp, &res->resp.u.put, prev_kv);
        metrics_kv(0, 1, 0);
        out->reply(out->ctx, &resp.base);
    } else {
        Etcdserverpb__DeleteRangeResponse resp = ETCDSERVERPB__DELETE_RANGE_RESPONSE__INIT;
        resp.header = &hdr;
        delete_resp_to_pb(&mem, &resp, &res->resp.u.del, prev_kv);
        metrics_kv(0, 0, 1);
        out->reply(out->ctx, &resp.base);
    }
    list_free(&mem);
}

/* Put and DeleteRange: checked, run on the store and answered alike. */
static void write_exec(const ProtobufCMessage *msg, size_t len, const reply_sink *out, bool is_put) {
    etcd_err e = validate_write(msg, len, is_put);
    if (e != KV_VALID) return sink_fail(out, e);
    mv_result res = {0};
    bool prev_kv;
    if (is_put) {
        const Etcdserverpb__PutRequest *req = (const Etcdserverpb__PutRequest *)msg;
        mv_put_req mreq;
        put_from_pb(&mreq, req);
        mvcc_put(g_store, &mreq, &res);
        prev_kv = req->prev_kv;
    } else {
        const Etcdserverpb__DeleteRangeRequest *req = (const Etcdserverpb__DeleteRangeRequest *)msg;
        mv_delete_req mreq;
        delete_from_pb(&mreq, req);
        mvcc_delete(g_store, &mreq, &res);
        prev_kv = req->prev_kv;
    }
    if (!store_failed(out, &res)) reply_write(out, &res, is_put, prev_kv);
    mv_result_free(&res);
}

void kv_put_exec(const ProtobufCMessage *msg, size_t len, const reply_sink *out) {
    write_exec(msg, len, out, true);
}

void kv_delete_range_exec(const ProtobufCMessage *msg, size_t len, const reply_sink *out) {
    write_exec(msg, len, out, false);
}

/* etcd's order: structure and limits, then duplicate keys per branch, then the caller's token, then
 * the write size; a write txn is refused while the NOSPACE alarm is active. */
static etcd_err validate_txn(const Etcdserverpb__TxnRequest *req, size_t len, auth_who *who) {
    etcd_err e = kv_check_txn(req, (long long)max_txn_ops());
    if (e != KV_VALID) return e;
    if (kv_branch_has_duplicates(req->success, req->n_success) ||
        kv_branch_has_duplicates(req->failure, req->n_failure))
        return ETCD_ERR_DUPLICATE_KEY;
    if ((e = auth_resolve(rpc_current_caller(), who)) != KV_VALID) return e;
    if (!kv_txn_is_read_only(req) && write_too_large(len)) return ETCD_ERR_REQUEST_TOO_LARGE;
    if (!kv_txn_is_read_only(req) && alarm_nospace_active()) return ETCD_ERR_NO_SPACE;
    return KV_VALID;
}

static void reply_txn(const reply_sink *out, alloc_list *mem, const mv_txn_req *mreq, const mv_result *res) {
    const mv_txn_resp *tresp = res->resp.u.txn;
    static const mv_txn_resp empty = {0};
    if (!tresp) tresp = &empty;
    txn_revs revs = {.start = res->header_revision - (txn_resp_changes(tresp) ? 1 : 0), .changed = false};
    Etcdserverpb__ResponseHeader hdr;
    Etcdserverpb__TxnResponse resp = ETCDSERVERPB__TXN_RESPONSE__INIT;
    response_header_fill(&hdr, res->header_revision);
    resp.header = &hdr;
    txn_resp_to_pb(mem, &resp, mreq, tresp, &revs);
    metrics_kv_txn(tresp);
    out->reply(out->ctx, &resp.base);
}

void kv_txn_exec(const ProtobufCMessage *msg, size_t len, const reply_sink *out) {
    const Etcdserverpb__TxnRequest *req = (const Etcdserverpb__TxnRequest *)msg;
    auth_who who;
    etcd_err e = validate_txn(req, len, &who);
    if (e == KV_VALID) e = auth_check_txn(&who, req);
    if (e != KV_VALID) return sink_fail(out, e);
    alloc_list mem = {0};
    mv_txn_req *mreq = txn_from_pb(&mem, req);
    mv_result res = {0};
    mvcc_txn(g_store, mreq, &res);
    if (!store_failed(out, &res) && !over_budget(out, txn_too_large(res.resp.u.txn)))
        reply_txn(out, &mem, mreq, &res);
    mv_result_free(&res);
    list_free(&mem);
}

void kv_compact_exec(const ProtobufCMessage *msg, size_t len, const reply_sink *out) {
    (void)len;
    const Etcdserverpb__CompactionRequest *req = (const Etcdserverpb__CompactionRequest *)msg;
    auth_who who; /* etcd checks no permission for a compaction, only the token */
    etcd_err e = auth_resolve(rpc_current_caller(), &who);
    if (e != AUTH_OK) return sink_fail(out, e);
    int64_t rev = 0;
    mv_err err = mvcc_compact(g_store, req->revision, &rev);
    if (err != MV_OK) return sink_fail(out, etcd_err_from_mv(err));
    Etcdserverpb__ResponseHeader hdr;
    Etcdserverpb__CompactionResponse resp = ETCDSERVERPB__COMPACTION_RESPONSE__INIT;
    response_header_fill(&hdr, rev);
    resp.header = &hdr;
    out->reply(out->ctx, &resp.base);
}

/* ---------- gRPC handlers ---------- */

void kv_range(rpc_call *call, const uint8_t *msg, size_t len) {
    rpc_unary_exec(call, msg, len, &etcdserverpb__range_request__descriptor, kv_range_exec);
}

void kv_put(rpc_call *call, const uint8_t *msg, size_t len) {
    Etcdserverpb__PutRequest req;
    if (put_request_decode(msg, len, &req)) return rpc_unary_run(call, &req.base, len, kv_put_exec);
    rpc_unary_exec(call, msg, len, &etcdserverpb__put_request__descriptor, kv_put_exec);
}

void kv_delete_range(rpc_call *call, const uint8_t *msg, size_t len) {
    rpc_unary_exec(call, msg, len, &etcdserverpb__delete_range_request__descriptor, kv_delete_range_exec);
}

/* The nesting depth is checked on the wire first, so decoding cannot overflow the stack. */
void kv_txn(rpc_call *call, const uint8_t *msg, size_t len) {
    kv_depth_scan depth = kv_scan_txn_depth(msg, len);
    if (depth == KV_SCAN_TOO_DEEP) return rpc_fail(call, ETCD_ERR_TOO_MANY_OPS);
    if (depth != KV_SCAN_OK) return rpc_fail_unmarshal(call, &etcdserverpb__txn_request__descriptor);
    rpc_unary_exec(call, msg, len, &etcdserverpb__txn_request__descriptor, kv_txn_exec);
}

void kv_compact(rpc_call *call, const uint8_t *msg, size_t len) {
    rpc_unary_exec(call, msg, len, &etcdserverpb__compaction_request__descriptor, kv_compact_exec);
}
