/* svc_maint.c: etcd's Maintenance service for one member: Status, Alarm (over the state in alarms.c),
 * Defragment (a full log compaction), MoveLeader (Hash and HashKV are in maint_hash.c), and Snapshot,
 * streamed across loop turns as the client drains it, framed as etcd frames it (see the Snapshot section). */
#include "svc_maint.h"

#include <ev.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alarms.h"
#include "alloc.h"
#include "auth_gate.h"
#include "compaction_driver.h"
#include "config.h"
#include "errors.h"
#include "header.h"
#include "log_msg.h"
#include "rpc.pb-c.h"
#include "sha256.h"
#include "snapshot_etcd.h"
#include "store.h"

#define DEFAULT_QUOTA_BYTES (2ull << 30) /* etcd's DefaultQuotaBytes */
#define SNAP_CHUNK (32 * 1024)           /* etcd's size */
#define SNAP_SLICE_US 2000          /* work per loop turn (counting, or pages): reads wait at most this */
#define SNAP_PENDING_MAX (2u << 20) /* send more only while the connection holds less */
#define SNAP_TICK_SECONDS 0.0005

/* ---------- small helpers ---------- */

static void fail_etcd(const reply_sink *out, etcd_err e) {
    out->fail(out->ctx, etcd_err_code(e), etcd_err_message(e));
}

/* ---------- Status ---------- */

/* As gogoproto's String() of an AlarmMember, which etcd puts in Status.errors. */
static char *alarm_text(int type) {
    char *s = xmalloc(96);
    snprintf(s, 96, "memberID:%" PRIu64 " alarm:%s ", alarm_member(type), alarm_name(type));
    return s;
}

void maint_status_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)req, (void)len;
    Etcdserverpb__ResponseHeader hdr;
    Etcdserverpb__StatusResponse resp = ETCDSERVERPB__STATUS_RESPONSE__INIT;
    Etcdserverpb__DowngradeInfo downgrade = ETCDSERVERPB__DOWNGRADE_INFO__INIT;
    char *errors[ALARM_TYPES];
    int64_t rev = mvcc_revision(g_store);
    response_header_fill(&hdr, rev);
    resp.header = &hdr;
    resp.version = (char *)CETCD_VERSION;
    resp.dbsize = (int64_t)mvcc_db_size(g_store);
    resp.dbsizeinuse = (int64_t)mvcc_db_size_in_use(g_store);
    resp.leader = g_config.member_id;
    resp.raftindex = (uint64_t)rev; /* every applied write makes one revision */
    resp.raftappliedindex = (uint64_t)rev;
    resp.raftterm = g_config.raft_term;
    resp.dbsizequota =
        (int64_t)(g_config.quota_backend_bytes ? g_config.quota_backend_bytes : DEFAULT_QUOTA_BYTES);
    downgrade_info_fill(&downgrade);
    resp.downgradeinfo = &downgrade;
    resp.errors = errors;
    for (int t = 1; t < ALARM_TYPES; t++)
        if (alarm_is_active(t)) errors[resp.n_errors++] = alarm_text(t);
    out->reply(out->ctx, &resp.base);
    for (size_t i = 0; i < resp.n_errors; i++)
        free(errors[i]);
}

void maint_status(rpc_call *call, const uint8_t *msg, size_t len) {
    rpc_unary_exec(call, msg, len, &etcdserverpb__status_request__descriptor, maint_status_exec);
}

/* ---------- Alarm ---------- */

typedef struct alarm_list {
    Etcdserverpb__AlarmMember items[ALARM_TYPES];
    Etcdserverpb__AlarmMember *ptrs[ALARM_TYPES];
    size_t n;
} alarm_list;

static void list_add(alarm_list *l, int type, uint64_t member) {
    Etcdserverpb__AlarmMember *m = &l->items[l->n];
    etcdserverpb__alarm_member__init(m);
    m->memberid = member;
    m->alarm = (Etcdserverpb__AlarmType)type;
    l->ptrs[l->n++] = m;
}

/* etcd's alarm store: GET lists (all for NONE), ACTIVATE/DEACTIVATE answer with the alarm changed. */
static void apply_alarm(const Etcdserverpb__AlarmRequest *r, alarm_list *l) {
    int type = (int)r->alarm;
    switch (r->action) {
    case ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET:
        for (int t = 1; t < ALARM_TYPES; t++)
            if (alarm_is_active(t) && (type == 0 || type == t)) list_add(l, t, alarm_member(t));
        break;
    case ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE:
        if (alarm_activate(type, r->memberid)) list_add(l, type, alarm_member(type));
        break;
    case ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE:
        if (alarm_deactivate(type, r->memberid)) list_add(l, type, r->memberid);
        break;
    default:
        break;
    }
}

void maint_alarm_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)len;
    auth_who who; /* etcd checks only the token of an alarm request */
    etcd_err denied = auth_resolve(rpc_current_caller(), &who);
    if (denied != AUTH_OK) return fail_etcd(out, denied);
    alarm_list l = {.n = 0};
    apply_alarm((const Etcdserverpb__AlarmRequest *)req, &l);
    Etcdserverpb__ResponseHeader hdr;
    Etcdserverpb__AlarmResponse resp = ETCDSERVERPB__ALARM_RESPONSE__INIT;
    response_header_fill(&hdr, mvcc_revision(g_store));
    resp.header = &hdr;
    resp.alarms = l.ptrs;
    resp.n_alarms = l.n;
    out->reply(out->ctx, &resp.base);
}

void maint_alarm(rpc_call *call, const uint8_t *msg, size_t len) {
    rpc_unary_exec(call, msg, len, &etcdserverpb__alarm_request__descriptor, maint_alarm_exec);
}

/* ---------- MoveLeader ---------- */

/* The one member is the leader: moving to itself succeeds at once (as etcd), any other is refused. */
void maint_move_leader_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)len;
    const Etcdserverpb__MoveLeaderRequest *r = (const Etcdserverpb__MoveLeaderRequest *)req;
    if (r->targetid != g_config.member_id) return fail_etcd(out, ETCD_ERR_BAD_LEADER_TRANSFEREE);
    Etcdserverpb__MoveLeaderResponse resp = ETCDSERVERPB__MOVE_LEADER_RESPONSE__INIT;
    out->reply(out->ctx, &resp.base);
}

void maint_move_leader(rpc_call *call, const uint8_t *msg, size_t len) {
    rpc_unary_exec(call, msg, len, &etcdserverpb__move_leader_request__descriptor, maint_move_leader_exec);
}

/* ---------- Defragment ---------- */

typedef struct defrag_wait {
    rpc_call *call; /* NULL once the client has gone */
} defrag_wait;

static void defrag_done(void *ctx, int rc) {
    defrag_wait *w = ctx;
    if (w->call) {
        rpc_set_user(w->call, NULL);
        if (rc == 0) {
            Etcdserverpb__DefragmentResponse resp = ETCDSERVERPB__DEFRAGMENT_RESPONSE__INIT;
            rpc_reply(w->call, &resp.base);
        } else {
            rpc_finish(w->call, GRPC_UNKNOWN, "cetcd: defragment failed");
        }
    }
    log_msg(LOG_INFO, "finished defragment");
    free(w);
}

void maint_defragment(rpc_call *call, const uint8_t *msg, size_t len) {
    ProtobufCMessage *req = rpc_unpack(call, msg, len, &etcdserverpb__defragment_request__descriptor);
    if (!req) return;
    protobuf_c_message_free_unpacked(req, NULL);
    const char *denied = auth_check_maintenance(rpc_call_caller(call));
    if (denied) return rpc_finish(call, GRPC_UNKNOWN, denied);
    defrag_wait *w = xcalloc(1, sizeof *w);
    w->call = call;
    rpc_set_user(call, w);
    log_msg(LOG_INFO, "starting defragment");
    compaction_driver_defragment(defrag_done, w);
}

void maint_defragment_closed(rpc_call *call) {
    defrag_wait *w = rpc_user(call);
    if (w) w->call = NULL; /* the run goes on; defrag_done frees w */
    rpc_set_user(call, NULL);
}

/* ---------- Snapshot ---------- */

/* The stream is the store as etcd's backend file (snapshot_etcd.c: a bbolt database, a multiple of
 * 4096 bytes), then a sha256 of it as the last message: what etcd sends, so etcdctl snapshot status and
 * restore take it (restore checks size % 512 == 32 and the hash). The database is made in two passes
 * over a fixed view of the store: the first counts its pages (a few ms a loop turn; the client waits
 * for the first byte), the second writes them as the client drains the stream. */

typedef struct snap_stream {
    rpc_call *call;
    etcd_snap *es;
    bool preparing;
    uint64_t total, sent; /* total: the database's bytes */
    sha256_ctx sha;
    ev_timer tick;
    bool finished;
} snap_stream;

static void snap_release(snap_stream *s) {
    ev_timer_stop(EV_DEFAULT_ & s->tick);
    etcd_snap_end(s->es);
    s->es = NULL;
}

static void snap_fail(snap_stream *s, const char *why) {
    log_msg(LOG_WARN, "snapshot stream failed: %s", why);
    s->finished = true;
    snap_release(s);
    rpc_finish(s->call, GRPC_UNKNOWN, why);
}

/* Fills buf with the next n bytes of the database. */
static bool snap_fill(snap_stream *s, uint8_t *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        long r = etcd_snap_read(s->es, buf + got, n - got);
        if (r <= 0) return false;
        got += (size_t)r;
    }
    return true;
}

static void snap_send(snap_stream *s, uint8_t *blob, size_t n, uint64_t remaining) {
    Etcdserverpb__SnapshotResponse resp = ETCDSERVERPB__SNAPSHOT_RESPONSE__INIT;
    resp.remaining_bytes = remaining;
    resp.blob = (ProtobufCBinaryData){n, blob};
    rpc_send(s->call, &resp.base);
}

static void snap_finish(snap_stream *s) {
    uint8_t digest[SHA256_DIGEST_LEN];
    sha256_final(&s->sha, digest);
    snap_send(s, digest, sizeof digest, 0);
    s->finished = true;
    snap_release(s);
    rpc_finish(s->call, GRPC_OK, NULL);
    log_msg(LOG_INFO, "sent database snapshot to client (%" PRIu64 " bytes)", s->total);
}

static uint64_t snap_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* One slice of at most SNAP_SLICE_US: counting, then chunks while the client keeps up. */
static void snap_tick(EV_P_ ev_timer *t, int revents) {
    (void)EV_A, (void)revents;
    snap_stream *s = t->data;
    if (s->preparing) {
        int rc = etcd_snap_prepare(s->es, SNAP_SLICE_US);
        if (rc < 0) return snap_fail(s, "cetcd: reading the store for the snapshot failed");
        if (rc > 0) return;
        s->preparing = false;
        s->total = etcd_snap_size(s->es);
        log_msg(LOG_INFO, "sending database snapshot to client (%" PRIu64 " bytes, revision %" PRId64 ")",
                s->total, etcd_snap_revision(s->es));
        return;
    }
    static uint8_t buf[SNAP_CHUNK];
    uint64_t until = snap_now_us() + SNAP_SLICE_US;
    while (s->sent < s->total && rpc_pending_bytes(s->call) <= SNAP_PENDING_MAX) {
        size_t n = s->total - s->sent < SNAP_CHUNK ? (size_t)(s->total - s->sent) : SNAP_CHUNK;
        if (!snap_fill(s, buf, n)) return snap_fail(s, "cetcd: reading the snapshot failed");
        sha256_update(&s->sha, buf, n);
        s->sent += n;
        snap_send(s, buf, n, s->total - s->sent); /* as etcd: the database bytes still to come */
        if (snap_now_us() >= until) return;
    }
    if (s->sent == s->total && rpc_pending_bytes(s->call) <= SNAP_PENDING_MAX) snap_finish(s);
}

void maint_snapshot(rpc_call *call, const uint8_t *msg, size_t len) {
    ProtobufCMessage *req = rpc_unpack(call, msg, len, &etcdserverpb__snapshot_request__descriptor);
    if (!req) return;
    protobuf_c_message_free_unpacked(req, NULL);
    if (rpc_user(call)) return; /* one request per call */
    const char *denied = auth_check_maintenance(rpc_call_caller(call));
    if (denied) return rpc_finish(call, GRPC_UNKNOWN, denied);
    char err[256] = "";
    etcd_snap *es = etcd_snap_begin(g_store, err, sizeof err);
    if (!es) return rpc_finish(call, GRPC_UNKNOWN, err);
    snap_stream *s = xcalloc(1, sizeof *s);
    s->call = call;
    s->es = es;
    s->preparing = true;
    sha256_init(&s->sha);
    ev_timer_init(&s->tick, snap_tick, 0., SNAP_TICK_SECONDS);
    s->tick.data = s;
    ev_timer_start(EV_DEFAULT_ & s->tick);
    rpc_set_user(call, s);
}

void maint_snapshot_closed(rpc_call *call) {
    snap_stream *s = rpc_user(call);
    if (!s) return;
    rpc_set_user(call, NULL);
    if (!s->finished) log_msg(LOG_INFO, "snapshot stream closed by the client before the end");
    snap_release(s);
    free(s);
}
