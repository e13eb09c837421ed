/* h2.c: gRPC over HTTP/2 with nghttp2: each stream is an rpc_call whose :path picks a method from the
 * table (methods.c); h2_input.c cuts request bytes into gRPC messages and runs the handlers; replies
 * are framed here, held in the call and pulled by nghttp2 when the loop flushes. */
#include <assert.h>
#include <ev.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "budget.h"
#include "h2_internal.h"
#include "log_msg.h"
#include "metrics.h"

#define STREAM_WINDOW (1 << 20)
#define CONN_WINDOW (16 << 20)
/* etcd's --max-concurrent-streams default (embed.DefaultMaxConcurrentStreams, math.MaxUint32):
 * advertised as etcd does; what open calls may take is bounded by CALL_STATE_BUDGET instead. */
#define MAX_STREAMS 0xffffffffu
#define CALL_STATE_BYTES (sizeof(rpc_call) + 1024) /* a call and nghttp2's stream, estimated */
#define RESET_BURST 100000                         /* incoming RST_STREAM budget, and its refill per second */
#define RESET_RATE 100000

static size_t held_total;    /* reply bytes held in the calls of every connection */
static size_t pledged_total; /* the part of it pledged (rpc_message_pledge), not yet reserved */

size_t h2_held_total(void) {
    return held_total;
}

static void held_add(h2_conn *h, size_t n) {
    h->queued += n;
    held_total += n;
}

static void held_sub(h2_conn *h, size_t n) {
    h->queued -= n;
    held_total -= n;
}

/* --- calls --- */

/* Freed calls kept for the next ones, with their emptied buffers: a unary call otherwise costs an
 * allocation of the call and of each of its two buffers. Bounded (SPARE_CALLS, about 1 MB); none are
 * kept under AddressSanitizer (H2_KEEP_FREED). */
#define SPARE_CALLS 128
static rpc_call *spare_calls;
static unsigned n_spare_calls;

static rpc_call *call_alloc(void) {
    rpc_call *call = spare_calls;
    if (!call) return xcalloc(1, sizeof *call);
    spare_calls = call->next;
    n_spare_calls--;
    sbuf in = call->in, out = call->out;
    memset(call, 0, sizeof *call);
    call->in = in;
    call->out = out;
    return call;
}

static void call_release(rpc_call *call) {
    if (!H2_KEEP_FREED || n_spare_calls >= SPARE_CALLS) {
        sbuf_free(&call->in);
        sbuf_free(&call->out);
        free(call);
        return;
    }
    assert(sbuf_size(&call->in) == 0 && sbuf_size(&call->out) == 0);
    call->next = spare_calls;
    spare_calls = call;
    n_spare_calls++;
}

static rpc_call *call_new(h2_conn *h, int32_t stream_id) {
    rpc_call *call = call_alloc();
    call->h = h;
    call->stream_id = stream_id;
    call->timeout = -1;
    call->next = h->calls;
    if (h->calls) h->calls->prev = call;
    h->calls = call;
    h->state_bytes += CALL_STATE_BYTES;
    return call;
}

/* The handler's last word: runs the method's on_close once, whatever ended the call. */
void call_notify_closed(rpc_call *call) {
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
    if (h->last_call == call) h->last_call = NULL;
    input_forget(call);
    held_sub(h, sbuf_size(&call->out)); /* a reservation is counted too */
    rpc_message_pledge(call, 0);
    h->state_bytes -= CALL_STATE_BYTES + call->path_len;
    outbuf_release(&call->out);
    if (call->path != call->path_inline) free(call->path);
    free(call->message);
    call_release(call);
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

/* A header whose name is a literal and whose value outlives the frame: nghttp2 neither copies nor
 * lowercases either (a copy of every header of every reply was a tenth of its cost of a put). A
 * value stays until the stream is closed: a literal, or the call's message, freed with the call. */
#define NV(name, value, vlen)                                                                                \
    {                                                                                                        \
        (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1, (vlen),                                     \
            NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE                                     \
    }

/* grpc-status's value: gRPC's codes are 0..16, written without a format call; another one is
 * formatted into buf, which the header must then copy (status_nv). */
static const char *status_text(int code, char buf[static 12]) {
    static const char *const codes[] = {"0", "1",  "2",  "3",  "4",  "5",  "6",  "7", "8",
                                        "9", "10", "11", "12", "13", "14", "15", "16"};
    if (code >= 0 && code < (int)(sizeof codes / sizeof codes[0])) return codes[code];
    snprintf(buf, 12, "%d", code);
    return buf;
}

static nghttp2_nv status_nv(int code, char buf[static 12]) {
    const char *status = status_text(code, buf);
    nghttp2_nv nv = NV("grpc-status", status, strlen(status));
    if (status == buf) nv.flags = NGHTTP2_NV_FLAG_NO_COPY_NAME;
    return nv;
}

static void submit_trailers(rpc_call *call) {
    char buf[12];
    const char *msg = call->message ? call->message : "";
    nghttp2_nv nv[] = {status_nv(call->status, buf), NV("grpc-message", msg, strlen(msg))};
    nghttp2_submit_trailer(call->h->session, call->stream_id, nv, 2);
}

/* A connection blocked by its calls' backlog (QUEUED_HIGH) runs requests again once under QUEUED_LOW:
 * on the next turn (on_kick), not from inside the flush or nghttp2's callbacks. */
static void kick_if_drained(h2_conn *h) {
    if (h->blocked && h->queued < QUEUED_LOW && !ev_is_active(&h->kick))
        ev_timer_start(EV_DEFAULT_ & h->kick);
}

/* n bytes of the call's output are on their way. */
static void reply_taken(rpc_call *call, size_t n) {
    outbuf_take(&call->out, n);
    held_sub(call->h, n);
    kick_if_drained(call->h);
}

/* A DATA frame's payload at least this long is not copied into nghttp2's frame buffer: send_data
 * writes it to the connection's output straight from the call's (NGHTTP2_DATA_FLAG_NO_COPY). */
#define DATA_NO_COPY_MIN 4096

/* The payload of the call's next DATA frame: up to length bytes of its committed messages (a
 * reserved one is not yet there). */
static ssize_t read_reply(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                          uint32_t *flags, nghttp2_data_source *source, void *user_data) {
    (void)session, (void)stream_id, (void)user_data;
    rpc_call *call = source->ptr;
    size_t ready = sbuf_size(&call->out) - call->reserved, n = ready < length ? ready : length;
    if (n == 0 && !call->finished) {
        call->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    if (n >= DATA_NO_COPY_MIN) {
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    } else {
        memcpy(buf, sbuf_head(&call->out), n);
        reply_taken(call, n);
    }
    if (n == ready && call->finished) {
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        submit_trailers(call);
    }
    return (ssize_t)n;
}

/* A DATA frame read_reply left in place (NO_COPY) is sent: nghttp2 calls this at once, in the same
 * nghttp2_session_mem_send, so its bytes are still the head of call->out. Its header and payload join
 * the connection's output; past h2_conn_produce's limit, nghttp2 stops there. */
static int send_data(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd, size_t length,
                     nghttp2_data_source *source, void *user_data) {
    (void)session;
    h2_conn *h = user_data;
    rpc_call *call = source->ptr;
    assert(frame->data.padlen == 0 && length <= sbuf_size(&call->out) - call->reserved);
    if (h->out_want) conn_reserve_released(h->conn, h->out_want);
    h->out_want = 0;
    conn_queue_released(h->conn, framehd, 9);
    conn_queue_released(h->conn, sbuf_head(&call->out), length);
    reply_taken(call, length);
    if (conn_unsent(h->conn) < h->out_limit) return 0;
    h->out_paused = true;
    return NGHTTP2_ERR_PAUSE;
}

/* HEADERS (:status 200) and the data provider, before the first message. */
static void start_response(rpc_call *call) {
    static const char ct[] = "application/grpc";
    nghttp2_nv nv[] = {NV(":status", "200", 3), NV("content-type", ct, sizeof ct - 1)};
    nghttp2_data_provider prd = {.source.ptr = call, .read_callback = read_reply};
    call->started = true;
    nghttp2_submit_response(call->h->session, call->stream_id, nv, 2, &prd);
}

/* An error (or OK) with no message sent: one HEADERS frame carrying the status, END_STREAM.
 * http_status is a literal. */
static void submit_trailers_only(rpc_call *call, const char *http_status) {
    static const char ct[] = "application/grpc";
    char buf[12];
    const char *msg = call->message ? call->message : "";
    nghttp2_nv nv[] = {NV(":status", http_status, strlen(http_status)), NV("content-type", ct, sizeof ct - 1),
                       status_nv(call->status, buf), NV("grpc-message", msg, strlen(msg))};
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

/* Decides the call's status; trailers go out after its queued messages. http_status is a literal. */
void call_finish_http(rpc_call *call, int code, const char *message, const char *http_status) {
    if (call->finished || !call->h) return;
    set_status(call, code, message);
    if (!call->started) submit_trailers_only(call, http_status);
    wake(call);
}

void rpc_finish(rpc_call *call, int grpc_code, const char *message) {
    if (call_writable(call)) call_finish_http(call, grpc_code, message, "200");
}

/* gRPC's message prefix: not compressed, then the length, big-endian. */
static void put_prefix(uint8_t *p, size_t len) {
    p[0] = 0;
    p[1] = (uint8_t)(len >> 24);
    p[2] = (uint8_t)(len >> 16);
    p[3] = (uint8_t)(len >> 8);
    p[4] = (uint8_t)len;
}

/* Queues one gRPC message of len bytes; returns where its body goes in call->out. Over etcd's
 * send limit the call fails with grpc-go's words instead (NULL). */
static uint8_t *queue_message(rpc_call *call, size_t len) {
    assert(!call->reserved); /* it would land after the reserved one */
    if (len > GRPC_MAX_SEND_BYTES) {
        char msg[128];
        snprintf(msg, sizeof msg, "grpc: trying to send message larger than max (%zu vs. %zu)", len,
                 GRPC_MAX_SEND_BYTES);
        rpc_finish(call, GRPC_RESOURCE_EXHAUSTED, msg);
        return NULL;
    }
    outbuf_prepare(&call->out, 5 + len);
    uint8_t *prefix = sbuf_extend(&call->out, 5 + len);
    put_prefix(prefix, len);
    return prefix + 5;
}

/* The message is in call->out: count it, start the response, let nghttp2 take it. */
static void message_queued(rpc_call *call, size_t len) {
    held_add(call->h, 5 + len);
    metrics_grpc_sent(5 + len);
    if (call->h->queued > QUEUED_HIGH) call->h->blocked = true;
    if (call->method->kind == RPC_UNARY) set_status(call, GRPC_OK, NULL);
    if (!call->started) start_response(call);
    wake(call);
}

/* Packs straight into the call's output: a big reply is never copied. */
void rpc_send(rpc_call *call, const ProtobufCMessage *msg) {
    if (!call_writable(call)) return;
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *body = queue_message(call, len);
    if (!body) return;
    if (len) protobuf_c_message_pack(msg, body);
    message_queued(call, len);
}

void rpc_send_parts(rpc_call *call, const uint8_t *head, size_t head_len, const uint8_t *body,
                    size_t body_len) {
    if (!call_writable(call)) return;
    uint8_t *dst = queue_message(call, head_len + body_len);
    if (!dst) return;
    memcpy(dst, head, head_len);
    if (body_len) memcpy(dst + head_len, body, body_len);
    message_queued(call, head_len + body_len);
}

void rpc_message_pledge(rpc_call *call, size_t n) {
    held_total = held_total - call->pledged + n; /* the pool only: nothing is queued on the connection */
    pledged_total = pledged_total - call->pledged + n;
    call->pledged = n;
}

size_t rpc_held_reserved(void) {
    assert(held_total >= pledged_total);
    return held_total - pledged_total;
}

uint8_t *rpc_message_reserve(rpc_call *call, size_t len) {
    rpc_message_pledge(call, 0); /* the reservation takes its place */
    if (!call_writable(call)) return NULL;
    uint8_t *body = queue_message(call, len);
    if (body) { /* held from now: a reply copied over several turns counts against the others' budget */
        call->reserved = 5 + len;
        held_add(call->h, call->reserved);
    }
    return body;
}

/* Until now the reserved bytes were counted as held but not visible to read_reply. */
void rpc_message_commit(rpc_call *call, size_t len) {
    assert(call->reserved >= 5 + len && call->h);
    held_sub(call->h, call->reserved); /* message_queued counts what is queued */
    size_t unused = call->reserved - 5 - len;
    call->reserved = 0;
    call->out.len -= unused;
    if (unused) put_prefix(call->out.data + call->out.len - len - 5, len);
    if (!call_writable(call)) { /* ended meanwhile (not while a handler runs): the message goes */
        call->out.len -= 5 + len;
        if (sbuf_size(&call->out) == 0) outbuf_release(&call->out);
        return;
    }
    message_queued(call, len);
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

/* --- nghttp2 callbacks --- */

static rpc_call *stream_call(h2_conn *h, int32_t stream_id) {
    if (h->last_call && h->last_id == stream_id) return h->last_call;
    rpc_call *call = nghttp2_session_get_stream_user_data(h->session, stream_id);
    if (call) h->last_id = stream_id, h->last_call = call;
    return call;
}

/* A new stream: refused while the open calls take more than CALL_STATE_BUDGET. */
static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
    h2_conn *h = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    if (h->state_bytes > CALL_STATE_BUDGET) {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    rpc_call *call = call_new(h, frame->hd.stream_id);
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, call);
    return 0;
}

__attribute__((noinline)) static int header_of_other_stream(h2_conn *h, int32_t stream_id,
                                                            const uint8_t *name, size_t namelen,
                                                            const uint8_t *value, size_t valuelen) {
    rpc_call *call = stream_call(h, stream_id);
    return call ? input_header(call, name, namelen, value, valuelen) : 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data) {
    (void)session, (void)flags;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    h2_conn *h = user_data;
    /* called for every header of every request: both ways out are tail calls, so the usual one (the
     * stream of the last header) saves no registers */
    if (h->last_call && h->last_id == frame->hd.stream_id)
        return input_header(h->last_call, name, namelen, value, valuelen);
    return header_of_other_stream(h, frame->hd.stream_id, name, namelen, value, valuelen);
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
    (void)session;
    h2_conn *h = user_data;
    conn_h2_frame_recv(h->conn, frame->hd.type, frame->hd.flags, h->calls != NULL); /* conn_timeout.c */
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    rpc_call *call = stream_call(user_data, frame->hd.stream_id);
    if (!call) return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        input_headers_done(call);
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) input_end(call);
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                         size_t len, void *user_data) {
    (void)flags;
    rpc_call *call = stream_call(user_data, stream_id);
    if (call)
        input_data(call, data, len);
    else
        nghttp2_session_consume(session, stream_id, len); /* discarded */
    return 0;
}

/* After trailers, a stream the client has not half-closed is reset with NO_ERROR, as grpc-go does. */
static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
    conn_h2_frame_sent(((h2_conn *)user_data)->conn, frame->hd.type); /* conn_timeout.c */
    if (frame->hd.type != NGHTTP2_HEADERS || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
    rpc_call *call = stream_call(user_data, frame->hd.stream_id);
    if (call && !call->client_done)
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data) {
    (void)error_code;
    rpc_call *call = stream_call(user_data, stream_id);
    if (!call) return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    call_notify_closed(call);
    call_free(call);
    kick_if_drained(user_data); /* a reset call's backlog is gone with it */
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
    nghttp2_session_callbacks_set_send_data_callback(cb, send_data);
    return cb;
}

/* --- sessions --- */

/* Next turn: a connection unblocked by its client reading, or with calls left from its last turn. */
static void on_kick(EV_P_ ev_timer *t, int revents) {
    (void)EV_A, (void)revents;
    h2_conn *h = t->data;
    if (h->blocked && h->queued < QUEUED_LOW) h->blocked = false;
    input_run(h);
}

h2_conn *h2_conn_new(conn *c) {
    static nghttp2_session_callbacks *callbacks;
    if (!callbacks) callbacks = make_callbacks();
    h2_conn *h = xcalloc(1, sizeof *h);
    h->conn = c;
    ev_timer_init(&h->kick, on_kick, 0., 0.);
    h->kick.data = h;
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt) != 0) abort();
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_no_http_messaging(opt, 1); /* clientv3 3.4 sends :authority "http://host:port" */
    /* clientv3 ends every KeepAliveOnce (and each canceled call) with RST_STREAM: nghttp2's default
     * budget (1000, then 33/s) would GOAWAY a busy but honest client. A reset call costs what its
     * handler ran (charged to the connection's turn budget, h2_input.c) and one stream. */
    nghttp2_option_set_stream_reset_rate_limit(opt, RESET_BURST, RESET_RATE);
    /* with etcd's stream limit nghttp2 would keep every closed stream for RFC 7540 priorities */
    nghttp2_option_set_no_closed_streams(opt, 1);
    if (nghttp2_session_server_new3(&h->session, callbacks, h, opt, h2_mem()) != 0) abort();
    nghttp2_option_del(opt);
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, settings, 3);
    nghttp2_session_set_local_window_size(h->session, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
    return h;
}

/* Frames are parsed first, then the calls they completed run (within the turn's budget): a stream
 * reset in the same bytes never runs. */
int h2_conn_recv(h2_conn *h, const uint8_t *data, size_t len) {
    ssize_t rv = nghttp2_session_mem_recv(h->session, data, len);
    if (rv >= 0) {
        input_run(h);
        return 0;
    }
    log_msg(LOG_DEBUG, "http2: closing connection: %s", nghttp2_strerror((int)rv));
    nghttp2_session_terminate_session(h->session, NGHTTP2_PROTOCOL_ERROR);
    return -1;
}

/* Frames nghttp2 returns are copied into the connection's output; large DATA payloads are put there
 * by send_data, which pauses nghttp2 (mem_send returns 0) once the output reaches limit. With at least
 * RESERVE_MIN of replies that may go, the first such payload makes room for them all (out_want),
 * instead of the output doubling (and copying what it holds) a dozen times on the way to megabytes. */
#define RESERVE_MIN (64u << 10)
int h2_conn_produce(h2_conn *h, size_t limit) {
    h->out_limit = limit;
    size_t want = h->queued < limit ? h->queued : limit; /* the reply bytes that can go now, at most */
    int32_t window = nghttp2_session_get_remote_window_size(h->session);
    if (window >= 0 && (size_t)window < want) want = (size_t)window;
    h->out_want = want >= RESERVE_MIN ? want + want / 1024 + 4096 : 0; /* + frame heads */
    while (conn_unsent(h->conn) < limit) {
        const uint8_t *data;
        h->out_paused = false;
        ssize_t n = nghttp2_session_mem_send(h->session, &data);
        if (n < 0) return -1;
        if (n == 0) return h->out_paused && nghttp2_session_want_write(h->session) ? 1 : 0;
        conn_queue_released(h->conn, data, (size_t)n);
    }
    return nghttp2_session_want_write(h->session) ? 1 : 0;
}

bool h2_conn_done(const h2_conn *h) {
    return !nghttp2_session_want_read(h->session) && !nghttp2_session_want_write(h->session);
}

void h2_conn_goaway(h2_conn *h) {
    h2_conn_goaway_error(h, NGHTTP2_NO_ERROR, NULL);
}

void h2_conn_goaway_error(h2_conn *h, uint32_t code, const char *debug) {
    int32_t last = nghttp2_session_get_last_proc_stream_id(h->session);
    nghttp2_submit_goaway(h->session, NGHTTP2_FLAG_NONE, last, code, (const uint8_t *)debug,
                          debug ? strlen(debug) : 0);
}

void h2_conn_ping(h2_conn *h) {
    nghttp2_submit_ping(h->session, NGHTTP2_FLAG_NONE, NULL);
}

bool h2_conn_backlogged(const h2_conn *h) {
    return input_backlogged(h);
}

size_t h2_conn_free(h2_conn *h) {
    size_t held = h->queued;
    ev_timer_stop(EV_DEFAULT_ & h->kick);
    for (rpc_call *call = h->calls; call; call = call->next) {
        nghttp2_session_set_stream_user_data(h->session, call->stream_id, NULL);
        call_notify_closed(call);
    }
    while (h->calls)
        call_free(h->calls);
    nghttp2_session_del(h->session);
    free(h);
    return held;
}
