/* mvcc_range.c: Range at a revision with etcd's rules for range_end, limit, more, count, the
 * revision filters and sorting. The candidates are gathered first; values are read last, only for
 * the keys actually returned. */
#include "alloc.h"
#include "go_sort.h"
#include "mvcc_internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

mv_err check_read_revision(const mvcc *s, int64_t rev) {
    if (rev > s->revision) return MV_ERR_FUTURE_REV;
    if (rev < s->compact_revision) return MV_ERR_COMPACTED;
    return MV_OK;
}

static bool is_from_key(mv_bytes end) {
    return end.len == 1 && end.data[0] == 0;
}

int compare_bytes(mv_bytes a, mv_bytes b) {
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.data, b.data, n) : 0;
    if (c) return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

/* One key of a walk, k, where it is: fn's answer if live at rev (false stops the walk), else true. */
static bool visit_live(const bptree_iter *it, mv_bytes k, int64_t rev, live_key_fn fn, void *ctx) {
    keyhist *kh = bptree_iter_value(it);
    rev_entry *e = keyhist_at(kh, rev);
    return !e || fn(ctx, k, kh, e);
}

void for_each_live(mvcc *s, mv_bytes key, mv_bytes range_end, int64_t rev, live_key_fn fn, void *ctx) {
    if (range_end.len == 0) {
        keyhist *kh = bptree_get(s->index, key.data, key.len);
        rev_entry *e = kh ? keyhist_at(kh, rev) : NULL;
        if (e) fn(ctx, key, kh, e);
        return;
    }
    bool to_end = is_from_key(range_end);
    bptree_iter it;
    for (bptree_seek(s->index, key.data, key.len, &it); bptree_iter_valid(&it); bptree_iter_next(&it)) {
        bptree_iter_prefetch(&it, 8); /* each key's history is a cache miss: several in flight */
        mv_bytes k;
        k.data = bptree_iter_key(&it, &k.len);
        if ((!to_end && compare_bytes(k, range_end) >= 0) || !visit_live(&it, k, rev, fn, ctx)) break;
    }
}

/* Where a backwards walk over r starts: below its range_end, or (NULL) at the last key of all. */
static const mv_bytes *end_bound(const mv_range_req *r) {
    return is_from_key(r->range_end) ? NULL : &r->range_end;
}

/* for_each_live backwards: from the last key before `before` (NULL: the last of all) down to key. */
static void for_each_live_back(mvcc *s, mv_bytes key, const mv_bytes *before, int64_t rev, live_key_fn fn,
                               void *ctx) {
    bptree_iter it;
    if (!before)
        bptree_seek_last(s->index, &it);
    else
        bptree_seek_before(s->index, before->data, before->len, &it);
    for (; bptree_iter_valid(&it); bptree_iter_prev(&it)) {
        bptree_iter_prefetch(&it, -8);
        mv_bytes k;
        k.data = bptree_iter_key(&it, &k.len);
        if (compare_bytes(k, key) < 0 || !visit_live(&it, k, rev, fn, ctx)) break;
    }
}

/* --- the count cache (mv_count_cache): how many live keys of a range follow some of its keys --- */

#define COUNT_STRIDE 256 /* a mark every this many keys counted */
#define COUNT_ENTRIES 8  /* lists paged at once */

typedef struct count_mark {
    uint8_t *key;
    size_t len;
    int64_t after; /* live keys at the entry's revision in [key, end) */
} count_mark;

typedef struct count_entry {
    int64_t rev;
    uint8_t *end;
    size_t end_len;
    count_mark *marks; /* in key order */
    size_t n;
    uint64_t used; /* for the least recently used */
} count_entry;

struct mv_count_cache {
    count_entry e[COUNT_ENTRIES];
    uint64_t clock;
};

mv_count_cache *mv_count_cache_new(void) {
    return xcalloc(1, sizeof(mv_count_cache));
}

static void entry_clear(count_entry *ce) {
    for (size_t i = 0; i < ce->n; i++)
        free(ce->marks[i].key);
    free(ce->marks);
    free(ce->end);
    *ce = (count_entry){0};
}

void mv_count_cache_free(mv_count_cache *c) {
    if (!c) return;
    for (int i = 0; i < COUNT_ENTRIES; i++)
        entry_clear(&c->e[i]);
    free(c);
}

static bool same_bytes(const uint8_t *a, size_t alen, mv_bytes b) {
    return alen == b.len && (alen == 0 || memcmp(a, b.data, alen) == 0);
}

static count_entry *entry_find(mv_count_cache *c, int64_t rev, mv_bytes end) {
    for (int i = 0; i < COUNT_ENTRIES; i++) {
        count_entry *ce = &c->e[i];
        if (ce->marks && ce->rev == rev && same_bytes(ce->end, ce->end_len, end)) {
            ce->used = ++c->clock;
            return ce;
        }
    }
    return NULL;
}

static mv_bytes mark_key(const count_mark *m) {
    return (mv_bytes){m->key, m->len};
}

typedef struct gather {
    const mv_range_req *req;
    candidate *items;
    size_t n, cap, wanted; /* wanted: stop keeping after this many (0 = keep all) */
    int64_t count;
    uint64_t bytes; /* what the kept candidates will cost the call's arena, plus what it held before */
    bool over;      /* bytes passed req->max_bytes: the walk stops, the range is too_large */
    /* past the kept candidates the walk only counts (count_one), helped by req->counts */
    int64_t rev;
    bool counting, cut_short; /* cut_short: stopped at a mark, its count taken */
    count_entry *entry;       /* the marks of this range and revision, if remembered */
    size_t cursor;            /* entry's first mark not below the walk */
    int64_t walked;           /* keys counted past the candidates */
    count_mark *rec;          /* marks being recorded (no entry), .after = keys counted before */
    size_t n_rec, cap_rec;
    /* a walk in steps (mv_range_rest): after walk_budget keys (0 = no limit) the walk pauses at the
     * next live key, kept in resume, which is taken when it goes on; keys are gathered in steps only
     * by a range in key order (in_steps), counted in steps by any */
    size_t walk_budget, walked_now;
    bool in_steps, paused, paused_gathering;
    uint8_t *resume;
    size_t resume_len;
    mv_range_size_fn size_fn; /* past the first walk: the keys it returns go here, none is kept */
    void *size_ctx;
    mv_range_req head; /* a range's last keys (takes_tail): the count of the keys before them */
    range_top *top;    /* its best keys by the sort target, kept while walking (takes_top) */
} gather;

/* Whether the walk stops at key, its budget spent: key is then where it goes on. */
static bool walk_pauses(gather *g, mv_bytes key) {
    if (!g->walk_budget || g->walked_now++ < g->walk_budget) return false;
    g->resume = xrealloc(g->resume, key.len ? key.len : 1);
    if (key.len) memcpy(g->resume, key.data, key.len);
    g->resume_len = key.len;
    g->paused = true;
    return true;
}

/* What the arena will hold for one key-value returned: key, value and mv_kv, each rounded up. */
static uint64_t kv_bytes(const mv_range_req *r, mv_bytes key, const rev_entry *e) {
    uint64_t n = (key.len + 16) + sizeof(mv_kv) + 16;
    return r->keys_only ? n : n + e->value.length + 16;
}

static bool passes_filters(const mv_range_req *r, const rev_entry *e) {
    if (r->max_mod_revision && e->main_rev > r->max_mod_revision) return false;
    if (r->min_mod_revision && e->main_rev < r->min_mod_revision) return false;
    if (r->max_create_revision && e->create_revision > r->max_create_revision) return false;
    if (r->min_create_revision && e->create_revision < r->min_create_revision) return false;
    return true;
}

static bool in_key_order(const mv_range_req *r) {
    return r->sort_target == MV_SORT_KEY && r->sort_order != MV_SORT_DESCEND;
}

/* A whole list (no limit) sorted by key, descending: every key that passes, in the walk's order
 * reversed. Sized walking forwards like a list in key order, then packed walking backwards. */
static bool whole_list_descending(const mv_range_req *r) {
    return r->sort_target == MV_SORT_KEY && r->sort_order == MV_SORT_DESCEND && r->limit <= 0;
}

/* What keeping one more candidate will cost: its entry (unless a list sized in steps, which keeps
 * none), and its key and value if it is sure to be returned (the result is the first candidates in
 * key order, or all of them) or its value read to sort by value. */
static uint64_t keep_cost(const gather *g, mv_bytes key, const rev_entry *e) {
    const mv_range_req *r = g->req;
    uint64_t kept = g->size_fn ? 0 : sizeof(candidate); /* a list sized in steps keeps none */
    if (r->sort_target == MV_SORT_VALUE) return kept + e->value.length + 16;
    bool returned = in_key_order(r) || whole_list_descending(r); /* every key kept is returned */
    if (!returned || (r->limit > 0 && g->n >= (size_t)r->limit)) return kept;
    return kept + kv_bytes(r, key, e);
}

static void record_mark(gather *g, mv_bytes key) {
    if (g->n_rec == g->cap_rec) {
        g->cap_rec = g->cap_rec ? g->cap_rec * 2 : 64;
        g->rec = xrealloc(g->rec, g->cap_rec * sizeof *g->rec);
    }
    uint8_t *k = xmalloc(key.len ? key.len : 1);
    if (key.len) memcpy(k, key.data, key.len);
    g->rec[g->n_rec++] = (count_mark){k, key.len, g->walked};
}

/* One live key past the candidates (or of a count_only range): counted, unless it is a mark of the
 * remembered entry, whose count of the rest ends the walk. */
static bool count_one(gather *g, mv_bytes key) {
    if (walk_pauses(g, key)) return false;
    mv_count_cache *c = g->req->counts;
    if (!g->counting && c && g->req->range_end.len) g->entry = entry_find(c, g->rev, g->req->range_end);
    g->counting = true;
    if (g->entry) {
        const count_entry *ce = g->entry;
        while (g->cursor < ce->n && compare_bytes(mark_key(&ce->marks[g->cursor]), key) < 0)
            g->cursor++;
        if (g->cursor < ce->n && compare_bytes(mark_key(&ce->marks[g->cursor]), key) == 0) {
            g->count += ce->marks[g->cursor].after;
            g->cut_short = true;
            return false;
        }
    } else if (c && g->req->range_end.len && g->walked % COUNT_STRIDE == 0) {
        record_mark(g, key);
    }
    g->walked++;
    g->count++;
    return true;
}

static void drop_marks(gather *g) {
    for (size_t i = 0; i < g->n_rec; i++)
        free(g->rec[i].key);
    free(g->rec);
    g->rec = NULL;
    g->n_rec = g->cap_rec = 0;
}

/* After the walk: marks recorded over a count that ran to the range's end become an entry (the least
 * recently used one's place); otherwise they are dropped. */
static void keep_marks(gather *g) {
    mv_count_cache *c = g->req->counts;
    if (c && !g->entry && !g->cut_short && !g->over && g->n_rec > 1) {
        count_entry *ce = &c->e[0];
        for (int i = 1; i < COUNT_ENTRIES; i++)
            if (c->e[i].used < ce->used) ce = &c->e[i];
        entry_clear(ce);
        mv_bytes end = g->req->range_end;
        ce->end = xmalloc(end.len);
        memcpy(ce->end, end.data, end.len);
        *ce = (count_entry){g->rev, ce->end, end.len, g->rec, g->n_rec, ++c->clock};
        for (size_t i = 0; i < ce->n; i++)
            ce->marks[i].after = g->walked - ce->marks[i].after;
        g->rec = NULL;
        g->n_rec = 0;
    }
    drop_marks(g);
}

static mv_kv head_of(mv_bytes key, const rev_entry *e, bool keys_only) {
    return (mv_kv){.key = key,
                   .create_revision = e->create_revision,
                   .mod_revision = e->main_rev,
                   .version = e->version,
                   .lease = e->lease,
                   .value = {NULL, keys_only ? 0 : e->value.length}};
}

/* One live key of the walk: counted, and kept as a candidate; or, past the first walk of a list in
 * steps (size_fn set, no candidates kept), passed to size_fn if the range returns it. */
static bool gather_one(void *ctx, mv_bytes key, keyhist *kh, rev_entry *e) {
    (void)kh;
    gather *g = ctx;
    if (g->req->count_only || (g->wanted && g->n >= g->wanted)) return count_one(g, key); /* keep counting */
    if (g->in_steps && walk_pauses(g, key)) return !(g->paused_gathering = true);
    g->count++;
    if (!passes_filters(g->req, e)) return true;
    if (g->top) { /* holds at most limit + 1 keys: the budget is checked on those returned */
        range_top_offer(g->top, key, e);
        g->n++;
        return true;
    }
    if (g->req->max_bytes) {
        g->bytes += keep_cost(g, key, e);
        g->over = g->bytes > g->req->max_bytes;
        if (g->over) return false; /* the reply fails: neither the rest nor the count matter */
    }
    if (g->size_fn) {
        if (!(g->req->limit > 0 && g->n >= (size_t)g->req->limit)) {
            mv_kv kv = head_of(key, e, g->req->keys_only);
            g->size_fn(g->size_ctx, &kv);
        }
        g->n++;
        return true;
    }
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 16;
        g->items = xrealloc(g->items, g->cap * sizeof *g->items);
    }
    g->items[g->n++] = (candidate){key, e, {NULL, 0}};
    return true;
}

/* One live key of a backwards walk: counted and kept, until the one past wanted, where it stops. */
static bool gather_back(void *ctx, mv_bytes key, keyhist *kh, rev_entry *e) {
    gather *g = ctx;
    if (g->n == g->wanted) return false;
    if (gather_one(ctx, key, kh, e)) return true;
    assert(g->over); /* nothing else stops it: no filter, not counting, not in steps */
    return false;
}

typedef struct sort_ctx {
    candidate *items;
    int target, sign; /* sign -1: descending, as Go's sort.Reverse */
} sort_ctx;

static int64_t target_number(const candidate *c, int target) {
    switch (target) {
    case MV_SORT_VERSION:
        return c->entry->version;
    case MV_SORT_CREATE:
        return c->entry->create_revision;
    case MV_SORT_MOD:
        return c->entry->main_rev;
    default:
        return 0;
    }
}

static bool candidate_less(void *ctx, size_t i, size_t j) {
    const sort_ctx *sc = ctx;
    const candidate *a = &sc->items[i], *b = &sc->items[j];
    int c;
    if (sc->target == MV_SORT_KEY) {
        c = compare_bytes(a->key, b->key);
    } else if (sc->target == MV_SORT_VALUE) {
        c = compare_bytes(a->value, b->value);
    } else {
        int64_t x = target_number(a, sc->target), y = target_number(b, sc->target);
        c = x < y ? -1 : x > y;
    }
    return c * sc->sign < 0;
}

static void candidate_swap(void *ctx, size_t i, size_t j) {
    candidate *v = ((sort_ctx *)ctx)->items, t = v[i];
    v[i] = v[j];
    v[j] = t;
}

/* etcd sorts with Go's sort.Sort, which is not stable: ties come out in its order (go_sort.c). */
static void sort_candidates(mvcc *s, gather *g, mv_arena *a) {
    const mv_range_req *r = g->req;
    int order = r->sort_order;
    if (order == MV_SORT_NONE && r->sort_target != MV_SORT_KEY) order = MV_SORT_ASCEND;
    if (order == MV_SORT_NONE) return;
    if (order == MV_SORT_ASCEND && r->sort_target == MV_SORT_KEY) return; /* keys are unique and in order */
    if (r->sort_target == MV_SORT_VALUE)
        for (size_t i = 0; i < g->n; i++)
            g->items[i].value = read_value(s, g->items[i].entry, a);
    sort_ctx sc = {g->items, r->sort_target, order == MV_SORT_DESCEND ? -1 : 1};
    go_sort(g->n, candidate_less, candidate_swap, &sc);
}

/* Whether every candidate is needed before any is known to be returned, as etcd fetches them all:
 * sorted (but by key, ascending: the walk's own order), or filtered and then sorted by another target
 * (etcd sorts ascending by it when no order is asked). A filtered range in key order is not: etcd
 * counts every key of the range and returns the first `limit` that pass, which the walk finds in
 * order, in steps too. Unfiltered without an order, etcd takes the first limit+1 keys, then sorts. */
static bool has_filters(const mv_range_req *r) {
    return r->min_mod_revision || r->max_mod_revision || r->min_create_revision || r->max_create_revision;
}

static bool fetch_all_first(const mv_range_req *r) {
    bool sorted =
        r->sort_order != MV_SORT_NONE && !(r->sort_order == MV_SORT_ASCEND && r->sort_target == MV_SORT_KEY);
    return sorted || (has_filters(r) && !in_key_order(r));
}

/* Sorted by key, descending, with a limit under a walk's worth and no filter: the last limit+1 keys
 * of the range, walked backwards from its end, are all it returns (and more); the keys before them
 * are only counted, forwards, in steps too. etcd fetches and sorts them all; the answer is the same,
 * keys being unique. */
static bool takes_tail(const mv_range_req *r) {
    return r->sort_target == MV_SORT_KEY && r->sort_order == MV_SORT_DESCEND && r->limit > 0 &&
           r->limit < MV_RANGE_STEP_KEYS && !has_filters(r) && !r->count_only && r->range_end.len;
}

/* takes_tail's walk: the last keys into g->items, last first, then the count of the keys before. */
static void walk_tail(mvcc *s, const mv_range_req *r, gather *g) {
    g->wanted = (size_t)r->limit + 1;
    for_each_live_back(s, r->key, end_bound(r), g->rev, gather_back, g);
    if (g->n < g->wanted || g->over) return; /* the whole range was walked, or it fails */
    g->head = *r;
    g->head.range_end = g->items[g->n - 1].key; /* the first key of the tail: what is before it */
    g->head.count_only = true;
    g->head.counts = NULL; /* a one-off end: its marks would push out those of lists paged */
    g->req = &g->head;
    g->walked_now = g->n; /* the walk so far counts towards this turn's */
    for_each_live(s, r->key, g->head.range_end, g->rev, gather_one, g);
}

/* Sorted by create or mod revision (or by key, descending, with a filter), as etcd sorts after fetching
 * all, with a limit under a walk's worth: the best keys are kept while the range is walked, in steps
 * too (range_top.c). */
static bool takes_top(const mv_range_req *r) {
    return fetch_all_first(r) && !takes_tail(r) && range_top_fits(r);
}

/* takes_top's walk is done: its keys go into g->items in the answer's order (true), or, if two of
 * them tie on the target, every candidate of the range is gathered again now, to be sorted (false). */
static bool choose_top(mvcc *s, const mv_range_req *r, gather *g) {
    range_top *t = g->top;
    g->top = NULL;
    g->cap = (size_t)r->limit + 1;
    g->items = xrealloc(g->items, g->cap * sizeof *g->items);
    long n = range_top_finish(t, s, g->rev, g->items);
    range_top_free(t);
    if (n >= 0) {
        g->n = (size_t)n;
        return true;
    }
    g->n = 0;
    g->count = 0;
    g->walk_budget = 0;
    for_each_live(s, r->key, r->range_end, g->rev, gather_one, g);
    return false;
}

/* Whether sorting by value (which reads every candidate's value), or else copying the first n keys
 * and values, would take the call's arena past r->max_bytes. Counted from the index, before reading. */
static bool over_budget(const mv_range_req *r, const gather *g, size_t n, const mv_arena *a, bool sorting) {
    if (!r->max_bytes) return false;
    if (g->over) return true;
    uint64_t need = arena_bytes(a);
    for (size_t i = 0; sorting && i < g->n && need <= r->max_bytes; i++)
        need += g->items[i].entry->value.length + 16;
    for (size_t i = 0; !sorting && i < n && need <= r->max_bytes; i++)
        need += kv_bytes(r, g->items[i].key, g->items[i].entry);
    return need > r->max_bytes;
}

static size_t select_end(mvcc *s, const mv_range_req *r, mv_arena *a, gather *g, mv_range_resp *out,
                         bool in_order);

/* The keys a range returns, in order, left in g->items[0..n): runs etcd's rules for limit, more,
 * count, the budget and sorting; reads no value but those a sort by value needs. */
static size_t range_select(mvcc *s, const mv_range_req *r, int64_t rev, mv_arena *a, gather *g,
                           mv_range_resp *out) {
    if (r->max_bytes && arena_bytes(a) >= r->max_bytes) { /* an earlier range of the call failed */
        out->too_large = true;
        return 0;
    }
    size_t walk_budget = g->walk_budget;
    *g = (gather){.req = r, .bytes = arena_bytes(a), .rev = rev, .walk_budget = walk_budget};
    if (takes_top(r)) g->top = range_top_new(r);
    g->in_steps = walk_budget && ((!fetch_all_first(r) && r->sort_target == MV_SORT_KEY) || g->top ||
                                  whole_list_descending(r));
    if (r->limit > 0 && !fetch_all_first(r)) g->wanted = (size_t)r->limit + 1;
    bool tail = takes_tail(r);
    if (tail)
        walk_tail(s, r, g);
    else
        for_each_live(s, r->key, r->range_end, rev, gather_one, g);
    if (g->top && g->paused) return 0; /* the keys are known once the walk is done */
    bool in_order = tail || (g->top && choose_top(s, r, g));
    return select_end(s, r, a, g, out, in_order);
}

/* range_select once the walk is done (in_order: g->items is in the answer's order already). */
static size_t select_end(mvcc *s, const mv_range_req *r, mv_arena *a, gather *g, mv_range_resp *out,
                         bool in_order) {
    if (!g->paused) keep_marks(g);
    out->too_large = over_budget(r, g, 0, a, r->sort_target == MV_SORT_VALUE);
    if (out->too_large) g->n = 0;
    if (!in_order) sort_candidates(s, g, a);
    size_t n = g->n;
    if (r->limit > 0 && n > (size_t)r->limit) {
        n = (size_t)r->limit;
        out->more = true;
    }
    out->count = g->count;
    if (!out->too_large && over_budget(r, g, n, a, false)) {
        out->too_large = true;
        n = 0;
    }
    if (out->too_large) arena_charge(a, r->max_bytes); /* the call's later ranges stop at once */
    return n;
}

void range_at(mvcc *s, const mv_range_req *r, int64_t rev, mv_arena *a, mv_range_resp *out) {
    gather g = {0};
    size_t n = range_select(s, r, rev, a, &g, out);
    out->n_kvs = n;
    out->kvs = arena_alloc(a, (n ? n : 1) * sizeof *out->kvs);
    for (size_t i = 0; i < n; i++)
        fill_kv(s, &out->kvs[i], g.items[i].key, g.items[i].entry, false, a);
    if (!r->keys_only) read_values(s, g.items, n, out->kvs, a);
    free(g.items);
}

/* --- the rest of a Range's walk, in steps (mvcc.h) --- */

struct mv_range_rest {
    mvcc *s;
    mv_range_req req; /* key and range_end point into start and end */
    uint8_t *start, *end;
    gather g; /* its req is &req; g.n counts the keys chosen, g.items is unused */
    /* packing (mvcc_range_rest_pack): where the next step starts, keys done, this step's keys */
    uint8_t *pack_from; /* walking backwards (whole_list_descending): the key the last step ended at */
    size_t pack_from_len, packed, pack_total;
    mv_bytes last_seen; /* walking backwards: the last key this step looked at */
    candidate *chunk;
    mv_kv *chunk_kvs;
    uint8_t **chunk_dst;
    size_t chunk_n, chunk_walked;
    uint64_t chunk_bytes;
    bool chunk_full;
    mv_range_rest *next;
};

bool rests_pin_below(const mvcc *s, int64_t rev) {
    for (const mv_range_rest *c = s->rests_open; c; c = c->next)
        if (c->g.rev < rev) return true;
    return false;
}

static uint8_t *copy_bytes(mv_bytes b) {
    uint8_t *p = xmalloc(b.len ? b.len : 1);
    if (b.len) memcpy(p, b.data, b.len);
    return p;
}

/* The walk paused in g (its kept keys taken by the caller): it goes on in a rest the store keeps in
 * view, so that pruning of the index waits for it. */
static mv_range_rest *range_rest_new(mvcc *s, const gather *g) {
    assert(g->paused && g->req->range_end.len);
    mv_range_rest *c = xcalloc(1, sizeof *c);
    c->s = s;
    c->req = *g->req;
    c->start = copy_bytes(g->req->key);
    c->end = copy_bytes(g->req->range_end);
    c->req.key = (mv_bytes){c->start, g->req->key.len};
    c->req.range_end = (mv_bytes){c->end, g->req->range_end.len};
    c->g = *g;
    c->g.req = &c->req;
    c->g.items = NULL;
    c->g.cap = 0;
    c->next = s->rests_open;
    s->rests_open = c;
    return c;
}

bool mvcc_range_rest_sizing(const mv_range_rest *c) {
    return c->g.paused && c->g.paused_gathering && !c->g.top;
}

bool mvcc_range_rest_choosing(const mv_range_rest *c) {
    return c->g.top != NULL;
}

bool mvcc_range_rest_step(mv_range_rest *c, mv_range_size_fn fn, void *ctx) {
    gather *g = &c->g;
    if (!g->paused) return true;
    assert(!g->paused_gathering || fn || g->top);
    g->size_fn = fn;
    g->size_ctx = ctx;
    g->paused = g->paused_gathering = false;
    g->walked_now = 0;
    g->counting = false; /* the remembered marks are looked up again: the cache may have changed */
    g->entry = NULL;
    g->cursor = 0;
    mv_bytes from = {g->resume, g->resume_len};
    for_each_live(c->s, from, c->req.range_end, g->rev, gather_one, g);
    if (g->paused) return false;
    if (!g->over) keep_marks(g);
    return true;
}

void mvcc_range_rest_result(const mv_range_rest *c, mv_range_resp *out) {
    const gather *g = &c->g;
    assert(!g->paused);
    size_t limit = c->req.limit > 0 ? (size_t)c->req.limit : SIZE_MAX;
    *out = (mv_range_resp){
        .n_kvs = g->n < limit ? g->n : limit, .more = g->n > limit, .count = g->count, .too_large = g->over};
}

/* Takes keys into this step's chunk until it holds enough, or every key the range returns. */
static bool pack_take(void *ctx, mv_bytes key, keyhist *kh, rev_entry *e) {
    (void)kh;
    mv_range_rest *c = ctx;
    bool walked_enough = c->chunk_walked++ == MV_RANGE_STEP_KEYS; /* keys a filter passes over count too */
    if (c->chunk_full || walked_enough || c->packed + c->chunk_n == c->pack_total) {
        c->chunk_full = true;
        mv_bytes from = whole_list_descending(&c->req) ? c->last_seen : key; /* where the next step starts */
        free(c->pack_from);
        c->pack_from = copy_bytes(from);
        c->pack_from_len = from.len;
        return false;
    }
    c->last_seen = key;
    if (!passes_filters(&c->req, e)) return true;
    c->chunk[c->chunk_n] = (candidate){key, e, {NULL, 0}};
    c->chunk_kvs[c->chunk_n++] = head_of(key, e, c->req.keys_only);
    c->chunk_bytes += c->req.keys_only ? 0 : e->value.length;
    c->chunk_full = c->chunk_n == MV_RANGE_STEP_KEYS || c->chunk_bytes >= MV_RANGE_STEP_VALUE_BYTES;
    return true;
}

bool mvcc_range_rest_pack(mv_range_rest *c, mv_range_pack_fn fn, void *ctx) {
    assert(!c->g.paused && !c->g.over);
    if (!c->chunk) {
        mv_range_resp r;
        mvcc_range_rest_result(c, &r);
        c->pack_total = r.n_kvs;
        c->chunk = xmalloc(MV_RANGE_STEP_KEYS * sizeof *c->chunk);
        c->chunk_kvs = xmalloc(MV_RANGE_STEP_KEYS * sizeof *c->chunk_kvs);
        c->chunk_dst = xmalloc(MV_RANGE_STEP_KEYS * sizeof *c->chunk_dst);
    }
    if (c->packed == c->pack_total) return true;
    c->chunk_n = c->chunk_walked = 0;
    c->chunk_bytes = 0;
    c->chunk_full = false;
    mv_bytes from = c->pack_from ? (mv_bytes){c->pack_from, c->pack_from_len} : c->req.key;
    if (!whole_list_descending(&c->req))
        for_each_live(c->s, from, c->req.range_end, c->g.rev, pack_take, c);
    else /* below the last key the step before looked at */
        for_each_live_back(c->s, c->req.key, c->pack_from ? &from : end_bound(&c->req), c->g.rev, pack_take,
                           c);
    /* the revision's keys stay: the walk finds the same ones again, and stops only with a key left */
    assert(c->packed + c->chunk_n <= c->pack_total &&
           (c->chunk_full || c->packed + c->chunk_n == c->pack_total));
    for (size_t i = 0; i < c->chunk_n; i++)
        c->chunk_dst[i] = fn(ctx, &c->chunk_kvs[i]);
    mv_range_resp chunk = {.kvs = c->chunk_kvs, .n_kvs = c->chunk_n, .selected = c->chunk};
    mvcc_range_values(c->s, &chunk, c->chunk_dst);
    c->packed += c->chunk_n;
    return c->packed == c->pack_total;
}

void mvcc_range_rest_end(mv_range_rest *c) {
    if (!c) return;
    mv_range_rest **p = &c->s->rests_open;
    while (*p != c)
        p = &(*p)->next;
    *p = c->next;
    drop_marks(&c->g);
    range_top_free(c->g.top);
    free(c->g.items);
    free(c->g.resume);
    free(c->start);
    free(c->end);
    free(c->pack_from);
    free(c->chunk);
    free(c->chunk_kvs);
    free(c->chunk_dst);
    free(c);
}

/* --- a Range whose values the caller has copied where it wants them (mvcc_range_select) --- */

static void result_begin(mv_result *out, const mvcc *s) {
    memset(out, 0, sizeof *out);
    out->arena = arena_new();
    out->resp.type = MV_OP_RANGE;
    out->header_revision = s->revision;
}

/* The chosen keys' heads into out's arena, and the candidates their values will be read from. */
static void select_heads(mv_result *out, const gather *g, size_t n, bool keys_only) {
    mv_range_resp *rr = &out->resp.u.range;
    rr->n_kvs = n;
    rr->kvs = arena_alloc_raw(out->arena, (n ? n : 1) * sizeof *rr->kvs);
    candidate *kept = arena_alloc_raw(out->arena, (n ? n : 1) * sizeof *kept);
    for (size_t i = 0; i < n; i++) {
        kept[i] = g->items[i];
        rr->kvs[i] = head_of(g->items[i].key, g->items[i].entry, keys_only);
    }
    rr->selected = kept;
}

void mvcc_range_select(mvcc *s, const mv_range_req *req, mv_result *out, mv_range_rest **rest) {
    if (rest) *rest = NULL;
    result_begin(out, s);
    int64_t rev = req->revision > 0 ? req->revision : s->revision;
    out->err = check_read_revision(s, rev);
    if (out->err != MV_OK) return;
    mv_range_resp *rr = &out->resp.u.range;
    gather g = {.walk_budget = rest ? MV_RANGE_STEP_KEYS : 0};
    size_t n = range_select(s, req, rev, out->arena, &g, rr);
    if (g.paused) *rest = range_rest_new(s, &g);
    select_heads(out, &g, n, req->keys_only);
    free(g.items);
}

void mvcc_range_rest_chosen(mv_range_rest *c, mv_result *out) {
    assert(c->g.top && !c->g.paused);
    result_begin(out, c->s);
    gather *g = &c->g;
    bool in_order = choose_top(c->s, &c->req, g);
    size_t n = select_end(c->s, &c->req, out->arena, g, &out->resp.u.range, in_order);
    select_heads(out, g, n, c->req.keys_only);
    free(g->items);
    g->items = NULL;
    g->n = g->cap = 0;
}
