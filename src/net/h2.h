/* h2.h: the gRPC transport: one nghttp2 server session per HTTP/2 connection, streams as rpc_calls,
 * gRPC message framing and trailers. Implements the rpc_* calls of rpc.h. */
#ifndef CETCD_H2_H
#define CETCD_H2_H

#include <stddef.h>
#include <stdint.h>

#include "server.h"

typedef struct h2_conn h2_conn;

/* A session for connection c; queues the server's SETTINGS. */
h2_conn *h2_conn_new(conn *c);
/* Feeds received bytes. Returns 0, or -1 when the connection must close (GOAWAY already queued). */
int h2_conn_recv(h2_conn *h, const uint8_t *data, size_t len);
/* Moves session output into the connection until it holds at least limit unsent bytes.
 * Returns 1 if the session still has frames to send, 0 if not, -1 on a fatal error. */
int h2_conn_produce(h2_conn *h, size_t limit);
/* True when the session wants neither to read nor to write: the connection can close. */
bool h2_conn_done(const h2_conn *h);
/* Queues GOAWAY(NO_ERROR) for a clean shutdown. */
void h2_conn_goaway(h2_conn *h);
/* Queues GOAWAY with an error code and debug data (NULL for none); the caller closes after it. */
void h2_conn_goaway_error(h2_conn *h, uint32_t code, const char *debug);
/* Queues a PING (the keepalive of conn_timeout.c). */
void h2_conn_ping(h2_conn *h);
/* Reply bytes held in the calls of every HTTP/2 connection (the reply budget's pool, budget.h). */
size_t h2_held_total(void);
/* True while the connection should read no more: the requests left for later turns (its turn
 * budget was spent) take half of what its calls may take. */
bool h2_conn_backlogged(const h2_conn *h);
/* Ends every open call (their on_close runs) and frees the session. Returns the reply bytes its calls
 * held, so that the caller knows how much memory went back to the allocator. */
size_t h2_conn_free(h2_conn *h);

#endif
