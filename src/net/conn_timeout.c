/* conn_timeout.c: the deadlines of a connection, so that a silent or trickling client cannot hold a
 * connection forever: one libev timer per connection, armed for the deadline of its current phase
 * (the opening, an HTTP/1 head or body, the linger of a close) and, once HTTP/2 is up, grpc-go's
 * keepalive as etcd configures it (--grpc-keepalive-interval, -timeout and -min-time). */
#include <ev.h>
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "conn_internal.h"
#include "h2.h"
#include "log_msg.h"

#define HANDSHAKE_SECONDS 10.0 /* HTTP/2 preface + SETTINGS, or the first HTTP/1 request head */
#define HEAD_SECONDS 10.0      /* a later HTTP/1 request head, from its first byte */
#define BODY_SECONDS 30.0      /* an HTTP/1 body, from the end of its head (also after 100 Continue) */
#define LINGER_SECONDS 5.0     /* how long a closing connection may take to drain */
#define MAX_HEAD_SCAN 65536    /* http1.c refuses a longer head */

/* grpc-go's keepalive defaults, used where etcd's flags are 0 or less (etcd then sets nothing). */
#define GRPC_KEEPALIVE_TIME 7200.0
#define GRPC_KEEPALIVE_TIMEOUT 20.0
#define GRPC_POLICY_MIN_TIME 300.0
#define GRPC_NO_STREAM_PING_TIME 7200.0 /* without streams (PermitWithoutStream false, as in etcd) */
#define GRPC_MAX_PING_STRIKES 2

static double keepalive_interval(void) {
    bool set = g_config.grpc_keepalive_interval > 0 && g_config.grpc_keepalive_timeout > 0;
    return set ? g_config.grpc_keepalive_interval : GRPC_KEEPALIVE_TIME;
}

static double keepalive_timeout(void) {
    bool set = g_config.grpc_keepalive_interval > 0 && g_config.grpc_keepalive_timeout > 0;
    return set ? g_config.grpc_keepalive_timeout : GRPC_KEEPALIVE_TIMEOUT;
}

static double ping_min_time(void) {
    return g_config.grpc_keepalive_min_time > 0 ? g_config.grpc_keepalive_min_time : GRPC_POLICY_MIN_TIME;
}

/* The length of a phase's deadline; 0 for none (HTTP/2 has its keepalive instead). */
static double phase_seconds(conn_phase phase) {
    switch (phase) {
    case PHASE_OPENING:
        return HANDSHAKE_SECONDS;
    case PHASE_HTTP1_HEAD:
        return HEAD_SECONDS;
    case PHASE_HTTP1_BODY:
        return BODY_SECONDS;
    case PHASE_LINGER:
        return LINGER_SECONDS;
    default:
        return 0;
    }
}

static void arm_at(conn *c, ev_tstamp at) {
    ev_tstamp now = ev_now(EV_DEFAULT);
    ev_timer_stop(EV_DEFAULT_ & c->timer);
    ev_timer_set(&c->timer, at > now ? at - now : 0., 0.);
    ev_timer_start(EV_DEFAULT_ & c->timer);
}

static void enter(conn *c, conn_phase phase) {
    c->phase = phase;
    c->phase_since = ev_now(EV_DEFAULT);
    double secs = phase_seconds(phase);
    if (phase == PHASE_H2)
        arm_at(c, c->ka.last_read + keepalive_interval());
    else if (secs > 0)
        arm_at(c, c->phase_since + secs);
    else
        ev_timer_stop(EV_DEFAULT_ & c->timer);
}

/* --- HTTP/2 keepalive: grpc-go's server pings a connection silent for the interval, and closes it
 * when nothing arrives within the timeout after the ping. --- */

static void keepalive_due(conn *c) {
    conn_keepalive *ka = &c->ka;
    ev_tstamp now = ev_now(EV_DEFAULT);
    if (!ev_is_active(&c->rio)) ka->last_read = now; /* we stopped reading: not the client's silence */
    if (ka->ping_sent && ka->last_read > ka->ping_sent) ka->ping_sent = 0; /* anything answers */
    if (ka->ping_sent) {
        if (now < ka->ping_sent + keepalive_timeout()) return arm_at(c, ka->ping_sent + keepalive_timeout());
        log_msg(LOG_DEBUG, "closing a connection: keepalive ping not acked within %.0f s",
                keepalive_timeout());
        return conn_kill(c);
    }
    if (now < ka->last_read + keepalive_interval()) return arm_at(c, ka->last_read + keepalive_interval());
    h2_conn_ping(c->h2);
    conn_mark_dirty(c);
    ka->ping_sent = now;
    arm_at(c, now + keepalive_timeout());
}

/* grpc-go's enforcement policy: a client ping sooner than the minimum time after the previous one
 * (2 h when the connection has no stream) is a strike, unless we sent HEADERS or DATA since; more
 * than two strikes earn GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings"). */
static void client_ping(conn *c, bool has_streams) {
    conn_keepalive *ka = &c->ka;
    ev_tstamp now = ev_now(EV_DEFAULT), last = ka->last_client_ping;
    ka->last_client_ping = now;
    if (ka->reset_strikes) {
        ka->reset_strikes = false;
        ka->strikes = 0;
        return;
    }
    double min_gap = has_streams ? ping_min_time() : GRPC_NO_STREAM_PING_TIME;
    if (last != 0 && now < last + min_gap) ka->strikes++;
    if (ka->strikes > GRPC_MAX_PING_STRIKES) ka->too_many_pings = true;
}

void conn_h2_frame_recv(conn *c, uint8_t type, uint8_t flags, bool has_streams) {
    if (flags & NGHTTP2_FLAG_ACK) return;
    if (type == NGHTTP2_SETTINGS && c->phase == PHASE_OPENING) enter(c, PHASE_H2);
    if (type == NGHTTP2_PING) client_ping(c, has_streams);
}

void conn_h2_frame_sent(conn *c, uint8_t type) {
    if (type == NGHTTP2_HEADERS || type == NGHTTP2_DATA) c->ka.reset_strikes = true;
}

int timeout_h2_after_recv(conn *c) {
    if (!c->ka.too_many_pings || c->closing) return 0;
    log_msg(LOG_DEBUG, "closing a connection: the client sent too many pings");
    h2_conn_goaway_error(c->h2, NGHTTP2_ENHANCE_YOUR_CALM, "too_many_pings");
    return -1;
}

/* --- the timer --- */

static void on_timer(EV_P_ ev_timer *t, int revents) {
    (void)EV_A, (void)revents;
    conn *c = t->data;
    if (c->phase == PHASE_H2) return keepalive_due(c);
    double secs = phase_seconds(c->phase);
    if (secs == 0) return;
    ev_tstamp now = ev_now(EV_DEFAULT), deadline = c->phase_since + secs;
    if (now < deadline) return arm_at(c, deadline); /* the phase was restarted meanwhile */
    if (c->phase != PHASE_LINGER && !ev_is_active(&c->rio)) return enter(c, c->phase); /* we paused */
    if (c->phase != PHASE_LINGER)
        log_msg(LOG_DEBUG, "closing a connection: %s not complete within %.0f s",
                c->phase == PHASE_OPENING      ? "the opening"
                : c->phase == PHASE_HTTP1_HEAD ? "a request head"
                                               : "a request body",
                secs);
    conn_kill(c);
}

void timeout_start(conn *c) {
    ev_timer_init(&c->timer, on_timer, 0., 0.);
    c->timer.data = c;
    c->ka.last_read = ev_now(EV_DEFAULT);
    enter(c, PHASE_OPENING);
}

void timeout_stop(conn *c) {
    ev_timer_stop(EV_DEFAULT_ & c->timer);
}

void timeout_linger(conn *c) {
    enter(c, PHASE_LINGER);
}

void timeout_read(conn *c) {
    c->ka.last_read = ev_now(EV_DEFAULT);
}

void timeout_reading_resumed(conn *c) {
    if (c->phase == PHASE_HTTP1_HEAD || c->phase == PHASE_HTTP1_BODY) c->phase_since = ev_now(EV_DEFAULT);
}

/* The Content-Length of a request head, 0 if it has none. */
static uint64_t content_length(const char *head, size_t head_len) {
    static const char name[] = "\r\ncontent-length:";
    for (size_t i = 0; i + sizeof name - 1 <= head_len; i++)
        if (strncasecmp(head + i, name, sizeof name - 1) == 0)
            return strtoull(head + i + sizeof name - 1, NULL, 10);
    return 0;
}

/* What the input left after parsing waits for: more of a head, more of a body, or nothing from the
 * client (empty, or a whole request that http1.c holds back while replies are unsent). */
static conn_phase http1_waiting_for(const sbuf *in) {
    size_t have = sbuf_size(in), scan = have < MAX_HEAD_SCAN ? have : MAX_HEAD_SCAN;
    if (!have) return PHASE_HTTP1_IDLE;
    const uint8_t *head = sbuf_head(in), *end = memmem(head, scan, "\r\n\r\n", 4);
    if (!end) return PHASE_HTTP1_HEAD;
    size_t head_len = (size_t)(end + 4 - head);
    return have - head_len < content_length((const char *)head, head_len) ? PHASE_HTTP1_BODY
                                                                          : PHASE_HTTP1_IDLE;
}

/* After http1.c parsed what it could (served: it consumed at least one request). A phase restarts its
 * deadline only when it changes or a request was served; the opening deadline covers the first head. */
void timeout_http1_fed(conn *c, bool served) {
    if (c->phase == PHASE_LINGER) return;
    conn_phase next = http1_waiting_for(&c->in);
    if (!served && (next == c->phase || (c->phase == PHASE_OPENING && next == PHASE_HTTP1_HEAD))) return;
    enter(c, next);
}
