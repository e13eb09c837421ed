/* kv_range_steps.c: the values of a large Range reply, and the count of a page of a large range, done
 * over several loop turns (issue 16, "no stop-the-world"). The keys are chosen and the reply packed
 * around its values at once (svc_kv.c); the values then come in steps of about a millisecond, and the
 * count in steps of MV_COUNT_STEP_KEYS keys, the loop serving the others between them, and the reply
 * is committed when both are done. Several such replies take turns. */
#include "kv_range_steps.h"

#include <assert.h>
#include <ev.h>
#include <stdlib.h>

#include "alloc.h"
#include "pb_wire.h"
#include "store.h"

#define STEP_GAP_SECONDS 0.0001 /* between steps, so the loop polls its sockets */

typedef struct range_steps {
    rpc_call *call;
    reply_sink out;
    range_rest r; /* copy and rest are NULL once done */
    struct range_steps *next;
} range_steps;

static range_steps *queue_head, **queue_tail = &queue_head;
static ev_timer tick; /* runs while the queue is not empty */

static void take_out(range_steps *s) {
    range_steps **p = &queue_head;
    while (*p != s)
        p = &(*p)->next;
    *p = s->next;
    if (queue_tail == &s->next) queue_tail = p;
    s->next = NULL;
    if (!queue_head) ev_timer_stop(EV_DEFAULT_ & tick);
}

static void put_last(range_steps *s) {
    *queue_tail = s;
    queue_tail = &s->next;
}

static void range_steps_free(range_steps *s) {
    rpc_set_user(s->call, NULL);
    mvcc_range_values_end(s->r.copy);
    mvcc_count_rest_end(s->r.rest);
    free(s);
}

/* One step of the reply's count, else of its values; true when both are done. */
static bool step(range_rest *r) {
    if (r->rest) {
        if (!mvcc_count_rest_step(r->rest)) return false;
        uint8_t *count_at = r->msg + r->len;
        r->len += pb_put_int_field(count_at, 0x20, mvcc_count_rest_total(r->rest)) - count_at;
        mvcc_count_rest_end(r->rest);
        r->rest = NULL;
        return !r->copy;
    }
    if (!mvcc_range_values_step(r->copy, RANGE_STEP_BYTES)) return false;
    mvcc_range_values_end(r->copy);
    r->copy = NULL;
    return true;
}

/* One step of the oldest reply; it is committed once done, else it waits behind the others. */
static void on_tick(EV_P_ ev_timer *t, int revents) {
    (void)EV_A, (void)t, (void)revents;
    range_steps *s = queue_head;
    assert(s);
    bool done = step(&s->r);
    take_out(s);
    if (!done) { /* behind the others; the tick goes on */
        put_last(s);
        if (!ev_is_active(&tick)) ev_timer_start(EV_DEFAULT_ & tick);
        return;
    }
    reply_sink out = s->out;
    size_t len = s->r.len;
    range_steps_free(s);
    rpc_sink_commit_encoded(&out, len);
}

void kv_range_steps_start(const reply_sink *out, const range_rest *r) {
    rpc_call *call = rpc_sink_call(out);
    assert(call && !rpc_user(call) && (r->copy || r->rest));
    range_steps *s = xcalloc(1, sizeof *s);
    *s = (range_steps){.call = call, .out = *out, .r = *r};
    rpc_set_user(call, s);
    put_last(s);
    if (!ev_is_active(&tick)) {
        ev_timer_init(&tick, on_tick, 0., STEP_GAP_SECONDS);
        ev_timer_start(EV_DEFAULT_ & tick);
    }
}

void kv_range_closed(rpc_call *call) {
    range_steps *s = rpc_user(call);
    if (!s) return;
    take_out(s);
    range_steps_free(s); /* the reply goes with the call */
}
