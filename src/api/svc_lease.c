/* svc_lease.c: the Lease service, after etcd's lessor (server/lease/lessor.go) and its gRPC layer
 * (v3rpc/lease.go, v3_server.go). The store keeps each lease's id, granted TTL and keys, persisted;
 * this file keeps when each lease expires (lease_timers.c) and revokes a lease when that time passes:
 * its keys go in one revision, which watchers see through the store's revision hook. */
#include "svc_lease.h"
#include "alarms.h"
#include "auth_checks.h"
#include "config.h"
#include "errors.h"
#include "header.h"
#include "lease_timers.h"
#include "log_msg.h"
#include "rpc.pb-c.h"
#include "store.h"

#include <stdio.h>

#include "alloc.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------- ids: etcd's idutil generator (member id, milliseconds, counter), positive only ---------- */

static uint64_t id_suffix;
static bool id_ready;

static int64_t next_lease_id(void) {
    if (!id_ready) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
        id_suffix = (ms & ((1ull << 40) - 1)) << 8;
        id_ready = true;
    }
    uint64_t prefix = (g_config.member_id & 0xffffu) << 48;
    for (;;) {
        id_suffix++;
        int64_t id = (int64_t)((prefix | (id_suffix & ((1ull << 48) - 1))) & (uint64_t)INT64_MAX);
        if (id != 0 && !mvcc_lease_exists(g_store, id)) return id;
    }
}

/* ---------- expiry ---------- */

static void expire(int64_t id) {
    if (!mvcc_lease_exists(g_store, id) || id == 0) return;
    mv_result res = {0};
    mvcc_lease_revoke(g_store, id, false, &res);
    if (res.err != MV_OK)
        log_msg(LOG_WARN, "failed to revoke expired lease %016llx", (unsigned long long)id);
    else
        log_msg(LOG_DEBUG, "lease %016llx expired, %lld keys deleted", (unsigned long long)id,
                (long long)res.resp.u.del.deleted);
    mv_result_free(&res);
}

/* The timer callback: the lease left the heap because its deadline passed. Nothing else can have
 * renewed it in between (renewals move the deadline in the heap), but check that it still exists. */
static void on_expired(int64_t id) {
    expire(id);
}

/* A lease whose deadline has passed but that the budgeted timer has not revoked yet counts as gone,
 * as in etcd (a renewal waits for the revoke and answers "not found"): revoke it now. */
static bool expired_now(int64_t id, double now) {
    double d;
    if (!lease_timers_get(id, &d) || d > now) return false;
    lease_timers_remove(id);
    expire(id);
    return true;
}

static void promote_one(void *ctx, int64_t id, int64_t ttl) {
    double base = *(const double *)ctx;
    if (ttl < LEASE_MIN_TTL) ttl = LEASE_MIN_TTL;
    lease_timers_set(id, base + (double)ttl);
}

void lease_service_start(struct ev_loop *loop) {
    double base = lease_timers_now() + LEASE_PROMOTE_EXTEND;
    mvcc_lease_foreach(g_store, promote_one, &base);
    lease_timers_start(loop, on_expired, LEASE_EXPIRE_BUDGET);
    size_t n = mvcc_lease_count(g_store);
    if (n) log_msg(LOG_INFO, "recovered %zu leases; each expires after its full TTL plus 1 s from now", n);
}

/* ---------- handlers ---------- */

static void sink_fail_etcd(const reply_sink *out, etcd_err e) {
    out->fail(out->ctx, etcd_err_code(e), etcd_err_message(e));
}

void lease_grant_exec(const ProtobufCMessage *msg, size_t len, const reply_sink *out) {
    (void)len;
    const Etcdserverpb__LeaseGrantRequest *req = (const Etcdserverpb__LeaseGrantRequest *)msg;
    auth_who who; /* etcd checks only the token of a grant */
    etcd_err denied = auth_resolve(rpc_current_caller(), &who);
    if (denied != AUTH_OK) return sink_fail_etcd(out, denied);
    int64_t id = req->id, ttl = req->ttl;
    if (id == 0) id = next_lease_id();
    if (ttl > LEASE_MAX_TTL) return sink_fail_etcd(out, ETCD_ERR_LEASE_TTL_TOO_LARGE);
    if (ttl < LEASE_MIN_TTL) ttl = LEASE_MIN_TTL;
    if (alarm_nospace_active()) return sink_fail_etcd(out, ETCD_ERR_NO_SPACE);
    mv_err err = mvcc_lease_grant(g_store, id, ttl);
    if (err == MV_ERR_NO_SPACE) alarm_raise_nospace();
    if (err != MV_OK) return sink_fail_etcd(out, etcd_err_from_mv(err));
    lease_timers_set(id, lease_timers_now() + (double)ttl);
    Etcdserverpb__ResponseHeader hdr;
    Etcdserverpb__LeaseGrantResponse resp = ETCDSERVERPB__LEASE_GRANT_RESPONSE__INIT;
    response_header_fill(&hdr, mvcc_revision(g_store));
    resp.header = &hdr;
    resp.id = id;
    resp.ttl = ttl;
    out->reply(out->ctx, &resp.base);
}

void lease_revoke_exec(const ProtobufCMessage *msg, size_t len, const reply_sink *out) {
    (void)len;
    int64_t id = ((const Etcdserverpb__LeaseRevokeRequest *)msg)->id;
    etcd_err denied = auth_check_lease_revoke(rpc_current_caller(), id);
    if (denied != AUTH_OK) return sink_fail_etcd(out, denied);
    mv_result res = {0};
    mvcc_lease_revoke(g_store, id, false, &res);
    mv_err err = res.err;
    mv_result_free(&res);
    if (err != MV_OK) return sink_fail_etcd(out, etcd_err_from_mv(err));
    lease_timers_remove(id);
    Etcdserverpb__ResponseHeader hdr;
    Etcdserverpb__LeaseRevokeResponse resp = ETCDSERVERPB__LEASE_REVOKE_RESPONSE__INIT;
    response_header_fill(&hdr, mvcc_revision(g_store));
    resp.header = &hdr;
    out->reply(out->ctx, &resp.base);
}

/* One renewal on a keep-alive stream: the granted TTL, or 0 for a lease that is gone. As in etcd, the
 * header is taken before the renewal. */
void lease_keep_alive_exec(const ProtobufCMessage *msg, size_t len, const reply_sink *out) {
    (void)len;
    int64_t id = ((const Etcdserverpb__LeaseKeepAliveRequest *)msg)->id;
    Etcdserverpb__ResponseHeader hdr;
    Etcdserverpb__LeaseKeepAliveResponse resp = ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
    response_header_fill(&hdr, mvcc_revision(g_store));
    resp.header = &hdr;
    resp.id = id;
    double now = lease_timers_now();
    if (id != 0 && mvcc_lease_exists(g_store, id) && !expired_now(id, now)) {
        int64_t ttl = mvcc_lease_ttl(g_store, id);
        lease_timers_set(id, now + (double)ttl);
        resp.ttl = ttl;
    }
    out->reply(out->ctx, &resp.base);
}

/* A stream's reply: sent, and the call stays open. */
static void stream_reply(void *ctx, const ProtobufCMessage *resp) {
    rpc_send(ctx, resp);
}

void lease_keep_alive(rpc_call *call, const uint8_t *msg, size_t len) {
    Etcdserverpb__LeaseKeepAliveRequest *req = (Etcdserverpb__LeaseKeepAliveRequest *)rpc_unpack(
        call, msg, len, &etcdserverpb__lease_keep_alive_request__descriptor);
    if (!req) return;
    reply_sink out = {stream_reply, NULL, call}; /* a renewal never fails */
    lease_keep_alive_exec(&req->base, len, &out);
    etcdserverpb__lease_keep_alive_request__free_unpacked(req, NULL);
}

void lease_time_to_live_exec(const ProtobufCMessage *msg, size_t len, const reply_sink *out) {
    (void)len;
    const Etcdserverpb__LeaseTimeToLiveRequest *req = (const Etcdserverpb__LeaseTimeToLiveRequest *)msg;
    int64_t id = req->id;
    bool want_keys = req->keys;
    etcd_err denied = want_keys ? auth_check_lease_keys(rpc_current_caller(), id) : AUTH_OK;
    if (denied != AUTH_OK) return sink_fail_etcd(out, denied);
    Etcdserverpb__LeaseTimeToLiveResponse resp = ETCDSERVERPB__LEASE_TIME_TO_LIVE_RESPONSE__INIT;
    resp.id = id;
    double now = lease_timers_now(), deadline;
    mv_arena *arena = NULL;
    if (id == 0 || !mvcc_lease_exists(g_store, id) || expired_now(id, now)) {
        resp.ttl = -1; /* etcd answers a missing lease with TTL -1, not an error */
    } else {
        resp.grantedttl = mvcc_lease_ttl(g_store, id);
        /* etcd: int64(Remaining().Seconds()), truncated toward zero */
        resp.ttl = lease_timers_get(id, &deadline) ? (int64_t)(deadline - now) : resp.grantedttl;
        if (want_keys) {
            mv_bytes *keys;
            arena = mv_arena_new();
            size_t n = mvcc_lease_keys(g_store, id, arena, &keys);
            resp.n_keys = n;
            resp.keys = n ? calloc(n, sizeof *resp.keys) : NULL;
            if (n && !resp.keys) out_of_memory();
            for (size_t i = 0; i < n; i++)
                resp.keys[i] = (ProtobufCBinaryData){keys[i].len, (uint8_t *)keys[i].data};
        }
    }
    Etcdserverpb__ResponseHeader hdr;
    response_header_fill(&hdr, mvcc_revision(g_store));
    resp.header = &hdr;
    out->reply(out->ctx, &resp.base);
    free(resp.keys);
    if (arena) mv_arena_free(arena);
}

static int by_deadline(const void *a, const void *b) {
    const lease_heap_item *x = a, *y = b;
    if (x->deadline != y->deadline) return x->deadline < y->deadline ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Every lease, soonest expiry first, as etcd's Leases() sorts them. */
void lease_leases_exec(const ProtobufCMessage *msg, size_t len, const reply_sink *out) {
    (void)msg, (void)len;
    size_t n;
    const lease_heap_item *items = lease_timers_items(&n);
    lease_heap_item *sorted = malloc((n ? n : 1) * sizeof *sorted);
    Etcdserverpb__LeaseStatus *st = malloc((n ? n : 1) * sizeof *st);
    Etcdserverpb__LeaseStatus **ptrs = malloc((n ? n : 1) * sizeof *ptrs);
    if (!sorted || !st || !ptrs) out_of_memory();
    if (n) memcpy(sorted, items, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, by_deadline);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!mvcc_lease_exists(g_store, sorted[i].id)) continue;
        etcdserverpb__lease_status__init(&st[m]);
        st[m].id = sorted[i].id;
        ptrs[m] = &st[m];
        m++;
    }
    Etcdserverpb__ResponseHeader hdr;
    Etcdserverpb__LeaseLeasesResponse resp = ETCDSERVERPB__LEASE_LEASES_RESPONSE__INIT;
    response_header_fill(&hdr, mvcc_revision(g_store));
    resp.header = &hdr;
    resp.n_leases = m;
    resp.leases = ptrs;
    out->reply(out->ctx, &resp.base);
    free(sorted);
    free(st);
    free(ptrs);
}

/* ---------- the gRPC entry points of the unary methods ---------- */

void lease_grant(rpc_call *call, const uint8_t *msg, size_t len) {
    rpc_unary_exec(call, msg, len, &etcdserverpb__lease_grant_request__descriptor, lease_grant_exec);
}

void lease_revoke(rpc_call *call, const uint8_t *msg, size_t len) {
    rpc_unary_exec(call, msg, len, &etcdserverpb__lease_revoke_request__descriptor, lease_revoke_exec);
}

void lease_time_to_live(rpc_call *call, const uint8_t *msg, size_t len) {
    rpc_unary_exec(call, msg, len, &etcdserverpb__lease_time_to_live_request__descriptor,
                   lease_time_to_live_exec);
}

void lease_leases(rpc_call *call, const uint8_t *msg, size_t len) {
    rpc_unary_exec(call, msg, len, &etcdserverpb__lease_leases_request__descriptor, lease_leases_exec);
}
