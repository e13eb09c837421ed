/* arena.c: chunked bump allocation for request results (see arena.h).
 * Large requests get a chunk of their own, so a huge value never wastes a chunk's tail. */
#include "arena.h"
#include "alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK 16384

typedef struct chunk {
    struct chunk *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
} chunk;

struct mv_arena {
    chunk *head;
    size_t bytes; /* handed out so far: what a request's results cost (arena_bytes) */
};

mv_arena *arena_new(void) {
    mv_arena *a = xcalloc(1, sizeof *a);
    return a;
}

static chunk *chunk_new(size_t size) {
    chunk *c = xmalloc(sizeof *c + size);
    c->used = 0;
    c->size = size;
    return c;
}

void *arena_alloc(mv_arena *a, size_t size) {
    void *p = arena_alloc_raw(a, size);
    memset(p, 0, size);
    return p;
}

void *arena_alloc_raw(mv_arena *a, size_t size) {
    size = (size + 15) & ~(size_t)15;
    if (size == 0) size = 16;
    chunk *c = a->head;
    if (!c || c->size - c->used < size) {
        size_t want = size > ARENA_CHUNK / 4 ? size : ARENA_CHUNK;
        c = chunk_new(want);
        if (want == size && a->head) {
            /* a big block: keep the current chunk in front for further small allocations */
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->data + c->used;
    c->used += size;
    a->bytes += size;
    return p;
}

void arena_charge(mv_arena *a, size_t n) {
    a->bytes += n;
}

size_t arena_bytes(const mv_arena *a) {
    return a ? a->bytes : 0;
}

void arena_free(mv_arena *a) {
    if (!a) return;
    chunk *c = a->head;
    while (c) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a);
}
