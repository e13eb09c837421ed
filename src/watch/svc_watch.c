/* svc_watch.c: the Watch service's stream side, as etcd's v3rpc/watch.go: create, cancel and progress
 * requests on one bidirectional stream holding many watchers, and every WatchResponse it sends
 * (created, canceled, events with prev_kv and fragments, compaction, progress notifications). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "auth_gate.h"
#include "config.h"
#include "errors.h"
#include "flags.h"
#include "header.h"
#include "pb_wire.h"
#include "rpc.pb-c.h"
#include "store.h"
#include "svc_watch.h"
#include "watch_internal.h"

#define DEFAULT_PROGRESS_INTERVAL 600.0  /* etcd's 10 minutes */
#define GRPC_OVERHEAD_BYTES (512 * 1024) /* etcd fragments above --max-request-bytes plus this */

static const char ERR_EMPTY_RANGE[] = "mvcc: watcher range is empty";
static const char ERR_DUPLICATE_ID[] = "mvcc: duplicate watch ID provided on the WatchStream";

static double progress_interval = DEFAULT_PROGRESS_INTERVAL;

/* ---------- the progress interval flag: a Go duration ("10m", "1.5s", "1h30m", "100ms") ---------- */

void watch_init(void) {
    const char *v = g_config.watch_progress_notify_interval;
    double secs;
    if (v && *v) {
        if (!flags_parse_duration(v, &secs)) {
            fprintf(stderr, "cetcd: invalid value \"%s\" for --experimental-watch-progress-notify-interval\n",
                    v);
            exit(2);
        }
        if (secs > 0) progress_interval = secs; /* etcd keeps its default for 0 or less */
    }
    hub_init();
}

/* ---------- responses ---------- */

/* A stream answers its gRPC call, or the output it was opened with (the JSON gateway). */
static void out_send_parts(watch_stream *ws, const uint8_t *head, size_t head_len, const uint8_t *body,
                           size_t body_len) {
    if (ws->out.send)
        ws->out.send(ws->out.ctx, head, head_len, body, body_len);
    else
        rpc_send_parts(ws->call, head, head_len, body, body_len);
}

static void out_send(watch_stream *ws, const ProtobufCMessage *m) {
    if (!ws->out.send) return rpc_send(ws->call, m);
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = xmalloc(len ? len : 1);
    protobuf_c_message_pack(m, buf);
    ws->out.send(ws->out.ctx, buf, len, NULL, 0);
    free(buf);
}

static size_t stream_pending(const watch_stream *ws) {
    return ws->out.send ? ws->out.pending(ws->out.ctx) : rpc_pending_bytes(ws->call);
}

bool watch_stream_slow(const watch_stream *ws) {
    return stream_pending(ws) > WATCH_PENDING_LIMIT;
}

bool watch_stream_busy(const watch_stream *ws) {
    return stream_pending(ws) > HOLD_BUSY_BYTES;
}

static void send_response(watch_stream *ws, Etcdserverpb__WatchResponse *r, int64_t header_rev) {
    hub_flush_live();
    Etcdserverpb__ResponseHeader h;
    response_header_fill(&h, header_rev);
    r->header = &h;
    out_send(ws, &r->base);
}

/* Bytes one event adds to a WatchResponse (field 11: one tag byte, length, message). */
static size_t event_field_size(const Mvccpb__Event *e) {
    size_t n = mvccpb__event__get_packed_size(e);
    return 1 + pb_varint_size(n) + n;
}

/* etcd's sendFragments: a response of --max-request-bytes + 512 KiB or more with two or more events goes out
 * in pieces, each as large as fits (at least one event), all but the last marked fragment. */
static void send_fragments(watch_stream *ws, Etcdserverpb__WatchResponse *r) {
    size_t max = g_config.max_request_bytes + GRPC_OVERHEAD_BYTES;
    if (protobuf_c_message_get_packed_size(&r->base) < max || r->n_events < 2) {
        out_send(ws, &r->base);
        return;
    }
    Mvccpb__Event **all = r->events;
    size_t n = r->n_events, idx = 0;
    r->fragment = true;
    r->n_events = 0;
    size_t base = protobuf_c_message_get_packed_size(&r->base);
    while (idx < n) {
        size_t start = idx, size = base;
        for (; idx < n; idx++) {
            size_t es = event_field_size(all[idx]);
            if (idx > start && size + es >= max) break;
            size += es;
        }
        r->events = all + start;
        r->n_events = idx - start;
        r->fragment = idx < n;
        out_send(ws, &r->base);
    }
}

/* In one hub round many watchers get the same events: the header and events of a response are
 * encoded once and reused, and only each watcher's watch_id is encoded per send. */
static struct {
    int64_t header_rev;
    Mvccpb__Event **evs;
    size_t n, cap_evs;
    uint8_t *bytes;
    size_t len, cap;
    bool valid;
} shared_events;

/* Kept between rounds up to this size; a bigger one (a revision of many events) is given back. */
#define SHARED_KEEP_BYTES ((size_t)1 << 20)

void watch_events_cache_reset(void) {
    shared_events.valid = false;
    if (shared_events.cap > SHARED_KEEP_BYTES) {
        free(shared_events.bytes);
        shared_events.bytes = NULL;
        shared_events.cap = 0;
    }
    if (shared_events.cap_evs * sizeof *shared_events.evs > SHARED_KEEP_BYTES) {
        free(shared_events.evs);
        shared_events.evs = NULL;
        shared_events.cap_evs = 0;
    }
}

static bool shared_events_match(Mvccpb__Event **evs, size_t n, int64_t header_rev) {
    return shared_events.valid && shared_events.header_rev == header_rev && shared_events.n == n &&
           memcmp(shared_events.evs, evs, n * sizeof *evs) == 0;
}

/* Encodes header + events (a WatchResponse without watch_id) into the cache. */
static void shared_events_fill(Mvccpb__Event **evs, size_t n, int64_t header_rev) {
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h;
    response_header_fill(&h, header_rev);
    r.header = &h;
    r.events = evs;
    r.n_events = n;
    size_t len = protobuf_c_message_get_packed_size(&r.base);
    if (len > shared_events.cap) {
        free(shared_events.bytes);
        shared_events.bytes = xmalloc(len);
        shared_events.cap = len;
    }
    protobuf_c_message_pack(&r.base, shared_events.bytes);
    shared_events.len = len;
    if (n > shared_events.cap_evs) {
        free(shared_events.evs);
        shared_events.evs = xmalloc(n * sizeof *evs);
        shared_events.cap_evs = n;
    }
    memcpy(shared_events.evs, evs, n * sizeof *evs);
    shared_events.n = n;
    shared_events.header_rev = header_rev;
    shared_events.valid = true;
}

/* Field 2 (watch_id, int64 varint); proto3 leaves out a zero. */
static size_t encode_watch_id(int64_t id, uint8_t out[11]) {
    return (size_t)(pb_put_int_field(out, 0x10, id) - out);
}

void watch_send_events(watcher *w, Mvccpb__Event **evs, size_t n, int64_t header_rev) {
    if (w->fragment) {
        Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
        Etcdserverpb__ResponseHeader h;
        response_header_fill(&h, header_rev);
        r.header = &h;
        r.watch_id = w->id;
        r.events = evs;
        r.n_events = n;
        send_fragments(w->ws, &r);
    } else {
        if (!shared_events_match(evs, n, header_rev)) shared_events_fill(evs, n, header_rev);
        uint8_t head[11];
        size_t head_len = encode_watch_id(w->id, head);
        out_send_parts(w->ws, head, head_len, shared_events.bytes, shared_events.len);
    }
    if (n > 0) w->progress_due = false; /* etcd elides the next progress notification */
}

void watch_send_encoded_events(watcher *w, const uint8_t *events, size_t len, int64_t header_rev) {
    Etcdserverpb__ResponseHeader h;
    response_header_fill(&h, header_rev);
    size_t header_len = etcdserverpb__response_header__get_packed_size(&h);
    uint8_t head[11 + 2 + 64];
    assert(header_len <= 64); /* four varints */
    uint8_t *p = head + encode_watch_id(w->id, head);
    p = pb_put_bytes_head(p, 0x0a, header_len); /* field 1, the header */
    p += etcdserverpb__response_header__pack(&h, p);
    out_send_parts(w->ws, head, (size_t)(p - head), events, len);
    w->progress_due = false; /* events went out: etcd elides the next progress notification */
}

/* As etcd: the header revision is 0 (the store's compaction response carries no revision). */
void watch_send_compacted(watcher *w, int64_t compact_rev) {
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.watch_id = w->id;
    r.compact_revision = compact_rev;
    r.canceled = true;
    send_response(w->ws, &r, 0);
}

void watch_send_progress(watch_stream *ws, int64_t watch_id, int64_t rev) {
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.watch_id = watch_id;
    send_response(ws, &r, rev);
}

/* A create that fails: created and canceled at once, watch id -1, with etcd's reason. */
static void send_create_failed(watch_stream *ws, const char *reason) {
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.watch_id = -1;
    r.created = true;
    r.canceled = true;
    r.cancel_reason = (char *)reason;
    send_response(ws, &r, mvcc_revision(g_store));
}

/* ---------- progress notifications (progress_notify watchers) ---------- */

/* etcd's progress ticker: each progress watcher that got no events since the last tick, and is synced,
 * gets an empty response with the current revision. */
static void on_progress_tick(EV_P_ ev_timer *t, int revents) {
    (void)EV_A, (void)revents;
    watch_stream *ws = t->data;
    hub_flush_live(); /* events first; progress_due and synced are then up to date */
    int64_t cur = mvcc_revision(g_store);
    for (watcher *w = ws->watchers; w; w = w->s_next) {
        if (!w->progress_notify || w->compacted) continue;
        if (w->progress_due && w->synced && cur >= w->start_rev) watch_send_progress(ws, w->id, cur);
        w->progress_due = true;
    }
}

/* Like etcd, one ticker per stream, with up to 10% jitter so streams do not all fire together. */
static void start_progress_timer(watch_stream *ws) {
    if (ws->progress_on) return;
    double every = progress_interval * (1.0 + (double)rand() / RAND_MAX / 10.0);
    ev_timer_init(&ws->progress, on_progress_tick, every, every);
    ws->progress.data = ws;
    ev_timer_start(EV_DEFAULT_ & ws->progress);
    ws->progress_on = true;
}

/* ---------- watchers ---------- */

static int bytes_cmp(mv_bytes a, mv_bytes b) {
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.data, b.data, n) : 0;
    if (c != 0) return c;
    return (a.len > b.len) - (a.len < b.len);
}

static watcher *watcher_new(watch_stream *ws, int64_t id, mv_bytes key, mv_bytes end, int kind) {
    watcher *w = xcalloc(1, sizeof *w);
    uint8_t *mem = xmalloc(key.len + end.len + 1);
    memcpy(mem, key.data, key.len);
    if (end.len) memcpy(mem + key.len, end.data, end.len);
    w->ws = ws;
    w->id = id;
    w->key = (mv_bytes){mem, key.len};
    w->end = (mv_bytes){mem + key.len, end.len};
    w->kind = kind;
    return w;
}

static void watcher_free(watcher *w) {
    hold_forget(w);
    free((void *)w->key.data);
    free(w->evs);
    free(w);
}

static void stream_link(watch_stream *ws, watcher *w) {
    wids_put(ws, w);
    w->s_next = ws->watchers;
    if (ws->watchers) ws->watchers->s_prev = w;
    ws->watchers = w;
    ws->n_watchers++;
}

static void stream_unlink(watch_stream *ws, watcher *w) {
    wids_remove(ws, w);
    if (w->s_prev)
        w->s_prev->s_next = w->s_next;
    else
        ws->watchers = w->s_next;
    if (w->s_next) w->s_next->s_prev = w->s_prev;
    ws->n_watchers--;
}

static void set_options(watcher *w, const Etcdserverpb__WatchCreateRequest *c, int64_t cur) {
    w->prev_kv = c->prev_kv;
    w->fragment = c->fragment;
    w->progress_notify = w->progress_due = c->progress_notify;
    for (size_t i = 0; i < c->n_filters; i++) {
        if (c->filters[i] == ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT) w->no_put = true;
        if (c->filters[i] == ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE) w->no_delete = true;
    }
    /* etcd's watchableStore.watch: from now (0) or the future is synced; the past is caught up */
    w->start_rev = c->start_revision;
    w->synced = c->start_revision == 0 || c->start_revision > cur;
    w->next_rev = w->synced && c->start_revision < cur + 1 ? cur + 1 : c->start_revision;
}

/* The id etcd's watchStream.Watch gives: the client's if not 0, else the next free one from 0. */
static bool pick_id(watch_stream *ws, int64_t asked, int64_t *id) {
    if (asked != 0) {
        *id = asked;
        return wids_get(ws, asked) == NULL;
    }
    while (wids_get(ws, ws->next_id))
        ws->next_id++;
    *id = ws->next_id++;
    return true;
}

static void watch_create(watch_stream *ws, const Etcdserverpb__WatchCreateRequest *c) {
    static const uint8_t zero = 0;
    mv_bytes key =
        c->key.len ? (mv_bytes){c->key.data, c->key.len} : (mv_bytes){&zero, 1}; /* "\0": smallest */
    mv_bytes end = {c->range_end.data, c->range_end.len};
    if (c->start_revision < 0) return send_create_failed(ws, etcd_err_message(ETCD_ERR_COMPACTED));
    const char *denied = auth_watch_denied(ws->call ? rpc_call_caller(ws->call) : rpc_current_caller(),
                                           (mv_bytes){c->key.data, c->key.len}, end);
    if (denied) return send_create_failed(ws, denied);
    int kind = end.len == 0 ? WR_KEY : (end.len == 1 && end.data[0] == 0) ? WR_FROM : WR_RANGE;
    if (kind == WR_FROM) end.len = 0;
    if (kind == WR_RANGE && bytes_cmp(key, end) >= 0) return send_create_failed(ws, ERR_EMPTY_RANGE);
    int64_t id;
    if (!pick_id(ws, c->watch_id, &id)) return send_create_failed(ws, ERR_DUPLICATE_ID);
    int64_t cur = mvcc_revision(g_store);
    watcher *w = watcher_new(ws, id, key, end, kind);
    set_options(w, c, cur);
    stream_link(ws, w);
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.watch_id = id;
    r.created = true;
    send_response(ws, &r, cur); /* before hub_add: history follows the created response */
    hub_add(w);
    if (w->progress_notify) start_progress_timer(ws);
}

static void watch_cancel(watch_stream *ws, int64_t id) {
    watcher *w = wids_get(ws, id);
    if (!w) return; /* etcd answers nothing for an unknown id */
    hub_remove(w);
    stream_unlink(ws, w);
    watcher_free(w);
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.watch_id = id;
    r.canceled = true;
    send_response(ws, &r, mvcc_revision(g_store));
    if (ws->progress_deferred) hub_check_deferred();
}

/* etcd's RequestProgressAll: an empty response with watch id -1 once every watcher of the stream has
 * all events up to the current revision; while one is catching up, the answer waits for it. */
static void watch_progress(watch_stream *ws) {
    if (ws->n_watchers == 0) return; /* etcd has no watcher to answer through */
    hub_flush_live();                /* a backed-up watcher must show as unsynced first */
    if (hub_stream_synced(ws))
        watch_send_progress(ws, -1, mvcc_revision(g_store));
    else
        hub_defer_progress(ws);
}

/* ---------- the stream ---------- */

watch_stream *watch_stream_open(const watch_output *out) {
    watch_stream *ws = xcalloc(1, sizeof *ws);
    if (out) ws->out = *out;
    return ws;
}

void watch_stream_request(watch_stream *ws, const Etcdserverpb__WatchRequest *req) {
    switch (req->request_union_case) {
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST:
        watch_create(ws, req->create_request);
        break;
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CANCEL_REQUEST:
        watch_cancel(ws, req->cancel_request->watch_id);
        break;
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST:
        watch_progress(ws);
        break;
    default: /* etcd ignores a request it does not know and keeps the stream */
        break;
    }
}

void watch_stream_close(watch_stream *ws) {
    hub_forget_stream(ws);
    if (ws->progress_on) ev_timer_stop(EV_DEFAULT_ & ws->progress);
    while (ws->watchers) {
        watcher *w = ws->watchers;
        hub_remove(w);
        ws->watchers = w->s_next;
        watcher_free(w);
    }
    free(ws->ids);
    free(ws);
}

void watch_stream_msg(rpc_call *call, const uint8_t *msg, size_t len) {
    watch_stream *ws = rpc_user(call);
    if (!ws) {
        ws = watch_stream_open(NULL);
        ws->call = call;
        rpc_set_user(call, ws);
    }
    Etcdserverpb__WatchRequest *req = etcdserverpb__watch_request__unpack(NULL, len, msg);
    if (!req) {
        rpc_finish(call, GRPC_INTERNAL,
                   "grpc: failed to unmarshal the received message: malformed WatchRequest");
        return;
    }
    watch_stream_request(ws, req);
    etcdserverpb__watch_request__free_unpacked(req, NULL);
}

void watch_stream_closed(rpc_call *call) {
    watch_stream *ws = rpc_user(call);
    if (!ws) return;
    rpc_set_user(call, NULL);
    watch_stream_close(ws);
}
