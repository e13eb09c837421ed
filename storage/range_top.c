/* range_top.c: the best `limit` keys of a Range sorted by create or mod revision (or by key, descending,
 * with a filter), kept in a bounded heap while the range is walked, in steps if it is long, instead of
 * gathering every key and sorting them all as etcd does (docs/architecture.md, "Large requests").
 * The answer is etcd's whenever no two of the kept keys tie on the sort target; otherwise the order
 * is that of Go's unstable sort over all of them, and the caller gathers and sorts them all. */
#include "mvcc_internal.h"

#include "alloc.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

typedef struct top_item {
    int64_t number; /* create or mod revision (unused when sorting by key) */
    uint8_t *key;   /* a copy: the walk may go on over several turns, as the index changes */
    size_t len, cap;
} top_item;

struct range_top {
    int target;
    int sign;       /* 1: ascending (the smallest is best), -1: descending */
    size_t keep;    /* limit + 1: the one past the limit decides more, and shows a tie at the edge */
    top_item *heap; /* the worst kept at the root */
    size_t n;
};

bool range_top_fits(const mv_range_req *r) {
    bool target = r->sort_target == MV_SORT_CREATE || r->sort_target == MV_SORT_MOD ||
                  (r->sort_target == MV_SORT_KEY && r->sort_order == MV_SORT_DESCEND);
    return target && r->limit > 0 && r->limit < MV_RANGE_STEP_KEYS && !r->count_only && r->range_end.len;
}

range_top *range_top_new(const mv_range_req *r) {
    assert(range_top_fits(r));
    range_top *t = xcalloc(1, sizeof *t);
    t->target = r->sort_target;
    t->sign = r->sort_order == MV_SORT_DESCEND ? -1 : 1; /* no order asked: etcd sorts ascending */
    t->keep = (size_t)r->limit + 1;
    t->heap = xcalloc(t->keep, sizeof *t->heap);
    return t;
}

void range_top_free(range_top *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n; i++)
        free(t->heap[i].key);
    free(t->heap);
    free(t);
}

/* Below 0 if a comes before b in the sorted answer, 0 on a tie. */
static int item_order(const range_top *t, const top_item *a, const top_item *b) {
    int c = t->target == MV_SORT_KEY ? compare_bytes((mv_bytes){a->key, a->len}, (mv_bytes){b->key, b->len})
                                     : (a->number > b->number) - (a->number < b->number);
    return c * t->sign;
}

static void swap_items(top_item *a, top_item *b) {
    top_item x = *a;
    *a = *b;
    *b = x;
}

static void sift_up(range_top *t, size_t i) {
    while (i > 0 && item_order(t, &t->heap[(i - 1) / 2], &t->heap[i]) < 0) {
        swap_items(&t->heap[(i - 1) / 2], &t->heap[i]);
        i = (i - 1) / 2;
    }
}

static void sift_down(range_top *t, size_t i) {
    for (;;) {
        size_t worst = i, l = 2 * i + 1, r = l + 1;
        if (l < t->n && item_order(t, &t->heap[l], &t->heap[worst]) > 0) worst = l;
        if (r < t->n && item_order(t, &t->heap[r], &t->heap[worst]) > 0) worst = r;
        if (worst == i) return;
        swap_items(&t->heap[i], &t->heap[worst]);
        i = worst;
    }
}

static void set_item(top_item *it, mv_bytes key, int64_t number) {
    if (it->cap < key.len || !it->key) {
        it->cap = key.len ? key.len : 1;
        it->key = xrealloc(it->key, it->cap);
    }
    if (key.len) memcpy(it->key, key.data, key.len);
    it->len = key.len;
    it->number = number;
}

void range_top_offer(range_top *t, mv_bytes key, const rev_entry *e) {
    int64_t number = t->target == MV_SORT_CREATE ? e->create_revision : e->main_rev;
    if (t->n < t->keep) {
        set_item(&t->heap[t->n], key, number);
        sift_up(t, t->n++);
        return;
    }
    top_item probe = {.number = number, .key = (uint8_t *)key.data, .len = key.len};
    if (item_order(t, &probe, &t->heap[0]) >= 0) return; /* no better than the worst kept */
    set_item(&t->heap[0], key, number);
    sift_down(t, 0);
}

/* Heapsort in place: the worst kept goes last, then the worst of the rest before it, and so on. */
static void sort_kept(range_top *t) {
    size_t n = t->n;
    while (t->n > 1) {
        swap_items(&t->heap[0], &t->heap[t->n - 1]);
        t->n--;
        sift_down(t, 0);
    }
    t->n = n;
}

long range_top_finish(range_top *t, mvcc *s, int64_t rev, candidate *out) {
    sort_kept(t);
    for (size_t i = 1; i < t->n; i++)
        if (item_order(t, &t->heap[i - 1], &t->heap[i]) == 0) return -1;
    for (size_t i = 0; i < t->n; i++) {
        keyhist *kh = bptree_get(s->index, t->heap[i].key, t->heap[i].len);
        rev_entry *e = kh ? keyhist_at(kh, rev) : NULL;
        assert(e); /* live at rev when offered; pruning waits for an open walk (rests_pin_below) */
        const bkey *k = keyhist_key(kh);
        out[i] = (candidate){{k->bytes, k->len}, e, {NULL, 0}};
    }
    return (long)t->n;
}
