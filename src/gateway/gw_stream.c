/* gw_stream.c: the JSON gateway's replies that are not written before the request returns.
 * /v3/watch and /v3/lease/keepalive, as etcd's grpc-gateway serves its two bidirectional streams: the
 * JSON requests of the body go to the service in order (a first one that does not decode is answered
 * as an error, a later one ends the requests), and each response goes out as one chunk holding
 * {"result":<response>} and a newline. A watch stream stays open until the client goes; a keep-alive
 * stream ends after its requests' answers. /v3/election/observe streams the same way from one
 * request. Lock, Campaign and the Auth calls that hash (later_exec functions) answer later, whole. */
#include "gw_stream.h"

#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "json.h"
#include "key_waits.h"
#include "later_call.h"
#include "pbjson.h"
#include "rpc.pb-c.h"
#include "svc_auth.h"
#include "svc_election.h"
#include "svc_lease.h"
#include "svc_lock.h"
#include "svc_maint.h"
#include "svc_watch.h"
#include "v3election.pb-c.h"
#include "v3lock.pb-c.h"

/* GW_LATER: one request, one reply sent whole when the service answers; GW_OBSERVE: one request, a
 * stream of replies. */
enum { GW_WATCH, GW_KEEPALIVE, GW_LATER, GW_OBSERVE };

static const struct {
    const char *path;
    int kind;
    const ProtobufCMessageDescriptor *request;
    later_exec exec; /* GW_LATER, GW_OBSERVE */
} stream_routes[] = {
    {"/v3/watch", GW_WATCH, &etcdserverpb__watch_request__descriptor, NULL},
    {"/v3/lease/keepalive", GW_KEEPALIVE, &etcdserverpb__lease_keep_alive_request__descriptor, NULL},
    {"/v3/lock/lock", GW_LATER, &v3lockpb__lock_request__descriptor, lock_lock_exec},
    {"/v3/election/campaign", GW_LATER, &v3electionpb__campaign_request__descriptor, election_campaign_exec},
    {"/v3/election/observe", GW_OBSERVE, &v3electionpb__leader_request__descriptor, election_observe_exec},
    {"/v3/auth/authenticate", GW_LATER, &etcdserverpb__authenticate_request__descriptor,
     auth_authenticate_exec},
    {"/v3/auth/user/add", GW_LATER, &etcdserverpb__auth_user_add_request__descriptor, auth_user_add_exec},
    {"/v3/auth/user/changepw", GW_LATER, &etcdserverpb__auth_user_change_password_request__descriptor,
     auth_user_change_password_exec},
    {"/v3/maintenance/hash", GW_LATER, &etcdserverpb__hash_request__descriptor, maint_hash_exec},
    {"/v3/maintenance/hashkv", GW_LATER, &etcdserverpb__hash_kvrequest__descriptor, maint_hashkv_exec},
};

struct http_api_stream {
    int kind;
    ProtobufCMessage **reqs; /* decoded, not yet run */
    size_t n_reqs;
    char *token; /* the request's Authorization header: its requests run as that caller */
    http_api_writer w;
    watch_stream *ws;
    /* GW_LATER, GW_OBSERVE */
    later_exec exec;
    later_call lc;
    rpc_caller caller;
    void (*fail)(void *resp, int code, const char *message); /* http_api.c's error body */
    bool running, ended;
    loop_job release; /* frees the stream after a later end (the service may still hold lc then) */
};

static int route_of(const char *path) {
    for (size_t i = 0; i < sizeof stream_routes / sizeof stream_routes[0]; i++)
        if (strcmp(stream_routes[i].path, path) == 0) return (int)i;
    return -1;
}

bool gw_stream_path(const char *path) {
    return route_of(path) >= 0;
}

/* ---------- the body: a sequence of JSON values, as Go's json.Decoder reads it ---------- */

static bool is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The extent of the value that starts at p (after white space): an object or array to its matching
 * bracket, a string to its quote, anything else to the next delimiter. Unterminated: to the end, so
 * that the parser reports it ("unexpected EOF"). */
static const char *value_end(const char *p, const char *end) {
    if (*p == '{' || *p == '[' || *p == '"') {
        int depth = 0;
        bool in_string = false;
        for (; p < end; p++) {
            if (in_string) {
                if (*p == '\\')
                    p++;
                else if (*p == '"')
                    in_string = false;
                if (!in_string && depth == 0) return p + 1;
                continue;
            }
            if (*p == '"') in_string = true;
            if (*p == '{' || *p == '[') depth++;
            if ((*p == '}' || *p == ']') && --depth == 0) return p + 1;
        }
        return end;
    }
    const char *q = p;
    while (q < end && !is_ws(*q) && !strchr("{}[],:\"", *q))
        q++;
    return q == p ? p + 1 : q;
}

/* Decodes the next request of the body at *pos. 1 with *out, 0 at the end of the body, -1 with err. */
static int next_request(const http_api_req *req, size_t *pos, const ProtobufCMessageDescriptor *d,
                        ProtobufCMessage **out, char *err, size_t errlen) {
    const char *p = (const char *)req->body + *pos, *end = (const char *)req->body + req->body_len;
    while (p < end && is_ws(*p))
        p++;
    if (p == end) return 0;
    const char *stop = value_end(p, end);
    *pos = (size_t)(stop - (const char *)req->body);
    json_value *v = json_parse(p, (size_t)(stop - p), err, errlen);
    if (!v) return -1;
    *out = pbjson_decode(d, v, err, errlen);
    json_free(v);
    return *out ? 1 : -1;
}

static void add_request(http_api_stream *s, ProtobufCMessage *m) {
    s->reqs = xrealloc(s->reqs, (s->n_reqs + 1) * sizeof *s->reqs);
    s->reqs[s->n_reqs++] = m;
}

void gw_stream_serve(const http_api_req *req, http_api_resp *resp,
                     void (*fail)(void *resp, int code, const char *message)) {
    int r = route_of(req->path);
    const ProtobufCMessageDescriptor *d = stream_routes[r].request;
    int kind = stream_routes[r].kind;
    char err[256];
    size_t pos = 0;
    ProtobufCMessage *m = NULL;
    int got;
    if (kind == GW_LATER || kind == GW_OBSERVE) { /* one request, decoded as a unary route's */
        m = pbjson_decode_body(d, req->body, req->body_len, err, sizeof err);
        if (!m) return fail(resp, GRPC_INVALID_ARGUMENT, err);
        got = 1;
    } else if ((got = next_request(req, &pos, d, &m, err, sizeof err)) < 0) {
        return fail(resp, GRPC_UNKNOWN, err); /* the gateway's own error: code Unknown */
    }
    http_api_stream *s = xcalloc(1, sizeof *s);
    s->kind = kind;
    s->exec = stream_routes[r].exec;
    s->fail = fail;
    s->token = req->authorization ? xstrdup(req->authorization) : NULL;
    if (kind == GW_LATER || kind == GW_OBSERVE)
        add_request(s, m);
    else
        for (; got > 0; got = next_request(req, &pos, d, &m, err, sizeof err))
            add_request(s, m);
    resp->status = 200;
    resp->content_type = "application/json";
    resp->stream = s;
}

/* ---------- responses ---------- */

static void write_result(http_api_stream *s, const ProtobufCMessage *msg) {
    sbuf line = {0};
    sbuf_append(&line, "{\"result\":", 10);
    pbjson_encode(&line, msg);
    sbuf_append(&line, "}\n", 2);
    s->w.chunk(s->w.conn, sbuf_head(&line), sbuf_size(&line));
    sbuf_free(&line);
}

/* The watch service's output: each encoded WatchResponse, as JSON. */
static void watch_send(void *ctx, const uint8_t *head, size_t head_len, const uint8_t *body,
                       size_t body_len) {
    http_api_stream *s = ctx;
    uint8_t *buf = xmalloc(head_len + body_len + 1);
    if (head_len) memcpy(buf, head, head_len);
    if (body_len) memcpy(buf + head_len, body, body_len);
    Etcdserverpb__WatchResponse *r = etcdserverpb__watch_response__unpack(NULL, head_len + body_len, buf);
    free(buf);
    if (!r) out_of_memory(); /* the service's own encoding always decodes */
    write_result(s, &r->base);
    etcdserverpb__watch_response__free_unpacked(r, NULL);
}

static size_t watch_pending(void *ctx) {
    http_api_stream *s = ctx;
    return s->w.unsent(s->w.conn);
}

static void keepalive_reply(void *ctx, const ProtobufCMessage *resp) {
    write_result(ctx, resp);
}

static void free_requests(http_api_stream *s) {
    for (size_t i = 0; i < s->n_reqs; i++)
        protobuf_c_message_free_unpacked(s->reqs[i], NULL);
    free(s->reqs);
    s->reqs = NULL;
    s->n_reqs = 0;
}

static void stream_free(http_api_stream *s) {
    free_requests(s);
    free(s->token);
    free(s);
}

/* ---------- replies sent later ---------- */

static void later_free(http_api_stream *s) {
    later_call_gone(&s->lc); /* a stream ended by its service may still have its wait */
    stream_free(s);
}

static void run_release(loop_job *j) {
    later_free((http_api_stream *)((char *)j - offsetof(http_api_stream, release)));
}

/* The call is over: freed now if its service is still running (at the end of later_start), else from
 * a loop job, after the service is done with its later_call. */
static void later_ended(http_api_stream *s) {
    s->ended = true;
    if (!s->running) loop_job_queue(&s->release);
}

static void later_reply(void *ctx, const ProtobufCMessage *msg) {
    http_api_stream *s = ctx;
    if (s->ended) return;
    if (s->kind == GW_OBSERVE) return write_result(s, msg);
    sbuf body = {0};
    pbjson_encode(&body, msg);
    s->w.whole(s->w.conn, 200, "application/json", sbuf_head(&body), sbuf_size(&body));
    sbuf_free(&body);
    later_ended(s);
}

/* An error: a unary reply in etcd's error shape; a stream just ends (Observe ends with OK, its only
 * end besides the client's). */
static void later_fail(void *ctx, int code, const char *message) {
    http_api_stream *s = ctx;
    if (s->ended) return;
    if (s->kind == GW_OBSERVE) {
        s->w.end(s->w.conn);
    } else {
        http_api_resp r = {0};
        s->fail(&r, code, message ? message : "");
        s->w.whole(s->w.conn, r.status, r.content_type, sbuf_head(&r.body), sbuf_size(&r.body));
        sbuf_free(&r.body);
    }
    later_ended(s);
}

static size_t later_pending(void *ctx) {
    http_api_stream *s = ctx;
    return s->w.unsent(s->w.conn);
}

static void later_start(http_api_stream *s) {
    s->caller = (rpc_caller){s->token, NULL};
    s->lc = (later_call){.out = {later_reply, later_fail, s}, .caller = &s->caller, .pending = later_pending};
    s->release.run = run_release;
    const rpc_caller *was = rpc_set_current_caller(&s->caller);
    s->running = true;
    s->exec(&s->lc, s->reqs[0]);
    s->running = false;
    rpc_set_current_caller(was);
    free_requests(s);
    if (s->ended) later_free(s);
}

void http_api_stream_start(http_api_stream *s, const http_api_writer *w) {
    s->w = *w;
    if (s->kind == GW_LATER || s->kind == GW_OBSERVE) return later_start(s);
    rpc_caller caller = {s->token, NULL};
    const rpc_caller *was = rpc_set_current_caller(&caller);
    if (s->kind == GW_WATCH) {
        watch_output out = {watch_send, watch_pending, s};
        s->ws = watch_stream_open(&out);
        for (size_t i = 0; i < s->n_reqs; i++)
            watch_stream_request(s->ws, (const Etcdserverpb__WatchRequest *)s->reqs[i]);
        free_requests(s); /* the stream stays until the client goes */
        rpc_set_current_caller(was);
        return;
    }
    reply_sink out = {keepalive_reply, NULL, s};
    for (size_t i = 0; i < s->n_reqs; i++)
        lease_keep_alive_exec(s->reqs[i], protobuf_c_message_get_packed_size(s->reqs[i]), &out);
    rpc_set_current_caller(was);
    s->w.end(s->w.conn); /* the requests are over: etcd's keep-alive stream ends with them */
    stream_free(s);
}

void http_api_stream_closed(http_api_stream *s) {
    assert(!s->ended); /* an ended stream is no longer the connection's */
    if (s->ws) watch_stream_close(s->ws);
    later_free(s);
}
