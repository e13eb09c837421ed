/* svc_election.c: the Election service as etcd's v3election server runs it over clientv3's
 * concurrency.Election: a campaigner's key "<name>/<lease hex>" holds its value, the oldest key under
 * the name is the leader, Campaign waits for every older key to go (key_queue.c), and Observe follows
 * the leader key through the store's revisions (key_waits.c). */
#include "svc_election.h"

#include <ev.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "header.h"
#include "key_queue.h"
#include "svc_kv.h"
#include "v3election.pb-c.h"

/* etcd's errors (concurrency.ErrElectionNotLeader / ErrElectionNoLeader, v3election's
 * ErrMissingLeaderKey), passed to the client with code UNKNOWN as etcd's server does. */
static const char ERR_NOT_LEADER[] = "election: not leader";
static const char ERR_NO_LEADER[] = "election: no leader";
static const char ERR_MISSING_LEADER[] = "\"leader\" field must be provided";

/* An observer whose connection holds this much unsent output is not sent more; once it drains it
 * gets the leader as it is then (Observe promises the latest value, not every one). */
#define OBSERVE_PENDING_LIMIT (256u << 10)
#define OBSERVE_SLOW_POLL 0.01 /* seconds between looks at backed-up observers */

static kq_bytes view(ProtobufCBinaryData b) {
    return (kq_bytes){b.data, b.len};
}

/* ---------- Campaign ---------- */

typedef struct campaign_wait {
    key_queue q;
    rpc_call *call;
    Etcdserverpb__ResponseHeader hdr; /* the claim's, which etcd answers with */
    kq_bytes name;
    int64_t rev, lease;
} campaign_wait;

static void reply_campaign(rpc_call *call, Etcdserverpb__ResponseHeader *hdr, ProtobufCBinaryData name,
                           kq_bytes key, int64_t rev, int64_t lease) {
    V3electionpb__LeaderKey leader = V3ELECTIONPB__LEADER_KEY__INIT;
    leader.name = name;
    leader.key = kq_pb(key);
    leader.rev = rev;
    leader.lease = lease;
    V3electionpb__CampaignResponse resp = V3ELECTIONPB__CAMPAIGN_RESPONSE__INIT;
    resp.header = hdr;
    resp.leader = &leader;
    rpc_reply(call, &resp.base);
}

/* The wait ended: leader, or our key went meanwhile (etcd would go on waiting and then answer with a
 * key that no longer exists; the campaign is over, so cetcd says so at once), or a step failed. */
static void campaign_finish(campaign_wait *cw, kq_state st, local_result *r) {
    if (st == KQ_TURN)
        reply_campaign(cw->call, &cw->hdr, kq_pb(cw->name), cw->q.key, cw->rev, cw->lease);
    else
        kq_fail(cw->call, st == KQ_LOST ? ERR_NOT_LEADER : r->message);
    local_result_free(r);
}

static void campaign_free(campaign_wait *cw) {
    key_queue_stop(&cw->q);
    kq_bytes_free(&cw->name);
    free(cw);
}

static void campaign_done(key_queue *q, kq_state st, local_result *r) {
    campaign_wait *cw = (campaign_wait *)q;
    campaign_finish(cw, st, r);
    rpc_set_user(cw->call, NULL);
    campaign_free(cw);
}

/* Txn{if key's create revision is 0: put key=value with the lease; else: get key}. */
static bool claim(kq_bytes key, ProtobufCBinaryData value, int64_t lease, local_result *r) {
    Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT, *cmps[1] = {&cmp};
    cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
    cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
    cmp.key = kq_pb(key);
    cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
    Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
    put.key = kq_pb(key);
    put.value = value;
    put.lease = lease;
    Etcdserverpb__RangeRequest get = ETCDSERVERPB__RANGE_REQUEST__INIT;
    get.key = kq_pb(key);
    Etcdserverpb__RequestOp put_op = ETCDSERVERPB__REQUEST_OP__INIT, get_op = ETCDSERVERPB__REQUEST_OP__INIT;
    put_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
    put_op.request_put = &put;
    get_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
    get_op.request_range = &get;
    Etcdserverpb__RequestOp *then[1] = {&put_op}, *els[1] = {&get_op};
    Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT;
    t.n_compare = 1, t.compare = cmps;
    t.n_success = 1, t.success = then;
    t.n_failure = 1, t.failure = els;
    return local_call(kv_txn_exec, &t.base, r);
}

/* Our key already existed (the same lease campaigned before) with another value: Proclaim it, and
 * Resign if that fails (Election.Campaign). NULL, or the error to answer with. */
static const char *reproclaim(kq_bytes key, int64_t rev, ProtobufCBinaryData value, int64_t lease,
                              local_result *r) {
    if (!kq_if_created(key, rev, &value, lease, r)) {
        local_result resign;
        kq_if_created(key, rev, NULL, 0, &resign);
        local_result_free(&resign);
        return r->message;
    }
    bool won = kq_txn(r)->succeeded;
    local_result_free(r);
    return won ? NULL : ERR_NOT_LEADER;
}

/* After the claim: Proclaim if the key existed with another value, then lead at once or wait. */
static void campaign_claimed(rpc_call *call, const V3electionpb__CampaignRequest *req, kq_bytes prefix,
                             kq_bytes key, int64_t lease, local_result *r) {
    const Etcdserverpb__TxnResponse *t = kq_txn(r);
    Etcdserverpb__ResponseHeader hdr = *t->header;
    int64_t rev = hdr.revision;
    const Etcdserverpb__RangeResponse *mine = kq_txn_range(r, 0);
    bool differs = false;
    if (!t->succeeded && mine && mine->n_kvs) {
        rev = mine->kvs[0]->create_revision;
        ProtobufCBinaryData v = mine->kvs[0]->value;
        differs = v.len != req->value.len || (v.len && memcmp(v.data, req->value.data, v.len) != 0);
    }
    local_result_free(r);
    const char *err = differs ? reproclaim(key, rev, req->value, lease, r) : NULL;
    if (err) {
        kq_fail(call, err);
        local_result_free(r);
        return;
    }
    campaign_wait *cw = xcalloc(1, sizeof *cw);
    cw->call = call;
    cw->hdr = hdr;
    cw->name = kq_bytes_copy(req->name.data, req->name.len);
    cw->rev = rev;
    cw->lease = lease;
    kq_state st = key_queue_start(&cw->q, call, prefix, key, rev, campaign_done, r);
    if (st == KQ_WAIT) {
        rpc_set_user(call, cw);
    } else {
        campaign_finish(cw, st, r);
        campaign_free(cw);
    }
}

static void campaign_run(rpc_call *call, const V3electionpb__CampaignRequest *req) {
    int64_t lease = req->lease;
    local_result r;
    if (!kq_session(&lease, &r)) return kq_fail(call, r.message);
    kq_bytes prefix = kq_prefix(req->name), key = kq_lease_key(prefix, lease);
    if (claim(key, req->value, lease, &r))
        campaign_claimed(call, req, prefix, key, lease, &r);
    else
        kq_fail(call, r.message);
    kq_bytes_free(&prefix);
    kq_bytes_free(&key);
}

void election_campaign(rpc_call *call, const uint8_t *msg, size_t len) {
    V3electionpb__CampaignRequest *req = (V3electionpb__CampaignRequest *)kq_unpack(
        call, msg, len, &v3electionpb__campaign_request__descriptor);
    if (!req) return;
    const rpc_caller *was = kq_as(call);
    campaign_run(call, req);
    rpc_set_current_caller(was);
    v3electionpb__campaign_request__free_unpacked(req, NULL);
}

/* Canceled while waiting: resign, i.e. delete our key if it is still the one we made. */
void election_campaign_closed(rpc_call *call) {
    campaign_wait *cw = rpc_user(call);
    if (!cw) return;
    rpc_set_user(call, NULL);
    kq_delete_later(cw->q.key, cw->rev, rpc_call_caller(call));
    campaign_free(cw);
}

/* ---------- Proclaim, Resign, Leader ---------- */

void election_proclaim(rpc_call *call, const uint8_t *msg, size_t len) {
    V3electionpb__ProclaimRequest *req = (V3electionpb__ProclaimRequest *)kq_unpack(
        call, msg, len, &v3electionpb__proclaim_request__descriptor);
    if (!req) return;
    int64_t lease = req->leader ? req->leader->lease : 0;
    local_result r = {0};
    const rpc_caller *was = kq_as(call);
    if (!req->leader) {
        kq_fail(call, ERR_MISSING_LEADER);
    } else if (!kq_session(&lease, &r) ||
               !kq_if_created(view(req->leader->key), req->leader->rev, &req->value, lease, &r)) {
        kq_fail(call, r.message);
    } else if (!kq_txn(&r)->succeeded) {
        kq_fail(call, ERR_NOT_LEADER);
    } else {
        V3electionpb__ProclaimResponse resp = V3ELECTIONPB__PROCLAIM_RESPONSE__INIT;
        resp.header = kq_txn(&r)->header;
        rpc_reply(call, &resp.base);
    }
    rpc_set_current_caller(was);
    local_result_free(&r);
    v3electionpb__proclaim_request__free_unpacked(req, NULL);
}

/* Deletes the leader key if its create revision is still the leader's; answers with the Txn's header
 * either way. */
void election_resign(rpc_call *call, const uint8_t *msg, size_t len) {
    V3electionpb__ResignRequest *req =
        (V3electionpb__ResignRequest *)kq_unpack(call, msg, len, &v3electionpb__resign_request__descriptor);
    if (!req) return;
    int64_t lease = req->leader ? req->leader->lease : 0;
    local_result r = {0};
    const rpc_caller *was = kq_as(call);
    if (!req->leader) {
        kq_fail(call, ERR_MISSING_LEADER);
    } else if (!kq_session(&lease, &r) || /* etcd's session grants a lease for 0, used or not */
               !kq_if_created(view(req->leader->key), req->leader->rev, NULL, 0, &r)) {
        kq_fail(call, r.message);
    } else {
        V3electionpb__ResignResponse resp = V3ELECTIONPB__RESIGN_RESPONSE__INIT;
        resp.header = kq_txn(&r)->header;
        rpc_reply(call, &resp.base);
    }
    rpc_set_current_caller(was);
    local_result_free(&r);
    v3electionpb__resign_request__free_unpacked(req, NULL);
}

void election_leader(rpc_call *call, const uint8_t *msg, size_t len) {
    V3electionpb__LeaderRequest *req =
        (V3electionpb__LeaderRequest *)kq_unpack(call, msg, len, &v3electionpb__leader_request__descriptor);
    if (!req) return;
    kq_bytes prefix = kq_prefix(req->name);
    local_result r;
    const rpc_caller *was = kq_as(call);
    bool ok = kq_first_created(prefix, &r);
    rpc_set_current_caller(was);
    if (!ok) {
        kq_fail(call, r.message);
    } else if (kq_range(&r)->n_kvs == 0) {
        kq_fail(call, ERR_NO_LEADER);
    } else {
        V3electionpb__LeaderResponse resp = V3ELECTIONPB__LEADER_RESPONSE__INIT;
        resp.header = kq_range(&r)->header;
        resp.kv = kq_range(&r)->kvs[0];
        rpc_reply(call, &resp.base);
    }
    local_result_free(&r);
    kq_bytes_free(&prefix);
    v3electionpb__leader_request__free_unpacked(req, NULL);
}

/* ---------- Observe ---------- */

enum { OBS_NONE, OBS_LEADER, OBS_RESYNC };

/* Election.observe as a state machine: with no leader, the first put under the prefix is the leader;
 * with one, each put of its key is sent, and its delete sends us back to read the oldest key. */
typedef struct observer {
    rpc_call *call;
    kq_bytes prefix;
    key_wait *wait;
    loop_job resync;
    int state;
    kq_bytes leader;   /* OBS_LEADER: the key followed */
    kq_bytes last_key; /* the last value sent, so a resync does not send it twice */
    int64_t last_mod;
    bool slow; /* backed up: resynced by the poll timer once it drains */
    struct observer *s_prev, *s_next;
} observer;

static struct {
    observer *slow;
    ev_timer poll;
    bool ready;
} obs;

static void slow_unlink(observer *o) {
    if (!o->slow) return;
    o->slow = false;
    if (o->s_prev)
        o->s_prev->s_next = o->s_next;
    else
        obs.slow = o->s_next;
    if (o->s_next) o->s_next->s_prev = o->s_prev;
    o->s_prev = o->s_next = NULL;
    if (!obs.slow) ev_timer_stop(EV_DEFAULT_ & obs.poll);
}

static void on_poll(EV_P_ ev_timer *t, int revents);

static void slow_link(observer *o) {
    if (o->slow) return;
    o->slow = true;
    o->s_prev = NULL;
    o->s_next = obs.slow;
    if (obs.slow) obs.slow->s_prev = o;
    obs.slow = o;
    if (!obs.ready) {
        ev_timer_init(&obs.poll, on_poll, OBSERVE_SLOW_POLL, OBSERVE_SLOW_POLL);
        obs.ready = true;
    }
    if (!ev_is_active(&obs.poll)) ev_timer_start(EV_DEFAULT_ & obs.poll);
}

static void follow(observer *o, ProtobufCBinaryData key) {
    kq_bytes_free(&o->leader);
    o->leader = kq_bytes_copy(key.data, key.len);
    o->state = OBS_LEADER;
}

/* Sends one LeaderResponse unless the client is backed up (then: resync once it drains). */
static bool obs_send(observer *o, Etcdserverpb__ResponseHeader *h, Mvccpb__KeyValue *kv) {
    if (rpc_pending_bytes(o->call) > OBSERVE_PENDING_LIMIT) {
        o->state = OBS_RESYNC;
        slow_link(o);
        return false;
    }
    V3electionpb__LeaderResponse resp = V3ELECTIONPB__LEADER_RESPONSE__INIT;
    resp.header = h;
    resp.kv = kv;
    rpc_send(o->call, &resp.base);
    kq_bytes_free(&o->last_key);
    o->last_key = kq_bytes_copy(kv->key.data, kv->key.len);
    o->last_mod = kv->mod_revision;
    return true;
}

/* Reads the oldest key under the prefix: the leader to send (unless it was the last one sent) and
 * follow, or none (then the next put under the prefix is). */
static void obs_resync(observer *o) {
    local_result r;
    const rpc_caller *was = kq_as(o->call);
    bool ok = kq_first_created(o->prefix, &r);
    rpc_set_current_caller(was);
    if (!ok) { /* etcd's observe ends: the stream closes, OK */
        rpc_finish(o->call, GRPC_OK, NULL);
        return;
    }
    const Etcdserverpb__RangeResponse *rr = kq_range(&r);
    if (rr->n_kvs == 0) {
        o->state = OBS_NONE;
    } else {
        Mvccpb__KeyValue *kv = rr->kvs[0];
        bool seen = o->last_key.data && kv->mod_revision == o->last_mod && kv->key.len == o->last_key.len &&
                    memcmp(kv->key.data, o->last_key.data, kv->key.len) == 0;
        if (seen || obs_send(o, rr->header, kv)) follow(o, kv->key);
    }
    local_result_free(&r);
}

static void run_resync(loop_job *j) {
    observer *o = (observer *)((char *)j - offsetof(observer, resync));
    if (o->state == OBS_RESYNC && !o->slow) obs_resync(o);
}

static void on_poll(EV_P_ ev_timer *t, int revents) {
    (void)EV_A, (void)t, (void)revents;
    for (observer *o = obs.slow, *next; o; o = next) {
        next = o->s_next;
        if (rpc_pending_bytes(o->call) > OBSERVE_PENDING_LIMIT) continue;
        slow_unlink(o);
        obs_resync(o);
    }
}

/* A change under the prefix, from inside the store's write: puts are sent as they come (the header
 * at the put's revision, as etcd's watch response); the leader's delete needs a read, done later. */
static void obs_event(void *ctx, const mv_event *ev) {
    observer *o = ctx;
    if (o->state == OBS_RESYNC) return;
    bool is_leader = o->state == OBS_LEADER && ev->kv.key.len == o->leader.len &&
                     memcmp(ev->kv.key.data, o->leader.data, o->leader.len) == 0;
    if (o->state == OBS_LEADER && !is_leader) return;
    if (ev->type == MV_EVENT_DELETE) {
        if (!is_leader) return;
        o->state = OBS_RESYNC;
        loop_job_queue(&o->resync);
        return;
    }
    Etcdserverpb__ResponseHeader h;
    response_header_fill(&h, ev->kv.mod_revision);
    Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT;
    kv.key = (ProtobufCBinaryData){ev->kv.key.len, (uint8_t *)ev->kv.key.data};
    kv.value = (ProtobufCBinaryData){ev->kv.value.len, (uint8_t *)ev->kv.value.data};
    kv.create_revision = ev->kv.create_revision;
    kv.mod_revision = ev->kv.mod_revision;
    kv.version = ev->kv.version;
    kv.lease = ev->kv.lease;
    if (obs_send(o, &h, &kv) && o->state == OBS_NONE) follow(o, kv.key);
}

void election_observe(rpc_call *call, const uint8_t *msg, size_t len) {
    V3electionpb__LeaderRequest *req =
        (V3electionpb__LeaderRequest *)kq_unpack(call, msg, len, &v3electionpb__leader_request__descriptor);
    if (!req) return;
    observer *o = xcalloc(1, sizeof *o);
    o->call = call;
    o->prefix = kq_prefix(req->name);
    o->resync.run = run_resync;
    o->state = OBS_RESYNC;
    v3electionpb__leader_request__free_unpacked(req, NULL);
    rpc_set_user(call, o);
    obs_resync(o);
    o->wait = key_wait_add((mv_bytes){o->prefix.data, o->prefix.len}, true, obs_event, o);
}

void election_observe_closed(rpc_call *call) {
    observer *o = rpc_user(call);
    if (!o) return;
    rpc_set_user(call, NULL);
    key_wait_remove(o->wait);
    loop_job_cancel(&o->resync);
    slow_unlink(o);
    kq_bytes_free(&o->prefix);
    kq_bytes_free(&o->leader);
    kq_bytes_free(&o->last_key);
    free(o);
}
