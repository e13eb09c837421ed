/* tls_auto.h: --auto-tls, etcd's self-signed server certificate, made in memory at start for the
 * listen hosts when no --cert-file is given. */
#ifndef CETCD_TLS_AUTO_H
#define CETCD_TLS_AUTO_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

/* Puts a fresh ECDSA P-256 key and a certificate for localhost, 127.0.0.1, ::1 and the hosts of
 * --listen-client-urls into x. False with a message in err. */
bool tls_auto_identity(SSL_CTX *x, char *err, size_t errlen);

#endif
