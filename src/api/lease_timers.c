/* lease_timers.c: lease expiry deadlines in a min-heap indexed by lease id (O(log n) per change, never
 * a scan of all leases) and the one ev_timer armed for the earliest of them. */
#include "lease_timers.h"

#include <stdio.h>

#include "alloc.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------- the id → heap position index ---------- */

static uint64_t mix(int64_t id) {
    uint64_t x = (uint64_t)id + 0x9e3779b97f4a7c15ull; /* splitmix64 */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static lease_heap_slot *slot_find(const lease_heap *h, int64_t id) {
    if (h->n_slots == 0) return NULL;
    size_t mask = h->n_slots - 1;
    for (size_t i = mix(id) & mask;; i = (i + 1) & mask) {
        lease_heap_slot *s = &h->slots[i];
        if (!s->used) return NULL;
        if (s->id == id) return s;
    }
}

static void slot_insert_raw(lease_heap *h, int64_t id, uint32_t pos) {
    size_t mask = h->n_slots - 1;
    size_t i = mix(id) & mask;
    while (h->slots[i].used)
        i = (i + 1) & mask;
    h->slots[i] = (lease_heap_slot){.id = id, .pos = pos, .used = 1};
}

/* Keeps the table at most half full. */
static void slots_grow(lease_heap *h) {
    if (h->n_slots && (h->n + 1) * 2 <= h->n_slots) return;
    size_t old_n = h->n_slots;
    lease_heap_slot *old = h->slots;
    h->n_slots = old_n ? old_n * 2 : 64;
    h->slots = calloc(h->n_slots, sizeof *h->slots);
    if (!h->slots) out_of_memory();
    for (size_t i = 0; i < old_n; i++)
        if (old[i].used) slot_insert_raw(h, old[i].id, old[i].pos);
    free(old);
}

/* Linear probing's deletion without tombstones: later entries of the run move back into the hole. */
static void slot_delete(lease_heap *h, lease_heap_slot *s) {
    size_t mask = h->n_slots - 1;
    size_t hole = (size_t)(s - h->slots);
    s->used = 0;
    for (size_t i = (hole + 1) & mask; h->slots[i].used; i = (i + 1) & mask) {
        size_t home = mix(h->slots[i].id) & mask;
        /* the entry at i may fill the hole unless its home lies cyclically in (hole, i] */
        bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (stays) continue;
        h->slots[hole] = h->slots[i];
        h->slots[i].used = 0;
        hole = i;
    }
}

/* ---------- the heap ---------- */

static void place(lease_heap *h, size_t pos, lease_heap_item it) {
    h->items[pos] = it;
    slot_find(h, it.id)->pos = (uint32_t)pos;
}

static void sift_up(lease_heap *h, size_t pos) {
    lease_heap_item it = h->items[pos];
    while (pos > 0) {
        size_t parent = (pos - 1) / 2;
        if (h->items[parent].deadline <= it.deadline) break;
        place(h, pos, h->items[parent]);
        pos = parent;
    }
    place(h, pos, it);
}

static void sift_down(lease_heap *h, size_t pos) {
    lease_heap_item it = h->items[pos];
    for (;;) {
        size_t child = 2 * pos + 1;
        if (child >= h->n) break;
        if (child + 1 < h->n && h->items[child + 1].deadline < h->items[child].deadline) child++;
        if (h->items[child].deadline >= it.deadline) break;
        place(h, pos, h->items[child]);
        pos = child;
    }
    place(h, pos, it);
}

void lease_heap_free(lease_heap *h) {
    free(h->items);
    free(h->slots);
    *h = (lease_heap){0};
}

void lease_heap_set(lease_heap *h, int64_t id, double deadline) {
    lease_heap_slot *s = slot_find(h, id);
    if (s) {
        size_t pos = s->pos;
        double old = h->items[pos].deadline;
        h->items[pos].deadline = deadline;
        if (deadline < old)
            sift_up(h, pos);
        else
            sift_down(h, pos);
        return;
    }
    slots_grow(h);
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->items = xrealloc(h->items, h->cap * sizeof *h->items);
    }
    size_t pos = h->n++;
    h->items[pos] = (lease_heap_item){.deadline = deadline, .id = id};
    slot_insert_raw(h, id, (uint32_t)pos);
    sift_up(h, pos);
}

bool lease_heap_remove(lease_heap *h, int64_t id) {
    lease_heap_slot *s = slot_find(h, id);
    if (!s) return false;
    size_t pos = s->pos;
    slot_delete(h, s);
    size_t last = --h->n;
    if (pos == last) return true;
    lease_heap_item moved = h->items[last];
    double old = h->items[pos].deadline;
    h->items[pos] = moved;
    slot_find(h, moved.id)->pos = (uint32_t)pos;
    if (moved.deadline < old)
        sift_up(h, pos);
    else
        sift_down(h, pos);
    return true;
}

bool lease_heap_get(const lease_heap *h, int64_t id, double *deadline) {
    const lease_heap_slot *s = slot_find(h, id);
    if (!s) return false;
    if (deadline) *deadline = h->items[s->pos].deadline;
    return true;
}

bool lease_heap_peek(const lease_heap *h, int64_t *id, double *deadline) {
    if (h->n == 0) return false;
    if (id) *id = h->items[0].id;
    if (deadline) *deadline = h->items[0].deadline;
    return true;
}

/* ---------- the server's timers ---------- */

static lease_heap g_heap;
static ev_timer g_timer;
static struct ev_loop *g_loop; /* NULL until lease_timers_start */
static lease_expire_fn g_fn;
static unsigned g_budget;
static double g_armed_for; /* the deadline the timer is armed for; 0 = not armed */
static bool g_in_callback;

double lease_timers_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void arm(double delay, double deadline) {
    ev_timer_stop(g_loop, &g_timer);
    ev_timer_set(&g_timer, delay > 0 ? delay : 0, 0.);
    ev_timer_start(g_loop, &g_timer);
    g_armed_for = deadline;
}

/* After a change: arm for the earliest deadline if the timer would otherwise fire too late. A timer
 * that fires too early (its deadline moved away) just finds nothing due and re-arms. */
static void rearm_if_earlier(void) {
    if (!g_loop || g_in_callback) return;
    double d;
    if (!lease_heap_peek(&g_heap, NULL, &d)) return;
    if (g_armed_for != 0 && g_armed_for <= d) return;
    arm(d - lease_timers_now(), d);
}

static void on_timer(EV_P_ ev_timer *w, int revents) {
    (void)EV_A, (void)w, (void)revents;
    g_armed_for = 0;
    g_in_callback = true;
    double now = lease_timers_now();
    unsigned done = 0;
    int64_t id;
    double d;
    while (lease_heap_peek(&g_heap, &id, &d) && d <= now) {
        if (done == g_budget) break;
        lease_heap_remove(&g_heap, id);
        g_fn(id);
        done++;
    }
    g_in_callback = false;
    if (!lease_heap_peek(&g_heap, NULL, &d)) return;
    /* more due than the budget: continue on the next loop turn, after this turn's I/O */
    arm(d <= now ? 0 : d - now, d);
}

void lease_timers_set(int64_t id, double deadline) {
    lease_heap_set(&g_heap, id, deadline);
    rearm_if_earlier();
}

void lease_timers_remove(int64_t id) {
    lease_heap_remove(&g_heap, id);
}

bool lease_timers_get(int64_t id, double *deadline) {
    return lease_heap_get(&g_heap, id, deadline);
}

size_t lease_timers_count(void) {
    return lease_heap_count(&g_heap);
}

const lease_heap_item *lease_timers_items(size_t *n) {
    *n = g_heap.n;
    return g_heap.items;
}

void lease_timers_start(struct ev_loop *loop, lease_expire_fn fn, unsigned budget) {
    g_loop = loop;
    g_fn = fn;
    g_budget = budget ? budget : 1;
    ev_timer_init(&g_timer, on_timer, 0., 0.);
    g_armed_for = 0;
    rearm_if_earlier();
}

void lease_timers_reset(void) {
    if (g_loop) ev_timer_stop(g_loop, &g_timer);
    g_loop = NULL;
    g_armed_for = 0;
    lease_heap_free(&g_heap);
}
