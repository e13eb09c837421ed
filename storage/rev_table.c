/* rev_table.c: the revision → record table in fixed blocks (rev_table.h): growth allocates one zeroed
 * block, a trim frees whole blocks and moves only the directory of block pointers, so no call costs
 * more than one block however many revisions the store holds. */
#include "rev_table.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

static int64_t block_of(int64_t rev) {
    return rev >> REV_TABLE_BLOCK_SHIFT;
}

void rev_table_init(rev_table *t, int64_t base) {
    assert(base >= 0);
    *t = (rev_table){.base = base, .end = base, .first_block = block_of(base)};
}

void rev_table_free(rev_table *t) {
    for (size_t i = 0; i < t->n_blocks; i++)
        free(t->blocks[i]);
    free(t->blocks);
    *t = (rev_table){0};
}

/* Makes the directory reach block b (>= first_block), new entries NULL. */
static void reach_block(rev_table *t, int64_t b) {
    assert(b >= t->first_block);
    size_t need = (size_t)(b - t->first_block) + 1;
    if (need <= t->n_blocks) return;
    if (need > t->cap_blocks) {
        size_t cap = t->cap_blocks ? t->cap_blocks * 2 : 8;
        while (cap < need)
            cap *= 2;
        t->blocks = xrealloc(t->blocks, cap * sizeof *t->blocks);
        t->cap_blocks = cap;
    }
    memset(t->blocks + t->n_blocks, 0, (need - t->n_blocks) * sizeof *t->blocks);
    t->n_blocks = need;
}

void rev_table_set(rev_table *t, int64_t rev, value_place where) {
    if (rev < t->base) return;
    int64_t b = block_of(rev);
    reach_block(t, b);
    value_place **slot = &t->blocks[b - t->first_block];
    if (!*slot) *slot = xcalloc(REV_TABLE_BLOCK, sizeof **slot);
    (*slot)[rev & (int64_t)(REV_TABLE_BLOCK - 1)] = where;
    if (rev >= t->end) t->end = rev + 1;
}

value_place rev_table_get(const rev_table *t, int64_t rev) {
    if (rev < t->base || rev >= t->end) return (value_place){0};
    size_t i = (size_t)(block_of(rev) - t->first_block);
    assert(i < t->n_blocks);
    const value_place *block = t->blocks[i];
    return block ? block[rev & (int64_t)(REV_TABLE_BLOCK - 1)] : (value_place){0};
}

void rev_table_trim(rev_table *t, int64_t new_base) {
    if (new_base <= t->base) return;
    t->base = new_base;
    if (t->end < new_base) t->end = new_base;
    int64_t first = block_of(new_base);
    if (first <= t->first_block) return;
    size_t dead = (size_t)(first - t->first_block);
    if (dead > t->n_blocks) dead = t->n_blocks;
    for (size_t i = 0; i < dead; i++)
        free(t->blocks[i]);
    memmove(t->blocks, t->blocks + dead, (t->n_blocks - dead) * sizeof *t->blocks);
    t->n_blocks -= dead;
    t->first_block = first;
}
