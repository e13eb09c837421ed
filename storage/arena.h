/* arena.h: a bump allocator for one request's results, freed all at once after the reply is packed.
 * Keeps the many small key/value copies of a Range from costing one malloc each. */
#ifndef CETCD_ARENA_H
#define CETCD_ARENA_H

#include <stddef.h>

typedef struct mv_arena mv_arena;

mv_arena *arena_new(void);
void *arena_alloc(mv_arena *a, size_t size);     /* zeroed, 16-byte aligned; aborts on OOM */
void *arena_alloc_raw(mv_arena *a, size_t size); /* the same, not zeroed: for bytes copied in at once */
size_t arena_bytes(const mv_arena *a);           /* bytes handed out so far, plus those charged */
void arena_charge(mv_arena *a, size_t n);        /* counts n more bytes without handing any out */
void arena_free(mv_arena *a);

#endif
