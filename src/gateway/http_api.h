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

typedef struct http_api_resp {
    int status;
    const char *content_type;
    const char *allow; /* Allow header for 405, else NULL */
    sbuf body;
} http_api_resp;

/* Serves req if its path is one of ours (true, resp filled); false leaves it to the caller. */
bool http_api_serve(const http_api_req *req, http_api_resp *resp);

#endif
