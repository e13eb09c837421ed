/* tls_lib.c: loads OpenSSL 3 (libcrypto.so.3, then libssl.so.3) at run time when TLS is configured,
 * and resolves the functions of tls_lib.h by the version the headers were written for, as the
 * linker would have bound them. */
#define TLS_LIB_NO_CALL_MACROS
#include "tls_lib.h"

#include "dynlib.h"

#include <dlfcn.h>
#include <stdio.h>

#define OPENSSL_SYMBOL_VERSION "OPENSSL_3.0.0"

tls_lib_fns tls_fn;

static void *open_lib(const char *name, char *err, size_t errlen) {
    return dynlib_open(name, "TLS needs OpenSSL 3's", "libssl3", err, errlen);
}

static void *find(void *h, const char *lib, const char *fn, char *err, size_t errlen) {
    void *p = dlvsym(h, fn, OPENSSL_SYMBOL_VERSION);
    if (!p) snprintf(err, errlen, "TLS: %s has no %s@%s (not OpenSSL 3?)", lib, fn, OPENSSL_SYMBOL_VERSION);
    return p;
}

static bool resolve(void *crypto, void *ssl, char *err, size_t errlen) {
#define RESOLVE(h, lib, f)                                                                                   \
    if (!(tls_fn.f = (__typeof__(tls_fn.f))find(h, lib, #f, err, errlen))) return false;
#define FROM_SSL(f) RESOLVE(ssl, "libssl.so.3", f)
#define FROM_CRYPTO(f) RESOLVE(crypto, "libcrypto.so.3", f)
    TLS_LIB_SSL_FUNCS(FROM_SSL)
    TLS_LIB_CRYPTO_FUNCS(FROM_CRYPTO)
#undef FROM_CRYPTO
#undef FROM_SSL
#undef RESOLVE
    return true;
}

bool tls_lib_load(char *err, size_t errlen) {
    static int state; /* 0: not tried, 1: loaded, -1: failed */
    static char first_err[300];
    if (state == 0) {
        void *crypto = open_lib("libcrypto.so.3", first_err, sizeof first_err);
        void *ssl = crypto ? open_lib("libssl.so.3", first_err, sizeof first_err) : NULL;
        state = ssl && resolve(crypto, ssl, first_err, sizeof first_err) ? 1 : -1;
    }
    if (state < 0) snprintf(err, errlen, "%s", first_err);
    return state > 0;
}
