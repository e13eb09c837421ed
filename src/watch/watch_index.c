/* watch_index.c: finds the watchers of a changed key quickly: single-key watchers sit in a hash table
 * of buckets by key (10,000 watchers of one key are one lookup), range and from-key watchers in an
 * interval tree (watch_spans.c). Also each stream's map from watch id to watcher. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "alloc.h"
#include "watch_internal.h"

typedef struct watch_bucket {
    uint64_t hash;
    mv_bytes key; /* the first watcher's copy; moved when that watcher leaves */
    watcher *head;
    struct watch_bucket *next;
} watch_bucket;

static struct {
    watch_bucket **table;
    size_t cap, n_buckets;
    size_t n_watchers;
} ix;

bool watch_key_eq(mv_bytes a, mv_bytes b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

uint64_t watch_key_hash(mv_bytes k) {
    return XXH3_64bits(k.data, k.len);
}

static void table_grow(void) {
    size_t cap = ix.cap ? ix.cap * 2 : 256;
    watch_bucket **t = xcalloc(cap, sizeof *t);
    for (size_t i = 0; i < ix.cap; i++) {
        for (watch_bucket *b = ix.table[i], *next; b; b = next) {
            next = b->next;
            b->next = t[b->hash & (cap - 1)];
            t[b->hash & (cap - 1)] = b;
        }
    }
    free(ix.table);
    ix.table = t;
    ix.cap = cap;
}

static watch_bucket *bucket_find(mv_bytes key, uint64_t h) {
    if (!ix.cap) return NULL;
    for (watch_bucket *b = ix.table[h & (ix.cap - 1)]; b; b = b->next)
        if (b->hash == h && watch_key_eq(b->key, key)) return b;
    return NULL;
}

static watch_bucket *bucket_get(watcher *w) {
    uint64_t h = watch_key_hash(w->key);
    watch_bucket *b = bucket_find(w->key, h);
    if (b) return b;
    if (ix.n_buckets + 1 > ix.cap / 2) table_grow();
    b = xcalloc(1, sizeof *b);
    b->hash = h;
    b->key = w->key;
    b->next = ix.table[h & (ix.cap - 1)];
    ix.table[h & (ix.cap - 1)] = b;
    ix.n_buckets++;
    return b;
}

static void bucket_drop(watch_bucket *b) {
    watch_bucket **pp = &ix.table[b->hash & (ix.cap - 1)];
    while (*pp != b)
        pp = &(*pp)->next;
    *pp = b->next;
    ix.n_buckets--;
    free(b);
}

static void list_push(watcher **head, watcher *w) {
    w->ix_prev = NULL;
    w->ix_next = *head;
    if (*head) (*head)->ix_prev = w;
    *head = w;
}

static void list_unlink(watcher **head, watcher *w) {
    if (w->ix_prev)
        w->ix_prev->ix_next = w->ix_next;
    else
        *head = w->ix_next;
    if (w->ix_next) w->ix_next->ix_prev = w->ix_prev;
    w->ix_prev = w->ix_next = NULL;
}

void widx_add(watcher *w) {
    ix.n_watchers++;
    if (w->kind != WR_KEY) return wspan_add(w);
    w->bucket = bucket_get(w);
    list_push(&w->bucket->head, w);
}

void widx_remove(watcher *w) {
    ix.n_watchers--;
    if (w->kind != WR_KEY) return wspan_remove(w);
    watch_bucket *b = w->bucket;
    list_unlink(&b->head, w);
    w->bucket = NULL;
    if (!b->head) return bucket_drop(b);
    if (b->key.data == w->key.data) b->key = b->head->key; /* the copy it pointed at goes with w */
}

void widx_match(mv_bytes key, void (*fn)(watcher *w, void *ctx), void *ctx) {
    watch_bucket *b = bucket_find(key, watch_key_hash(key));
    for (watcher *w = b ? b->head : NULL; w; w = w->ix_next)
        fn(w, ctx);
    wspan_match(key, fn, ctx);
}

size_t widx_count(void) {
    return ix.n_watchers;
}

/* --- a stream's id map --- */

static size_t id_slot(const watch_stream *ws, int64_t id) {
    uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 32) & (ws->ids_cap - 1);
}

watcher *wids_get(const watch_stream *ws, int64_t id) {
    if (!ws->ids_cap) return NULL;
    for (watcher *w = ws->ids[id_slot(ws, id)]; w; w = w->id_next)
        if (w->id == id) return w;
    return NULL;
}

static void ids_grow(watch_stream *ws) {
    size_t old_cap = ws->ids_cap;
    watcher **old = ws->ids;
    ws->ids_cap = old_cap ? old_cap * 2 : 16;
    ws->ids = xcalloc(ws->ids_cap, sizeof *ws->ids);
    for (size_t i = 0; i < old_cap; i++) {
        for (watcher *w = old[i], *next; w; w = next) {
            next = w->id_next;
            size_t s = id_slot(ws, w->id);
            w->id_next = ws->ids[s];
            ws->ids[s] = w;
        }
    }
    free(old);
}

void wids_put(watch_stream *ws, watcher *w) {
    if (ws->n_watchers + 1 > ws->ids_cap) ids_grow(ws);
    size_t s = id_slot(ws, w->id);
    w->id_next = ws->ids[s];
    ws->ids[s] = w;
}

void wids_remove(watch_stream *ws, watcher *w) {
    watcher **pp = &ws->ids[id_slot(ws, w->id)];
    while (*pp && *pp != w)
        pp = &(*pp)->id_next;
    if (*pp) *pp = w->id_next;
    w->id_next = NULL;
}
