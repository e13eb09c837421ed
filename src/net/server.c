/* server.c: client connections on the one libev loop. It reads bytes, picks HTTP/2 or HTTP/1.1 from
 * the first ones, and holds all output until the batch it may depend on is durable (commit.h). Slow
 * readers are throttled; dead connections free everything. Listeners are in accept.c, deadlines in
 * conn_timeout.c. */
#include <assert.h>
#include <errno.h>
#include <ev.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "commit.h"
#include "conn_internal.h"
#include "h2.h"
#include "http1.h"
#include "metrics.h"
#include "server.h"
#include "tls.h"

#define READ_CHUNK 65536
#define READ_ROUNDS 16               /* reads per readable event, for fairness between clients */
#define OUT_HIGH (4u << 20)          /* stop reading a connection with this much unsent output */
#define OUT_LOW (1u << 20)           /* and resume below this */
#define MAX_HTTP1_BUFFER (64u << 20) /* hard cap on unparsed HTTP/1 input */

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN (sizeof h2_preface - 1)

static conn *all_conns, *dirty_head, *dead_head;
static conn *holding_head; /* the connections with output held for a batch: a durable batch visits these */
static size_t n_conns;

/* --- connection life --- */

static void holding_add(conn *c) {
    assert(!c->holding);
    c->holding = true;
    c->hold_prev = NULL;
    c->hold_next = holding_head;
    if (holding_head) holding_head->hold_prev = c;
    holding_head = c;
}

static void holding_remove(conn *c) {
    if (!c->holding) return;
    c->holding = false;
    if (c->hold_prev)
        c->hold_prev->hold_next = c->hold_next;
    else
        holding_head = c->hold_next;
    if (c->hold_next) c->hold_next->hold_prev = c->hold_prev;
}

void conn_kill(conn *c) {
    if (c->dead) return;
    c->dead = true;
    ev_io_stop(EV_DEFAULT_ & c->rio);
    ev_io_stop(EV_DEFAULT_ & c->wio);
    timeout_stop(c);
    tls_conn_free(c);
    close(c->fd);
    c->fd = -1;
    n_conns--;
    accept_reserve_refill();
    c->freed_bytes = conn_unsent(c);
    if (c->h2) c->freed_bytes += h2_conn_free(c->h2);
    c->h2 = NULL;
    if (c->proto == PROTO_HTTP1) http1_conn_closed(c);
    holding_remove(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        all_conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->next_dead = dead_head; /* freed at the end of server_flush, when no list points at it */
    dead_head = c;
}

/* Once at least this many connections, and as many as remain, were freed, or connections that held
 * this many reply bytes, the allocator is asked to give free pages back, so that a crowd of
 * connections that came and went, or one that went with its replies unread, does not keep its memory
 * (glibc keeps freed chunks in the heap's middle otherwise). */
#define TRIM_AFTER_FREED 64
#define TRIM_AFTER_BYTES ((size_t)4 << 20)

static void reap_dead(void) {
    static unsigned freed;
    static size_t freed_bytes;
    while (dead_head) {
        conn *c = dead_head;
        dead_head = c->next_dead;
        sbuf_free(&c->in);
        for (int i = 0; i < c->n_waiting; i++)
            sbuf_free(&c->waiting[i].data);
        sbuf_free(&c->out);
        freed_bytes += c->freed_bytes;
        free(c);
        freed++;
    }
    if ((freed < TRIM_AFTER_FREED || freed < n_conns) && freed_bytes < TRIM_AFTER_BYTES) return;
    freed = 0;
    freed_bytes = 0;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

void conn_mark_dirty(conn *c) {
    if (c->dirty || c->dead) return;
    c->dirty = true;
    c->next_dirty = dirty_head;
    dirty_head = c;
}

/* The chunk new output joins: bytes are held until the batch they may depend on is durable. Tags only
 * grow, so a full queue can fold new bytes into its last chunk by raising that chunk's tag (never
 * releasing anything early). */
static sbuf *held_tail(conn *c) {
    uint64_t seq = commit_needed_seq();
    out_chunk *last = c->n_waiting ? &c->waiting[c->n_waiting - 1] : NULL;
    if (!last || (last->seq != seq && c->n_waiting < MAX_WAITING)) {
        if (c->n_waiting == 0) holding_add(c);
        last = &c->waiting[c->n_waiting++];
        memset(last, 0, sizeof *last);
    }
    if (seq > last->seq) last->seq = seq;
    return &last->data;
}

static void hold_output(conn *c, const void *data, size_t len) {
    sbuf_append(held_tail(c), data, len);
}

/* Moves every chunk whose batch is durable to the socket buffer. */
static void release_durable(conn *c) {
    uint64_t durable = commit_durable_seq();
    int done = 0;
    while (done < c->n_waiting && c->waiting[done].seq <= durable) {
        out_chunk *ch = &c->waiting[done++];
        if (sbuf_size(&c->out) == 0) { /* the usual case: hand the buffer over instead of copying */
            sbuf_free(&c->out);
            c->out = ch->data;
            memset(&ch->data, 0, sizeof ch->data);
            continue;
        }
        sbuf_append(&c->out, sbuf_head(&ch->data), sbuf_size(&ch->data));
        sbuf_free(&ch->data);
    }
    if (!done) return;
    memmove(c->waiting, c->waiting + done, (size_t)(c->n_waiting - done) * sizeof *c->waiting);
    c->n_waiting -= done;
    if (c->n_waiting == 0) holding_remove(c);
}

void conn_queue(conn *c, const void *data, size_t len) {
    if (c->dead) return;
    hold_output(c, data, len);
    conn_mark_dirty(c);
}

void conn_queue_released(conn *c, const void *data, size_t len) {
    if (!c->dead) hold_output(c, data, len);
}

void conn_reserve_released(conn *c, size_t len) {
    if (!c->dead) sbuf_reserve(held_tail(c), len);
}

size_t conn_unsent(const conn *c) {
    size_t n = sbuf_size(&c->out);
    for (int i = 0; i < c->n_waiting; i++)
        n += sbuf_size(&c->waiting[i].data);
    return n;
}

void server_release_durable(void) {
    for (conn *c = holding_head; c; c = c->hold_next) {
        assert(c->n_waiting > 0);
        conn_mark_dirty(c);
    }
}

void conn_close_when_flushed(conn *c) {
    if (c->closing || c->dead) return;
    c->closing = true;
    ev_io_stop(EV_DEFAULT_ & c->rio);
    timeout_linger(c);
    conn_mark_dirty(c);
}

static int parse_http1(conn *c);

/* Requests read but not run yet: HTTP/2 calls left for a later turn, or pipelined HTTP/1 requests
 * waiting for the replies before them to leave (h2_input.c, http1.c). Reading waits for them. */
static bool input_held(const conn *c) {
    if (c->h2) return h2_conn_backlogged(c->h2);
    return c->proto == PROTO_HTTP1 && http1_held(c, &c->in);
}

static void update_read_pause(conn *c) {
    if (c->dead || c->closing) return;
    size_t unsent = conn_unsent(c);
    bool held = input_held(c);
    if (!c->read_paused && (unsent > OUT_HIGH || held)) {
        c->read_paused = true;
        ev_io_stop(EV_DEFAULT_ & c->rio);
    } else if (c->read_paused && unsent < OUT_LOW && !held) {
        c->read_paused = false;
        ev_io_start(EV_DEFAULT_ & c->rio);
        timeout_reading_resumed(c);
        if (c->proto == PROTO_HTTP1 && sbuf_size(&c->in) && parse_http1(c) < 0) conn_close_when_flushed(c);
    }
}

/* --- output --- */

/* Writes c->out. Returns 1 when all is written, 0 on EAGAIN (write watcher started), -1 on error. */
static int write_out(conn *c) {
    while (sbuf_size(&c->out) > 0) {
        ssize_t n = conn_io_write(c, sbuf_head(&c->out), sbuf_size(&c->out));
        if (n > 0) {
            sbuf_consume(&c->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ev_io_start(EV_DEFAULT_ & c->wio);
            return 0;
        }
        return -1;
    }
    ev_io_stop(EV_DEFAULT_ & c->wio);
    sbuf_free(&c->out); /* an idle connection keeps no buffer */
    return 1;
}

/* New HTTP/2 frames join the held output; whatever is durable moves on to c->out. */
static int release_output(conn *c) {
    int more = c->h2 ? h2_conn_produce(c->h2, OUT_HIGH) : 0;
    release_durable(c);
    return more;
}

static void conn_flush(conn *c) {
    int more = 0, w = 1;
    for (int round = 0; round < 64 && !c->dead; round++) {
        more = release_output(c);
        w = more < 0 ? -1 : write_out(c);
        if (w < 0) return conn_kill(c);
        if (w == 0 || more == 0 || conn_unsent(c) >= OUT_HIGH) break; /* last: held until durable */
    }
    if (c->dead) return;
    /* round limit hit with the socket still writable: continue next turn */
    if (more > 0 && w == 1 && conn_unsent(c) < OUT_HIGH) ev_io_start(EV_DEFAULT_ & c->wio);
    bool drained = conn_unsent(c) == 0;
    if (drained && (c->closing || (c->h2 && h2_conn_done(c->h2)))) return conn_kill(c);
    update_read_pause(c);
}

bool server_has_dirty(void) {
    return dirty_head != NULL || dead_head != NULL;
}

void server_flush(void (*commit)(void)) {
    while (dirty_head) {
        conn *list = dirty_head;
        dirty_head = NULL;
        while (list) {
            conn *c = list;
            list = c->next_dirty;
            c->dirty = false;
            if (c->dead) continue;
            commit();
            conn_flush(c);
        }
    }
    reap_dead();
}

static void on_writable(EV_P_ ev_io *w, int revents) {
    (void)revents;
    (void)EV_A;
    conn *c = w->data;
    if (!c->tls_done && c->ssl) { /* the handshake wants to write */
        if (tls_conn_handshake(c) < 0) conn_kill(c);
        return;
    }
    int rc = write_out(c);
    if (rc < 0) return conn_kill(c);
    if (rc == 1) conn_mark_dirty(c); /* more frames may wait in the session; closing may finish */
}

/* --- input --- */

static int feed_h2(conn *c, const uint8_t *data, size_t len) {
    conn_mark_dirty(c);
    if (h2_conn_recv(c->h2, data, len) < 0) return -1;
    return timeout_h2_after_recv(c);
}

/* Parses what it can; the deadlines learn whether a request was served (some input consumed). */
static int parse_http1(conn *c) {
    size_t before = sbuf_size(&c->in);
    int rc = http1_conn_recv(c, &c->in, &c->http1_scanned);
    if (rc == 0) timeout_http1_fed(c, sbuf_size(&c->in) < before);
    if (rc == 0 && sbuf_size(&c->in) == 0) sbuf_free(&c->in); /* an idle connection keeps no buffer */
    return rc;
}

void conn_http1_resume(conn *c) {
    if (c->dead || c->closing || c->proto != PROTO_HTTP1 || sbuf_size(&c->in) == 0) return;
    if (parse_http1(c) < 0) conn_close_when_flushed(c);
    update_read_pause(c);
}

static int feed_http1(conn *c, const uint8_t *data, size_t len) {
    if (sbuf_size(&c->in) + len > MAX_HTTP1_BUFFER) return -1;
    sbuf_append(&c->in, data, len);
    return parse_http1(c);
}

/* Decides the protocol from the first bytes; then hands them over. */
static int feed_detect(conn *c, const uint8_t *data, size_t len) {
    sbuf_append(&c->in, data, len);
    size_t have = sbuf_size(&c->in);
    size_t cmp = have < H2_PREFACE_LEN ? have : H2_PREFACE_LEN;
    if (memcmp(sbuf_head(&c->in), h2_preface, cmp) != 0) {
        c->proto = PROTO_HTTP1;
        return parse_http1(c);
    }
    if (have < H2_PREFACE_LEN) return 0;
    if (c->metrics_only) return -1; /* the metrics listener speaks HTTP/1.1 only: no client API */
    c->proto = PROTO_H2;
    c->h2 = h2_conn_new(c);
    sbuf in = c->in;
    memset(&c->in, 0, sizeof c->in);
    int rc = feed_h2(c, sbuf_head(&in), sbuf_size(&in));
    sbuf_free(&in);
    return rc;
}

static int conn_feed(conn *c, const uint8_t *data, size_t len) {
    switch (c->proto) {
    case PROTO_H2:
        return feed_h2(c, data, len);
    case PROTO_HTTP1:
        return feed_http1(c, data, len);
    default:
        return feed_detect(c, data, len);
    }
}

static void on_readable(EV_P_ ev_io *w, int revents) {
    (void)revents;
    (void)EV_A;
    conn *c = w->data;
    static uint8_t buf[READ_CHUNK];
    int hs = tls_conn_handshake(c);
    if (hs <= 0) return hs < 0 ? conn_kill(c) : (void)0;
    for (int round = 0; round < READ_ROUNDS && !c->closing && !c->read_paused; round++) {
        ssize_t n = conn_io_read(c, buf, sizeof buf);
        if (n == 0) return conn_close_when_flushed(c); /* peer done sending; let replies drain */
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            return conn_kill(c);
        }
        timeout_read(c);
        if (conn_feed(c, buf, (size_t)n) < 0) return conn_close_when_flushed(c);
        update_read_pause(c);
        /* A short plain read emptied the socket: the read that would say EAGAIN is not made (the
         * watcher is level-triggered, so bytes that come later wake it again). TLS may hold more. */
        if (!c->ssl && (size_t)n < sizeof buf) break;
    }
    /* TLS may hold input already taken off the socket: no readable event would come for it */
    if (!c->dead && !c->closing && !c->read_paused && conn_io_pending(c)) ev_feed_event(EV_A_ w, EV_READ);
}

/* --- loop turns, for /metrics: a check watcher run first after the loop wakes, a prepare watcher run
 * last before it waits again (after the flush and commit of commit.c's), one clock read each --- */

static ev_check turn_begin;
static ev_prepare turn_end;
static struct timespec turn_t0;
static bool turn_open;

static void on_turn_begin(EV_P_ ev_check *w, int revents) {
    (void)EV_A;
    (void)w;
    (void)revents;
    clock_gettime(CLOCK_MONOTONIC, &turn_t0);
    turn_open = true;
}

static void on_turn_end(EV_P_ ev_prepare *w, int revents) {
    (void)EV_A;
    (void)w;
    (void)revents;
    if (!turn_open) return; /* the first prepare, before any wait */
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    turn_open = false;
    metrics_loop_turn((double)(t.tv_sec - turn_t0.tv_sec) + (double)(t.tv_nsec - turn_t0.tv_nsec) / 1e9);
}

/* Started with the first connection: before it the loop has no client's work to time. Neither keeps
 * the loop running. */
static void loop_turns_start(void) {
    if (ev_is_active(&turn_end)) return;
    ev_check_init(&turn_begin, on_turn_begin);
    ev_set_priority(&turn_begin, EV_MAXPRI);
    ev_check_start(EV_DEFAULT_ & turn_begin);
    ev_prepare_init(&turn_end, on_turn_end);
    ev_set_priority(&turn_end, EV_MINPRI);
    ev_prepare_start(EV_DEFAULT_ & turn_end);
    ev_unref(EV_DEFAULT);
    ev_unref(EV_DEFAULT);
}

void conn_new(int fd) {
    conn_new_on(fd, false, false);
}

void conn_new_on(int fd, bool tls, bool metrics_only) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn *c = xcalloc(1, sizeof *c);
    c->fd = fd;
    c->metrics_only = metrics_only;
    if (tls && !tls_conn_start(c)) {
        close(fd);
        free(c);
        return;
    }
    ev_io_init(&c->rio, on_readable, fd, EV_READ);
    ev_io_init(&c->wio, on_writable, fd, EV_WRITE);
    c->rio.data = c->wio.data = c;
    c->next = all_conns;
    if (all_conns) all_conns->prev = c;
    all_conns = c;
    n_conns++;
    ev_io_start(EV_DEFAULT_ & c->rio);
    timeout_start(c);
    loop_turns_start();
}

size_t conn_count(void) {
    return n_conns;
}

void server_shutdown(void (*commit)(void)) {
    accept_close_listeners();
    for (conn *c = all_conns; c; c = c->next) {
        if (c->h2) h2_conn_goaway(c->h2);
        conn_mark_dirty(c);
    }
    server_flush(commit);
    while (all_conns)
        conn_kill(all_conns);
    reap_dead();
}
