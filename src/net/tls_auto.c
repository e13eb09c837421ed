/* tls_auto.c: --auto-tls. etcd writes a self-signed certificate (a year, ECDSA P-256) for its listen
 * hosts into the data dir; cetcd makes the same kind of certificate in memory at start, so that
 * nothing on disk needs cleaning up. Clients must skip verification, as with etcd's. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "flags.h"
#include "tls_auto.h"
#include "tls_lib.h" /* after every OpenSSL header: its calls go through tls_fn */

#define VALIDITY_SECONDS (365L * 24 * 3600)

/* "DNS:localhost,IP:127.0.0.1,..." from the listen URLs. */
static void alt_names(char *out, size_t cap) {
    size_t used = (size_t)snprintf(out, cap, "DNS:localhost,IP:127.0.0.1,IP:::1");
    const char *list = g_config.listen_client_urls;
    for (const char *p = list; p && *p && used < cap;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        listen_url u;
        char err[100];
        unsigned char addr[16];
        if (url_parse(p, len, &u, err, sizeof err) && u.host[0]) {
            bool ip = inet_pton(AF_INET, u.host, addr) == 1 || inet_pton(AF_INET6, u.host, addr) == 1;
            used += (size_t)snprintf(out + used, cap - used, ",%s:%s", ip ? "IP" : "DNS", u.host);
        }
        p = comma ? comma + 1 : NULL;
    }
}

static bool add_san(X509 *cert) {
    char names[2048];
    alt_names(names, sizeof names);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, names);
    if (!ext) return false;
    bool ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

bool tls_auto_identity(SSL_CTX *x, char *err, size_t errlen) {
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    bool ok = key && cert;
    if (ok) {
        X509_set_version(cert, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(cert), (long)time(NULL));
        X509_gmtime_adj(X509_getm_notBefore(cert), 0);
        X509_gmtime_adj(X509_getm_notAfter(cert), VALIDITY_SECONDS);
        X509_NAME *name = X509_get_subject_name(cert);
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"etcd", -1, -1, 0);
        X509_set_issuer_name(cert, name);
        ok = X509_set_pubkey(cert, key) == 1 && add_san(cert) && X509_sign(cert, key, EVP_sha256()) > 0 &&
             SSL_CTX_use_certificate(x, cert) == 1 && SSL_CTX_use_PrivateKey(x, key) == 1;
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    if (!ok) {
        unsigned long e = ERR_peek_last_error();
        snprintf(err, errlen, "--auto-tls: cannot make a certificate: %s",
                 e && ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "unknown error");
        ERR_clear_error();
    }
    return ok;
}
