/* key_queue.c: the KV steps of etcd's concurrency package (session lease, claim of the lease's key,
 * oldest key, conditional put and delete), run through the KV and Lease services' own functions, and
 * the wait for older keys to go, woken by key_waits.c when the key it waits for is deleted. */
#include "key_queue.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "svc_kv.h"
#include "svc_lease.h"

/* ---------- bytes ---------- */

kq_bytes kq_bytes_copy(const void *data, size_t len) {
    kq_bytes b = {xmalloc(len ? len : 1), len};
    if (len) memcpy(b.data, data, len);
    return b;
}

void kq_bytes_free(kq_bytes *b) {
    free(b->data);
    *b = (kq_bytes){0};
}

ProtobufCBinaryData kq_pb(kq_bytes b) {
    return (ProtobufCBinaryData){b.len, b.data};
}

static bool bytes_eq(kq_bytes a, ProtobufCBinaryData b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

kq_bytes kq_prefix(ProtobufCBinaryData name) {
    kq_bytes p = {xmalloc(name.len + 1), name.len + 1};
    if (name.len) memcpy(p.data, name.data, name.len);
    p.data[name.len] = '/';
    return p;
}

kq_bytes kq_lease_key(kq_bytes prefix, int64_t lease) {
    char hex[24];
    if (lease < 0)
        snprintf(hex, sizeof hex, "-%llx", (unsigned long long)0 - (unsigned long long)lease);
    else
        snprintf(hex, sizeof hex, "%llx", (unsigned long long)lease);
    size_t n = strlen(hex);
    kq_bytes k = {xmalloc(prefix.len + n), prefix.len + n};
    memcpy(k.data, prefix.data, prefix.len);
    memcpy(k.data + prefix.len, hex, n);
    return k;
}

/* etcd's GetPrefixRangeEnd: the prefix with its last byte below 0xff incremented and cut after it;
 * "\0" (every key from the prefix on) when there is none. Points into buf (len + 1 bytes). */
static ProtobufCBinaryData prefix_end(kq_bytes prefix, uint8_t *buf) {
    memcpy(buf, prefix.data, prefix.len);
    for (size_t i = prefix.len; i-- > 0;) {
        if (buf[i] < 0xff) {
            buf[i]++;
            return (ProtobufCBinaryData){i + 1, buf};
        }
    }
    buf[0] = 0;
    return (ProtobufCBinaryData){1, buf};
}

/* ---------- calls ---------- */

bool kq_session(int64_t *lease, local_result *r) {
    memset(r, 0, sizeof *r);
    if (*lease != 0) return true;
    Etcdserverpb__LeaseGrantRequest g = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    g.ttl = KQ_SESSION_TTL;
    if (!local_call(lease_grant_exec, &g.base, r)) return false;
    *lease = ((const Etcdserverpb__LeaseGrantResponse *)r->resp)->id;
    local_result_free(r);
    return true;
}

static bool range_call(Etcdserverpb__RangeRequest *q, local_result *r) {
    return local_call(kv_range_exec, &q->base, r);
}

/* The oldest (ascending) or newest (descending) key under prefix by create revision, as clientv3's
 * WithFirstCreate / WithLastCreate; max_create bounds it (0: none). */
static void by_create(Etcdserverpb__RangeRequest *q, kq_bytes prefix, uint8_t *end_buf, bool newest,
                      int64_t max_create) {
    etcdserverpb__range_request__init(q);
    q->key = kq_pb(prefix);
    q->range_end = prefix_end(prefix, end_buf);
    q->limit = 1;
    q->sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__CREATE;
    q->sort_order = newest ? ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND
                           : ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND;
    q->max_create_revision = max_create;
}

bool kq_first_created(kq_bytes prefix, local_result *r) {
    uint8_t *end = xmalloc(prefix.len + 1);
    Etcdserverpb__RangeRequest q;
    by_create(&q, prefix, end, false, 0);
    bool ok = range_call(&q, r);
    free(end);
    return ok;
}

bool kq_get(kq_bytes key, local_result *r) {
    Etcdserverpb__RangeRequest q = ETCDSERVERPB__RANGE_REQUEST__INIT;
    q.key = kq_pb(key);
    return range_call(&q, r);
}

static void compare_created(Etcdserverpb__Compare *c, kq_bytes key, int64_t rev) {
    etcdserverpb__compare__init(c);
    c->result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
    c->target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
    c->key = kq_pb(key);
    c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
    c->create_revision = rev;
}

bool kq_if_created(kq_bytes key, int64_t rev, const ProtobufCBinaryData *value, int64_t lease,
                   local_result *r) {
    Etcdserverpb__Compare cmp, *cmps[1] = {&cmp};
    compare_created(&cmp, key, rev);
    Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
    Etcdserverpb__DeleteRangeRequest del = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT, *ops[1] = {&op};
    if (value) {
        put.key = kq_pb(key);
        put.value = *value;
        put.lease = lease;
        op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
        op.request_put = &put;
    } else {
        del.key = kq_pb(key);
        op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
        op.request_delete_range = &del;
    }
    Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT;
    t.n_compare = 1, t.compare = cmps;
    t.n_success = 1, t.success = ops;
    return local_call(kv_txn_exec, &t.base, r);
}

/* etcd's claim of a key (Mutex.tryAcquire, Election.Campaign): Txn{if key's create revision is 0:
 * put key=value with the lease; else: get key}, each branch then getting the oldest key under prefix
 * if with_first. */
bool kq_claim(kq_bytes prefix, kq_bytes key, ProtobufCBinaryData value, int64_t lease, bool with_first,
              local_result *r) {
    Etcdserverpb__Compare cmp, *cmps[1] = {&cmp};
    compare_created(&cmp, key, 0);
    Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
    put.key = kq_pb(key);
    put.value = value;
    put.lease = lease;
    Etcdserverpb__RangeRequest get = ETCDSERVERPB__RANGE_REQUEST__INIT, first;
    get.key = kq_pb(key);
    uint8_t *end = xmalloc(prefix.len + 1);
    by_create(&first, prefix, end, false, 0);
    Etcdserverpb__RequestOp put_op = ETCDSERVERPB__REQUEST_OP__INIT, get_op = ETCDSERVERPB__REQUEST_OP__INIT,
                            first_op = ETCDSERVERPB__REQUEST_OP__INIT;
    put_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
    put_op.request_put = &put;
    get_op.request_case = first_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
    get_op.request_range = &get;
    first_op.request_range = &first;
    Etcdserverpb__RequestOp *then[2] = {&put_op, &first_op}, *els[2] = {&get_op, &first_op};
    Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT;
    t.n_compare = 1, t.compare = cmps;
    t.n_success = t.n_failure = with_first ? 2 : 1;
    t.success = then, t.failure = els;
    bool ok = local_call(kv_txn_exec, &t.base, r);
    free(end);
    return ok;
}

int64_t kq_claimed_rev(const local_result *r, const Mvccpb__KeyValue **existing) {
    const Etcdserverpb__TxnResponse *t = kq_txn(r);
    const Etcdserverpb__RangeResponse *mine = kq_txn_range(r, 0);
    *existing = !t->succeeded && mine && mine->n_kvs ? mine->kvs[0] : NULL;
    return *existing ? (*existing)->create_revision : t->header->revision;
}

typedef struct delete_job {
    loop_job job;
    kq_bytes key;
    int64_t rev;
    char *token, *cert_cn; /* the canceled call's caller */
} delete_job;

static char *dup_or_null(const char *s) {
    return s ? xstrdup(s) : NULL;
}

static void run_delete(loop_job *j) {
    delete_job *d = (delete_job *)j;
    rpc_caller caller = {d->token, d->cert_cn};
    const rpc_caller *was = rpc_set_current_caller(&caller);
    local_result r;
    if (d->rev) {
        kq_if_created(d->key, d->rev, NULL, 0, &r);
    } else {
        Etcdserverpb__DeleteRangeRequest del = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
        del.key = kq_pb(d->key);
        local_call(kv_delete_range_exec, &del.base, &r);
    }
    local_result_free(&r); /* as etcd's cleanup, whose error nobody reads */
    rpc_set_current_caller(was);
    kq_bytes_free(&d->key);
    free(d->token);
    free(d->cert_cn);
    free(d);
}

void kq_delete_later(kq_bytes key, int64_t rev, const rpc_caller *caller) {
    delete_job *d = xcalloc(1, sizeof *d);
    d->job.run = run_delete;
    d->key = kq_bytes_copy(key.data, key.len);
    d->rev = rev;
    if (caller) {
        d->token = dup_or_null(caller->token);
        d->cert_cn = dup_or_null(caller->cert_cn);
    }
    loop_job_queue(&d->job);
}

const Etcdserverpb__TxnResponse *kq_txn(const local_result *r) {
    return (const Etcdserverpb__TxnResponse *)r->resp;
}

const Etcdserverpb__RangeResponse *kq_range(const local_result *r) {
    return (const Etcdserverpb__RangeResponse *)r->resp;
}

const Etcdserverpb__RangeResponse *kq_txn_range(const local_result *r, size_t i) {
    const Etcdserverpb__TxnResponse *t = kq_txn(r);
    if (!t || i >= t->n_responses) return NULL;
    const Etcdserverpb__ResponseOp *op = t->responses[i];
    return op->response_case == ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE ? op->response_range
                                                                                   : NULL;
}

void kq_fail(const reply_sink *out, const char *message) {
    out->fail(out->ctx, GRPC_UNKNOWN, message);
}

/* ---------- the wait ---------- */

static void on_delete(void *ctx, const mv_event *ev) {
    key_queue *q = ctx;
    if (ev->type == MV_EVENT_DELETE) loop_job_queue(&q->job);
}

/* Our key must still be ours; then the newest key created before it is the one to wait for (etcd's
 * waitDeletes: Get(prefix, WithLastCreate, WithMaxCreateRev(rev - 1))). */
static kq_state check(key_queue *q, local_result *r) {
    if (!kq_get(q->key, r)) return KQ_ERROR;
    const Etcdserverpb__RangeResponse *own = kq_range(r);
    if (own->n_kvs == 0 || own->kvs[0]->create_revision != q->rev) {
        local_result_free(r);
        return KQ_LOST;
    }
    uint8_t *end = xmalloc(q->prefix.len + 1);
    Etcdserverpb__RangeRequest older_q;
    by_create(&older_q, q->prefix, end, true, q->rev - 1);
    local_result o;
    bool ok = range_call(&older_q, &o);
    free(end);
    if (!ok) {
        local_result_free(r);
        *r = o;
        return KQ_ERROR;
    }
    const Etcdserverpb__RangeResponse *older = kq_range(&o);
    if (older->n_kvs == 0) {
        local_result_free(&o);
        return KQ_TURN;
    }
    ProtobufCBinaryData k = older->kvs[0]->key;
    if (!q->older || !bytes_eq(q->older_key, k)) {
        key_wait_remove(q->older);
        kq_bytes_free(&q->older_key);
        q->older_key = kq_bytes_copy(k.data, k.len);
        q->older = key_wait_add((mv_bytes){k.data, k.len}, false, on_delete, q);
    }
    local_result_free(&o);
    local_result_free(r);
    return KQ_WAIT;
}

static void drop_waits(key_queue *q) {
    key_wait_remove(q->older);
    key_wait_remove(q->own);
    q->older = q->own = NULL;
    loop_job_cancel(&q->job);
}

static void run_check(loop_job *j) {
    key_queue *q = (key_queue *)((char *)j - offsetof(key_queue, job));
    const rpc_caller *was = later_call_as(q->lc);
    local_result r;
    kq_state st = check(q, &r);
    if (st != KQ_WAIT) {
        drop_waits(q);
        q->done(q, st, &r); /* may free q */
    }
    rpc_set_current_caller(was);
}

kq_state key_queue_start(key_queue *q, later_call *lc, kq_bytes prefix, kq_bytes key, int64_t rev,
                         kq_done_fn done, local_result *r) {
    memset(q, 0, sizeof *q);
    q->lc = lc;
    q->prefix = kq_bytes_copy(prefix.data, prefix.len);
    q->key = kq_bytes_copy(key.data, key.len);
    q->rev = rev;
    q->done = done;
    q->job.run = run_check;
    kq_state st = check(q, r);
    if (st == KQ_WAIT)
        q->own = key_wait_add((mv_bytes){q->key.data, q->key.len}, false, on_delete, q);
    else
        drop_waits(q);
    return st;
}

void key_queue_stop(key_queue *q) {
    drop_waits(q);
    kq_bytes_free(&q->older_key);
    kq_bytes_free(&q->prefix);
    kq_bytes_free(&q->key);
}
