/* tls.c: OpenSSL under the connections of https:// listeners. The context follows etcd's TLS flags;
 * as etcd reads its files on each handshake, the files are checked (stat) on each new connection and
 * the context rebuilt when one changed. Handshakes never block: the socket's watchers drive them,
 * and the connection's opening deadline (conn_timeout.c) ends one that stalls. OpenSSL itself is
 * loaded when the first context is built (tls_lib.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "log_msg.h"
#include "server.h"
#include "tls.h"
#include "tls_auto.h"
#include "tls_lib.h" /* after every OpenSSL header: its calls go through tls_fn */

static SSL_CTX *ctx; /* the current context; a session holds its own reference */

/* The files' identity when last read, so that a change (a new file, a rewrite) is seen. */
typedef struct file_stamp {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_stamp;
#define N_FILES 4
static file_stamp loaded[N_FILES], tried[N_FILES];

static const char **tls_files(const char *out[N_FILES]) {
    out[0] = g_config.cert_file;
    out[1] = g_config.key_file;
    out[2] = g_config.trusted_ca_file;
    out[3] = g_config.client_crl_file;
    return out;
}

static void stamp_files(file_stamp st[N_FILES]) {
    const char *files[N_FILES];
    tls_files(files);
    memset(st, 0, N_FILES * sizeof *st);
    for (int i = 0; i < N_FILES; i++) {
        struct stat sb;
        if (!files[i] || !*files[i] || stat(files[i], &sb) != 0) continue;
        st[i] = (file_stamp){sb.st_dev, sb.st_ino, sb.st_size, sb.st_mtim};
    }
}

/* --- building the context --- */

static void openssl_reason(char *out, size_t cap) {
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(out, cap, "%s", r ? r : "unknown error");
    ERR_clear_error();
}

/* "cetcd: --cert-file x: ..." style messages: the flag, the file, why. */
static bool file_error(char *err, size_t errlen, const char *flag, const char *path, const char *what) {
    char why[160];
    FILE *f = fopen(path, "r");
    if (!f)
        snprintf(why, sizeof why, "%s", strerror(errno));
    else {
        fclose(f);
        openssl_reason(why, sizeof why);
    }
    ERR_clear_error();
    snprintf(err, errlen, "--%s %s: %s: %s", flag, path, what, why);
    return false;
}

/* Go's names of the TLS 1.2 suites etcd accepts, and OpenSSL's. */
static const struct {
    const char *go, *openssl;
} suites[] = {
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256"},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"},
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"},
    {"TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256"},
};

static bool set_ciphers(SSL_CTX *x, char *err, size_t errlen) {
    const char *list = g_config.cipher_suites;
    if (!list || !*list) return true;
    char out[2048] = "";
    size_t used = 0;
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && *p == ' ')
            p++, len--;
        const char *name = NULL;
        for (size_t i = 0; i < sizeof suites / sizeof suites[0] && !name; i++)
            if (strlen(suites[i].go) == len && memcmp(suites[i].go, p, len) == 0) name = suites[i].openssl;
        if (!name) {
            snprintf(err, errlen, "--cipher-suites: unknown or unsupported cipher suite \"%.*s\"", (int)len,
                     p);
            return false;
        }
        used += (size_t)snprintf(out + used, sizeof out - used, "%s%s", used ? ":" : "", name);
        if (used >= sizeof out) break;
        p = comma ? comma + 1 : NULL;
    }
    if (SSL_CTX_set_cipher_list(x, out) != 1) {
        snprintf(err, errlen, "--cipher-suites: OpenSSL accepts none of them");
        return false;
    }
    return true;
}

static int version_of(const char *v, int dflt) {
    if (!v || !*v) return dflt;
    return strcmp(v, "TLS1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

/* ALPN: h2 for gRPC, http/1.1 for /health, /metrics and the gateway, both on one port as in etcd.
 * HTTP/2 here carries gRPC only, so a client that offers http/1.1 gets it (curl, Go's net/http and
 * browsers offer both); gRPC clients offer h2 alone (grpc-go, grpc-js) or with grpc-exp (C core). */
static int select_alpn(SSL *s, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
    (void)s, (void)arg;
    static const unsigned char prefs[] = "\x08http/1.1\x02h2";
    for (const unsigned char *want = prefs; want < prefs + sizeof prefs - 1; want += 1 + want[0])
        for (unsigned int i = 0; i < inlen; i += 1u + in[i])
            if (in[i] == want[0] && i + 1u + in[i] <= inlen && memcmp(in + i + 1, want + 1, want[0]) == 0) {
                *out = in + i + 1;
                *outlen = in[i];
                return SSL_TLSEXT_ERR_OK;
            }
    return SSL_TLSEXT_ERR_NOACK; /* neither offered: go on without ALPN; the first bytes decide */
}

static bool load_trust(SSL_CTX *x, char *err, size_t errlen) {
    const char *ca = g_config.trusted_ca_file, *crl = g_config.client_crl_file;
    if (ca && *ca) {
        if (SSL_CTX_load_verify_locations(x, ca, NULL) != 1)
            return file_error(err, errlen, "trusted-ca-file", ca, "cannot load the CA certificates");
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
        if (names) SSL_CTX_set_client_CA_list(x, names);
    }
    if (crl && *crl) {
        X509_STORE *store = SSL_CTX_get_cert_store(x);
        X509_LOOKUP *lk = X509_STORE_add_lookup(store, X509_LOOKUP_file());
        if (!lk || X509_load_crl_file(lk, crl, X509_FILETYPE_PEM) <= 0)
            return file_error(err, errlen, "client-crl-file", crl, "cannot load the revocation list");
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
    if (g_config.client_cert_auth && ca && *ca)
        SSL_CTX_set_verify(x, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    return true;
}

static bool load_identity(SSL_CTX *x, char *err, size_t errlen) {
    const char *cert = g_config.cert_file, *key = g_config.key_file;
    if (!cert || !*cert) return tls_auto_identity(x, err, errlen);
    if (SSL_CTX_use_certificate_chain_file(x, cert) != 1)
        return file_error(err, errlen, "cert-file", cert, "cannot load the certificate");
    if (SSL_CTX_use_PrivateKey_file(x, key, SSL_FILETYPE_PEM) != 1)
        return file_error(err, errlen, "key-file", key, "cannot load the private key");
    if (SSL_CTX_check_private_key(x) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "--key-file %s: the key does not match --cert-file %s", key, cert);
        return false;
    }
    return true;
}

static SSL_CTX *build_context(char *err, size_t errlen) {
    SSL_CTX *x = SSL_CTX_new(TLS_server_method());
    if (!x) {
        snprintf(err, errlen, "TLS: cannot create a context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(x, version_of(g_config.tls_min_version, TLS1_2_VERSION));
    SSL_CTX_set_max_proto_version(x, version_of(g_config.tls_max_version, 0));
    SSL_CTX_set_options(x, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(x, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(x, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(x, 0);
    SSL_CTX_set_alpn_select_cb(x, select_alpn, NULL);
    if (!set_ciphers(x, err, errlen) || !load_identity(x, err, errlen) || !load_trust(x, err, errlen)) {
        SSL_CTX_free(x);
        return NULL;
    }
    return x;
}

bool tls_setup(char *err, size_t errlen) {
    if (!tls_lib_load(err, errlen)) return false;
    stamp_files(tried);
    SSL_CTX *x = build_context(err, errlen);
    if (!x) return false;
    if (ctx) SSL_CTX_free(ctx);
    ctx = x;
    memcpy(loaded, tried, sizeof loaded);
    return true;
}

bool server_tls_setup(char *err, size_t errlen) {
    return tls_setup(err, errlen);
}

bool conn_metrics_only(const conn *c) {
    return c->metrics_only;
}

bool tls_ready(void) {
    return ctx != NULL;
}

/* On a new connection: if a file changed since it was last tried, build a new context. A failure
 * (say the certificate is written before its key) keeps the old one and is tried again once the
 * files change again. */
static void reload_if_changed(void) {
    if (!g_config.cert_file || !*g_config.cert_file) return; /* --auto-tls: nothing to watch */
    file_stamp now[N_FILES];
    stamp_files(now);
    if (memcmp(now, loaded, sizeof now) == 0 || memcmp(now, tried, sizeof now) == 0) return;
    memcpy(tried, now, sizeof tried);
    char err[512];
    SSL_CTX *x = build_context(err, sizeof err);
    if (!x) {
        log_msg(LOG_WARN, "TLS files changed but cannot be loaded, keeping the previous ones: %s", err);
        return;
    }
    SSL_CTX_free(ctx); /* sessions still running keep their reference */
    ctx = x;
    memcpy(loaded, now, sizeof loaded);
    log_msg(LOG_INFO, "TLS certificate files changed: reloaded for new connections");
}

/* --- connections --- */

bool tls_conn_start(conn *c) {
    if (!ctx) return false;
    reload_if_changed();
    SSL *s = SSL_new(ctx);
    if (!s) return ERR_clear_error(), false;
    if (SSL_set_fd(s, c->fd) != 1) {
        SSL_free(s);
        ERR_clear_error();
        return false;
    }
    SSL_set_accept_state(s);
    c->ssl = s;
    return true;
}

const char *tls_conn_peer_cn(conn *c) {
    if (!c->ssl || !c->tls_done || !g_config.client_cert_auth) return NULL;
    if (!c->peer_cn_known) {
        c->peer_cn_known = true;
        X509 *cert = SSL_get1_peer_certificate(c->ssl);
        if (cert && SSL_get_verify_result(c->ssl) == X509_V_OK) {
            char cn[1024] = "";
            int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
            c->peer_cn = xstrdup(n > 0 ? cn : "");
        }
        X509_free(cert);
        ERR_clear_error();
    }
    return c->peer_cn;
}

void tls_conn_free(conn *c) {
    free(c->peer_cn);
    c->peer_cn = NULL;
    if (!c->ssl) return;
    if (c->tls_done) SSL_shutdown(c->ssl); /* one close_notify, without waiting for the client's */
    SSL_free(c->ssl);
    ERR_clear_error();
    c->ssl = NULL;
}

static void log_refused(conn *c, int ssl_err) {
    char why[200];
    long v = SSL_get_verify_result(c->ssl);
    if (v != X509_V_OK)
        snprintf(why, sizeof why, "client certificate: %s", X509_verify_cert_error_string(v));
    else if (ssl_err == SSL_ERROR_SYSCALL)
        snprintf(why, sizeof why, "%s", errno ? strerror(errno) : "the client closed the connection");
    else
        openssl_reason(why, sizeof why);
    ERR_clear_error();
    log_msg(LOG_WARN, "rejected TLS connection: %s", why);
}

int tls_conn_handshake(conn *c) {
    if (!c->ssl || c->tls_done) return 1;
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->tls_done = true;
        ev_io_stop(EV_DEFAULT_ & c->wio);
        return 1;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        ev_io_stop(EV_DEFAULT_ & c->wio);
        return 0;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        ev_io_start(EV_DEFAULT_ & c->wio);
        return 0;
    }
    log_refused(c, e);
    return -1;
}

/* OpenSSL's outcome as read(2)/write(2) would give it. */
static ssize_t as_syscall(conn *c, int r) {
    int e = SSL_get_error(c->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (!errno) return 0; /* EOF without close_notify */
        return -1;
    default:
        ERR_clear_error();
        errno = EPROTO;
        return -1;
    }
}

ssize_t conn_io_read(conn *c, void *buf, size_t len) {
    if (!c->ssl) return read(c->fd, buf, len);
    ERR_clear_error();
    errno = 0;
    int r = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    return r > 0 ? r : as_syscall(c, r);
}

ssize_t conn_io_write(conn *c, const void *buf, size_t len) {
    if (!c->ssl) return write(c->fd, buf, len);
    ERR_clear_error();
    errno = 0;
    int r = SSL_write(c->ssl, buf, len > (1u << 20) ? (1 << 20) : (int)len);
    if (r > 0) return r;
    ssize_t n = as_syscall(c, r);
    return n == 0 ? (errno = EPIPE, -1) : n;
}

bool conn_io_pending(const conn *c) {
    return c->ssl && SSL_pending(c->ssl) > 0;
}
