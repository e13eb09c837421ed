/* http1.c: HTTP/1.1 on the client port (etcd serves it there too): a small request parser with
 * keep-alive and Content-Length bodies that hands each request to http_api.c (/health, /livez,
 * /readyz, /version, /metrics and the /v3/ JSON gateway), and writes its reply or, for the gateway's
 * watch and lease keep-alive, a chunked stream. Replies wait for the commit like gRPC ones. */
#include <assert.h>
#include <ctype.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "budget.h"
#include "config.h"
#include "h2.h"
#include "http1.h"
#include "http_api.h"

#define MAX_HEAD (64 * 1024)
#define MAX_PATH_LEN 2048
#define MAX_AUTH_LEN 1024 /* a longer Authorization header is kept as a token that matches none */
/* Pipelined requests wait while this much of the connection's output is unsent (server.c resumes
 * reading below its OUT_LOW, the same 1 MiB). */
#define HELD_MAX (1u << 20)

typedef struct http1_request {
    char method[16];
    char path[MAX_PATH_LEN]; /* without the query string */
    const char *query;       /* points into path storage after the '\0', "" if none */
    const uint8_t *body;
    size_t body_len;
    bool keep_alive;
    char authorization[MAX_AUTH_LEN + 1]; /* the Authorization header: the caller's auth token */
} http1_request;

typedef struct http1_response {
    int status;
    const char *content_type;
    const char *allow; /* for 405 */
    sbuf body;
    http_api_stream *stream; /* a streaming reply (chunked) */
} http1_response;

static void body_text(http1_response *resp, int status, const char *ctype, const char *text) {
    resp->status = status;
    resp->content_type = ctype;
    sbuf_append(&resp->body, text, strlen(text));
}

/* /health, /livez, /readyz, /version, /metrics and /v3/ (the JSON gateway) live in http_api.c. */
static void serve_api(const http1_request *req, http1_response *resp) {
    http_api_req in = {req->method, req->path, req->query, req->body, req->body_len, NULL};
    if (req->authorization[0]) in.authorization = req->authorization;
    http_api_resp out = {0};
    if (!http_api_serve(&in, &out)) return;
    resp->status = out.status;
    resp->content_type = out.content_type;
    resp->allow = out.allow;
    resp->body = out.body;
    resp->stream = out.stream;
}

static const char *reason_phrase(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Request Entity Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Error";
    }
}

/* What etcd's --listen-metrics-urls listener serves: metrics and health, nothing of the client API. */
static bool metrics_route(const char *path) {
    return strcmp(path, "/metrics") == 0 || strcmp(path, "/health") == 0 || strncmp(path, "/livez", 6) == 0 ||
           strncmp(path, "/readyz", 7) == 0;
}

/* Every path is http_api.c's; what it does not serve is not found, as in Go's ServeMux. */
static void dispatch(const http1_request *req, http1_response *resp, bool metrics_only) {
    if (!metrics_only || metrics_route(req->path)) serve_api(req, resp);
    if (!resp->status) body_text(resp, 404, "text/plain; charset=utf-8", "404 page not found\n");
}

static void send_response(conn *c, http1_response *resp, bool keep_alive) {
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s%s%s\r\n",
                     resp->status, reason_phrase(resp->status), resp->content_type, sbuf_size(&resp->body),
                     resp->allow ? "Allow: " : "", resp->allow ? resp->allow : "", resp->allow ? "\r\n" : "",
                     keep_alive ? "" : "Connection: close\r\n");
    conn_queue(c, head, (size_t)n);
    conn_queue(c, sbuf_head(&resp->body), sbuf_size(&resp->body));
    sbuf_free(&resp->body);
}

/* --- streaming replies (the gateway's watch and lease keep-alive): chunked, one chunk a message --- */

/* A connection whose reply is a stream: its further requests wait until the stream ends. The head
 * goes out with the first chunk (or the end), as Go's net/http sends it on the first write. */
typedef struct http1_stream {
    conn *c;
    http_api_stream *s;
    int status;
    const char *content_type;
    bool keep_alive, head_sent;
    struct http1_stream *next;
} http1_stream;

static http1_stream *streams;

static http1_stream **stream_slot(const conn *c) {
    http1_stream **pp = &streams;
    while (*pp && (*pp)->c != c)
        pp = &(*pp)->next;
    return pp;
}

static void stream_head(http1_stream *st) {
    if (st->head_sent) return;
    st->head_sent = true;
    char head[256];
    int n =
        snprintf(head, sizeof head,
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n%s\r\n", st->status,
                 reason_phrase(st->status), st->content_type, st->keep_alive ? "" : "Connection: close\r\n");
    conn_queue(st->c, head, (size_t)n);
}

/* Connections whose stream ended after start_stream returned: requests they pipelined behind it are
 * parsed from a zero timer, outside the service whose answer ended the stream. */
static struct {
    conn **v;
    size_t n, cap;
    ev_timer timer;
    bool ready;
} resume;
static bool starting; /* in start_stream, whose caller goes on parsing when the stream ends at once */

static void on_resume(EV_P_ ev_timer *t, int revents) {
    (void)EV_A, (void)t, (void)revents;
    while (resume.n > 0)
        conn_http1_resume(resume.v[--resume.n]);
}

static void resume_later(conn *c) {
    if (starting) return;
    for (size_t i = 0; i < resume.n; i++)
        if (resume.v[i] == c) return;
    if (resume.n == resume.cap) {
        resume.cap = resume.cap ? 2 * resume.cap : 8;
        resume.v = realloc(resume.v, resume.cap * sizeof *resume.v);
        if (!resume.v) abort();
    }
    resume.v[resume.n++] = c;
    if (!resume.ready) ev_timer_init(&resume.timer, on_resume, 0., 0.);
    resume.ready = true;
    if (!ev_is_active(&resume.timer)) ev_timer_start(EV_DEFAULT_ & resume.timer);
}

static void resume_forget(const conn *c) {
    for (size_t i = 0; i < resume.n; i++)
        if (resume.v[i] == c) resume.v[i--] = resume.v[--resume.n];
}

static void stream_chunk(void *ctx, const void *data, size_t len) {
    conn *c = ctx;
    http1_stream *st = *stream_slot(c);
    if (!st) return;
    stream_head(st);
    char size[24];
    int n = snprintf(size, sizeof size, "%zx\r\n", len);
    conn_queue(c, size, (size_t)n);
    conn_queue(c, data, len);
    conn_queue(c, "\r\n", 2);
}

static void stream_end(void *ctx) {
    conn *c = ctx;
    http1_stream **pp = stream_slot(c), *st = *pp;
    if (!st) return;
    *pp = st->next;
    stream_head(st);
    conn_queue(c, "0\r\n\r\n", 5);
    if (!st->keep_alive) conn_close_when_flushed(c);
    free(st);
    resume_later(c);
}

/* A reply that waited (the gateway's Lock, Campaign, a hash): sent whole, as Go's net/http sends a
 * short reply written at once, with a Content-Length. */
static void stream_whole(void *ctx, int status, const char *content_type, const void *body, size_t len) {
    conn *c = ctx;
    http1_stream **pp = stream_slot(c), *st = *pp;
    if (!st) return;
    assert(!st->head_sent);
    *pp = st->next;
    http1_response resp = {.status = status, .content_type = content_type};
    sbuf_append(&resp.body, body, len);
    send_response(c, &resp, st->keep_alive);
    if (!st->keep_alive) conn_close_when_flushed(c);
    free(st);
    resume_later(c);
}

static size_t stream_unsent(void *ctx) {
    return conn_unsent(ctx);
}

/* Runs the stream (its head waits for its first chunk). False once it has ended. */
static bool start_stream(conn *c, http1_response *resp, bool keep_alive) {
    sbuf_free(&resp->body);
    http1_stream *st = calloc(1, sizeof *st);
    if (!st) abort();
    *st = (http1_stream){c, resp->stream, resp->status, resp->content_type, keep_alive, false, streams};
    streams = st;
    http_api_writer w = {stream_chunk, stream_end, stream_whole, stream_unsent, c};
    starting = true;
    http_api_stream_start(resp->stream, &w);
    starting = false;
    return *stream_slot(c) != NULL;
}

void http1_conn_closed(conn *c) {
    resume_forget(c);
    http1_stream **pp = stream_slot(c), *st = *pp;
    if (!st) return;
    *pp = st->next;
    http_api_stream_closed(st->s);
    free(st);
}

/* An error that ends the connection (we cannot trust where the next request starts). */
static int send_error(conn *c, int status) {
    http1_response resp = {0};
    char text[64];
    snprintf(text, sizeof text, "%d %s", status, reason_phrase(status));
    body_text(&resp, status, "text/plain; charset=utf-8", text);
    send_response(c, &resp, false);
    return -1;
}

/* --- parsing --- */

/* The end of the head in p[0..n), searching from `from` on (what is before holds none). */
static const uint8_t *find_head_end(const uint8_t *p, size_t n, size_t from) {
    for (size_t i = from > 3 ? from : 3; i < n; i++)
        if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r') return p + i + 1;
    return NULL;
}

/* "GET /path?q HTTP/1.1". Returns false when malformed. */
static bool parse_request_line(const char *line, size_t len, http1_request *req, int *minor) {
    const char *sp1 = memchr(line, ' ', len);
    if (!sp1 || sp1 == line || (size_t)(sp1 - line) >= sizeof req->method) return false;
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', len - (size_t)(target - line));
    if (!sp2 || sp2 == target || *target != '/' || (size_t)(sp2 - target) >= sizeof req->path - 1)
        return false;
    size_t vlen = len - (size_t)(sp2 + 1 - line);
    if (vlen != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)sp2[8])) return false;
    *minor = sp2[8] - '0';
    memcpy(req->method, line, (size_t)(sp1 - line));
    req->method[sp1 - line] = '\0';
    size_t tlen = (size_t)(sp2 - target);
    memcpy(req->path, target, tlen);
    req->path[tlen] = '\0';
    char *q = strchr(req->path, '?');
    req->query = q ? q + 1 : req->path + tlen;
    if (q) *q = '\0';
    return true;
}

typedef struct head_info {
    long long content_length; /* -1: none */
    bool chunked, conn_close, conn_keep_alive, expect_continue;
    char *authorization; /* where the first Authorization header's value goes */
} head_info;

static bool header_name_is(const char *line, size_t name_len, const char *want) {
    return strlen(want) == name_len && strncasecmp(line, want, name_len) == 0;
}

/* One "Name: value" line. Returns false when malformed. */
static bool parse_header_line(const char *line, size_t len, head_info *info) {
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line) return false;
    size_t name_len = (size_t)(colon - line);
    const char *v = colon + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vlen = (size_t)(end - v);
    if (header_name_is(line, name_len, "content-length")) {
        if (vlen == 0 || vlen > 15 || info->content_length >= 0) return false;
        long long n = 0;
        for (size_t i = 0; i < vlen; i++) {
            if (!isdigit((unsigned char)v[i])) return false;
            n = n * 10 + (v[i] - '0');
        }
        info->content_length = n;
    } else if (header_name_is(line, name_len, "transfer-encoding")) {
        info->chunked = true;
    } else if (header_name_is(line, name_len, "expect")) {
        info->expect_continue = vlen == 12 && strncasecmp(v, "100-continue", 12) == 0;
    } else if (header_name_is(line, name_len, "authorization") && !info->authorization[0]) {
        snprintf(info->authorization, MAX_AUTH_LEN + 1, "%.*s", vlen <= MAX_AUTH_LEN ? (int)vlen : 10,
                 vlen <= MAX_AUTH_LEN ? v : "(too long)");
    } else if (header_name_is(line, name_len, "connection")) {
        if (vlen == 5 && strncasecmp(v, "close", 5) == 0) info->conn_close = true;
        if (vlen == 10 && strncasecmp(v, "keep-alive", 10) == 0) info->conn_keep_alive = true;
    }
    return true;
}

/* Parses the head [p, end). Returns 0, or an HTTP status for a bad request. */
static int parse_head(const char *p, const char *end, http1_request *req, head_info *info) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    int minor = 1;
    if (!eol || eol == p || eol[-1] != '\r' || !parse_request_line(p, (size_t)(eol - 1 - p), req, &minor))
        return 400;
    *info = (head_info){.content_length = -1, .authorization = req->authorization};
    for (p = eol + 1; p < end - 2; p = eol + 1) {
        eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol || eol[-1] != '\r' || !parse_header_line(p, (size_t)(eol - 1 - p), info)) return 400;
    }
    if (info->chunked) return 501;
    req->keep_alive = minor >= 1 ? !info->conn_close : info->conn_keep_alive;
    return 0;
}

static uint64_t max_body(void) {
    return g_config.max_request_bytes + 512 * 1024;
}

bool http1_held(const conn *c, const sbuf *in) {
    return sbuf_size(in) > 0 && conn_unsent(c) >= HELD_MAX;
}

int http1_conn_recv(conn *c, sbuf *in, size_t *scanned) {
    while (sbuf_size(in) > 0 && !http1_held(c, in)) {
        if (streams && *stream_slot(c)) return 0; /* after the stream */
        const uint8_t *start = sbuf_head(in);
        size_t have = sbuf_size(in), limit = have < MAX_HEAD ? have : MAX_HEAD;
        assert(*scanned <= have);
        const uint8_t *head_end = find_head_end(start, limit, *scanned);
        if (!head_end) {
            *scanned = limit;
            return have >= MAX_HEAD ? send_error(c, 431) : 0;
        }
        *scanned = (size_t)(head_end - start) - 1; /* while its body comes, the head is found at once */
        http1_request req = {0};
        head_info info;
        int bad = parse_head((const char *)start, (const char *)head_end, &req, &info);
        if (bad) return send_error(c, bad);
        size_t head_len = (size_t)(head_end - start);
        uint64_t body_len = info.content_length > 0 ? (uint64_t)info.content_length : 0;
        if (body_len > max_body()) return send_error(c, 413);
        if (have < head_len + body_len) {
            /* curl waits for this before sending a body; only the head is here, so it is sent once */
            static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";
            if (info.expect_continue && have == head_len) conn_queue(c, go_on, sizeof go_on - 1);
            return 0; /* wait for the rest of the body */
        }
        req.body = head_end;
        req.body_len = (size_t)body_len;
        http1_response resp = {0};
        reply_budget_begin(h2_held_total());
        dispatch(&req, &resp, conn_metrics_only(c));
        bool streaming = false;
        if (resp.stream)
            streaming = start_stream(c, &resp, req.keep_alive);
        else
            send_response(c, &resp, req.keep_alive);
        sbuf_consume(in, head_len + (size_t)body_len);
        *scanned = 0;
        if (streaming) return 0;
        if (!req.keep_alive) return -1;
    }
    return 0;
}
