/* server.c: listening sockets and client connections on the one libev loop. It reads bytes, picks
 * HTTP/2 or HTTP/1.1 from the first ones, and holds all output until the batch it may depend on is
 * durable (commit.h). Slow readers are throttled; dead connections free everything. */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "commit.h"
#include "flags.h"
#include "h2.h"
#include "http1.h"
#include "log_msg.h"
#include "server.h"

#define READ_CHUNK 65536
#define READ_ROUNDS 16               /* reads per readable event, for fairness between clients */
#define OUT_HIGH (4u << 20)          /* stop reading a connection with this much unsent output */
#define OUT_LOW (1u << 20)           /* and resume below this */
#define LINGER_SECONDS 5.0           /* how long a closing connection may take to drain */
#define ACCEPT_RETRY_SECONDS 0.1     /* pause after EMFILE */
#define MAX_HTTP1_BUFFER (64u << 20) /* hard cap on unparsed HTTP/1 input */

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN (sizeof h2_preface - 1)

#define MAX_WAITING 4 /* tags in flight are at most "being synced" and "being collected" */

/* Output bytes that may leave once the batch numbered seq is durable (commit.h). */
typedef struct out_chunk {
    uint64_t seq;
    sbuf data;
} out_chunk;

typedef enum conn_proto { PROTO_DETECT, PROTO_H2, PROTO_HTTP1 } conn_proto;

struct conn {
    ev_io rio, wio;
    ev_timer linger;
    int fd;
    conn_proto proto;
    sbuf in;                        /* unparsed input (detection, HTTP/1) */
    out_chunk waiting[MAX_WAITING]; /* output held until its batch is durable, oldest first */
    int n_waiting;
    sbuf out; /* output released to the socket */
    h2_conn *h2;
    bool dirty, dead, closing, read_paused;
    conn *next_dirty, *next_dead;
    conn *prev, *next;
};

typedef struct listener {
    ev_io io;
    ev_timer retry;
    int fd;
    struct listener *next;
} listener;

static listener *listeners;
static conn *all_conns, *dirty_head, *dead_head;

/* --- connection life --- */

static void conn_kill(conn *c) {
    if (c->dead) return;
    c->dead = true;
    ev_io_stop(EV_DEFAULT_ & c->rio);
    ev_io_stop(EV_DEFAULT_ & c->wio);
    ev_timer_stop(EV_DEFAULT_ & c->linger);
    close(c->fd);
    c->fd = -1;
    if (c->h2) h2_conn_free(c->h2);
    c->h2 = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        all_conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->next_dead = dead_head; /* freed at the end of server_flush, when no list points at it */
    dead_head = c;
}

static void reap_dead(void) {
    while (dead_head) {
        conn *c = dead_head;
        dead_head = c->next_dead;
        sbuf_free(&c->in);
        for (int i = 0; i < c->n_waiting; i++)
            sbuf_free(&c->waiting[i].data);
        sbuf_free(&c->out);
        free(c);
    }
}

void conn_mark_dirty(conn *c) {
    if (c->dirty || c->dead) return;
    c->dirty = true;
    c->next_dirty = dirty_head;
    dirty_head = c;
}

/* Holds bytes until the batch they may depend on is durable. Tags only grow, so a full queue can
 * fold new bytes into its last chunk by raising that chunk's tag (never releasing anything early). */
static void hold_output(conn *c, const void *data, size_t len) {
    uint64_t seq = commit_needed_seq();
    out_chunk *last = c->n_waiting ? &c->waiting[c->n_waiting - 1] : NULL;
    if (!last || (last->seq != seq && c->n_waiting < MAX_WAITING)) {
        last = &c->waiting[c->n_waiting++];
        memset(last, 0, sizeof *last);
    }
    if (seq > last->seq) last->seq = seq;
    sbuf_append(&last->data, data, len);
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
}

void conn_queue(conn *c, const void *data, size_t len) {
    if (c->dead) return;
    hold_output(c, data, len);
    conn_mark_dirty(c);
}

void conn_queue_released(conn *c, const void *data, size_t len) {
    if (!c->dead) hold_output(c, data, len);
}

size_t conn_unsent(const conn *c) {
    size_t n = sbuf_size(&c->out);
    for (int i = 0; i < c->n_waiting; i++)
        n += sbuf_size(&c->waiting[i].data);
    return n;
}

void server_release_durable(void) {
    for (conn *c = all_conns; c; c = c->next)
        if (c->n_waiting) conn_mark_dirty(c);
}

static void on_linger(EV_P_ ev_timer *t, int revents) {
    (void)revents;
    (void)EV_A;
    conn_kill(t->data);
}

void conn_close_when_flushed(conn *c) {
    if (c->closing || c->dead) return;
    c->closing = true;
    ev_io_stop(EV_DEFAULT_ & c->rio);
    ev_timer_start(EV_DEFAULT_ & c->linger);
    conn_mark_dirty(c);
}

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
        if (c->proto == PROTO_HTTP1 && sbuf_size(&c->in) && http1_conn_recv(c, &c->in) < 0)
            conn_close_when_flushed(c);
    }
}

/* --- output --- */

/* Writes c->out. Returns 1 when all is written, 0 on EAGAIN (write watcher started), -1 on error. */
static int write_out(conn *c) {
    while (sbuf_size(&c->out) > 0) {
        ssize_t n = write(c->fd, sbuf_head(&c->out), sbuf_size(&c->out));
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
    int rc = write_out(c);
    if (rc < 0) return conn_kill(c);
    if (rc == 1) conn_mark_dirty(c); /* more frames may wait in the session; closing may finish */
}

/* --- input --- */

static int feed_h2(conn *c, const uint8_t *data, size_t len) {
    conn_mark_dirty(c);
    return h2_conn_recv(c->h2, data, len);
}

static int feed_http1(conn *c, const uint8_t *data, size_t len) {
    if (sbuf_size(&c->in) + len > MAX_HTTP1_BUFFER) return -1;
    sbuf_append(&c->in, data, len);
    return http1_conn_recv(c, &c->in);
}

/* Decides the protocol from the first bytes; then hands them over. */
static int feed_detect(conn *c, const uint8_t *data, size_t len) {
    sbuf_append(&c->in, data, len);
    size_t have = sbuf_size(&c->in);
    size_t cmp = have < H2_PREFACE_LEN ? have : H2_PREFACE_LEN;
    if (memcmp(sbuf_head(&c->in), h2_preface, cmp) != 0) {
        c->proto = PROTO_HTTP1;
        return http1_conn_recv(c, &c->in);
    }
    if (have < H2_PREFACE_LEN) return 0;
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
    for (int round = 0; round < READ_ROUNDS && !c->closing && !c->read_paused; round++) {
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n == 0) return conn_close_when_flushed(c); /* peer done sending; let replies drain */
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            return conn_kill(c);
        }
        if (conn_feed(c, buf, (size_t)n) < 0) return conn_close_when_flushed(c);
        update_read_pause(c);
    }
}

static void conn_new(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn *c = xcalloc(1, sizeof *c);
    c->fd = fd;
    ev_io_init(&c->rio, on_readable, fd, EV_READ);
    ev_io_init(&c->wio, on_writable, fd, EV_WRITE);
    ev_timer_init(&c->linger, on_linger, LINGER_SECONDS, 0.);
    c->rio.data = c->wio.data = c->linger.data = c;
    c->next = all_conns;
    if (all_conns) all_conns->prev = c;
    all_conns = c;
    ev_io_start(EV_DEFAULT_ & c->rio);
}

/* --- listeners --- */

static void on_accept_retry(EV_P_ ev_timer *t, int revents) {
    (void)revents;
    listener *l = t->data;
    ev_io_start(EV_A_ & l->io);
}

static void on_acceptable(EV_P_ ev_io *w, int revents) {
    (void)revents;
    listener *l = w->data;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            conn_new(fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            log_msg(LOG_WARN, "accept: %s; pausing new connections", strerror(errno));
            ev_io_stop(EV_A_ w);
            ev_timer_start(EV_A_ & l->retry);
        }
        return;
    }
}

static int open_socket(const struct addrinfo *ai, char *err, size_t errlen) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        snprintf(err, errlen, "bind: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void describe_bound(int fd, char *out, size_t cap) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[NI_MAXHOST], port[NI_MAXSERV];
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
        getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(out, cap, "?");
        return;
    }
    snprintf(out, cap, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

/* Go listens on one address of a host name, preferring IPv4; we do the same. */
static const struct addrinfo *pick_address(const struct addrinfo *list) {
    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next)
        if (ai->ai_family == AF_INET) return ai;
    return list;
}

static bool listen_one(const listen_url *u, char *err, size_t errlen) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    const char *host = u->host[0] ? u->host : NULL;
    if (!host) hints.ai_family = AF_INET6; /* "http://:2379": all addresses, v4 and v6 */
    int gai = getaddrinfo(host, u->port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "listen %s:%s: %s", u->host, u->port, gai_strerror(gai));
        return false;
    }
    char why[160];
    int fd = open_socket(pick_address(res), why, sizeof why);
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "listen tcp %s:%s: %s", u->host, u->port, why);
        return false;
    }
    listener *l = xcalloc(1, sizeof *l);
    l->fd = fd;
    ev_io_init(&l->io, on_acceptable, fd, EV_READ);
    ev_timer_init(&l->retry, on_accept_retry, ACCEPT_RETRY_SECONDS, 0.);
    l->io.data = l->retry.data = l;
    ev_io_start(EV_DEFAULT_ & l->io);
    l->next = listeners;
    listeners = l;
    char where[300];
    describe_bound(fd, where, sizeof where);
    log_msg(LOG_INFO, "serving client traffic insecurely on %s", where);
    return true;
}

bool server_listen(const char *urls, char *err, size_t errlen) {
    for (const char *p = urls; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        listen_url u;
        if (!url_parse(p, len, &u, err, errlen) || !listen_one(&u, err, errlen)) return false;
        p = comma ? comma + 1 : NULL;
    }
    return true;
}

void server_shutdown(void (*commit)(void)) {
    while (listeners) {
        listener *l = listeners;
        listeners = l->next;
        ev_io_stop(EV_DEFAULT_ & l->io);
        ev_timer_stop(EV_DEFAULT_ & l->retry);
        close(l->fd);
        free(l);
    }
    for (conn *c = all_conns; c; c = c->next) {
        if (c->h2) h2_conn_goaway(c->h2);
        conn_mark_dirty(c);
    }
    server_flush(commit);
    while (all_conns)
        conn_kill(all_conns);
    reap_dead();
}
