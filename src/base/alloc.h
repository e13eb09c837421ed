/* alloc.h: allocation that stops the server with a message when memory is gone, so callers never
 * carry out-of-memory paths of their own. */
#ifndef CETCD_ALLOC_H
#define CETCD_ALLOC_H

#include <stddef.h>

_Noreturn void out_of_memory(void);
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);

#endif
