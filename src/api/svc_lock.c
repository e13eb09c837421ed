/* svc_lock.c: the Lock service as etcd's v3lock server runs it over clientv3's concurrency.Mutex
 * (etcd 3.5): the key "<name>/<lease hex>" is claimed in one Txn that also reads the oldest key under
 * the name; its owner holds the lock, the others wait for every older key to go (key_queue.c). Lock
 * is a later_exec (it may answer after a wait), from gRPC or the JSON gateway; Unlock a unary_exec. */
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
} lock_wait;

static void reply_lock(const reply_sink *out, Etcdserverpb__ResponseHeader *hdr, kq_bytes key) {
    V3lockpb__LockResponse resp = V3LOCKPB__LOCK_RESPONSE__INIT;
    resp.header = hdr;
    resp.key = kq_pb(key);
    out->reply(out->ctx, &resp.base);
}

/* The end of a wait: the lock is ours (answered with the header of the Get of our key, as etcd 3.5),
 * or our key is gone, or a step failed (then the key goes, as etcd's Mutex.Lock unlocks on error). */
static void finish(lock_wait *lw, kq_state st, local_result *r) {
    later_call *lc = lw->q.lc;
    if (st == KQ_TURN) {
        reply_lock(&lc->out, kq_range(r)->header, lw->q.key);
    } else if (st == KQ_LOST) {
        kq_fail(&lc->out, ERR_SESSION_EXPIRED);
    } else {
        kq_delete_later(lw->q.key, 0, lc->caller);
        kq_fail(&lc->out, r->message);
    }
    local_result_free(r);
}

static void wait_free(lock_wait *lw) {
    key_queue_stop(&lw->q);
    free(lw);
}

static void wait_done(key_queue *q, kq_state st, local_result *r) {
    lock_wait *lw = (lock_wait *)q;
    later_call_done(q->lc);
    finish(lw, st, r);
    wait_free(lw);
}

/* The call ended while it waited (client gone, deadline): its key goes, as etcd's Mutex.Lock unlocks
 * when its context ends. */
static void wait_cancel(later_call *lc) {
    lock_wait *lw = lc->wait;
    kq_delete_later(lw->q.key, 0, lc->caller);
    wait_free(lw);
}

/* Lock: the session's lease (a new one of 60 s for lease 0), the claim with the oldest key under the
 * name (Mutex.tryAcquire), then the lock at once or the wait. */
static void lock_run(later_call *lc, kq_bytes prefix, kq_bytes key, int64_t lease) {
    local_result r;
    if (!kq_claim(prefix, key, (ProtobufCBinaryData){0, NULL}, lease, true, &r))
        return kq_fail(&lc->out, r.message);
    const Mvccpb__KeyValue *existing;
    int64_t my_rev = kq_claimed_rev(&r, &existing);
    const Etcdserverpb__RangeResponse *owner = kq_txn_range(&r, 1);
    if (!owner || owner->n_kvs == 0 || owner->kvs[0]->create_revision == my_rev) {
        reply_lock(&lc->out, kq_txn(&r)->header, key);
        local_result_free(&r);
        return;
    }
    local_result_free(&r);
    lock_wait *lw = xcalloc(1, sizeof *lw);
    kq_state st = key_queue_start(&lw->q, lc, prefix, key, my_rev, wait_done, &r);
    if (st == KQ_WAIT) return later_call_wait(lc, lw, wait_cancel);
    finish(lw, st, &r);
    wait_free(lw);
}

void lock_lock_exec(later_call *lc, const ProtobufCMessage *msg) {
    const V3lockpb__LockRequest *req = (const V3lockpb__LockRequest *)msg;
    int64_t lease = req->lease;
    local_result r;
    if (!kq_session(&lease, &r)) return kq_fail(&lc->out, r.message);
    kq_bytes prefix = kq_prefix(req->name), key = kq_lease_key(prefix, lease);
    lock_run(lc, prefix, key, lease);
    kq_bytes_free(&prefix);
    kq_bytes_free(&key);
}

void lock_lock(rpc_call *call, const uint8_t *msg, size_t len) {
    later_call_grpc(call, msg, len, &v3lockpb__lock_request__descriptor, lock_lock_exec, false);
}

void lock_lock_closed(rpc_call *call) {
    later_call_grpc_closed(call);
}

/* Unlock: a DeleteRange of the key. */
void lock_unlock_exec(const ProtobufCMessage *msg, size_t len, const reply_sink *out) {
    (void)len;
    const V3lockpb__UnlockRequest *req = (const V3lockpb__UnlockRequest *)msg;
    Etcdserverpb__DeleteRangeRequest del = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    del.key = req->key;
    local_result r;
    if (local_call(kv_delete_range_exec, &del.base, &r)) {
        V3lockpb__UnlockResponse resp = V3LOCKPB__UNLOCK_RESPONSE__INIT;
        resp.header = ((Etcdserverpb__DeleteRangeResponse *)r.resp)->header;
        out->reply(out->ctx, &resp.base);
    } else {
        kq_fail(out, r.message);
    }
    local_result_free(&r);
}

void lock_unlock(rpc_call *call, const uint8_t *msg, size_t len) {
    rpc_unary_exec(call, msg, len, &v3lockpb__unlock_request__descriptor, lock_unlock_exec);
}
