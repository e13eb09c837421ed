/* dynlib.c: the run-time library loader of dynlib.h; one place for dlopen and the message that names
 * what could not be loaded and where Debian has it. */
#include "dynlib.h"

#include <dlfcn.h>
#include <stdio.h>

void *dynlib_open(const char *soname, const char *needs, const char *package, char *err, size_t errlen) {
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (h) return h;
    const char *why = dlerror();
    int n = snprintf(err, errlen, "%s %s, which cannot be loaded (%s)", needs, soname,
                     why ? why : "unknown error");
    if (package && n >= 0 && (size_t)n < errlen)
        snprintf(err + n, errlen - (size_t)n, "; on Debian it is in package %s", package);
    return NULL;
}
