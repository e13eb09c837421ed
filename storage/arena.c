/* arena.c: chunked bump allocation for request results (see arena.h).
 * Large requests get a chunk of their own, so a huge value never wastes a chunk's tail. */
#include "arena.h"
#include "alloc.h"

#include <stdbool.h>
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
    struct mv_arena *next_spare;
};

/* Freed arenas kept with one emptied chunk each, per thread: every Put and Range takes an arena, and
 * a fresh 16 KiB chunk costs a malloc and a free that glibc consolidates. None are kept under
 * AddressSanitizer, so a use after free is still caught. */
#if defined(__SANITIZE_ADDRESS__)
#define SPARE_ARENAS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPARE_ARENAS 0
#endif
#endif
#ifndef SPARE_ARENAS
#define SPARE_ARENAS 4
#endif
static _Thread_local mv_arena *spare_arenas;
static _Thread_local unsigned n_spare_arenas;

mv_arena *arena_new(void) {
    mv_arena *a = spare_arenas;
    if (!a) return xcalloc(1, sizeof(mv_arena));
    spare_arenas = a->next_spare;
    n_spare_arenas--;
    a->next_spare = NULL;
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
    chunk *keep = NULL, *c = a->head;
    bool spare = (int)n_spare_arenas < SPARE_ARENAS; /* int: SPARE_ARENAS is 0 under ASan */
    while (c) {
        chunk *next = c->next;
        if (spare && !keep && c->size == ARENA_CHUNK)
            keep = c;
        else
            free(c);
        c = next;
    }
    if (!spare) return free(a);
    if (keep) keep->used = 0, keep->next = NULL;
    *a = (mv_arena){.head = keep, .next_spare = spare_arenas};
    spare_arenas = a;
    n_spare_arenas++;
}
