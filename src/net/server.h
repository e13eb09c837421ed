/* server.h: listening sockets and client connections on the one libev loop. A connection's first
 * bytes pick HTTP/2 (h2.c) or HTTP/1.1 (http1.c); both only queue output, which leaves once the
 * batch it may depend on is durable (commit.c). */
#ifndef CETCD_SERVER_H
#define CETCD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"

typedef struct conn conn;

/* HTTP/1.1: queue reply bytes; they leave once the writes they may depend on are durable. */
void conn_queue(conn *c, const void *data, size_t len);
/* HTTP/2 frames produced by the session during a flush; held the same way. */
void conn_queue_released(conn *c, const void *data, size_t len);
/* Room for len more bytes of conn_queue_released output at once: a large reply's frames are then
 * appended without the buffer growing (and being copied) step by step. */
void conn_reserve_released(conn *c, size_t len);
/* A batch became durable: flush every connection that holds output for it. */
void server_release_durable(void);
/* HTTP/2: the connection's session has (or may have) frames to send. */
void conn_mark_dirty(conn *c);
/* Bytes queued on the connection and not yet written to the socket. */
size_t conn_unsent(const conn *c);
/* Stop reading; close once everything queued is written (or after a short grace period). */
void conn_close_when_flushed(conn *c);
/* Parses the HTTP/1 requests left in c's input behind a reply that was sent later (http1.c). */
void conn_http1_resume(conn *c);
/* HTTP/2 frames seen by h2.c, for the opening deadline and keepalive (conn_timeout.c): one received
 * (has_streams: the connection has open calls), one sent. */
void conn_h2_frame_recv(conn *c, uint8_t type, uint8_t flags, bool has_streams);
void conn_h2_frame_sent(conn *c, uint8_t type);

/* Opens a listener for each URL of the comma list (https:// ones after server_tls_setup); a
 * metrics_only listener serves /metrics and the health paths only. False with a message in err. */
bool server_listen(const char *urls, bool metrics_only, char *err, size_t errlen);
/* Loads the TLS files of etcd's flags (tls.c). False with one line naming the file in err. */
bool server_tls_setup(char *err, size_t errlen);
/* The connection came from a --listen-metrics-urls listener. */
bool conn_metrics_only(const conn *c);
/* Closes one of the spare descriptors kept for EMFILE (accept.c), so that a file can be opened in its
 * place; they are reopened once descriptors come free. False if none is left. */
bool server_release_reserve(void);
/* Produces and writes the output of every connection marked since the last flush. commit runs
 * before each connection's output is released (a close handler run by the flush may have written). */
void server_flush(void (*commit)(void));
bool server_has_dirty(void);
/* Says goodbye to every connection (HTTP/2 GOAWAY), writes what it can, closes everything. */
void server_shutdown(void (*commit)(void));

#endif
