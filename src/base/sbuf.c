/* sbuf.c: the growable byte buffer of sbuf.h. Appends reuse space already consumed before growing,
 * and a big buffer is given back once drained. */
#include "sbuf.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* Makes room for n more bytes, first by moving the live bytes to the front, then by doubling. */
void sbuf_reserve(sbuf *b, size_t n) {
    if (b->len + n > b->cap && b->off > 0) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->len + n <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void sbuf_append(sbuf *b, const void *p, size_t n) {
    if (n == 0) return;
    sbuf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

uint8_t *sbuf_extend(sbuf *b, size_t n) {
    sbuf_reserve(b, n);
    b->len += n;
    return b->data + b->len - n;
}

void sbuf_consume(sbuf *b, size_t n) {
    b->off += n;
    if (b->off < b->len) return;
    b->off = b->len = 0;
    if (b->cap > (1u << 20)) sbuf_free(b); /* give big buffers back once drained */
}

void sbuf_free(sbuf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}
