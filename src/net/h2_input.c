/* h2_input.c: the request side of a gRPC call: headers pick the method, DATA is cut into gRPC
 * messages, and both are bounded per connection (issue 11): flow-control credit is returned only
 * while the connection's buffered request bytes fit its budget, and handlers run from a queue with a
 * time budget per loop turn, so no connection can hold unbounded input or starve the others. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "budget.h"
#include "config.h"
#include "h2_internal.h"
#include "metrics.h"
#include "tls.h"

#define GRPC_OVERHEAD_BYTES (512 * 1024) /* etcd's grpcOverheadBytes on top of --max-request-bytes */
#define MAX_PATH_BYTES 65536             /* a longer :path resets the stream, as etcd's Go server does */
/* Request bytes a connection may hold before it stops returning flow-control credit... */
#define IN_BUDGET (32u << 20)
/* ...and bytes it may hold without credit before it refuses the call holding most of them. */
#define WITHHELD_MAX (8u << 20)
#define TURN_BUDGET_SECONDS 0.005 /* handler time per connection per loop turn (at least one call) */
#define MAX_TOKEN_BYTES 4096      /* an auth token header longer than this matches no token */

/* --- flow-control credit --- */

static void give_credit(rpc_call *call) {
    h2_conn *h = call->h;
    if (!call->unconsumed) return;
    nghttp2_session_consume(h->session, call->stream_id, call->unconsumed);
    h->withheld -= call->unconsumed;
    call->unconsumed = 0;
}

/* Drops the call's buffered request bytes (it was answered or refused) and returns their credit. */
static void drop_input(rpc_call *call) {
    call->h->buffered -= sbuf_size(&call->in);
    call_buf_empty(&call->in);
    give_credit(call);
}

/* The unfinished call holding most withheld bytes (a call waiting in the run queue is complete). */
static void refuse_biggest(h2_conn *h) {
    rpc_call *big = NULL;
    for (rpc_call *c = h->calls; c; c = c->next)
        if (!c->ready && (!big || c->unconsumed > big->unconsumed)) big = c;
    if (!big || !big->unconsumed) return;
    char msg[160];
    snprintf(msg, sizeof msg, "cetcd: connection holds more than %u bytes of unfinished requests", IN_BUDGET);
    rpc_finish(big, GRPC_RESOURCE_EXHAUSTED, msg);
    drop_input(big);
}

/* Returns credit while the buffered bytes fit the budget. Over it, credit is withheld, so the client
 * soon stops sending; if it keeps sending on other streams until WITHHELD_MAX, the call holding most
 * withheld bytes is refused, so the remaining calls can finish. A blocked connection (its client
 * reads no replies) only withholds: it resumes when the client reads. */
static void update_credit(h2_conn *h, rpc_call *arrived) {
    if (h->buffered <= IN_BUDGET && !h->blocked) {
        if (arrived) give_credit(arrived);
        for (rpc_call *c = h->calls; c && h->withheld; c = c->next)
            give_credit(c);
        return;
    }
    size_t before;
    do {
        before = h->withheld;
        if (!h->blocked && h->withheld > WITHHELD_MAX) refuse_biggest(h);
    } while (h->withheld < before);
}

/* --- the run queue --- */

static void mark_ready(rpc_call *call) {
    if (call->ready) return;
    h2_conn *h = call->h;
    call->ready = true;
    call->ready_next = NULL;
    if (h->ready_tail)
        h->ready_tail->ready_next = call;
    else
        h->ready_head = call;
    h->ready_tail = call;
}

static rpc_call *pop_ready(h2_conn *h) {
    rpc_call *call = h->ready_head;
    if (!call) return NULL;
    h->ready_head = call->ready_next;
    if (!h->ready_head) h->ready_tail = NULL;
    call->ready = false;
    return call;
}

void input_forget(rpc_call *call) {
    h2_conn *h = call->h;
    if (call->ready) {
        rpc_call **p = &h->ready_head, *prev = NULL;
        while (*p != call)
            prev = *p, p = &(*p)->ready_next;
        *p = call->ready_next;
        if (h->ready_tail == call) h->ready_tail = prev;
        call->ready = false;
    }
    h->buffered -= sbuf_size(&call->in);
    h->withheld -= call->unconsumed;
    if (call->unconsumed) nghttp2_session_consume_connection(h->session, call->unconsumed);
    call->unconsumed = 0;
    call_buf_empty(&call->in);
    if (call->token) h->state_bytes -= strlen(call->token);
    free(call->token);
    call->token = NULL;
    call->caller.token = NULL;
}

/* --- headers --- */

/* grpc-timeout: up to 8 digits and a unit H M S m u n. */
static double parse_timeout(const char *v, size_t len) {
    if (len < 2 || len > 9) return -1;
    double n = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        n = n * 10 + (v[i] - '0');
    }
    static const char units[] = "HMSmun";
    static const double scale[] = {3600, 60, 1, 1e-3, 1e-6, 1e-9};
    const char *u = strchr(units, v[len - 1]);
    return u && *u ? n * scale[u - units] : -1;
}

static bool header_is(const uint8_t *name, size_t len, const char *want) {
    return len == strlen(want) && memcmp(name, want, len) == 0;
}

static void copy_header(char *dst, size_t cap, const uint8_t *value, size_t len) {
    if (len >= cap) len = cap - 1;
    memcpy(dst, value, len);
    dst[len] = '\0';
}

/* The caller's auth token (auth_gate.c), held with the call and counted in its state bytes. One far
 * longer than any token cetcd hands out is kept as a token that matches none. */
static void set_token(rpc_call *call, const uint8_t *value, size_t len) {
    static const char too_long[] = "(too long)";
    if (call->token) call->h->state_bytes -= strlen(call->token);
    free(call->token);
    if (len > MAX_TOKEN_BYTES) value = (const uint8_t *)too_long, len = sizeof too_long - 1;
    call->token = xmalloc(len + 1);
    memcpy(call->token, value, len);
    call->token[len] = '\0';
    call->h->state_bytes += len;
    call->caller.token = call->token;
}

int input_header(rpc_call *call, const uint8_t *name, size_t namelen, const uint8_t *value, size_t valuelen) {
    if (header_is(name, namelen, ":path")) {
        input_set_path(call, value, valuelen);
    } else if (header_is(name, namelen, ":method")) {
        call->is_post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
    } else if (header_is(name, namelen, "content-type")) {
        copy_header(call->content_type, sizeof call->content_type, value, valuelen);
        call->grpc_content_type = valuelen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
                                  (valuelen == 16 || value[16] == '+' || value[16] == ';');
    } else if (header_is(name, namelen, "grpc-timeout")) {
        call->timeout = parse_timeout((const char *)value, valuelen);
    } else if (header_is(name, namelen, "grpc-encoding")) {
        copy_header(call->encoding, sizeof call->encoding, value, valuelen);
    } else if (header_is(name, namelen, "token") && !call->token_named_token) {
        set_token(call, value, valuelen); /* etcd reads the first "token", else "authorization" */
        call->token_named_token = true;
    } else if (header_is(name, namelen, "authorization") && !call->token) {
        set_token(call, value, valuelen);
    }
    return 0;
}

void input_set_path(rpc_call *call, const uint8_t *value, size_t len) {
    if (call->path != call->path_inline) free(call->path);
    call->h->state_bytes += len - call->path_len;
    call->path_len = len;
    call->path = len <= PATH_INLINE ? call->path_inline : xmalloc(len + 1);
    memcpy(call->path, value, len);
    call->path[len] = '\0';
}

const rpc_caller *rpc_call_caller(const rpc_call *call) {
    return &call->caller;
}

/* grpc-go's words for a path with no method (handleStream): "malformed method name" with
 * RESOURCE_EXHAUSTED when there is no '/' after the first character, else "unknown service X" or
 * "unknown method M for service X" with UNIMPLEMENTED. */
static void reject_unknown_path(rpc_call *call) {
    static const char *services[] = {
        "etcdserverpb.KV",          "etcdserverpb.Watch", "etcdserverpb.Lease",    "etcdserverpb.Cluster",
        "etcdserverpb.Maintenance", "etcdserverpb.Auth",  "v3electionpb.Election", "v3lockpb.Lock",
        "grpc.health.v1.Health"};
    const char *path = call->path ? call->path : "";
    const char *sm = path[0] == '/' ? path + 1 : path;
    const char *slash = strrchr(sm, '/');
    size_t cap = call->path_len + 100;
    char *msg = xmalloc(cap);
    int code = GRPC_UNIMPLEMENTED;
    if (!slash) {
        snprintf(msg, cap, "malformed method name: \"%s\"", path);
        code = GRPC_RESOURCE_EXHAUSTED;
    } else {
        int service_len = (int)(slash - sm);
        snprintf(msg, cap, "unknown service %.*s", service_len, sm);
        for (size_t i = 0; i < sizeof services / sizeof services[0]; i++)
            if (strlen(services[i]) == (size_t)service_len && memcmp(services[i], sm, service_len) == 0)
                snprintf(msg, cap, "unknown method %s for service %s", slash + 1, services[i]);
    }
    rpc_finish(call, code, msg);
    free(msg);
}

static void on_deadline(EV_P_ ev_timer *t, int revents) {
    (void)EV_A, (void)revents;
    rpc_finish(t->data, GRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
}

/* The request headers are complete: choose the method or answer with an error. grpc-go refuses an
 * encoding it has no decompressor for before reading any message. */
void input_headers_done(rpc_call *call) {
    h2_conn *h = call->h;
    if (!call->is_post || call->path_len > MAX_PATH_BYTES) {
        call->finished = true;
        uint32_t why = call->is_post ? NGHTTP2_INTERNAL_ERROR : NGHTTP2_PROTOCOL_ERROR;
        nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, call->stream_id, why);
        return;
    }
    char msg[128];
    if (!call->grpc_content_type) {
        snprintf(msg, sizeof msg, "transport: received unexpected content-type \"%s\"", call->content_type);
        return call_finish_http(call, GRPC_INTERNAL, msg, "415");
    }
    call->caller.cert_cn = tls_conn_peer_cn(h->conn); /* the user of a call without a token */
    call->method = rpc_find_method(call->path ? call->path : "", call->path_len);
    if (!call->method) return reject_unknown_path(call);
    if (call->encoding[0] && strcmp(call->encoding, "identity") != 0) {
        snprintf(msg, sizeof msg, "grpc: Decompressor is not installed for grpc-encoding \"%s\"",
                 call->encoding);
        return rpc_finish(call, GRPC_UNIMPLEMENTED, msg);
    }
    if (call->timeout >= 0) {
        ev_timer_init(&call->deadline, on_deadline, call->timeout, 0.);
        call->deadline.data = call;
        ev_timer_start(EV_DEFAULT_ & call->deadline);
    }
}

/* --- gRPC framing --- */

static uint64_t max_message_bytes(void) {
    return g_config.max_request_bytes + GRPC_OVERHEAD_BYTES;
}

/* Checks the 5-byte prefix at the head of call->in. Returns the message length, or -1 after an
 * error (grpc-go's checkRecvPayload and recvMsg, word for word). */
static int64_t check_prefix(rpc_call *call) {
    const uint8_t *p = sbuf_head(&call->in);
    uint32_t len = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    char msg[160];
    if (p[0] == 1) {
        rpc_finish(call, GRPC_INTERNAL, "grpc: compressed flag set with identity or empty encoding");
        return -1;
    }
    if (p[0] != 0) {
        snprintf(msg, sizeof msg, "grpc: received unexpected payload format %d", p[0]);
        rpc_finish(call, GRPC_INTERNAL, msg);
        return -1;
    }
    if (len > max_message_bytes()) {
        snprintf(msg, sizeof msg, "grpc: received message larger than max (%u vs. %llu)", len,
                 (unsigned long long)max_message_bytes());
        rpc_finish(call, GRPC_RESOURCE_EXHAUSTED, msg);
        return -1;
    }
    return len;
}

/* Whether the call has work for its handler: a complete message (streams), or its end. Checks the
 * framing as bytes arrive, so a bad or oversized message is refused before it is all buffered. */
static bool call_runnable(rpc_call *call) {
    if (!call->method || call->finished || call->closed) return false;
    if (sbuf_size(&call->in) >= 5) {
        int64_t len = check_prefix(call);
        if (len < 0) return false;
        size_t have = sbuf_size(&call->in), want = 5 + (size_t)len;
        if (call->method->kind == RPC_STREAM && have >= want) return true;
        if (call->method->kind != RPC_STREAM && have > want) {
            rpc_finish(call, GRPC_INTERNAL, "grpc: unary request carries more than one message");
            return false;
        }
    }
    return call->client_done && !call->end_handled;
}

static void run_handler(rpc_call *call, const uint8_t *msg, size_t len) {
    reply_budget_begin(h2_held_total());
    call->method->handler(call, msg, len);
}

static void deliver_unary(rpc_call *call) {
    size_t have = sbuf_size(&call->in);
    if (have == 0) return run_handler(call, (const uint8_t *)"", 0);
    int64_t len = have >= 5 ? check_prefix(call) : 0;
    if (len < 0) return;
    if (have < 5 || have != 5 + (uint64_t)len) return rpc_finish(call, GRPC_INTERNAL, "unexpected EOF");
    run_handler(call, sbuf_head(&call->in) + 5, (size_t)len);
}

/* The client half-closed its side of the stream and every message before that was handled. */
static void on_client_done(rpc_call *call) {
    call->end_handled = true;
    if (call->method->kind != RPC_STREAM) return deliver_unary(call);
    if (sbuf_size(&call->in) > 0) rpc_finish(call, GRPC_INTERNAL, "unexpected EOF");
    call_notify_closed(call);
    call_finish_http(call, GRPC_OK, NULL, "200");
}

/* One step of a call: one stream message, or the end of the request. */
static void run_step(rpc_call *call) {
    if (!call_runnable(call)) return;
    if (call->method->kind == RPC_STREAM && sbuf_size(&call->in) >= 5) {
        const uint8_t *p = sbuf_head(&call->in);
        size_t len = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
        if (sbuf_size(&call->in) >= 5 + len) {
            run_handler(call, p + 5, len);
            call->h->buffered -= 5 + len;
            sbuf_consume(&call->in, 5 + len);
            return;
        }
    }
    on_client_done(call);
    if (call->finished || call->closed) drop_input(call);
}

/* --- data in, work out --- */

void input_data(rpc_call *call, const uint8_t *data, size_t len) {
    h2_conn *h = call->h;
    if (!call->method || call->finished || call->closed) {
        nghttp2_session_consume(h->session, call->stream_id, len); /* discarded */
        return;
    }
    sbuf_append(&call->in, data, len);
    h->buffered += len;
    call->unconsumed += len;
    h->withheld += len;
    metrics_grpc_received(len);
    if (call_runnable(call)) mark_ready(call);
    if (call->finished) drop_input(call);
    update_credit(h, call);
}

void input_end(rpc_call *call) {
    call->client_done = true;
    if (call_runnable(call)) mark_ready(call);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs ready calls, oldest first, until this loop turn's budget for the connection is spent (at
 * least one step a turn); the rest run on the next turn, after the other connections had theirs.
 * Time is charged whatever becomes of the reply, so resetting a stream does not make work free. */
void input_run(h2_conn *h) {
    unsigned turn = ev_iteration(EV_DEFAULT);
    if (turn != h->turn) h->turn = turn, h->spent = 0;
    rpc_call *call;
    double t0 = 0; /* read once, then each step's end is the next one's start */
    while (!h->blocked && h->spent < TURN_BUDGET_SECONDS && (call = pop_ready(h))) {
        if (t0 == 0) t0 = now_seconds();
        run_step(call);
        double t1 = now_seconds();
        h->spent += t1 - t0;
        t0 = t1;
        if (call_runnable(call)) mark_ready(call);
    }
    update_credit(h, NULL);
    if (h->ready_head && !h->blocked && !ev_is_active(&h->kick)) ev_timer_start(EV_DEFAULT_ & h->kick);
    conn_mark_dirty(h->conn);
}

/* Reading goes on while calls wait for their turn, so that a RST_STREAM behind them is seen before
 * they run, until the waiting calls take half the call state budget. It goes on while the connection
 * is blocked too: the replies it waits on leave only as the client's WINDOW_UPDATEs come in, so a
 * reply past QUEUED_HIGH (one Range of 40 MB to grpc-go, whose window grows as it reads) would stall
 * for good if they were not read. What a blocked connection can make it hold stays bounded: its
 * calls do not run, request DATA gets no credit (update_credit), so no more than the connection's
 * window, new streams are refused past CALL_STATE_BUDGET, and a client that reads nothing at all
 * fills the socket, which pauses reading in server.c (OUT_HIGH). */
bool input_backlogged(const h2_conn *h) {
    return h->ready_head != NULL && h->state_bytes > CALL_STATE_BUDGET / 2;
}
