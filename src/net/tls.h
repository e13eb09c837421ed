/* tls.h: TLS for the https:// listeners, with OpenSSL on the one libev loop: the context built from
 * etcd's TLS flags (and rebuilt when the files change), and a connection's reads and writes, so that
 * server.c moves plain bytes and h2.c and http1.c never know TLS is there. */
#ifndef CETCD_TLS_H
#define CETCD_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conn_internal.h"

/* Builds the server context from g_config (--cert-file, --key-file, --trusted-ca-file,
 * --client-cert-auth, --client-crl-file, --auto-tls, --cipher-suites, --tls-min/max-version). False
 * with one line naming the file or flag in err. */
bool tls_setup(char *err, size_t errlen);
bool tls_ready(void); /* tls_setup succeeded */

/* A new connection on an https:// listener: its TLS session (the files are checked for changes
 * first). False when it cannot be made; the caller closes the socket. */
bool tls_conn_start(conn *c);
/* Runs the handshake as far as it goes without blocking. 1: done (or no TLS), 0: waiting for the
 * socket (the write watcher is started when OpenSSL wants to write), -1: failed (logged). */
int tls_conn_handshake(conn *c);
void tls_conn_free(conn *c);
/* The CommonName of the client certificate the handshake verified, which etcd takes as the user of a
 * call without a token (auth_gate.h): NULL without --client-cert-auth, TLS or a verified certificate;
 * "" for a certificate without one. Read once per connection. */
const char *tls_conn_peer_cn(conn *c);

/* read(2) and write(2) for the connection: through TLS when it has a session. -1 with errno EAGAIN
 * when OpenSSL waits for the socket. */
ssize_t conn_io_read(conn *c, void *buf, size_t len);
ssize_t conn_io_write(conn *c, const void *buf, size_t len);
/* Bytes OpenSSL read from the socket and has not handed over yet. */
bool conn_io_pending(const conn *c);

#endif
