/* go_sort.c: the unstable sort of Go's sort.Sort (pattern-defeating quicksort, Go 1.19 and later), step
 * for step, because etcd sorts a Range with it: keys that tie on the sort target (same version, value,
 * create or mod revision) come out in the order Go's algorithm leaves them, which a stable sort does not. */
#include "go_sort.h"

#include <assert.h>

typedef struct sorter {
    go_less_fn less;
    go_swap_fn swap;
    void *ctx;
} sorter;

enum { HINT_UNKNOWN, HINT_INCREASING, HINT_DECREASING };

static bool less(const sorter *s, long i, long j) {
    return s->less(s->ctx, (size_t)i, (size_t)j);
}

static void swap(const sorter *s, long i, long j) {
    s->swap(s->ctx, (size_t)i, (size_t)j);
}

static int bit_len(unsigned long x) {
    int n = 0;
    for (; x; x >>= 1)
        n++;
    return n;
}

static void insertion_sort(const sorter *s, long a, long b) {
    for (long i = a + 1; i < b; i++)
        for (long j = i; j > a && less(s, j, j - 1); j--)
            swap(s, j, j - 1);
}

static void sift_down(const sorter *s, long lo, long hi, long first) {
    long root = lo;
    for (;;) {
        long child = 2 * root + 1;
        if (child >= hi) return;
        if (child + 1 < hi && less(s, first + child, first + child + 1)) child++;
        if (!less(s, first + root, first + child)) return;
        swap(s, first + root, first + child);
        root = child;
    }
}

static void heap_sort(const sorter *s, long a, long b) {
    long hi = b - a;
    for (long i = (hi - 1) / 2; i >= 0; i--)
        sift_down(s, i, hi, a);
    for (long i = hi - 1; i >= 0; i--) {
        swap(s, a, a + i);
        sift_down(s, 0, i, a);
    }
}

/* Places the pivot at a and splits around it; *already: nothing had to move. */
static long partition(const sorter *s, long a, long b, long pivot, bool *already) {
    swap(s, a, pivot);
    long i = a + 1, j = b - 1;
    while (i <= j && less(s, i, a))
        i++;
    while (i <= j && !less(s, j, a))
        j--;
    if (i > j) {
        swap(s, j, a);
        *already = true;
        return j;
    }
    swap(s, i, j);
    i++;
    j--;
    for (;;) {
        while (i <= j && less(s, i, a))
            i++;
        while (i <= j && !less(s, j, a))
            j--;
        if (i > j) break;
        swap(s, i, j);
        i++;
        j--;
    }
    swap(s, j, a);
    *already = false;
    return j;
}

/* Elements equal to the pivot (not greater) go left; returns where the greater ones start. */
static long partition_equal(const sorter *s, long a, long b, long pivot) {
    swap(s, a, pivot);
    long i = a + 1, j = b - 1;
    for (;;) {
        while (i <= j && !less(s, a, i))
            i++;
        while (i <= j && less(s, a, j))
            j--;
        if (i > j) break;
        swap(s, i, j);
        i++;
        j--;
    }
    return i;
}

/* Fixes up to 5 adjacent inversions; true when [a, b) ends sorted. The backward shift stops at index 1,
 * not a + 1, as Go's does: that matters to the resulting order, so it is kept. */
static bool partial_insertion_sort(const sorter *s, long a, long b) {
    long i = a + 1;
    for (int step = 0; step < 5; step++) {
        while (i < b && !less(s, i, i - 1))
            i++;
        if (i == b) return true;
        if (b - a < 50) return false;
        swap(s, i, i - 1);
        if (i - a >= 2)
            for (long j = i - 1; j >= 1 && less(s, j, j - 1); j--)
                swap(s, j, j - 1);
        if (b - i >= 2)
            for (long j = i + 1; j < b && less(s, j, j - 1); j++)
                swap(s, j, j - 1);
    }
    return false;
}

static void break_patterns(const sorter *s, long a, long b) {
    long length = b - a;
    if (length < 8) return;
    uint64_t r = (uint64_t)length; /* Go's xorshift, seeded with the length */
    unsigned long modulus = 1ul << bit_len((unsigned long)length);
    for (long idx = a + (length / 4) * 2 - 1; idx <= a + (length / 4) * 2 + 1; idx++) {
        r ^= r << 13;
        r ^= r >> 17;
        r ^= r << 5;
        long other = (long)((unsigned long)r & (modulus - 1));
        if (other >= length) other -= length;
        swap(s, idx, a + other);
    }
}

/* Go's order2: puts *x and *y in order, counting the swap. */
static void order2(const sorter *s, long *x, long *y, int *swaps) {
    if (!less(s, *y, *x)) return;
    long t = *x;
    *x = *y;
    *y = t;
    (*swaps)++;
}

static long median(const sorter *s, long x, long y, long z, int *swaps) {
    order2(s, &x, &y, swaps);
    order2(s, &y, &z, swaps);
    order2(s, &x, &y, swaps);
    return y;
}

static long choose_pivot(const sorter *s, long a, long b, int *hint) {
    long l = b - a;
    int swaps = 0;
    long i = a + l / 4 * 1, j = a + l / 4 * 2, k = a + l / 4 * 3;
    if (l >= 8) {
        if (l >= 50) {
            i = median(s, i - 1, i, i + 1, &swaps);
            j = median(s, j - 1, j, j + 1, &swaps);
            k = median(s, k - 1, k, k + 1, &swaps);
        }
        j = median(s, i, j, k, &swaps);
    }
    *hint = swaps == 0 ? HINT_INCREASING : swaps == 12 ? HINT_DECREASING : HINT_UNKNOWN;
    return j;
}

static void reverse_range(const sorter *s, long a, long b) {
    for (long i = a, j = b - 1; i < j; i++, j--)
        swap(s, i, j);
}

static void pdqsort(const sorter *s, long a, long b, int limit) {
    bool was_balanced = true, was_partitioned = true;
    for (;;) {
        long length = b - a;
        if (length <= 12) return insertion_sort(s, a, b);
        if (limit == 0) return heap_sort(s, a, b);
        if (!was_balanced) {
            break_patterns(s, a, b);
            limit--;
        }
        int hint;
        long pivot = choose_pivot(s, a, b, &hint);
        if (hint == HINT_DECREASING) {
            reverse_range(s, a, b);
            pivot = (b - 1) - (pivot - a);
            hint = HINT_INCREASING;
        }
        if (was_balanced && was_partitioned && hint == HINT_INCREASING && partial_insertion_sort(s, a, b))
            return;
        if (a > 0 && !less(s, a - 1, pivot)) {
            a = partition_equal(s, a, b, pivot);
            continue;
        }
        long mid = partition(s, a, b, pivot, &was_partitioned);
        long left = mid - a, right = b - mid, threshold = length / 8;
        if (left < right) {
            was_balanced = left >= threshold;
            pdqsort(s, a, mid, limit);
            a = mid + 1;
        } else {
            was_balanced = right >= threshold;
            pdqsort(s, mid + 1, b, limit);
            b = mid;
        }
    }
}

void go_sort(size_t n, go_less_fn less_fn, go_swap_fn swap_fn, void *ctx) {
    assert(n < (size_t)1 << 62);
    if (n <= 1) return;
    sorter s = {less_fn, swap_fn, ctx};
    pdqsort(&s, 0, (long)n, bit_len(n));
}
