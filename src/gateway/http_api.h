/* http_api.h: etcd's HTTP/1.1 endpoints served next to gRPC: /health, /livez, /readyz, /version,
 * /metrics and the /v3/ JSON gateway (grpc-gateway's JSON). http1.c parses and frames; this decides. */
#ifndef CETCD_HTTP_API_H
#define CETCD_HTTP_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"

typedef struct http_api_req {
    const char *method, *path, *query; /* query without '?', "" if none */
    const uint8_t *body;
    size_t body_len;
    const char *authorization; /* the Authorization header (grpc-gateway's auth token), NULL if none */
} http_api_req;

/* A reply that streams (/v3/watch, /v3/lease/keepalive, /v3/election/observe, as etcd's gateway
 * streams them), or that is sent whole but later (Lock, Campaign, the hashing Auth calls): http1.c
 * sends the head with chunked transfer encoding and starts the stream with a writer; the stream
 * writes one chunk per message until it ends, or until the connection goes (http_api_stream_closed). */
typedef struct http_api_stream http_api_stream;

typedef struct http_api_writer {
    void (*chunk)(void *conn, const void *data, size_t len); /* one chunk, len > 0 */
    void (*end)(void *conn); /* the last chunk; the stream is not called again */
    /* Instead of chunks: the whole reply, with a Content-Length (a unary call answered later: Lock,
     * Campaign, a bcrypt hash); the stream is not called again. */
    void (*whole)(void *conn, int status, const char *content_type, const void *body, size_t len);
    size_t (*unsent)(void *conn); /* bytes queued and not yet written, for a slow reader */
    void *conn;
} http_api_writer;

typedef struct http_api_resp {
    int status;
    const char *content_type;
    const char *allow; /* Allow header for 405, else NULL */
    sbuf body;
    http_api_stream *stream; /* a streaming reply (status and content_type apply, body does not) */
} http_api_resp;

/* Serves req if its path is one of ours (true, resp filled); false leaves it to the caller. */
bool http_api_serve(const http_api_req *req, http_api_resp *resp);

/* Starts a stream of a reply with its writer (w is copied); it may end before returning. */
void http_api_stream_start(http_api_stream *s, const http_api_writer *w);
/* The connection went before the stream ended: it frees itself without writing. */
void http_api_stream_closed(http_api_stream *s);

#endif
