/* yaml_lib.c: loads libyaml (libyaml-0.so.2, Debian's libyaml-0-2) at run time for --config-file and
 * resolves the functions of yaml_lib.h, as tls_lib.c does for OpenSSL: a server configured by flags
 * never maps the library. */
#define YAML_LIB_NO_CALL_MACROS
#include "yaml_lib.h"

#include "dynlib.h"

#include <dlfcn.h>
#include <stdio.h>

#define YAML_SONAME "libyaml-0.so.2"

yaml_lib_fns yaml_fn;

static bool resolve(void *h, char *err, size_t errlen) {
#define RESOLVE(f)                                                                                           \
    if (!(yaml_fn.f = (__typeof__(yaml_fn.f))dlsym(h, #f))) {                                                \
        snprintf(err, errlen, "%s has no %s", YAML_SONAME, #f);                                              \
        return false;                                                                                        \
    }
    YAML_LIB_FUNCS(RESOLVE)
#undef RESOLVE
    return true;
}

bool yaml_lib_load(char *err, size_t errlen) {
    static int state; /* 0: not tried, 1: loaded, -1: failed */
    static char first_err[300];
    if (state == 0) {
        void *h = dynlib_open(YAML_SONAME, "reading YAML needs", "libyaml-0-2", first_err, sizeof first_err);
        state = h && resolve(h, first_err, sizeof first_err) ? 1 : -1;
    }
    if (state < 0) snprintf(err, errlen, "%s", first_err);
    return state > 0;
}
