/* sbuf.h: the growable byte buffer every layer writes output into (HTTP/2 frames, HTTP/1 replies,
 * JSON, /metrics). Its own module so that producers of bytes need not include the connection layer. */
#ifndef CETCD_SBUF_H
#define CETCD_SBUF_H

#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer: bytes [off, len) of data are live. Aborts on out-of-memory. */
typedef struct sbuf {
    uint8_t *data;
    size_t off, len, cap;
} sbuf;

void sbuf_append(sbuf *b, const void *p, size_t n);
/* Makes room for n more bytes at once (appends that follow move nothing). */
void sbuf_reserve(sbuf *b, size_t n);
/* Appends n bytes left for the caller to fill; returns where they start. */
uint8_t *sbuf_extend(sbuf *b, size_t n);
void sbuf_consume(sbuf *b, size_t n);
void sbuf_free(sbuf *b);
static inline size_t sbuf_size(const sbuf *b) {
    return b->len - b->off;
}
static inline uint8_t *sbuf_head(const sbuf *b) {
    return b->data + b->off;
}

#endif
