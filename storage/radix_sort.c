/* radix_sort.c: radix_sort.h's sort: 11 bits a pass, six passes over the 64-bit key (2,048 buckets,
 * few enough for the scattered writes to stay in cache), the counts of every pass taken in one read of
 * the items; a pass where every item has the same digit is skipped. */
#include "radix_sort.h"
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

void radix_sort(radix_item *items, size_t n) {
    enum { DIGITS = 6, BITS = 11, BUCKETS = 1 << BITS };
    if (n < 2) return;
    size_t *counts = xcalloc((size_t)DIGITS * BUCKETS, sizeof *counts);
    for (size_t i = 0; i < n; i++)
        for (int d = 0; d < DIGITS; d++)
            counts[(size_t)d * BUCKETS + ((items[i].key >> (BITS * d)) & (BUCKETS - 1))]++;
    radix_item *tmp = xmalloc(n * sizeof *tmp), *from = items, *to = tmp;
    for (int d = 0; d < DIGITS; d++) {
        size_t *c = counts + (size_t)d * BUCKETS;
        if (c[(from[0].key >> (BITS * d)) & (BUCKETS - 1)] == n) continue;
        size_t sum = 0;
        for (size_t b = 0; b < BUCKETS; b++) {
            size_t k = c[b];
            c[b] = sum;
            sum += k;
        }
        for (size_t i = 0; i < n; i++)
            to[c[(from[i].key >> (BITS * d)) & (BUCKETS - 1)]++] = from[i];
        radix_item *swap = from;
        from = to;
        to = swap;
    }
    if (from != items) memcpy(items, from, n * sizeof *items);
    free(tmp);
    free(counts);
}
