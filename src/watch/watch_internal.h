/* watch_internal.h: the state shared by the watch service's three parts: the gRPC stream side
 * (svc_watch.c), the index of watched keys and ranges (watch_index.c) and the delivery engine that
 * sends live events and catches slow or new watchers up from history (watch_hub.c). */
#ifndef CETCD_WATCH_INTERNAL_H
#define CETCD_WATCH_INTERNAL_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "kv.pb-c.h"
#include "mvcc.h"
#include "rpc.h"
#include "svc_watch.h"

/* Output queued on a stream's connection above which its watchers stop taking live events and fall
 * back to catching up from history once the client reads again. Kept small: memory stays bounded,
 * and a client that lags gets its events in few large responses (up to 1000 revisions each, as
 * etcd's unsynced watchers do), which is what lets it catch up. */
#define WATCH_PENDING_LIMIT (256u << 10)
/* Output queued on a connection above which live events are held back and sent together once it
 * drains (watch_hold.c), within these bounds per watcher and per stream. */
#define HOLD_BUSY_BYTES (32u << 10)
#define HOLD_WATCHER_BYTES (16u << 10)
#define HOLD_STREAM_BYTES (256u << 10)

typedef struct watch_stream watch_stream;

enum watch_range_kind {
    WR_KEY,   /* one key */
    WR_RANGE, /* [key, end) */
    WR_FROM,  /* every key >= key (range_end "\0") */
};

typedef struct watcher {
    watch_stream *ws;
    int64_t id;
    mv_bytes key, end; /* own copies, one allocation */
    int kind;          /* enum watch_range_kind */
    /* synced: revisions >= next_rev are delivered live. Unsynced: the next revision it still needs,
     * read from history by the hub. */
    int64_t next_rev;
    int64_t start_rev; /* as asked (0 for "from now"); progress waits until the store reaches it */
    bool prev_kv, fragment, progress_notify, no_put, no_delete;
    bool synced;
    bool compacted;    /* canceled by compaction: out of the index, its id still taken (as etcd) */
    bool progress_due; /* etcd's sws.progress[id]: no events sent since the last progress tick */
    /* index: the bucket of its key (WR_KEY) or the span of its range (watch_spans.c); ix_prev/ix_next
     * link the watchers of one bucket or span */
    struct watch_bucket *bucket;
    struct watch_span *span;
    struct watcher *ix_prev, *ix_next;
    struct watcher *s_prev, *s_next; /* the stream's watchers */
    struct watcher *u_prev, *u_next; /* the hub's unsynced list */
    struct watcher *id_next;         /* the stream's id map chain */
    /* the batch collected for one delivery round */
    uint64_t round;
    Mvccpb__Event **evs;
    size_t n_evs, cap_evs;
    int batch_revs;
    int64_t batch_last_rev, more_rev;
    /* live events held back while the connection is busy (watch_hold.c): encoded Event fields */
    uint8_t *held;
    size_t held_len, held_cap;
    int64_t held_first_rev, held_last_rev;
    bool in_hold_list; /* in watch_hold.c's list (it may have sent its events since) */
} watcher;

struct watch_stream {
    rpc_call *call;   /* a gRPC stream's, or NULL when it answers through out */
    watch_output out; /* the JSON gateway's (send NULL for a gRPC stream) */
    watcher *watchers;
    size_t n_watchers, n_unsynced;
    size_t held_bytes; /* held by its watchers (watch_hold.c) */
    watcher **ids;     /* id map: chained hash, power-of-two size */
    size_t ids_cap;
    int64_t next_id; /* etcd's nextID: auto ids start at 0 and skip taken ones */
    bool progress_deferred;
    watch_stream *d_prev, *d_next; /* the hub's list of streams with a deferred progress request */
    ev_timer progress;             /* progress_notify ticks, started with the first such watcher */
    bool progress_on;
};

/* --- watch_index.c --- */
void widx_add(watcher *w);
void widx_remove(watcher *w);
/* Calls fn for every indexed watcher whose key or range holds key. fn must not change the index. */
void widx_match(mv_bytes key, void (*fn)(watcher *w, void *ctx), void *ctx);
/* The index's key equality and hash, also used by watch_hub.c's chains of a history step's events. */
bool watch_key_eq(mv_bytes a, mv_bytes b);
uint64_t watch_key_hash(mv_bytes k);
size_t widx_count(void);
watcher *wids_get(const watch_stream *ws, int64_t id);
void wids_put(watch_stream *ws, watcher *w);
void wids_remove(watch_stream *ws, watcher *w);

/* --- watch_spans.c: the index's range and from-key watchers (kind != WR_KEY), in an interval tree --- */
void wspan_add(watcher *w);
void wspan_remove(watcher *w);
/* Calls fn for every such watcher whose range holds key. fn must not change the index. */
void wspan_match(mv_bytes key, void (*fn)(watcher *w, void *ctx), void *ctx);
/* distinct ranges indexed (watchers of the same range share one) */
size_t wspan_count(void);

/* --- watch_hub.c --- */
void hub_init(void);
/* A new watcher: indexed, and queued for catch-up from history unless synced. */
void hub_add(watcher *w);
/* Out of the index and the unsynced list (cancel, compaction, stream end). */
void hub_remove(watcher *w);
/* Every watcher of ws has everything up to the current revision (etcd's progressIfSync rule). */
bool hub_stream_synced(const watch_stream *ws);
/* A progress request that must wait until hub_stream_synced: answered by the hub later. */
void hub_defer_progress(watch_stream *ws);
void hub_forget_stream(watch_stream *ws);
/* Answers the deferred progress requests of streams that are now synced. */
void hub_check_deferred(void);
/* Sends the events collected from this loop turn's revisions. Every other response of a stream is
 * preceded by this, so nothing overtakes events of earlier revisions. */
void hub_flush_live(void);

/* --- watch_hold.c: live events held while a connection is busy --- */
/* Does w hold events? */
static inline bool hold_pending(const watcher *w) {
    return w->held_len > 0;
}
/* Holds these events too, if that keeps within w's and its stream's bounds; false (nothing held) if
 * not. */
bool hold_try_add(watcher *w, Mvccpb__Event **evs, size_t n, int64_t first_rev, int64_t last_rev);
/* Sends w's held events, if any, in one response. */
void hold_release(watcher *w);
/* Drops w's held events (it catches up from history instead): the first revision they held. */
int64_t hold_drop(watcher *w);
/* Releases held events whose connections are no longer busy, or all of them when forced. */
void hold_release_ready(bool force);
/* The watcher is going away: out of the list, its buffer freed (nothing sent). */
void hold_forget(watcher *w);
/* The round's events are about to be freed: forget their encodings. */
void hold_round_reset(void);

/* --- svc_watch.c: responses, used by the hub --- */
bool watch_stream_slow(const watch_stream *ws);
/* Output is queued on the stream's connection beyond HOLD_BUSY_BYTES. */
bool watch_stream_busy(const watch_stream *ws);
/* One response of already encoded Event fields. */
void watch_send_encoded_events(watcher *w, const uint8_t *events, size_t len, int64_t header_rev);
void watch_send_events(watcher *w, Mvccpb__Event **evs, size_t n, int64_t header_rev);
/* The hub calls this when a round begins or ends: its event objects are about to be freed. */
void watch_events_cache_reset(void);
void watch_send_compacted(watcher *w, int64_t compact_rev);
void watch_send_progress(watch_stream *ws, int64_t watch_id, int64_t rev);

#endif
