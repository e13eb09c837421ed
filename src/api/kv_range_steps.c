/* kv_range_steps.c: the gRPC Range reply, packed by hand where it is sent from, each value read once
 * straight into it; at once, or over several loop turns when it is large (issue 16, "no
 * stop-the-world"): the values of a large reply copied about 2 MiB a step, the count of a page of a
 * large range counted MV_RANGE_STEP_KEYS keys a step, a list with more keys than one step walks
 * sized, then packed, a chunk of keys a step, and a range sorted by create or mod revision walked a
 * step at a time before its best keys are packed. The loop serves the others between steps; several such
 * replies take turns; each is committed when done. */
#include "kv_range_steps.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "budget.h"
#include "errors.h"
#include "header.h"
#include "pb_wire.h"
#include "step_queue.h"
#include "store.h"

#define STEP_GAP_SECONDS 0.0001 /* between steps, so the loop polls its sockets */

/* ---------- etcdserverpb.RangeResponse (header 1, kvs 2, more 3, count 4), in field order ---------- */

/* mvccpb.KeyValue: key 1, create_revision 2, mod_revision 3, version 4, value 5, lease 6. */
static size_t kv_packed_size(const mv_kv *kv) {
    return pb_bytes_field_size(kv->key.len) + pb_int_field_size(kv->create_revision) +
           pb_int_field_size(kv->mod_revision) + pb_int_field_size(kv->version) +
           pb_bytes_field_size(kv->value.len) + pb_int_field_size(kv->lease);
}

/* kv as field 2 of a RangeResponse. */
static size_t kv_field_size(const mv_kv *kv) {
    size_t kl = kv_packed_size(kv);
    return 1 + pb_varint_size(kl) + kl;
}

/* Packs kv as field 2 of a RangeResponse, its value left for the store: *value is where it goes. */
static uint8_t *put_kv(uint8_t *p, const mv_kv *kv, uint8_t **value) {
    p = pb_put_bytes_head(p, 0x12, kv_packed_size(kv));
    if (kv->key.len) {
        p = pb_put_bytes_head(p, 0x0a, kv->key.len);
        memcpy(p, kv->key.data, kv->key.len);
        p += kv->key.len;
    }
    p = pb_put_int_field(p, 0x10, kv->create_revision);
    p = pb_put_int_field(p, 0x18, kv->mod_revision);
    p = pb_put_int_field(p, 0x20, kv->version);
    *value = NULL;
    if (kv->value.len) {
        p = pb_put_bytes_head(p, 0x2a, kv->value.len);
        *value = p;
        p += kv->value.len;
    }
    return pb_put_int_field(p, 0x30, kv->lease);
}

static size_t header_field_size(const Etcdserverpb__ResponseHeader *hdr) {
    size_t hlen = protobuf_c_message_get_packed_size(&hdr->base);
    return 1 + pb_varint_size(hlen) + hlen;
}

static uint8_t *put_header(uint8_t *p, const Etcdserverpb__ResponseHeader *hdr) {
    p = pb_put_bytes_head(p, 0x0a, protobuf_c_message_get_packed_size(&hdr->base));
    return p + protobuf_c_message_pack(&hdr->base, p);
}

/* ---------- replies being built over several turns, taking turns ---------- */

/* What the walk of a reply's rest is doing (the values, if any, are copied once it is done). */
enum walk_phase { COUNTING, SIZING, PACKING, CHOOSING };

typedef struct range_steps {
    step_job link; /* first: the queue's */
    rpc_call *call;
    reply_sink out;
    mv_range_rest *rest; /* the walk going on (NULL once done) */
    enum walk_phase phase;
    mv_values_copy *copy; /* values being copied (NULL once done) */
    int64_t revision;     /* the reply's header revision */
    size_t kvs_bytes;     /* while sizing: the kvs' fields so far */
    uint8_t *msg;         /* the reserved reply (NULL while sizing) */
    size_t len;           /* bytes of msg packed (the count not yet while counting) */
    size_t cap;           /* bytes reserved at msg */
    size_t budget;        /* the request's reply budget (budget.h), for a refusal while sizing */
} range_steps;

enum step_result { STEP_MORE, STEP_DONE, STEP_TOO_LARGE, STEP_NO_REPLY };

static void on_step(step_queue *q, step_job *first);
static size_t reply_size(const mv_result *res, bool count_later);
static uint8_t *pack_reply(const mv_result *res, bool count_later, size_t room, const reply_sink *out,
                           size_t *len, mv_values_copy **copy);
static step_queue queue = STEP_QUEUE_INIT(queue, STEP_GAP_SECONDS, on_step);

static void range_steps_free(range_steps *s) {
    rpc_set_user(s->call, NULL);
    mvcc_range_values_end(s->copy);
    mvcc_range_rest_end(s->rest);
    free(s);
}

static void add_size(void *ctx, const mv_kv *kv) {
    ((range_steps *)ctx)->kvs_bytes += kv_field_size(kv);
}

static uint8_t *pack_kv(void *ctx, const mv_kv *kv) {
    range_steps *s = ctx;
    assert(s->len + kv_field_size(kv) <= s->cap); /* the revision's kvs are the ones sized */
    uint8_t *value, *end = put_kv(s->msg + s->len, kv, &value);
    s->len = (size_t)(end - s->msg);
    return value;
}

/* Whether a reply of len bytes fits beside the replies reserved now (pledges aside); if not, its
 * refusal names the room there was. */
static bool fits_pool(range_steps *s, size_t len) {
    size_t left = reply_budget_for(rpc_held_reserved());
    if (len > left) s->budget = left;
    return len <= left;
}

/* The kvs are sized: the whole reply is reserved, its header packed; the kvs follow in steps. While
 * it was sized, what it had sized so far was pledged to the pool (rpc_sink_pledge), so that requests
 * meanwhile saw it taken. Lists sized side by side are held to the pool here, where each takes its
 * place in it: one that does not fit beside the replies reserved (pledges aside) is refused, as it
 * would have been by its budget had it been reserved in its request's turn. */
static enum step_result reserve_reply(range_steps *s) {
    mv_range_resp r;
    mvcc_range_rest_result(s->rest, &r);
    if (r.too_large) return STEP_TOO_LARGE;
    Etcdserverpb__ResponseHeader hdr;
    response_header_fill(&hdr, s->revision);
    size_t len = header_field_size(&hdr) + s->kvs_bytes + (r.more ? 2 : 0) + pb_int_field_size(r.count);
    if (!fits_pool(s, len)) return STEP_TOO_LARGE;
    s->msg = rpc_sink_reserve_encoded(&s->out, len);
    if (!s->msg) return STEP_NO_REPLY;
    s->cap = len;
    s->len = (size_t)(put_header(s->msg, &hdr) - s->msg);
    s->phase = PACKING;
    return STEP_MORE;
}

/* The walk is done: the count ends the reply, after more if the walk packed the kvs (else the
 * request's turn packed them, and more). */
static enum step_result end_walk(range_steps *s) {
    mv_range_resp r;
    mvcc_range_rest_result(s->rest, &r);
    uint8_t *p = s->msg + s->len;
    if (s->phase == PACKING && r.more) p = pb_put_int_field(p, 0x18, 1);
    p = pb_put_int_field(p, 0x20, r.count);
    s->len = (size_t)(p - s->msg);
    assert(s->phase != PACKING || s->len == s->cap);
    mvcc_range_rest_end(s->rest);
    s->rest = NULL;
    return s->copy ? STEP_MORE : STEP_DONE;
}

/* The walk of a sorted range is done: its best keys are packed into a reply of their own, which must fit
 * beside the replies reserved meanwhile, as a list's does (reserve_reply). */
static enum step_result pack_chosen(range_steps *s) {
    mv_result res;
    mvcc_range_rest_chosen(s->rest, &res);
    mvcc_range_rest_end(s->rest);
    s->rest = NULL;
    res.header_revision = s->revision;
    enum step_result r = STEP_TOO_LARGE; /* over the request's own budget, or the pool's room now */
    size_t len = res.resp.u.range.too_large ? 0 : reply_size(&res, false);
    if (!res.resp.u.range.too_large && fits_pool(s, len)) {
        s->msg = pack_reply(&res, false, len, &s->out, &s->len, &s->copy);
        r = !s->msg ? STEP_NO_REPLY : s->copy ? STEP_MORE : STEP_DONE;
    }
    mv_result_free(&res);
    return r;
}

/* One step of the reply: of its walk (sizing the kvs, packing them, counting, or choosing the best
 * keys of a sorted range), else of its values. */
static enum step_result step(range_steps *s) {
    if (s->rest) {
        switch (s->phase) {
        case SIZING:
            if (mvcc_range_rest_step(s->rest, add_size, s)) return reserve_reply(s);
            rpc_sink_pledge(&s->out, s->kvs_bytes);
            return STEP_MORE;
        case PACKING:
            return mvcc_range_rest_pack(s->rest, pack_kv, s) ? end_walk(s) : STEP_MORE;
        case COUNTING:
            return mvcc_range_rest_step(s->rest, NULL, NULL) ? end_walk(s) : STEP_MORE;
        case CHOOSING:
            return mvcc_range_rest_step(s->rest, NULL, NULL) ? pack_chosen(s) : STEP_MORE;
        }
    }
    if (!mvcc_range_values_step(s->copy, RANGE_STEP_BYTES)) return STEP_MORE;
    mvcc_range_values_end(s->copy);
    s->copy = NULL;
    return STEP_DONE;
}

/* One step of the first reply; it is committed once done, else it waits behind the others. */
static void on_step(step_queue *q, step_job *first) {
    range_steps *s = (range_steps *)first;
    enum step_result r = step(s);
    if (r == STEP_MORE) return step_queue_rotate(q);
    step_queue_remove(q, first);
    reply_sink out = s->out;
    size_t len = s->len, budget = s->budget;
    range_steps_free(s); /* before the call may end, and its on_close look for s */
    if (r == STEP_DONE) rpc_sink_commit_encoded(&out, len);
    if (r == STEP_TOO_LARGE) {
        rpc_sink_pledge(&out, 0); /* now, not when the call is freed: the lists after it may fit */
        out.fail(out.ctx, GRPC_RESOURCE_EXHAUSTED, reply_budget_message_of(budget));
    }
}

static void steps_start(const reply_sink *out, const range_steps *first) {
    rpc_call *call = rpc_sink_call(out);
    assert(call && !rpc_user(call));
    range_steps *s = xmalloc(sizeof *s);
    *s = *first;
    s->call = call;
    s->out = *out;
    rpc_set_user(call, s);
    step_queue_add(&queue, &s->link);
}

void kv_range_closed(rpc_call *call) {
    range_steps *s = rpc_user(call);
    if (!s) return;
    step_queue_remove(&queue, &s->link);
    range_steps_free(s); /* the reply goes with the call */
}

/* ---------- the request's turn ---------- */

/* The reply's bytes, all but the count when count_later (room is left for the largest). */
static size_t reply_size(const mv_result *res, bool count_later) {
    const mv_range_resp *r = &res->resp.u.range;
    Etcdserverpb__ResponseHeader hdr;
    response_header_fill(&hdr, res->header_revision);
    size_t len = header_field_size(&hdr) + (r->more ? 2 : 0);
    for (size_t i = 0; i < r->n_kvs; i++)
        len += kv_field_size(&r->kvs[i]);
    return len + (count_later ? pb_int_field_size(INT64_MAX) : pb_int_field_size(r->count));
}

/* The reply packed around its values into the room the call's output reserves for it (NULL if it takes
 * no reply, see rpc_sink_reserve_encoded), its packed length in *len; the values are copied by the
 * store into their places, now, or in steps through *copy. With count_later, the count (the last
 * field) waits. room: reply_size(res, count_later), which the caller has worked out. */
static uint8_t *pack_reply(const mv_result *res, bool count_later, size_t room, const reply_sink *out,
                           size_t *len, mv_values_copy **copy) {
    const mv_range_resp *r = &res->resp.u.range;
    *copy = NULL;
    uint8_t *buf = rpc_sink_reserve_encoded(out, room);
    if (!buf) return NULL;
    Etcdserverpb__ResponseHeader hdr;
    response_header_fill(&hdr, res->header_revision);
    uint8_t *p = put_header(buf, &hdr);
    uint8_t **values = xmalloc((r->n_kvs ? r->n_kvs : 1) * sizeof *values);
    uint8_t *ahead = p; /* the heads lie a value apart, each a cache miss: asked for 16 ahead */
    size_t value_bytes = 0;
    for (size_t i = 0, j = 0; i < r->n_kvs; i++) {
        for (; j < r->n_kvs && j < i + 16; j++) {
            __builtin_prefetch(ahead, 1);
            ahead += kv_field_size(&r->kvs[j]);
        }
        p = put_kv(p, &r->kvs[i], &values[i]);
        value_bytes += r->kvs[i].value.len;
    }
    if (r->more) p = pb_put_int_field(p, 0x18, 1);
    if (!count_later) p = pb_put_int_field(p, 0x20, r->count);
    *len = (size_t)(p - buf);
    assert(*len <= room && (count_later || *len == room));
    if (value_bytes > RANGE_STEP_BYTES) /* too much to copy in one turn: in steps, from the next */
        *copy = mvcc_range_values_begin(g_store, r, values);
    else
        mvcc_range_values(g_store, r, values);
    free(values);
    return buf;
}

/* The reply, packed in the request's turn; with a count still being counted (rest), or values to copy
 * in steps, it is finished over the turns that follow. */
static void pack_now(const mv_result *res, mv_range_rest *rest, const reply_sink *out) {
    size_t len;
    mv_values_copy *copy;
    uint8_t *buf = pack_reply(res, rest != NULL, reply_size(res, rest != NULL), out, &len, &copy);
    if (!buf) return mvcc_range_rest_end(rest);
    if (copy || rest)
        return steps_start(
            out, &(range_steps){.rest = rest, .phase = COUNTING, .copy = copy, .msg = buf, .len = len});
    rpc_sink_commit_encoded(out, len);
}

void kv_range_reply(const mv_result *res, mv_range_rest *rest, const reply_sink *out) {
    if (rest && mvcc_range_rest_choosing(rest)) /* a sorted range: its keys are known once walked */
        return steps_start(out, &(range_steps){.rest = rest,
                                               .phase = CHOOSING,
                                               .revision = res->header_revision,
                                               .budget = reply_budget()});
    if (!rest || !mvcc_range_rest_sizing(rest)) return pack_now(res, rest, out);
    /* more keys than one walk: the ones chosen so far are sized now, all are packed in steps */
    range_steps first = {
        .rest = rest, .phase = SIZING, .revision = res->header_revision, .budget = reply_budget()};
    for (size_t i = 0; i < res->resp.u.range.n_kvs; i++)
        add_size(&first, &res->resp.u.range.kvs[i]);
    steps_start(out, &first);
    rpc_sink_pledge(out, first.kvs_bytes);
}
