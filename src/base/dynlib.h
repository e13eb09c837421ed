/* dynlib.h: opens a shared library at run time, for the features that load theirs only when used
 * (OpenSSL for TLS, libyaml for --config-file, libxcrypt for password hashes: idle RSS, issue 16),
 * with one message format for a library that cannot be loaded. */
#ifndef CETCD_DYNLIB_H
#define CETCD_DYNLIB_H

#include <stddef.h>

/* dlopen(soname, RTLD_NOW | RTLD_LOCAL). On failure NULL, and err says "<needs> <soname>, which cannot
 * be loaded (<why>)", then "; on Debian it is in package <package>" unless package is NULL. */
void *dynlib_open(const char *soname, const char *needs, const char *package, char *err, size_t errlen);

#endif
