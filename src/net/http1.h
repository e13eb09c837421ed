/* http1.h: HTTP/1.1 on the client port for connections that do not start with the HTTP/2 preface:
 * /health, /livez, /readyz, /version, /metrics and the /v3/ JSON gateway (served by http_api.c). */
#ifndef CETCD_HTTP1_H
#define CETCD_HTTP1_H

#include "server.h"

/* Serves every complete request in in (consuming it), queuing replies on c.
 * Returns 0 to keep the connection, -1 to close it once the replies are written. */
int http1_conn_recv(conn *c, sbuf *in);

#endif
