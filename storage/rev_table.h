/* rev_table.h: the revision → record table (where each revision's log record is, for history replay),
 * kept in fixed blocks so that growing it or dropping its compacted front costs at most one block:
 * as one doubling array, crossing 2^20 revisions zeroed 12 MiB in one call (3072 page faults, a 5 ms
 * loop turn) and each compaction moved every live entry down. */
#ifndef CETCD_REV_TABLE_H
#define CETCD_REV_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "keyhist.h"

#define REV_TABLE_BLOCK_SHIFT 14 /* 16384 revisions a block: 192 KiB */
#define REV_TABLE_BLOCK ((size_t)1 << REV_TABLE_BLOCK_SHIFT)

typedef struct rev_table {
    value_place *
        *blocks; /* blocks[i] holds revisions from (first_block + i) * REV_TABLE_BLOCK; NULL: none set */
    size_t n_blocks, cap_blocks;
    int64_t first_block;
    int64_t base; /* revisions below it are not kept (compacted away) */
    int64_t end;  /* one past the highest revision set since base */
} rev_table;

/* An empty table keeping revisions from base up. */
void rev_table_init(rev_table *t, int64_t base);
void rev_table_free(rev_table *t);
/* Records rev's place (ignored below the base); setting a revision again replaces its place. */
void rev_table_set(rev_table *t, int64_t rev, value_place where);
/* rev's place, or a zero place if it is below the base, past the end, or was never set. */
value_place rev_table_get(const rev_table *t, int64_t rev);
/* Forgets the revisions below new_base (a no-op unless it raises the base), freeing whole blocks. */
void rev_table_trim(rev_table *t, int64_t new_base);

#endif
