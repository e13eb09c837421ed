/* watch_hold.c: live events held back while a watcher's connection is still sending earlier output.
 * A client that reads slower than events come gets them in fewer, larger responses (as etcd's
 * watchers get them once their stream's channel is full), instead of one small response per event per
 * watcher, which costs a busy client more than the events themselves. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "pb_wire.h"
#include "watch_internal.h"

/* Each event is encoded once per round, whatever number of watchers hold it. */
typedef struct encoded_event {
    const Mvccpb__Event *ev;
    size_t at, len; /* in round_bytes: the whole field 11 (tag, length, Event) */
} encoded_event;

static struct {
    encoded_event *slots; /* open addressing on the event pointer; ev NULL when empty */
    size_t mask, used;
    uint8_t *bytes;
    size_t len, cap;
    watcher **held; /* watchers holding events */
    size_t n_held, cap_held;
    ev_timer recheck; /* runs while events are held: the loop must look again after its flush */
} hold;

#define HOLD_RECHECK_SECONDS 0.001

void hold_round_reset(void) {
    if (hold.used) memset(hold.slots, 0, (hold.mask + 1) * sizeof *hold.slots);
    hold.used = 0;
    hold.len = 0;
}

static void grow_slots(void) {
    encoded_event *old = hold.slots;
    size_t old_n = old ? hold.mask + 1 : 0, n = old_n ? old_n * 2 : 256;
    hold.slots = xcalloc(n, sizeof *hold.slots);
    hold.mask = n - 1;
    for (size_t i = 0; i < old_n; i++) {
        if (!old[i].ev) continue;
        size_t j = ((uintptr_t)old[i].ev >> 4) & hold.mask;
        while (hold.slots[j].ev)
            j = (j + 1) & hold.mask;
        hold.slots[j] = old[i];
    }
    free(old);
}

static const encoded_event *encoded(const Mvccpb__Event *ev) {
    if ((hold.used + 1) * 2 > (hold.slots ? hold.mask + 1 : 0)) grow_slots();
    size_t i = ((uintptr_t)ev >> 4) & hold.mask;
    for (; hold.slots[i].ev; i = (i + 1) & hold.mask)
        if (hold.slots[i].ev == ev) return &hold.slots[i];
    size_t body = mvccpb__event__get_packed_size(ev), need = 1 + pb_varint_size(body) + body;
    if (hold.len + need > hold.cap) {
        hold.cap = (hold.len + need) * 2;
        hold.bytes = xrealloc(hold.bytes, hold.cap);
    }
    uint8_t *p = pb_put_bytes_head(hold.bytes + hold.len, 0x5a, body); /* field 11, length-delimited */
    mvccpb__event__pack(ev, p);
    hold.slots[i] = (encoded_event){ev, hold.len, need};
    hold.len += need;
    hold.used++;
    return &hold.slots[i];
}

static void held_append(watcher *w, const uint8_t *p, size_t n) {
    if (w->held_len + n > w->held_cap) {
        w->held_cap = (w->held_len + n) * 2;
        w->held = xrealloc(w->held, w->held_cap);
    }
    memcpy(w->held + w->held_len, p, n);
    w->held_len += n;
}

/* A buffer grown by a burst is given back once nothing is held in it. */
static void give_back_burst(watcher *w) {
    if (w->held_len == 0 && w->held_cap > 2 * HOLD_WATCHER_BYTES) {
        free(w->held);
        w->held = NULL;
        w->held_cap = 0;
    }
}

static void list_add(watcher *w) {
    if (w->in_hold_list) return;
    if (hold.n_held == hold.cap_held) {
        hold.cap_held = hold.cap_held ? hold.cap_held * 2 : 64;
        hold.held = xrealloc(hold.held, hold.cap_held * sizeof *hold.held);
    }
    hold.held[hold.n_held++] = w;
    w->in_hold_list = true;
}

bool hold_try_add(watcher *w, Mvccpb__Event **evs, size_t n, int64_t first_rev, int64_t last_rev) {
    assert(!w->fragment && n > 0);
    size_t before = w->held_len;
    for (size_t i = 0; i < n && w->held_len <= HOLD_WATCHER_BYTES; i++) { /* stops once over */
        const encoded_event *e = encoded(evs[i]);
        held_append(w, hold.bytes + e->at, e->len);
    }
    size_t added = w->held_len - before;
    if (w->held_len > HOLD_WATCHER_BYTES || w->ws->held_bytes + added > HOLD_STREAM_BYTES) {
        w->held_len = before; /* no room: the events go out another way */
        give_back_burst(w);
        return false;
    }
    if (before == 0) {
        list_add(w);
        w->held_first_rev = first_rev;
    }
    w->ws->held_bytes += added;
    w->held_last_rev = last_rev;
    return true;
}

static void held_clear(watcher *w) {
    assert(w->ws->held_bytes >= w->held_len);
    w->ws->held_bytes -= w->held_len;
    w->held_len = 0;
    give_back_burst(w);
}

void hold_release(watcher *w) {
    if (!hold_pending(w)) return;
    watch_send_encoded_events(w, w->held, w->held_len, w->held_last_rev);
    held_clear(w);
}

int64_t hold_drop(watcher *w) {
    assert(hold_pending(w));
    int64_t first = w->held_first_rev;
    held_clear(w);
    return first;
}

static void on_recheck(EV_P_ ev_timer *t, int revents) {
    (void)EV_A, (void)t, (void)revents; /* the turn it wakes runs hold_release_ready (watch_hub.c) */
}

/* A connection is found busy before this turn's output is written, which may drain it all at once:
 * with events still held, the loop must not then sleep until some other event comes, so it wakes
 * again shortly and looks. */
static void recheck_later(void) {
    if (hold.n_held == 0) {
        if (ev_is_active(&hold.recheck)) ev_timer_stop(EV_DEFAULT_ & hold.recheck);
        return;
    }
    if (ev_is_active(&hold.recheck)) return;
    ev_timer_init(&hold.recheck, on_recheck, HOLD_RECHECK_SECONDS, 0.);
    ev_timer_start(EV_DEFAULT_ & hold.recheck);
}

/* Releases the held events of watchers whose connections are drained (all of them when forced) and
 * compacts the list. */
void hold_release_ready(bool force) {
    size_t kept = 0;
    for (size_t i = 0; i < hold.n_held; i++) {
        watcher *w = hold.held[i];
        if (hold_pending(w) && !force && watch_stream_busy(w->ws)) {
            hold.held[kept++] = w;
            continue;
        }
        w->in_hold_list = false;
        hold_release(w);
    }
    hold.n_held = kept;
    recheck_later();
}

void hold_forget(watcher *w) {
    if (hold_pending(w)) held_clear(w);
    for (size_t i = 0; w->in_hold_list && i < hold.n_held; i++)
        if (hold.held[i] == w) {
            hold.held[i] = hold.held[--hold.n_held];
            w->in_hold_list = false;
        }
    free(w->held);
    w->held = NULL;
    w->held_cap = 0;
}
