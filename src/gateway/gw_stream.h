/* gw_stream.h: the JSON gateway's two streaming routes, /v3/watch and /v3/lease/keepalive, as etcd's
 * grpc-gateway serves them: the request body is a sequence of JSON requests, the reply a chunked
 * stream of {"result": ...} lines, one per response (http_api.h's http_api_stream). */
#ifndef CETCD_GW_STREAM_H
#define CETCD_GW_STREAM_H

#include <stdbool.h>

#include "http_api.h"

/* Whether path is one of the streaming routes. */
bool gw_stream_path(const char *path);
/* Serves a POST to one of them: resp gets the stream, or, when the first request does not decode,
 * the error through fail(resp, code, message) (etcd's gateway answers it before streaming). */
void gw_stream_serve(const http_api_req *req, http_api_resp *resp,
                     void (*fail)(void *resp, int code, const char *message));

#endif
