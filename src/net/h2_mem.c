/* h2_mem.c: the allocator nghttp2's sessions use. nghttp2 allocates and frees a handful of small
 * blocks per request (stream, outbound items, header copies); with many calls in flight they miss
 * glibc's per-size cache and cost about a hundred instructions each. Here freed small blocks wait on
 * a list per size class, bounded in bytes, and the next request of that size takes one back. */
#include <assert.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "h2_internal.h"

#define N_CLASSES 6 /* 64, 128, ..., 2048 bytes */
#define MIN_CLASS_BYTES 64
#define KEEP_BYTES (H2_KEEP_FREED ? 128u << 10 : 0) /* free blocks kept per class */

/* Before each block: its class (N_CLASSES for a block of its own size) and the size asked for. */
typedef union block_head {
    struct {
        unsigned cls;
        size_t size;
    } h;
    max_align_t align;
} block_head;

typedef struct free_block {
    struct free_block *next;
} free_block;

static free_block *free_lists[N_CLASSES];
static size_t kept_bytes[N_CLASSES];

static size_t class_bytes(unsigned cls) {
    return (size_t)MIN_CLASS_BYTES << cls;
}

static unsigned class_of(size_t size) {
    unsigned cls = 0;
    while (cls < N_CLASSES && size > class_bytes(cls))
        cls++;
    return cls;
}

static void *block_alloc(size_t size, void *user) {
    (void)user;
    unsigned cls = class_of(size);
    block_head *b;
    if (cls < N_CLASSES && free_lists[cls]) {
        free_block *f = free_lists[cls];
        free_lists[cls] = f->next;
        kept_bytes[cls] -= class_bytes(cls);
        b = (block_head *)f - 1;
    } else {
        b = xmalloc(sizeof *b + (cls < N_CLASSES ? class_bytes(cls) : size));
    }
    b->h.cls = cls;
    b->h.size = size;
    return b + 1;
}

static void block_free(void *ptr, void *user) {
    (void)user;
    if (!ptr) return;
    block_head *b = (block_head *)ptr - 1;
    unsigned cls = b->h.cls;
    assert(cls <= N_CLASSES);
    if (cls == N_CLASSES || kept_bytes[cls] + class_bytes(cls) > KEEP_BYTES) {
        free(b);
        return;
    }
    free_block *f = ptr;
    f->next = free_lists[cls];
    free_lists[cls] = f;
    kept_bytes[cls] += class_bytes(cls);
}

static void *block_calloc(size_t n, size_t size, void *user) {
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = block_alloc(n * size, user);
    memset(p, 0, n * size);
    return p;
}

static void *block_realloc(void *ptr, size_t size, void *user) {
    if (!ptr) return block_alloc(size, user);
    block_head *b = (block_head *)ptr - 1;
    if (b->h.cls < N_CLASSES && size <= class_bytes(b->h.cls)) {
        b->h.size = size;
        return ptr;
    }
    void *p = block_alloc(size, user);
    memcpy(p, ptr, b->h.size < size ? b->h.size : size);
    block_free(ptr, user);
    return p;
}

nghttp2_mem *h2_mem(void) {
    static nghttp2_mem mem = {NULL, block_alloc, block_free, block_calloc, block_realloc};
    return &mem;
}
