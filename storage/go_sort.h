/* go_sort.h: Go's sort.Sort for storage's Range, so that keys tying on the sort target come out in the
 * order etcd returns them (see go_sort.c). Private to storage. */
#ifndef GO_SORT_H
#define GO_SORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* less(ctx, i, j): element i sorts before element j. swap(ctx, i, j): exchange them. */
typedef bool (*go_less_fn)(void *ctx, size_t i, size_t j);
typedef void (*go_swap_fn)(void *ctx, size_t i, size_t j);

/* Sorts n elements as Go's sort.Sort(data) does; for a descending sort pass a less that compares
 * (j, i), as sort.Reverse does. */
void go_sort(size_t n, go_less_fn less, go_swap_fn swap, void *ctx);

#endif
