/* svc_lock.c: the Lock service as etcd's v3lock server runs it over clientv3's concurrency.Mutex
 * (etcd 3.5): the key "<name>/<lease hex>" is claimed in one Txn that also reads the oldest key under
 * the name; its owner holds the lock, the others wait for every older key to go (key_queue.c). */
#include "svc_lock.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "key_queue.h"
#include "svc_kv.h"
#include "v3lock.pb-c.h"

/* etcd 3.5's concurrency.ErrSessionExpired, when the waiter's own key went while it waited. */
static const char ERR_SESSION_EXPIRED[] = "mutex: session is expired";

typedef struct lock_wait {
    key_queue q;
    rpc_call *call;
} lock_wait;

static void reply_lock(rpc_call *call, Etcdserverpb__ResponseHeader *hdr, kq_bytes key) {
    V3lockpb__LockResponse resp = V3LOCKPB__LOCK_RESPONSE__INIT;
    resp.header = hdr;
    resp.key = kq_pb(key);
    rpc_reply(call, &resp.base);
}

/* The end of a wait: the lock is ours (answered with the header of the Get of our key, as etcd 3.5),
 * or our key is gone, or a step failed (then the key goes, as etcd's Mutex.Lock unlocks on error). */
static void finish(lock_wait *lw, kq_state st, local_result *r) {
    if (st == KQ_TURN) {
        reply_lock(lw->call, kq_range(r)->header, lw->q.key);
    } else if (st == KQ_LOST) {
        kq_fail(lw->call, ERR_SESSION_EXPIRED);
    } else {
        kq_fail(lw->call, r->message);
        kq_delete_later(lw->q.key, 0, rpc_call_caller(lw->call));
    }
    local_result_free(r);
}

static void wait_done(key_queue *q, kq_state st, local_result *r) {
    lock_wait *lw = (lock_wait *)q;
    finish(lw, st, r);
    rpc_set_user(lw->call, NULL);
    key_queue_stop(&lw->q);
    free(lw);
}

/* Txn{if key's create revision is 0: put key "" with the lease, get the oldest key under prefix;
 * else: get key, get the oldest key} (Mutex.tryAcquire). */
static bool try_acquire(kq_bytes prefix, kq_bytes key, int64_t lease, local_result *r) {
    uint8_t *end = xmalloc(prefix.len + 1);
    memcpy(end, prefix.data, prefix.len);
    end[prefix.len - 1]++; /* the prefix ends in '/': its range end is the same with '0' */
    Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT, *cmps[1] = {&cmp};
    cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
    cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
    cmp.key = kq_pb(key);
    cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
    Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
    put.key = kq_pb(key);
    put.lease = lease;
    Etcdserverpb__RangeRequest get = ETCDSERVERPB__RANGE_REQUEST__INIT,
                               owner = ETCDSERVERPB__RANGE_REQUEST__INIT;
    get.key = kq_pb(key);
    owner.key = kq_pb(prefix);
    owner.range_end = (ProtobufCBinaryData){prefix.len, end};
    owner.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__CREATE;
    owner.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND;
    owner.limit = 1;
    Etcdserverpb__RequestOp put_op = ETCDSERVERPB__REQUEST_OP__INIT, get_op = ETCDSERVERPB__REQUEST_OP__INIT,
                            owner_op = ETCDSERVERPB__REQUEST_OP__INIT;
    put_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
    put_op.request_put = &put;
    get_op.request_case = owner_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
    get_op.request_range = &get;
    owner_op.request_range = &owner;
    Etcdserverpb__RequestOp *then[2] = {&put_op, &owner_op}, *els[2] = {&get_op, &owner_op};
    Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT;
    t.n_compare = 1, t.compare = cmps;
    t.n_success = 2, t.success = then;
    t.n_failure = 2, t.failure = els;
    bool ok = local_call(kv_txn_exec, &t.base, r);
    free(end);
    return ok;
}

/* Lock: the session's lease (a new one of 60 s for lease 0), the claim, then the lock at once or the
 * wait. */
static void lock_run(rpc_call *call, const V3lockpb__LockRequest *req) {
    int64_t lease = req->lease;
    local_result r;
    if (!kq_session(&lease, &r)) {
        kq_fail(call, r.message);
        return;
    }
    kq_bytes prefix = kq_prefix(req->name), key = kq_lease_key(prefix, lease);
    if (!try_acquire(prefix, key, lease, &r)) {
        kq_fail(call, r.message);
    } else {
        const Etcdserverpb__TxnResponse *t = kq_txn(&r);
        const Etcdserverpb__RangeResponse *mine = kq_txn_range(&r, 0), *owner = kq_txn_range(&r, 1);
        int64_t my_rev = t->header->revision;
        if (!t->succeeded && mine && mine->n_kvs) my_rev = mine->kvs[0]->create_revision;
        if (!owner || owner->n_kvs == 0 || owner->kvs[0]->create_revision == my_rev) {
            reply_lock(call, t->header, key);
        } else {
            lock_wait *lw = xcalloc(1, sizeof *lw);
            lw->call = call;
            local_result w;
            kq_state st = key_queue_start(&lw->q, call, prefix, key, my_rev, wait_done, &w);
            if (st == KQ_WAIT) {
                rpc_set_user(call, lw);
            } else {
                finish(lw, st, &w);
                key_queue_stop(&lw->q);
                free(lw);
            }
        }
        local_result_free(&r);
    }
    kq_bytes_free(&prefix);
    kq_bytes_free(&key);
}

void lock_lock(rpc_call *call, const uint8_t *msg, size_t len) {
    V3lockpb__LockRequest *req =
        (V3lockpb__LockRequest *)kq_unpack(call, msg, len, &v3lockpb__lock_request__descriptor);
    if (!req) return;
    const rpc_caller *was = kq_as(call);
    lock_run(call, req);
    rpc_set_current_caller(was);
    v3lockpb__lock_request__free_unpacked(req, NULL);
}

/* The call ended while it waited (client gone, deadline): its key goes, as etcd's Mutex.Lock unlocks
 * when its context ends. */
void lock_lock_closed(rpc_call *call) {
    lock_wait *lw = rpc_user(call);
    if (!lw) return;
    rpc_set_user(call, NULL);
    kq_delete_later(lw->q.key, 0, rpc_call_caller(call));
    key_queue_stop(&lw->q);
    free(lw);
}

/* Unlock: a DeleteRange of the key. */
void lock_unlock(rpc_call *call, const uint8_t *msg, size_t len) {
    V3lockpb__UnlockRequest *req =
        (V3lockpb__UnlockRequest *)kq_unpack(call, msg, len, &v3lockpb__unlock_request__descriptor);
    if (!req) return;
    Etcdserverpb__DeleteRangeRequest del = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    del.key = req->key;
    local_result r;
    const rpc_caller *was = kq_as(call);
    bool ok = local_call(kv_delete_range_exec, &del.base, &r);
    rpc_set_current_caller(was);
    if (ok) {
        V3lockpb__UnlockResponse resp = V3LOCKPB__UNLOCK_RESPONSE__INIT;
        resp.header = ((Etcdserverpb__DeleteRangeResponse *)r.resp)->header;
        rpc_reply(call, &resp.base);
    } else {
        kq_fail(call, r.message);
    }
    local_result_free(&r);
    v3lockpb__unlock_request__free_unpacked(req, NULL);
}
