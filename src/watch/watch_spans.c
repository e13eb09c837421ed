/* watch_spans.c: the range and from-key watchers of the index, in an interval tree, so that finding
 * the watchers of a changed key costs about the logarithm of their number plus the ones that match,
 * not one comparison per range watcher (10,000 prefix watchers were 10,000 comparisons per event).
 *
 * The tree is a treap of spans ordered by (key, end), each span holding every watcher of the same
 * [key, end) (or [key, the end of the keyspace) for WR_FROM), and each node knowing the greatest end in
 * its subtree: a subtree whose greatest end is <= the changed key holds no match and is skipped. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "watch_internal.h"

struct watch_span {
    mv_bytes key, end; /* own copies, in the same allocation */
    bool to_end;       /* WR_FROM: end is past every key */
    uint32_t prio;     /* the treap's heap order: a parent's prio >= its children's */
    watcher *head;     /* its watchers, linked by ix_prev/ix_next */
    struct watch_span *l, *r;
    const struct watch_span *max; /* the span of greatest end in this subtree */
};
typedef struct watch_span watch_span;

static struct {
    watch_span *root;
    size_t n_spans;
    uint64_t rng; /* xorshift state for the priorities */
} sp = {NULL, 0, 0x9e3779b97f4a7c15ull};

static int bytes_cmp(mv_bytes a, mv_bytes b) {
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.data, b.data, n) : 0;
    if (c != 0) return c;
    return (a.len > b.len) - (a.len < b.len);
}

/* ends compared with "to the end" above every key */
static int end_cmp(const watch_span *a, const watch_span *b) {
    if (a->to_end || b->to_end) return (int)a->to_end - (int)b->to_end;
    return bytes_cmp(a->end, b->end);
}

/* does s's end lie after key (so that key < end)? */
static bool end_after(const watch_span *s, mv_bytes key) {
    return s->to_end || bytes_cmp(key, s->end) < 0;
}

/* the tree's order: by key, then by end */
static int span_cmp(const watch_span *a, const watch_span *b) {
    int c = bytes_cmp(a->key, b->key);
    return c ? c : end_cmp(a, b);
}

static uint32_t next_prio(void) {
    uint64_t x = sp.rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    sp.rng = x;
    return (uint32_t)(x >> 32);
}

/* recomputes t's greatest end from its own and its children's */
static void pull(watch_span *t) {
    const watch_span *m = t;
    if (t->l && end_cmp(t->l->max, m) > 0) m = t->l->max;
    if (t->r && end_cmp(t->r->max, m) > 0) m = t->r->max;
    t->max = m;
}

/* splits t into the spans before n (*lo) and after it (*hi); n is not in t */
static void split(watch_span *t, const watch_span *n, watch_span **lo, watch_span **hi) {
    if (!t) {
        *lo = *hi = NULL;
        return;
    }
    assert(span_cmp(t, n) != 0);
    if (span_cmp(t, n) < 0) {
        split(t->r, n, &t->r, hi);
        *lo = t;
    } else {
        split(t->l, n, lo, &t->l);
        *hi = t;
    }
    pull(t);
}

/* joins a and b, every span of a before every span of b */
static watch_span *merge(watch_span *a, watch_span *b) {
    if (!a) return b;
    if (!b) return a;
    if (a->prio >= b->prio) {
        a->r = merge(a->r, b);
        pull(a);
        return a;
    }
    b->l = merge(a, b->l);
    pull(b);
    return b;
}

static watch_span *insert(watch_span *t, watch_span *n) {
    if (!t) return n;
    if (n->prio > t->prio) {
        split(t, n, &n->l, &n->r);
        pull(n);
        return n;
    }
    if (span_cmp(n, t) < 0)
        t->l = insert(t->l, n);
    else
        t->r = insert(t->r, n);
    pull(t);
    return t;
}

static watch_span *erase(watch_span *t, const watch_span *n) {
    assert(t); /* n is in the tree */
    if (t == n) return merge(t->l, t->r);
    if (span_cmp(n, t) < 0)
        t->l = erase(t->l, n);
    else
        t->r = erase(t->r, n);
    pull(t);
    return t;
}

static watch_span *find(const watch_span *probe) {
    watch_span *t = sp.root;
    while (t) {
        int c = span_cmp(probe, t);
        if (c == 0) return t;
        t = c < 0 ? t->l : t->r;
    }
    return NULL;
}

static watch_span *span_new(const watcher *w) {
    bool to_end = w->kind == WR_FROM;
    size_t end_len = to_end ? 0 : w->end.len;
    watch_span *s = xcalloc(1, sizeof *s + w->key.len + end_len + 1);
    uint8_t *mem = (uint8_t *)(s + 1);
    if (w->key.len) memcpy(mem, w->key.data, w->key.len);
    if (end_len) memcpy(mem + w->key.len, w->end.data, end_len);
    s->key = (mv_bytes){mem, w->key.len};
    s->end = (mv_bytes){mem + w->key.len, end_len};
    s->to_end = to_end;
    s->prio = next_prio();
    s->max = s;
    return s;
}

void wspan_add(watcher *w) {
    assert(w->kind != WR_KEY);
    watch_span probe = {.key = w->key, .end = w->end, .to_end = w->kind == WR_FROM};
    watch_span *s = find(&probe);
    if (!s) {
        s = span_new(w);
        sp.root = insert(sp.root, s);
        sp.n_spans++;
    }
    w->span = s;
    w->ix_prev = NULL;
    w->ix_next = s->head;
    if (s->head) s->head->ix_prev = w;
    s->head = w;
}

void wspan_remove(watcher *w) {
    watch_span *s = w->span;
    assert(s);
    if (w->ix_prev)
        w->ix_prev->ix_next = w->ix_next;
    else
        s->head = w->ix_next;
    if (w->ix_next) w->ix_next->ix_prev = w->ix_prev;
    w->ix_prev = w->ix_next = NULL;
    w->span = NULL;
    if (s->head) return;
    sp.root = erase(sp.root, s);
    sp.n_spans--;
    free(s);
}

/* Every span of t holding key, in key order. A subtree whose greatest end is not after key holds
 * none; a span starting after key, and every span right of it, neither. */
static void match(const watch_span *t, mv_bytes key, void (*fn)(watcher *w, void *ctx), void *ctx) {
    while (t && end_after(t->max, key)) {
        match(t->l, key, fn, ctx);
        if (bytes_cmp(t->key, key) > 0) return;
        if (end_after(t, key)) {
            for (watcher *w = t->head, *next; w; w = next) {
                next = w->ix_next;
                fn(w, ctx);
            }
        }
        t = t->r;
    }
}

void wspan_match(mv_bytes key, void (*fn)(watcher *w, void *ctx), void *ctx) {
    match(sp.root, key, fn, ctx);
}

size_t wspan_count(void) {
    return sp.n_spans;
}
