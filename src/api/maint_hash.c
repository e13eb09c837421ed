/* maint_hash.c: Maintenance's Hash and HashKV, answered after a hash job (storage/hash_kv.c) has walked
 * the whole index in slices of about a millisecond, one per loop turn, so that a store of millions of
 * keys keeps serving while it is hashed (issue 16). From gRPC and the JSON gateway alike (later_call).
 * The jobs wait in one queue and only its head runs, so many calls cost the loop no more than one. */
#include "svc_maint.h"

#include <stdlib.h>

#include "alloc.h"
#include "auth_gate.h"
#include "errors.h"
#include "header.h"
#include "later_call.h"
#include "rpc.pb-c.h"
#include "step_queue.h"
#include "store.h"

#define HASH_SLICE_US 1000
#define HASH_GAP_SECONDS 0.0005 /* between slices: the loop serves the others */

typedef struct hash_wait {
    step_job link; /* first: the queue's */
    later_call *lc;
    mv_hash_job *job;
    bool kv; /* HashKV; else Hash */
} hash_wait;

static void on_step(step_queue *q, step_job *first);
static step_queue queue = STEP_QUEUE_INIT(queue, HASH_GAP_SECONDS, on_step);

static void fail_mv(const reply_sink *out, mv_err err) {
    etcd_err e = etcd_err_from_mv(err);
    out->fail(out->ctx, etcd_err_code(e), etcd_err_message(e));
}

/* Takes w out of the queue and frees it. */
static void hash_wait_free(hash_wait *w) {
    step_queue_remove(&queue, &w->link);
    mvcc_hash_kv_free(w->job);
    free(w);
}

static void answer(const reply_sink *out, const mv_hash_job *job, bool kv) {
    uint32_t hash;
    int64_t hash_rev, compact_rev;
    mvcc_hash_kv_result(job, &hash, &hash_rev, &compact_rev);
    Etcdserverpb__ResponseHeader hdr;
    response_header_fill(&hdr, mvcc_revision(g_store));
    if (!kv) { /* etcd hashes its whole bolt file; ours is the logical hash of everything held */
        Etcdserverpb__HashResponse resp = ETCDSERVERPB__HASH_RESPONSE__INIT;
        resp.header = &hdr;
        resp.hash = hash;
        return out->reply(out->ctx, &resp.base);
    }
    Etcdserverpb__HashKVResponse resp = ETCDSERVERPB__HASH_KVRESPONSE__INIT;
    resp.header = &hdr;
    resp.hash = hash;
    resp.compact_revision = compact_rev;
    resp.hash_revision = hash_rev;
    out->reply(out->ctx, &resp.base);
}

static void on_hash_cancel(later_call *lc) { /* the client went: the walk stops */
    hash_wait_free(lc->wait);
}

/* One slice of the oldest job (it stays first until done); its answer once its walk is done or failed. */
static void on_step(step_queue *q, step_job *first) {
    (void)q;
    hash_wait *w = (hash_wait *)first;
    bool done = false;
    mv_err err = mvcc_hash_kv_step(g_store, w->job, HASH_SLICE_US, &done);
    if (err == MV_OK && !done) return;
    later_call *lc = w->lc;
    reply_sink out = lc->out;
    later_call_done(lc);
    if (err != MV_OK)
        fail_mv(&out, err);
    else
        answer(&out, w->job, w->kv);
    hash_wait_free(w);
}

static void hash_exec(later_call *lc, int64_t rev, bool kv) {
    const reply_sink *out = &lc->out;
    const char *denied = auth_check_maintenance(rpc_current_caller()); /* admin-only, as in etcd */
    if (denied) return out->fail(out->ctx, GRPC_UNKNOWN, denied);
    mv_err err;
    mv_hash_job *job = mvcc_hash_kv_begin(g_store, rev, &err);
    if (!job) return fail_mv(out, err);
    hash_wait *w = xcalloc(1, sizeof *w);
    *w = (hash_wait){.lc = lc, .job = job, .kv = kv};
    step_queue_add(&queue, &w->link);
    later_call_wait(lc, w, on_hash_cancel);
}

void maint_hash_exec(later_call *lc, const ProtobufCMessage *req) {
    (void)req;
    hash_exec(lc, 0, false);
}

void maint_hashkv_exec(later_call *lc, const ProtobufCMessage *req) {
    hash_exec(lc, ((const Etcdserverpb__HashKVRequest *)req)->revision, true);
}

void maint_hash(rpc_call *call, const uint8_t *msg, size_t len) {
    later_call_grpc(call, msg, len, &etcdserverpb__hash_request__descriptor, maint_hash_exec, false);
}

void maint_hashkv(rpc_call *call, const uint8_t *msg, size_t len) {
    later_call_grpc(call, msg, len, &etcdserverpb__hash_kvrequest__descriptor, maint_hashkv_exec, false);
}

void maint_hash_call_closed(rpc_call *call) {
    later_call_grpc_closed(call);
}
