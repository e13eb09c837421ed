/* key_waits.c: the waits of key_waits.h in one hash table by key, matched against the events of each
 * new revision (read once from the revision hook, only while there are waits), and the queue of loop
 * jobs, run by a zero timer so that they never run inside a write or a flush. */
#include "key_waits.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "revision_hooks.h"
#include "store.h"

struct key_wait {
    uint8_t *key;
    size_t len;
    bool prefix;
    uint64_t hash;
    key_wait_fn fn;
    void *ctx;
    key_wait *next; /* in its bucket */
};

static struct {
    key_wait **buckets;
    size_t n_buckets, n;
    bool hooked;
    /* jobs */
    loop_job *head, *tail;
    uint64_t pass;
    ev_timer timer;
    bool timer_ready;
} kw;

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static uint64_t fnv_step(uint64_t h, uint8_t c) {
    return (h ^ c) * FNV_PRIME;
}

static uint64_t fnv(const uint8_t *p, size_t n) {
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; i++)
        h = fnv_step(h, p[i]);
    return h;
}

/* ---------- the table ---------- */

static void rehash(size_t n_buckets) {
    key_wait **b = xcalloc(n_buckets, sizeof *b);
    for (size_t i = 0; i < kw.n_buckets; i++) {
        for (key_wait *w = kw.buckets[i], *next; w; w = next) {
            next = w->next;
            size_t j = w->hash & (n_buckets - 1);
            w->next = b[j];
            b[j] = w;
        }
    }
    free(kw.buckets);
    kw.buckets = b;
    kw.n_buckets = n_buckets;
}

static void on_revision(void *ctx, int64_t rev);

key_wait *key_wait_add(mv_bytes key, bool prefix, key_wait_fn fn, void *ctx) {
    if (!kw.hooked) {
        revision_hook_add(on_revision, NULL);
        kw.hooked = true;
    }
    if (kw.n + 1 > kw.n_buckets) rehash(kw.n_buckets ? kw.n_buckets * 2 : 64);
    key_wait *w = xcalloc(1, sizeof *w);
    w->key = xmalloc(key.len ? key.len : 1);
    if (key.len) memcpy(w->key, key.data, key.len);
    w->len = key.len;
    w->prefix = prefix;
    w->hash = fnv(w->key, w->len);
    w->fn = fn;
    w->ctx = ctx;
    size_t j = w->hash & (kw.n_buckets - 1);
    w->next = kw.buckets[j];
    kw.buckets[j] = w;
    kw.n++;
    return w;
}

void key_wait_remove(key_wait *w) {
    if (!w) return;
    key_wait **pp = &kw.buckets[w->hash & (kw.n_buckets - 1)];
    while (*pp != w)
        pp = &(*pp)->next;
    *pp = w->next;
    kw.n--;
    free(w->key);
    free(w);
}

size_t key_wait_count(void) {
    return kw.n;
}

/* Calls the waits of the bucket of hash whose key is key[0..len) and whose kind is prefix. */
static void call_matches(uint64_t hash, const uint8_t *key, size_t len, bool prefix, const mv_event *ev) {
    for (key_wait *w = kw.buckets[hash & (kw.n_buckets - 1)]; w; w = w->next)
        if (w->hash == hash && w->prefix == prefix && w->len == len && memcmp(w->key, key, len) == 0)
            w->fn(w->ctx, ev);
}

/* The exact waits of the event's key, then the prefix waits of each of its prefixes ending in '/'
 * (prefixes always do), found with the running hash: one pass over the key. */
static bool on_event(void *ctx, const mv_event *ev) {
    (void)ctx;
    const uint8_t *k = ev->kv.key.data;
    size_t n = ev->kv.key.len;
    call_matches(fnv(k, n), k, n, false, ev);
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; i++) {
        h = fnv_step(h, k[i]);
        if (k[i] == '/') call_matches(h, k, i + 1, true, ev);
    }
    return true;
}

static void on_revision(void *ctx, int64_t rev) {
    (void)ctx;
    if (kw.n == 0) return;
    mv_arena *a = mv_arena_new();
    mv_err err = mvcc_events_at(g_store, rev, false, a, on_event, NULL);
    mv_arena_free(a);
    if (err == MV_ERR_IO) { /* as the watch hub: a waiter must never miss a change */
        fprintf(stderr, "cetcd: fatal: cannot read the events of revision %lld back from the log\n",
                (long long)rev);
        abort();
    }
}

/* ---------- jobs ---------- */

static void unlink_job(loop_job *j) {
    if (j->prev)
        j->prev->next = j->next;
    else
        kw.head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        kw.tail = j->prev;
    j->prev = j->next = NULL;
    j->queued = false;
}

/* Runs the jobs queued before this pass began; those they queue wait for the next pass. */
static void on_timer(EV_P_ ev_timer *t, int revents) {
    (void)EV_A, (void)t, (void)revents;
    uint64_t pass = ++kw.pass;
    while (kw.head && kw.head->pass < pass) {
        loop_job *j = kw.head;
        unlink_job(j);
        j->run(j);
    }
    if (kw.head) ev_timer_start(EV_DEFAULT_ & kw.timer);
}

void loop_job_queue(loop_job *j) {
    if (j->queued) return;
    if (!kw.timer_ready) {
        ev_timer_init(&kw.timer, on_timer, 0., 0.);
        kw.timer_ready = true;
    }
    j->queued = true;
    j->pass = kw.pass;
    j->next = NULL;
    j->prev = kw.tail;
    if (kw.tail)
        kw.tail->next = j;
    else
        kw.head = j;
    kw.tail = j;
    if (!ev_is_active(&kw.timer)) ev_timer_start(EV_DEFAULT_ & kw.timer);
}

void loop_job_cancel(loop_job *j) {
    if (j->queued) unlink_job(j);
}
