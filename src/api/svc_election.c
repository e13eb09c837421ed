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
    Etcdserverpb__ResponseHeader hdr; /* the claim's, which etcd answers with */
    kq_bytes name;
    int64_t rev, lease;
} campaign_wait;

static void reply_campaign(const reply_sink *out, Etcdserverpb__ResponseHeader *hdr, ProtobufCBinaryData name,
                           kq_bytes key, int64_t rev, int64_t lease) {
    V3electionpb__LeaderKey leader = V3ELECTIONPB__LEADER_KEY__INIT;
    leader.name = name;
    leader.key = kq_pb(key);
    leader.rev = rev;
    leader.lease = lease;
    V3electionpb__CampaignResponse resp = V3ELECTIONPB__CAMPAIGN_RESPONSE__INIT;
    resp.header = hdr;
    resp.leader = &leader;
    out->reply(out->ctx, &resp.base);
}

/* The wait ended: leader, or our key went meanwhile (etcd would go on waiting and then answer with a
 * key that no longer exists; the campaign is over, so cetcd says so at once), or a step failed. */
static void campaign_finish(campaign_wait *cw, kq_state st, local_result *r) {
    const reply_sink *out = &cw->q.lc->out;
    if (st == KQ_TURN)
        reply_campaign(out, &cw->hdr, kq_pb(cw->name), cw->q.key, cw->rev, cw->lease);
    else
        kq_fail(out, st == KQ_LOST ? ERR_NOT_LEADER : r->message);
    local_result_free(r);
}

static void campaign_free(campaign_wait *cw) {
    key_queue_stop(&cw->q);
    kq_bytes_free(&cw->name);
    free(cw);
}

static void campaign_done(key_queue *q, kq_state st, local_result *r) {
    campaign_wait *cw = (campaign_wait *)q;
    later_call_done(q->lc);
    campaign_finish(cw, st, r);
    campaign_free(cw);
}

/* Canceled while waiting: resign, i.e. delete our key if it is still the one we made. */
static void campaign_cancel(later_call *lc) {
    campaign_wait *cw = lc->wait;
    kq_delete_later(cw->q.key, cw->rev, lc->caller);
    campaign_free(cw);
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
static void campaign_claimed(later_call *lc, const V3electionpb__CampaignRequest *req, kq_bytes prefix,
                             kq_bytes key, int64_t lease, local_result *r) {
    Etcdserverpb__ResponseHeader hdr = *kq_txn(r)->header;
    const Mvccpb__KeyValue *existing;
    int64_t rev = kq_claimed_rev(r, &existing);
    bool differs =
        existing && (existing->value.len != req->value.len ||
                     (req->value.len && memcmp(existing->value.data, req->value.data, req->value.len)));
    local_result_free(r);
    const char *err = differs ? reproclaim(key, rev, req->value, lease, r) : NULL;
    if (err) {
        kq_fail(&lc->out, err);
        local_result_free(r);
        return;
    }
    campaign_wait *cw = xcalloc(1, sizeof *cw);
    cw->hdr = hdr;
    cw->name = kq_bytes_copy(req->name.data, req->name.len);
    cw->rev = rev;
    cw->lease = lease;
    kq_state st = key_queue_start(&cw->q, lc, prefix, key, rev, campaign_done, r);
    if (st == KQ_WAIT) return later_call_wait(lc, cw, campaign_cancel);
    campaign_finish(cw, st, r);
    campaign_free(cw);
}

void election_campaign_exec(later_call *lc, const ProtobufCMessage *msg) {
    const V3electionpb__CampaignRequest *req = (const V3electionpb__CampaignRequest *)msg;
    int64_t lease = req->lease;
    local_result r;
    if (!kq_session(&lease, &r)) return kq_fail(&lc->out, r.message);
    kq_bytes prefix = kq_prefix(req->name), key = kq_lease_key(prefix, lease);
    if (kq_claim(prefix, key, req->value, lease, false, &r))
        campaign_claimed(lc, req, prefix, key, lease, &r);
    else
        kq_fail(&lc->out, r.message);
    kq_bytes_free(&prefix);
    kq_bytes_free(&key);
}

void election_campaign(rpc_call *call, const uint8_t *msg, size_t len) {
    later_call_grpc(call, msg, len, &v3electionpb__campaign_request__descriptor, election_campaign_exec,
                    false);
}

void election_campaign_closed(rpc_call *call) {
    later_call_grpc_closed(call);
}

/* ---------- Proclaim, Resign, Leader ---------- */

void election_proclaim_exec(const ProtobufCMessage *msg, size_t len, const reply_sink *out) {
    (void)len;
    const V3electionpb__ProclaimRequest *req = (const V3electionpb__ProclaimRequest *)msg;
    if (!req->leader) return kq_fail(out, ERR_MISSING_LEADER);
    int64_t lease = req->leader->lease;
    local_result r = {0};
    if (!kq_session(&lease, &r) ||
        !kq_if_created(view(req->leader->key), req->leader->rev, &req->value, lease, &r)) {
        kq_fail(out, r.message);
    } else if (!kq_txn(&r)->succeeded) {
        kq_fail(out, ERR_NOT_LEADER);
    } else {
        V3electionpb__ProclaimResponse resp = V3ELECTIONPB__PROCLAIM_RESPONSE__INIT;
        resp.header = kq_txn(&r)->header;
        out->reply(out->ctx, &resp.base);
    }
    local_result_free(&r);
}

/* Deletes the leader key if its create revision is still the leader's; answers with the Txn's header
 * either way. */
void election_resign_exec(const ProtobufCMessage *msg, size_t len, const reply_sink *out) {
    (void)len;
    const V3electionpb__ResignRequest *req = (const V3electionpb__ResignRequest *)msg;
    if (!req->leader) return kq_fail(out, ERR_MISSING_LEADER);
    int64_t lease = req->leader->lease;
    local_result r = {0};
    if (!kq_session(&lease, &r) || /* etcd's session grants a lease for 0, used or not */
        !kq_if_created(view(req->leader->key), req->leader->rev, NULL, 0, &r)) {
        kq_fail(out, r.message);
    } else {
        V3electionpb__ResignResponse resp = V3ELECTIONPB__RESIGN_RESPONSE__INIT;
        resp.header = kq_txn(&r)->header;
        out->reply(out->ctx, &resp.base);
    }
    local_result_free(&r);
}

void election_leader_exec(const ProtobufCMessage *msg, size_t len, const reply_sink *out) {
    (void)len;
    const V3electionpb__LeaderRequest *req = (const V3electionpb__LeaderRequest *)msg;
    kq_bytes prefix = kq_prefix(req->name);
    local_result r;
    if (!kq_first_created(prefix, &r)) {
        kq_fail(out, r.message);
    } else if (kq_range(&r)->n_kvs == 0) {
        kq_fail(out, ERR_NO_LEADER);
    } else {
        V3electionpb__LeaderResponse resp = V3ELECTIONPB__LEADER_RESPONSE__INIT;
        resp.header = kq_range(&r)->header;
        resp.kv = kq_range(&r)->kvs[0];
        out->reply(out->ctx, &resp.base);
    }
    local_result_free(&r);
    kq_bytes_free(&prefix);
}

#define UNARY(fn, type)                                                                                      \
    void fn(rpc_call *call, const uint8_t *msg, size_t len) {                                                \
        rpc_unary_exec(call, msg, len, &v3electionpb__##type##__descriptor, fn##_exec);                      \
    }

UNARY(election_proclaim, proclaim_request)
UNARY(election_resign, resign_request)
UNARY(election_leader, leader_request)

/* ---------- Observe ---------- */

enum { OBS_NONE, OBS_LEADER, OBS_RESYNC };

/* Election.observe as a state machine: with no leader, the first put under the prefix is the leader;
 * with one, each put of its key is sent, and its delete sends us back to read the oldest key. */
typedef struct observer {
    later_call *lc;
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
    if (o->lc->pending(o->lc->out.ctx) > OBSERVE_PENDING_LIMIT) {
        o->state = OBS_RESYNC;
        slow_link(o);
        return false;
    }
    V3electionpb__LeaderResponse resp = V3ELECTIONPB__LEADER_RESPONSE__INIT;
    resp.header = h;
    resp.kv = kv;
    o->lc->out.reply(o->lc->out.ctx, &resp.base);
    kq_bytes_free(&o->last_key);
    o->last_key = kq_bytes_copy(kv->key.data, kv->key.len);
    o->last_mod = kv->mod_revision;
    return true;
}

/* Reads the oldest key under the prefix: the leader to send (unless it was the last one sent) and
 * follow, or none (then the next put under the prefix is). */
static void obs_resync(observer *o) {
    local_result r;
    const rpc_caller *was = later_call_as(o->lc);
    bool ok = kq_first_created(o->prefix, &r);
    rpc_set_current_caller(was);
    if (!ok) { /* etcd's observe ends: the stream closes, OK */
        o->lc->out.fail(o->lc->out.ctx, GRPC_OK, NULL);
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
        if (o->lc->pending(o->lc->out.ctx) > OBSERVE_PENDING_LIMIT) continue;
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

static void observe_cancel(later_call *lc) {
    observer *o = lc->wait;
    key_wait_remove(o->wait);
    loop_job_cancel(&o->resync);
    slow_unlink(o);
    kq_bytes_free(&o->prefix);
    kq_bytes_free(&o->leader);
    kq_bytes_free(&o->last_key);
    free(o);
}

void election_observe_exec(later_call *lc, const ProtobufCMessage *msg) {
    const V3electionpb__LeaderRequest *req = (const V3electionpb__LeaderRequest *)msg;
    observer *o = xcalloc(1, sizeof *o);
    o->lc = lc;
    o->prefix = kq_prefix(req->name);
    o->resync.run = run_resync;
    o->state = OBS_RESYNC;
    later_call_wait(lc, o, observe_cancel);
    obs_resync(o);
    o->wait = key_wait_add((mv_bytes){o->prefix.data, o->prefix.len}, true, obs_event, o);
}

void election_observe(rpc_call *call, const uint8_t *msg, size_t len) {
    later_call_grpc(call, msg, len, &v3electionpb__leader_request__descriptor, election_observe_exec, true);
}

void election_observe_closed(rpc_call *call) {
    later_call_grpc_closed(call);
}
