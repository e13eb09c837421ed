/* http1.h: HTTP/1.1 on the client port for connections that do not start with the HTTP/2 preface:
 * /health, /livez, /readyz, /version, /metrics and the /v3/ JSON gateway (served by http_api.c). */
#ifndef CETCD_HTTP1_H
#define CETCD_HTTP1_H

#include "server.h"

/* Serves the complete requests in in (consuming them), queuing replies on c, until the replies
 * held reach 1 MiB: the rest wait (pipelining is bounded), and so should reading (http1_held).
 * *scanned (0 for a new connection) keeps how much of in is known to hold no complete head, so a
 * head that arrives a byte at a time is searched once, not again on every read.
 * Returns 0 to keep the connection, -1 to close it once the replies are written. */
int http1_conn_recv(conn *c, sbuf *in, size_t *scanned);
/* True while requests in in wait for c's replies to leave: read no more until they do. */
bool http1_held(const conn *c, const sbuf *in);
/* c is going away: a streaming reply on it (the gateway's watch) is told, and writes no more. */
void http1_conn_closed(conn *c);

#endif
