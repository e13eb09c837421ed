/* watch_hub.c: delivers events to watchers, as etcd's watchableStore: each new revision is read once
 * and sent to the synced watchers of its keys; new watchers with an old start revision and watchers
 * of slow streams are unsynced and caught up from history in bounded steps, with no gap and no repeat. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log_msg.h"
#include "revision_hooks.h"
#include "store.h"
#include "watch_internal.h"

#define WATCH_BATCH_MAX_REVS 1000 /* etcd's watchBatchMaxRevs: revisions in one history response */
#define SYNC_MAX_WATCHERS 512     /* etcd's maxWatchersPerSync */
#define SYNC_MAX_REVS 1000        /* revisions read from history in one step */
#define SYNC_MAX_BYTES (4u << 20) /* event bytes read from history in one step */
#define SYNC_POLL 0.005           /* seconds between tries while only slow streams are unsynced */

typedef struct rev_event {
    mv_bytes key;
    int type;
    Mvccpb__Event *plain, *with_prev;
} rev_event;

static struct {
    uint64_t round;
    watcher *unsynced, *unsynced_tail;
    size_t n_unsynced, n_prev_kv;
    watch_stream *deferred;
    ev_timer sync_timer;
    mv_arena *arena;   /* the events being delivered */
    size_t loaded;     /* bytes of event data loaded in this step */
    bool skip_deletes; /* loading the compaction revision, whose tombstones etcd no longer has */
    rev_event *evs;    /* the events of the revision being matched */
    size_t n_evs, cap_evs;
    watcher **touched; /* watchers with a batch in this round */
    size_t n_touched, cap_touched;
    bool live_open;          /* a live round collects every revision made in this loop turn */
    ev_prepare live_flush;   /* sends it before the turn's output is flushed */
    struct step_event *step; /* the events a history step read, in revision order */
    size_t n_step, cap_step;
    struct key_chain *chains; /* open addressing: the first and last step event of each key */
    size_t cap_chains;
} hub;

/* One event read from history, and the next one of the same key (index + 1; 0: none). */
typedef struct step_event {
    int64_t rev;
    rev_event ev;
    size_t next;
} step_event;

typedef struct key_chain {
    size_t first, last; /* index + 1 into hub.step; first 0: a free slot */
} key_chain;

enum { SYNC_IDLE, SYNC_PROGRESS, SYNC_BLOCKED };

/* ---------- loading a revision's events as protobuf ---------- */

static Mvccpb__KeyValue *kv_pb(const mv_kv *kv) {
    Mvccpb__KeyValue *p = mv_arena_alloc(hub.arena, sizeof *p);
    mvccpb__key_value__init(p);
    p->key = (ProtobufCBinaryData){kv->key.len, (uint8_t *)kv->key.data};
    p->value = (ProtobufCBinaryData){kv->value.len, (uint8_t *)kv->value.data};
    p->create_revision = kv->create_revision;
    p->mod_revision = kv->mod_revision;
    p->version = kv->version;
    p->lease = kv->lease;
    return p;
}

static bool on_event(void *ctx, const mv_event *ev) {
    (void)ctx;
    if (hub.skip_deletes && ev->type == MV_EVENT_DELETE) return true;
    Mvccpb__Event *plain = mv_arena_alloc(hub.arena, sizeof *plain);
    mvccpb__event__init(plain);
    plain->type =
        ev->type == MV_EVENT_DELETE ? MVCCPB__EVENT__EVENT_TYPE__DELETE : MVCCPB__EVENT__EVENT_TYPE__PUT;
    plain->kv = kv_pb(&ev->kv);
    Mvccpb__Event *with_prev = plain;
    bool create = ev->type == MV_EVENT_PUT && ev->kv.create_revision == ev->kv.mod_revision;
    if (ev->prev_kv && !create) { /* etcd attaches no prev_kv to a create event */
        with_prev = mv_arena_alloc(hub.arena, sizeof *with_prev);
        *with_prev = *plain;
        with_prev->prev_kv = kv_pb(ev->prev_kv);
        hub.loaded += ev->prev_kv->value.len;
    }
    if (hub.n_evs == hub.cap_evs) {
        hub.cap_evs = hub.cap_evs ? hub.cap_evs * 2 : 64;
        hub.evs = realloc(hub.evs, hub.cap_evs * sizeof *hub.evs);
        if (!hub.evs) abort();
    }
    hub.evs[hub.n_evs++] = (rev_event){ev->kv.key, ev->type, plain, with_prev};
    hub.loaded += ev->kv.key.len + ev->kv.value.len + 64;
    return true;
}

static mv_err load_revision(int64_t rev, bool with_prev) {
    hub.n_evs = 0;
    hub.skip_deletes = rev == mvcc_compact_revision(g_store);
    mv_err err = mvcc_events_at(g_store, rev, with_prev, hub.arena, on_event, NULL);
    if (err == MV_ERR_IO) { /* never a silent gap in a watch: a log that cannot be read back is fatal */
        fprintf(stderr, "cetcd: fatal: cannot read the events of revision %lld back from the log\n",
                (long long)rev);
        abort();
    }
    return err;
}

/* ---------- batches ---------- */

static void touch(watcher *w) {
    if (w->round == hub.round) return;
    w->round = hub.round;
    w->n_evs = 0;
    w->batch_revs = 0;
    w->more_rev = 0;
    if (hub.n_touched == hub.cap_touched) {
        hub.cap_touched = hub.cap_touched ? hub.cap_touched * 2 : 256;
        hub.touched = realloc(hub.touched, hub.cap_touched * sizeof *hub.touched);
        if (!hub.touched) abort();
    }
    hub.touched[hub.n_touched++] = w;
}

/* etcd's eventBatch.add: at most WATCH_BATCH_MAX_REVS revisions; the first one left out is more_rev. */
static void batch_add(watcher *w, const rev_event *ev, int64_t rev) {
    if (w->more_rev) return;
    if (w->n_evs == 0) {
        w->batch_revs = 1;
    } else if (rev > w->batch_last_rev) {
        if (w->batch_revs == WATCH_BATCH_MAX_REVS) {
            w->more_rev = rev;
            return;
        }
        w->batch_revs++;
    }
    if (w->n_evs == w->cap_evs) {
        w->cap_evs = w->cap_evs ? w->cap_evs * 2 : 4;
        w->evs = realloc(w->evs, w->cap_evs * sizeof *w->evs);
        if (!w->evs) abort();
    }
    w->evs[w->n_evs++] = w->prev_kv ? ev->with_prev : ev->plain;
    w->batch_last_rev = rev;
}

/* Drops the round's batches; big event arrays are given back. */
static void end_round(void) {
    for (size_t i = 0; i < hub.n_touched; i++) {
        watcher *w = hub.touched[i];
        w->n_evs = 0;
        if (w->cap_evs > 64) {
            free(w->evs);
            w->evs = NULL;
            w->cap_evs = 0;
        }
    }
    hub.n_touched = 0;
    if (hub.cap_step > 4096) { /* a big step's index is given back */
        free(hub.step);
        free(hub.chains);
        hub.step = NULL;
        hub.chains = NULL;
        hub.cap_step = hub.cap_chains = 0;
    }
    if (hub.cap_evs > 4096) { /* a revision of many events: its array is given back */
        free(hub.evs);
        hub.evs = NULL;
        hub.n_evs = hub.cap_evs = 0;
    }
    if (hub.cap_touched > 4096) {
        free(hub.touched);
        hub.touched = NULL;
        hub.cap_touched = 0;
    }
    watch_events_cache_reset();
    hold_round_reset();
    mv_arena_free(hub.arena);
    hub.arena = NULL;
    hub.loaded = 0;
}

static void begin_round(void) {
    watch_events_cache_reset();
    hold_round_reset();
    hub.round++;
    hub.arena = mv_arena_new();
    hub.loaded = 0;
}

static bool filtered(const watcher *w, int type) {
    return type == MV_EVENT_PUT ? w->no_put : w->no_delete;
}

/* ---------- synced and unsynced ---------- */

static void schedule_sync(double after) {
    ev_timer *t = &hub.sync_timer;
    if (ev_is_active(t)) {
        if (after > 0) return;
        ev_timer_stop(EV_DEFAULT_ t);
    }
    ev_timer_set(t, after, 0.);
    ev_timer_start(EV_DEFAULT_ t);
}

static void unsynced_push(watcher *w) {
    w->u_next = NULL;
    w->u_prev = hub.unsynced_tail;
    if (hub.unsynced_tail)
        hub.unsynced_tail->u_next = w;
    else
        hub.unsynced = w;
    hub.unsynced_tail = w;
}

static void unsynced_unlink(watcher *w) {
    if (w->u_prev)
        w->u_prev->u_next = w->u_next;
    else
        hub.unsynced = w->u_next;
    if (w->u_next)
        w->u_next->u_prev = w->u_prev;
    else
        hub.unsynced_tail = w->u_prev;
    w->u_prev = w->u_next = NULL;
}

static void make_unsynced(watcher *w, int64_t next_rev) {
    w->synced = false;
    w->next_rev = next_rev;
    unsynced_push(w);
    hub.n_unsynced++;
    w->ws->n_unsynced++;
    schedule_sync(SYNC_POLL);
}

static void make_synced(watcher *w) {
    unsynced_unlink(w);
    w->synced = true;
    hub.n_unsynced--;
    w->ws->n_unsynced--;
}

void hub_add(watcher *w) {
    widx_add(w);
    if (w->prev_kv) hub.n_prev_kv++;
    if (w->synced) return;
    make_unsynced(w, w->next_rev);
    schedule_sync(0);
}

void hub_remove(watcher *w) {
    hub_flush_live();         /* its batch may be in the live round */
    if (w->compacted) return; /* already out */
    widx_remove(w);
    if (w->prev_kv) hub.n_prev_kv--;
    if (w->synced) return;
    unsynced_unlink(w);
    hub.n_unsynced--;
    w->ws->n_unsynced--;
}

/* ---------- progress ---------- */

bool hub_stream_synced(const watch_stream *ws) {
    if (ws->n_unsynced) return false;
    int64_t cur = mvcc_revision(g_store);
    for (const watcher *w = ws->watchers; w; w = w->s_next)
        if (!w->compacted && cur < w->start_rev) return false;
    return true;
}

void hub_defer_progress(watch_stream *ws) {
    if (ws->progress_deferred) return;
    ws->progress_deferred = true;
    ws->d_prev = NULL;
    ws->d_next = hub.deferred;
    if (hub.deferred) hub.deferred->d_prev = ws;
    hub.deferred = ws;
}

void hub_forget_stream(watch_stream *ws) {
    if (!ws->progress_deferred) return;
    ws->progress_deferred = false;
    if (ws->d_prev)
        ws->d_prev->d_next = ws->d_next;
    else
        hub.deferred = ws->d_next;
    if (ws->d_next) ws->d_next->d_prev = ws->d_prev;
    ws->d_prev = ws->d_next = NULL;
}

/* Answers the deferred progress requests of streams that are now synced. */
void hub_check_deferred(void) {
    for (watch_stream *ws = hub.deferred, *next; ws; ws = next) {
        next = ws->d_next;
        if (!hub_stream_synced(ws)) continue;
        hub_forget_stream(ws);
        watch_send_progress(ws, -1, mvcc_revision(g_store));
    }
}

/* ---------- live delivery ---------- */

typedef struct match_ctx {
    const rev_event *ev;
    int64_t rev;
} match_ctx;

static void live_match(watcher *w, void *ctx) {
    match_ctx *m = ctx;
    if (!w->synced || m->rev < w->next_rev || filtered(w, m->ev->type)) return;
    touch(w);
    batch_add(w, m->ev, m->rev);
}

static void match_events(int64_t rev, void (*fn)(watcher *, void *)) {
    for (size_t i = 0; i < hub.n_evs; i++) {
        match_ctx m = {&hub.evs[i], rev};
        widx_match(hub.evs[i].key, fn, &m);
    }
}

/* The store made revision rev: its events join the batch of every synced watcher of their keys.
 * The batches of one loop turn go out together (hub_flush_live), one response per watcher holding
 * every revision of the turn, so a busy writer does not cost one message per event per watcher. */
static void on_revision(void *ctx, int64_t rev) {
    (void)ctx;
    if (widx_count() == 0) return;
    if (!hub.live_open) {
        begin_round();
        hub.live_open = true;
    }
    if (load_revision(rev, hub.n_prev_kv > 0) == MV_OK) match_events(rev, live_match);
}

/* A watcher's batch of the live round: sent now, held while its connection is busy (watch_hold.c), or,
 * when the stream is backed up (or the batch reached the revision limit), caught up from history from
 * where it stops. Held events always go out before newer ones. */
static void deliver_live(watcher *w) {
    int64_t first = w->evs[0]->kv->mod_revision;
    if (watch_stream_slow(w->ws)) {
        log_msg(LOG_DEBUG, "watch: stream backed up; watcher %lld catches up from history", (long long)w->id);
        make_unsynced(w, hold_pending(w) ? hold_drop(w) : first);
        return;
    }
    bool busy = watch_stream_busy(w->ws);
    if (!w->fragment && !w->more_rev && (busy || hold_pending(w)) &&
        hold_try_add(w, w->evs, w->n_evs, first, w->batch_last_rev)) {
        if (!busy) hold_release(w);
        return;
    }
    hold_release(w);
    watch_send_events(w, w->evs, w->n_evs, w->batch_last_rev);
    if (w->more_rev) make_unsynced(w, w->more_rev);
}

/* Sends (or holds) the live round's batches, then the held events that may go: those of drained
 * connections, or all of them when forced (before any other response, so nothing overtakes them). */
static void flush_live(bool force) {
    if (hub.live_open) {
        hub.live_open = false;
        for (size_t i = 0; i < hub.n_touched; i++)
            if (hub.touched[i]->n_evs) deliver_live(hub.touched[i]);
        end_round();
        if (hub.deferred) hub_check_deferred();
    }
    hold_release_ready(force);
}

void hub_flush_live(void) {
    flush_live(true);
}

static void on_live_flush(EV_P_ ev_prepare *p, int revents) {
    (void)EV_A, (void)p, (void)revents;
    flush_live(false);
}

static void sync_match(watcher *w, void *ctx) {
    match_ctx *m = ctx;
    if (w->round != hub.round || w->synced || m->rev < w->next_rev || filtered(w, m->ev->type)) return;
    batch_add(w, m->ev, m->rev);
}

/* --- a history step's events by key, so the watchers of one key take them in one walk each --- */

static void step_push(int64_t rev, const rev_event *ev) {
    if (hub.n_step == hub.cap_step) {
        hub.cap_step = hub.cap_step ? hub.cap_step * 2 : 256;
        hub.step = realloc(hub.step, hub.cap_step * sizeof *hub.step);
        if (!hub.step) abort();
    }
    hub.step[hub.n_step++] = (step_event){rev, *ev, 0};
}

/* The chain slot of key: its own, or the free one where it would go. */
static key_chain *chain_slot(mv_bytes key) {
    size_t mask = hub.cap_chains - 1;
    for (size_t i = watch_key_hash(key) & mask;; i = (i + 1) & mask) {
        key_chain *c = &hub.chains[i];
        if (!c->first || watch_key_eq(hub.step[c->first - 1].ev.key, key)) return c;
    }
}

/* Links every step event to the next one of its key, in revision order. */
static void build_chains(void) {
    size_t cap = 16;
    while (cap < 2 * hub.n_step)
        cap *= 2;
    if (cap > hub.cap_chains) {
        free(hub.chains);
        hub.chains = malloc(cap * sizeof *hub.chains);
        if (!hub.chains) abort();
        hub.cap_chains = cap;
    }
    memset(hub.chains, 0, hub.cap_chains * sizeof *hub.chains);
    for (size_t i = 0; i < hub.n_step; i++) {
        key_chain *c = chain_slot(hub.step[i].ev.key);
        if (c->first)
            hub.step[c->last - 1].next = i + 1;
        else
            c->first = i + 1;
        c->last = i + 1;
    }
}

/* Whether w's batch of the step is the one `was` got: the same key from the same revision, with the
 * same filters and prev_kv (both started the step with an empty batch). */
static bool same_batch(const watcher *was, const watcher *w) {
    return was && was->next_rev == w->next_rev && was->no_put == w->no_put &&
           was->no_delete == w->no_delete && was->prev_kv == w->prev_kv && watch_key_eq(was->key, w->key);
}

static void copy_batch(watcher *w, const watcher *from) {
    if (w->cap_evs < from->n_evs) {
        w->cap_evs = from->n_evs;
        w->evs = realloc(w->evs, w->cap_evs * sizeof *w->evs);
        if (!w->evs) abort();
    }
    if (from->n_evs) memcpy(w->evs, from->evs, from->n_evs * sizeof *w->evs);
    w->n_evs = from->n_evs;
    w->batch_revs = from->batch_revs;
    w->batch_last_rev = from->batch_last_rev;
    w->more_rev = from->more_rev;
}

/* The step's events of its key join the batch of each chosen watcher of one key (sync_match's rules);
 * the range watchers took theirs as the events were read (wspan_match). */
static void batch_key_watchers(void) {
    if (hub.n_step == 0) return;
    build_chains();
    const watcher *was = NULL; /* the last key watcher batched: the next often shares its batch */
    for (size_t i = 0; i < hub.n_touched; i++) {
        watcher *w = hub.touched[i];
        if (w->kind != WR_KEY) continue;
        assert(w->n_evs == 0 && !w->more_rev);
        if (same_batch(was, w)) {
            copy_batch(w, was);
            continue;
        }
        for (size_t j = chain_slot(w->key)->first; j && !w->more_rev; j = hub.step[j - 1].next) {
            const step_event *e = &hub.step[j - 1];
            if (e->rev >= w->next_rev && !filtered(w, e->ev.type)) batch_add(w, &e->ev, e->rev);
        }
        was = w;
    }
    hub.n_step = 0;
}

/* Picks up to SYNC_MAX_WATCHERS unsynced watchers whose streams can take output; those below the
 * compaction revision get etcd's compacted cancel instead. Returns the lowest revision needed. */
static int64_t choose(int64_t compact, bool *with_prev) {
    int64_t min_rev = INT64_MAX;
    for (watcher *w = hub.unsynced, *next; w && hub.n_touched < SYNC_MAX_WATCHERS; w = next) {
        next = w->u_next;
        if (watch_stream_slow(w->ws)) continue;
        if (w->next_rev < compact) {
            watch_send_compacted(w, compact);
            hub_remove(w);
            w->compacted = true;
            continue;
        }
        touch(w);
        if (w->prev_kv) *with_prev = true;
        if (w->next_rev < min_rev) min_rev = w->next_rev;
    }
    return min_rev;
}

/* Reads revisions from min_rev on, within the step's bounds. Returns the last revision read. */
static int64_t scan_history(int64_t min_rev, int64_t cur, bool with_prev) {
    int64_t rev = min_rev;
    for (; rev <= cur; rev++) {
        if (load_revision(rev, with_prev) == MV_OK)
            for (size_t i = 0; i < hub.n_evs; i++) {
                step_push(rev, &hub.evs[i]);
                match_ctx m = {&hub.evs[i], rev};
                wspan_match(hub.evs[i].key, sync_match, &m);
            }
        if (rev - min_rev + 1 >= SYNC_MAX_REVS || hub.loaded >= SYNC_MAX_BYTES) break;
    }
    batch_key_watchers();
    return rev <= cur ? rev : cur;
}

/* Sends each chosen watcher its batch and moves it on; returns whether any moved. */
static bool deliver_history(int64_t last, int64_t cur) {
    bool moved = false;
    for (size_t i = 0; i < hub.n_touched; i++) {
        watcher *w = hub.touched[i];
        if (w->n_evs) {
            if (watch_stream_slow(w->ws)) continue; /* read again next time */
            watch_send_events(w, w->evs, w->n_evs, cur);
        }
        int64_t end = w->more_rev ? w->more_rev : last + 1;
        if (end > w->next_rev) {
            w->next_rev = end;
            moved = true;
        }
        if (w->next_rev > cur) {
            make_synced(w);
        } else { /* to the back of the line, so every unsynced watcher gets its turn */
            unsynced_unlink(w);
            unsynced_push(w);
        }
    }
    return moved;
}

static int sync_step(void) {
    if (!hub.unsynced) return SYNC_IDLE;
    int64_t cur = mvcc_revision(g_store), compact = mvcc_compact_revision(g_store);
    begin_round();
    bool with_prev = false;
    int64_t min_rev = choose(compact, &with_prev);
    bool moved = false;
    if (hub.n_touched) {
        int64_t last = min_rev <= cur ? scan_history(min_rev, cur, with_prev) : cur;
        moved = deliver_history(last, cur);
    }
    end_round();
    if (hub.deferred) hub_check_deferred();
    if (!hub.unsynced) return SYNC_IDLE;
    return moved ? SYNC_PROGRESS : SYNC_BLOCKED;
}

static void on_sync_timer(EV_P_ ev_timer *t, int revents) {
    (void)EV_A, (void)t, (void)revents;
    hub_flush_live(); /* one round at a time, and live events before history */
    int r = sync_step();
    if (r == SYNC_PROGRESS)
        schedule_sync(0);
    else if (r == SYNC_BLOCKED)
        schedule_sync(SYNC_POLL);
}

void hub_init(void) {
    ev_timer_init(&hub.sync_timer, on_sync_timer, 0., 0.);
    ev_prepare_init(&hub.live_flush, on_live_flush);
    ev_set_priority(&hub.live_flush, EV_MAXPRI); /* before commit.c's flush of the turn's output */
    ev_prepare_start(EV_DEFAULT_ & hub.live_flush);
    revision_hook_add(on_revision, NULL);
}
