/* h2.c: gRPC over HTTP/2 with nghttp2: each stream is an rpc_call whose :path picks a method from the
 * table (methods.c); request bytes are cut into gRPC messages (flag, 4-byte length, protobuf) for the
 * handler; replies are framed, held in the call and pulled by nghttp2 when the loop flushes. */
#include <ev.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "config.h"
#include "h2.h"
#include "log_msg.h"
#include "metrics.h"
#include "rpc.h"

#define GRPC_OVERHEAD_BYTES (512 * 1024) /* etcd's grpcOverheadBytes on top of --max-request-bytes */
#define STREAM_WINDOW (1 << 20)
#define CONN_WINDOW (16 << 20)
#define MAX_PATH 256
#define MAX_STREAMS 10000
/* A connection whose clients leave this many reply bytes unread stops taking requests (they wait,
 * unacknowledged by flow control) until the backlog falls under QUEUED_LOW. */
#define QUEUED_HIGH (32u << 20)
#define RESET_BURST 100000 /* incoming RST_STREAM budget, and its refill per second */
#define RESET_RATE 100000
#define QUEUED_LOW (8u << 20)

struct h2_conn {
    nghttp2_session *session;
    conn *conn;
    rpc_call *calls; /* every call whose stream is open */
    size_t queued;   /* reply bytes held in calls, not yet taken by nghttp2 */
    bool blocked;    /* queued went over QUEUED_HIGH: input waits (see QUEUED_HIGH) */
    ev_timer resume; /* runs the waiting input once the backlog is small again */
};

struct rpc_call {
    h2_conn *h;
    int32_t stream_id;
    const rpc_method *method;
    char path[MAX_PATH + 1];
    size_t path_len;
    bool path_too_long, is_post, grpc_content_type;
    char content_type[64];
    char encoding[32];
    double timeout; /* seconds; < 0 when the client sent none */
    sbuf in;        /* request bytes not yet cut into messages */
    sbuf out;       /* framed reply messages not yet taken by nghttp2 */
    bool started;   /* response HEADERS submitted */
    bool finished;  /* status decided; trailers follow the queued messages */
    bool deferred;  /* nghttp2 is waiting for more output */
    bool client_done, end_handled, closed;
    bool parked;       /* input waits for the connection to be unblocked */
    size_t unconsumed; /* request bytes not yet acknowledged to flow control */
    int status;
    char *message; /* percent-encoded grpc-message */
    void *user;
    ev_timer deadline;
    rpc_call *prev, *next;
};

/* --- calls --- */

static rpc_call *call_new(h2_conn *h, int32_t stream_id) {
    rpc_call *call = xcalloc(1, sizeof *call);
    call->h = h;
    call->stream_id = stream_id;
    call->timeout = -1;
    call->next = h->calls;
    if (h->calls) h->calls->prev = call;
    h->calls = call;
    return call;
}

/* The handler's last word: runs the method's on_close once, whatever ended the call. */
static void call_notify_closed(rpc_call *call) {
    if (call->closed) return;
    call->closed = true;
    if (call->method && call->method->on_close) call->method->on_close(call);
}

static void call_free(rpc_call *call) {
    h2_conn *h = call->h;
    ev_timer_stop(EV_DEFAULT_ & call->deadline);
    if (call->prev)
        call->prev->next = call->next;
    else
        h->calls = call->next;
    if (call->next) call->next->prev = call->prev;
    h->queued -= sbuf_size(&call->out);
    if (call->unconsumed) nghttp2_session_consume_connection(h->session, call->unconsumed);
    sbuf_free(&call->in);
    sbuf_free(&call->out);
    free(call->message);
    free(call);
}

/* --- replies --- */

/* gRPC's percent-encoding for grpc-message: bytes outside 0x20..0x7E and '%' become %XX. */
static char *percent_encode(const char *msg) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(msg);
    char *out = xmalloc(3 * n + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p < 0x20 || *p > 0x7e || *p == '%') {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        } else {
            *o++ = (char)*p;
        }
    }
    *o = '\0';
    return out;
}

#define NV(name, value, vlen)                                                                                \
    { (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1, (vlen), NGHTTP2_NV_FLAG_NONE }

static void submit_trailers(rpc_call *call) {
    char status[12];
    int n = snprintf(status, sizeof status, "%d", call->status);
    const char *msg = call->message ? call->message : "";
    nghttp2_nv nv[] = {NV("grpc-status", status, (size_t)n), NV("grpc-message", msg, strlen(msg))};
    nghttp2_submit_trailer(call->h->session, call->stream_id, nv, 2);
}

static ssize_t read_reply(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                          uint32_t *flags, nghttp2_data_source *source, void *user_data) {
    (void)session, (void)stream_id, (void)user_data;
    rpc_call *call = source->ptr;
    size_t n = sbuf_size(&call->out);
    if (n > length) n = length;
    if (n == 0 && !call->finished) {
        call->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    memcpy(buf, sbuf_head(&call->out), n);
    sbuf_consume(&call->out, n);
    call->h->queued -= n;
    if (call->h->blocked && call->h->queued < QUEUED_LOW && !ev_is_active(&call->h->resume))
        ev_timer_start(EV_DEFAULT_ & call->h->resume); /* not from inside the flush */
    if (sbuf_size(&call->out) == 0 && call->finished) {
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        submit_trailers(call);
    }
    return (ssize_t)n;
}

/* HEADERS (:status 200) and the data provider, before the first message. */
static void start_response(rpc_call *call) {
    static const char ct[] = "application/grpc";
    nghttp2_nv nv[] = {NV(":status", "200", 3), NV("content-type", ct, sizeof ct - 1)};
    nghttp2_data_provider prd = {.source.ptr = call, .read_callback = read_reply};
    call->started = true;
    nghttp2_submit_response(call->h->session, call->stream_id, nv, 2, &prd);
}

/* An error (or OK) with no message sent: one HEADERS frame carrying the status, END_STREAM. */
static void submit_trailers_only(rpc_call *call, const char *http_status) {
    static const char ct[] = "application/grpc";
    char status[12];
    int n = snprintf(status, sizeof status, "%d", call->status);
    const char *msg = call->message ? call->message : "";
    nghttp2_nv nv[] = {NV(":status", http_status, strlen(http_status)), NV("content-type", ct, sizeof ct - 1),
                       NV("grpc-status", status, (size_t)n), NV("grpc-message", msg, strlen(msg))};
    call->started = true;
    nghttp2_submit_response(call->h->session, call->stream_id, nv, 4, NULL);
}

static bool call_writable(const rpc_call *call) {
    return call && !call->finished && !call->closed && call->h;
}

static void wake(rpc_call *call) {
    if (call->deferred) {
        call->deferred = false;
        nghttp2_session_resume_data(call->h->session, call->stream_id);
    }
    conn_mark_dirty(call->h->conn);
}

static void set_status(rpc_call *call, int code, const char *message) {
    call->finished = true;
    call->status = code;
    free(call->message);
    call->message = message && *message ? percent_encode(message) : NULL;
    if (call->method) metrics_grpc_handled(call->method->path, (int)call->method->kind, code);
    ev_timer_stop(EV_DEFAULT_ & call->deadline);
}

/* Decides the call's status; trailers go out after its queued messages. */
static void finish_http(rpc_call *call, int code, const char *message, const char *http_status) {
    if (call->finished || !call->h) return;
    set_status(call, code, message);
    if (!call->started) submit_trailers_only(call, http_status);
    wake(call);
}

void rpc_finish(rpc_call *call, int grpc_code, const char *message) {
    if (call_writable(call)) finish_http(call, grpc_code, message, "200");
}

/* Queues one gRPC message made of the given parts (their concatenation is the protobuf body). */
static void queue_message(rpc_call *call, const uint8_t *const *parts, const size_t *lens, int n) {
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += lens[i];
    uint8_t prefix[5] = {0, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    sbuf_append(&call->out, prefix, 5);
    for (int i = 0; i < n; i++)
        sbuf_append(&call->out, parts[i], lens[i]);
    call->h->queued += 5 + len;
    metrics_grpc_sent(5 + len);
    if (call->h->queued > QUEUED_HIGH) call->h->blocked = true;
    if (call->method->kind == RPC_UNARY) set_status(call, GRPC_OK, NULL);
    if (!call->started) start_response(call);
    wake(call);
}

void rpc_send(rpc_call *call, const ProtobufCMessage *msg) {
    if (!call_writable(call)) return;
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *body = xmalloc(len);
    if (len) protobuf_c_message_pack(msg, body);
    queue_message(call, (const uint8_t *const[]){body}, &len, 1);
    free(body);
}

void rpc_send_parts(rpc_call *call, const uint8_t *head, size_t head_len, const uint8_t *body,
                    size_t body_len) {
    if (!call_writable(call)) return;
    queue_message(call, (const uint8_t *const[]){head, body}, (const size_t[]){head_len, body_len}, 2);
}

void rpc_reply(rpc_call *call, const ProtobufCMessage *msg) {
    rpc_send(call, msg);
    if (call_writable(call)) rpc_finish(call, GRPC_OK, NULL);
}

void rpc_set_user(rpc_call *call, void *user) {
    call->user = user;
}

void *rpc_user(const rpc_call *call) {
    return call->user;
}

size_t rpc_pending_bytes(const rpc_call *call) {
    if (!call->h) return 0;
    return call->h->queued + conn_unsent(call->h->conn);
}

/* --- requests --- */

static void on_deadline(EV_P_ ev_timer *t, int revents) {
    (void)EV_A, (void)revents;
    rpc_finish(t->data, GRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
}

/* grpc-timeout: up to 8 digits and a unit H M S m u n. */
static double parse_timeout(const char *v, size_t len) {
    if (len < 2 || len > 9) return -1;
    double n = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        n = n * 10 + (v[i] - '0');
    }
    switch (v[len - 1]) {
    case 'H':
        return n * 3600;
    case 'M':
        return n * 60;
    case 'S':
        return n;
    case 'm':
        return n / 1e3;
    case 'u':
        return n / 1e6;
    case 'n':
        return n / 1e9;
    default:
        return -1;
    }
}

static bool header_is(const uint8_t *name, size_t len, const char *want) {
    return len == strlen(want) && memcmp(name, want, len) == 0;
}

static void copy_header(char *dst, size_t cap, const uint8_t *value, size_t len) {
    if (len >= cap) len = cap - 1;
    memcpy(dst, value, len);
    dst[len] = '\0';
}

static void take_header(rpc_call *call, const uint8_t *name, size_t namelen, const uint8_t *value,
                        size_t valuelen) {
    if (header_is(name, namelen, ":path")) {
        call->path_too_long = valuelen > MAX_PATH;
        call->path_len = call->path_too_long ? 0 : valuelen;
        memcpy(call->path, value, call->path_len);
        call->path[call->path_len] = '\0';
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
    }
}

/* grpc-go's words for a path with no method: "unknown service X" or "unknown method M for service X". */
static void reject_unknown_path(rpc_call *call) {
    static const char *services[] = {
        "etcdserverpb.KV",          "etcdserverpb.Watch", "etcdserverpb.Lease",    "etcdserverpb.Cluster",
        "etcdserverpb.Maintenance", "etcdserverpb.Auth",  "v3electionpb.Election", "v3lockpb.Lock",
        "grpc.health.v1.Health"};
    char msg[MAX_PATH + 100];
    const char *path = call->path;
    const char *slash = call->path_len > 1 && path[0] == '/' ? strrchr(path + 1, '/') : NULL;
    if (!slash || call->path_too_long) {
        snprintf(msg, sizeof msg, "malformed method name: \"%.*s\"", MAX_PATH, path);
        return rpc_finish(call, GRPC_UNIMPLEMENTED, msg);
    }
    int service_len = (int)(slash - path - 1);
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++) {
        if (strlen(services[i]) == (size_t)service_len && memcmp(services[i], path + 1, service_len) == 0) {
            snprintf(msg, sizeof msg, "unknown method %s for service %s", slash + 1, services[i]);
            return rpc_finish(call, GRPC_UNIMPLEMENTED, msg);
        }
    }
    snprintf(msg, sizeof msg, "unknown service %.*s", service_len, path + 1);
    rpc_finish(call, GRPC_UNIMPLEMENTED, msg);
}

/* The request headers are complete: choose the method or answer with an error. */
static void start_call(rpc_call *call) {
    if (!call->is_post) {
        call->finished = true;
        nghttp2_submit_rst_stream(call->h->session, NGHTTP2_FLAG_NONE, call->stream_id,
                                  NGHTTP2_PROTOCOL_ERROR);
        return;
    }
    if (!call->grpc_content_type) {
        char msg[128];
        snprintf(msg, sizeof msg, "transport: received unexpected content-type \"%s\"", call->content_type);
        return finish_http(call, GRPC_INTERNAL, msg, "415");
    }
    call->method = call->path_too_long ? NULL : rpc_find_method(call->path, call->path_len);
    if (!call->method) return reject_unknown_path(call);
    if (call->timeout >= 0) {
        ev_timer_init(&call->deadline, on_deadline, call->timeout, 0.);
        call->deadline.data = call;
        ev_timer_start(EV_DEFAULT_ & call->deadline);
    }
}

static uint64_t max_message_bytes(void) {
    return g_config.max_request_bytes + GRPC_OVERHEAD_BYTES;
}

/* Checks the 5-byte prefix at the head of call->in. Returns the message length, or -1 after an error. */
static int64_t check_prefix(rpc_call *call) {
    const uint8_t *p = sbuf_head(&call->in);
    uint32_t len = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    char msg[160];
    if (p[0] == 1) {
        if (call->encoding[0] && strcmp(call->encoding, "identity") != 0)
            snprintf(msg, sizeof msg, "grpc: Decompressor is not installed for grpc-encoding \"%s\"",
                     call->encoding);
        else
            snprintf(msg, sizeof msg, "grpc: compressed flag set with identity or empty encoding");
        rpc_finish(call, call->encoding[0] ? GRPC_UNIMPLEMENTED : GRPC_INTERNAL, msg);
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

/* Streams: hand over each complete message. Unary: only check, delivery waits for END_STREAM. */
static void cut_messages(rpc_call *call) {
    while (!call->finished && !call->closed && !call->h->blocked && sbuf_size(&call->in) >= 5) {
        int64_t len = check_prefix(call);
        if (len < 0) return;
        if (call->method->kind != RPC_STREAM) {
            if (sbuf_size(&call->in) > 5 + (uint64_t)len)
                rpc_finish(call, GRPC_INTERNAL, "grpc: unary request carries more than one message");
            return;
        }
        if (sbuf_size(&call->in) < 5 + (uint64_t)len) return;
        const uint8_t *msg = sbuf_head(&call->in) + 5;
        call->method->handler(call, msg, (size_t)len);
        sbuf_consume(&call->in, 5 + (size_t)len);
    }
}

static void deliver_unary(rpc_call *call) {
    size_t have = sbuf_size(&call->in);
    if (have == 0) return call->method->handler(call, (const uint8_t *)"", 0);
    int64_t len = have >= 5 ? check_prefix(call) : 0;
    if (len < 0) return;
    if (have < 5 || have != 5 + (uint64_t)len) return rpc_finish(call, GRPC_INTERNAL, "unexpected EOF");
    call->method->handler(call, sbuf_head(&call->in) + 5, (size_t)len);
}

/* The client half-closed its side of the stream and every message before that was handled. */
static void on_client_done(rpc_call *call) {
    if (call->end_handled) return;
    call->end_handled = true;
    if (!call->method || call->finished) return;
    if (call->method->kind != RPC_STREAM) return deliver_unary(call);
    if (sbuf_size(&call->in) > 0) rpc_finish(call, GRPC_INTERNAL, "unexpected EOF");
    call_notify_closed(call);
    finish_http(call, GRPC_OK, NULL, "200");
}

/* Runs the call's received input: messages, then the end of the request. On a blocked connection
 * the input waits, and so does the flow-control credit for it, so the client soon stops sending. */
static void call_input(rpc_call *call) {
    h2_conn *h = call->h;
    if (h->blocked) {
        call->parked = true;
        return;
    }
    if (call->unconsumed) nghttp2_session_consume(h->session, call->stream_id, call->unconsumed);
    call->unconsumed = 0;
    if (call->method && !call->finished) cut_messages(call);
    if (h->blocked && call->method && call->method->kind == RPC_STREAM && sbuf_size(&call->in) >= 5) {
        call->parked = true; /* a handler's reply blocked the connection mid-way */
        return;
    }
    if (call->client_done) on_client_done(call);
    conn_mark_dirty(h->conn);
}

static void on_resume(EV_P_ ev_timer *t, int revents) {
    (void)EV_A, (void)revents;
    h2_conn *h = t->data;
    h->blocked = false;
    for (rpc_call *call = h->calls; call && !h->blocked; call = call->next) {
        if (!call->parked) continue;
        call->parked = false;
        call_input(call);
    }
    conn_mark_dirty(h->conn);
}

/* --- nghttp2 callbacks --- */

static rpc_call *stream_call(nghttp2_session *session, int32_t stream_id) {
    return nghttp2_session_get_stream_user_data(session, stream_id);
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    rpc_call *call = call_new(user_data, frame->hd.stream_id);
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, call);
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data) {
    (void)flags, (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    rpc_call *call = stream_call(session, frame->hd.stream_id);
    if (call) take_header(call, name, namelen, value, valuelen);
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    rpc_call *call = stream_call(session, frame->hd.stream_id);
    if (!call) return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) start_call(call);
    if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
    call->client_done = true;
    call_input(call);
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                         size_t len, void *user_data) {
    (void)flags, (void)user_data;
    rpc_call *call = stream_call(session, stream_id);
    if (!call || !call->method || call->finished || call->closed) {
        nghttp2_session_consume(session, stream_id, len); /* discarded */
        return 0;
    }
    sbuf_append(&call->in, data, len);
    call->unconsumed += len;
    metrics_grpc_received(len);
    call_input(call);
    return 0;
}

/* After trailers, a stream the client has not half-closed is reset with NO_ERROR, as grpc-go does. */
static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
    rpc_call *call = stream_call(session, frame->hd.stream_id);
    if (call && !call->client_done)
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data) {
    (void)error_code, (void)user_data;
    rpc_call *call = stream_call(session, stream_id);
    if (!call) return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    call_notify_closed(call);
    call_free(call);
    return 0;
}

static nghttp2_session_callbacks *make_callbacks(void) {
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0) abort();
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    return cb;
}

/* --- sessions --- */

h2_conn *h2_conn_new(conn *c) {
    static nghttp2_session_callbacks *callbacks;
    if (!callbacks) callbacks = make_callbacks();
    h2_conn *h = xcalloc(1, sizeof *h);
    h->conn = c;
    ev_timer_init(&h->resume, on_resume, 0., 0.);
    h->resume.data = h;
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt) != 0) abort();
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_no_http_messaging(opt, 1); /* clientv3 3.4 sends :authority "http://host:port" */
    /* clientv3 ends every KeepAliveOnce (and each canceled call) with RST_STREAM: nghttp2's default
     * budget (1000, then 33/s) would GOAWAY a busy but honest client. Each reset still costs us
     * only one stream, and streams are capped by MAX_STREAMS. */
    nghttp2_option_set_stream_reset_rate_limit(opt, RESET_BURST, RESET_RATE);
    if (nghttp2_session_server_new2(&h->session, callbacks, h, opt) != 0) abort();
    nghttp2_option_del(opt);
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
    };
    nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, settings, 2);
    nghttp2_session_set_local_window_size(h->session, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
    return h;
}

int h2_conn_recv(h2_conn *h, const uint8_t *data, size_t len) {
    ssize_t rv = nghttp2_session_mem_recv(h->session, data, len);
    if (rv >= 0) return 0;
    log_msg(LOG_DEBUG, "http2: closing connection: %s", nghttp2_strerror((int)rv));
    nghttp2_session_terminate_session(h->session, NGHTTP2_PROTOCOL_ERROR);
    return -1;
}

int h2_conn_produce(h2_conn *h, size_t limit) {
    while (conn_unsent(h->conn) < limit) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(h->session, &data);
        if (n < 0) return -1;
        if (n == 0) return 0;
        conn_queue_released(h->conn, data, (size_t)n);
    }
    return nghttp2_session_want_write(h->session) ? 1 : 0;
}

bool h2_conn_done(const h2_conn *h) {
    return !nghttp2_session_want_read(h->session) && !nghttp2_session_want_write(h->session);
}

void h2_conn_goaway(h2_conn *h) {
    int32_t last = nghttp2_session_get_last_proc_stream_id(h->session);
    nghttp2_submit_goaway(h->session, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, NULL, 0);
}

void h2_conn_free(h2_conn *h) {
    ev_timer_stop(EV_DEFAULT_ & h->resume);
    for (rpc_call *call = h->calls; call; call = call->next) {
        nghttp2_session_set_stream_user_data(h->session, call->stream_id, NULL);
        call_notify_closed(call);
    }
    while (h->calls)
        call_free(h->calls);
    nghttp2_session_del(h->session);
    free(h);
}
