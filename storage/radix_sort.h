/* radix_sort.h: a stable LSD radix sort of (64-bit key, pointer) pairs, for storage's two large sorts
 * by a number: the keys of start-up replay by their first 8 bytes (replay_map.c) and the values of a
 * large Range by their place in the log (range_values.c). */
#ifndef CETCD_RADIX_SORT_H
#define CETCD_RADIX_SORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct radix_item {
    uint64_t key;
    void *ptr;
} radix_item;

/* Sorts items by key, ties in their order. */
void radix_sort(radix_item *items, size_t n);

#endif
