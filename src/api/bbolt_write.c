/* bbolt_write.c: the page writer of bbolt_write.h. bbolt's on-disk format (etcd-io/bbolt page.go,
 * node.go, meta): little-endian, pages of BB_PAGE_SIZE with a 16-byte header (id, flags, count,
 * overflow), leaf elements (flags, pos, ksize, vsize) and branch elements (pos, ksize, pgid) whose pos
 * counts from the element itself, and two meta pages checked with FNV-64a. */
#include "bbolt_write.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define BB_MAGIC 0xED0CDAEDu
#define BB_VERSION 2u
#define BB_HDR 16u  /* page header */
#define BB_ELEM 16u /* leaf and branch elements are both 16 bytes */
#define BB_FLAG_BRANCH 0x01u
#define BB_FLAG_LEAF 0x02u
#define BB_FLAG_META 0x04u
#define BB_FLAG_FREELIST 0x10u
#define BB_LEAF_BUCKET 0x01u
#define BB_MAX_KEY 32768u

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void page_header(uint8_t *p, uint64_t id, uint16_t flags, uint16_t count, uint32_t overflow) {
    put64(p, id);
    put16(p + 8, flags);
    put16(p + 10, count);
    put32(p + 12, overflow);
}

uint64_t bb_fnv64a(const uint8_t *p, size_t n) {
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* ---------- the tree ---------- */

void bb_tree_init(bb_tree *t, uint64_t first_pgid, bb_page_fn emit, void *ctx) {
    memset(t, 0, sizeof *t);
    t->next_pgid = first_pgid;
    t->emit = emit;
    t->ctx = ctx;
}

void bb_tree_free(bb_tree *t) {
    for (int i = 0; i < BB_MAX_DEPTH; i++) {
        free(t->lv[i].elems);
        free(t->lv[i].data);
        free(t->lv[i].first_key);
    }
    free(t->page);
    memset(t, 0, sizeof *t);
}

static size_t level_span(const bb_level *l) {
    return BB_HDR + BB_ELEM * l->n + l->data_len;
}

/* Lays the level's elements out as a page (leaf: level 0) into t->page and hands it on. */
static void write_page(bb_tree *t, int level, uint64_t pgid, uint32_t npages) {
    bb_level *l = &t->lv[level];
    size_t len = (size_t)npages * BB_PAGE_SIZE;
    if (len > t->page_cap) {
        free(t->page);
        t->page = xmalloc(len);
        t->page_cap = len;
    }
    uint8_t *p = t->page;
    memset(p, 0, len);
    page_header(p, pgid, level == 0 ? BB_FLAG_LEAF : BB_FLAG_BRANCH, (uint16_t)l->n, npages - 1);
    size_t data_at = BB_HDR + BB_ELEM * l->n;
    if (l->data_len) memcpy(p + data_at, l->data, l->data_len);
    for (size_t i = 0; i < l->n; i++) {
        uint8_t *e = p + BB_HDR + BB_ELEM * i;
        const bb_elem *x = &l->elems[i];
        uint32_t pos = (uint32_t)(data_at + x->off - (BB_HDR + BB_ELEM * i));
        if (level == 0) { /* flags, pos, ksize, vsize */
            put32(e, 0);
            put32(e + 4, pos);
            put32(e + 8, x->ksize);
            put32(e + 12, x->vsize);
        } else { /* pos, ksize, pgid */
            put32(e, pos);
            put32(e + 4, x->ksize);
            put64(e + 8, x->pgid);
        }
    }
    t->emit(t->ctx, p, len);
}

static int level_add(bb_tree *t, int level, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen,
                     uint64_t pgid);

/* Finishes the open page of a level: gives it the next page ids, writes it, and (unless it is the
 * root) adds it to the level above. Returns its page id. */
static uint64_t close_level(bb_tree *t, int level, bool is_root) {
    bb_level *l = &t->lv[level];
    size_t span = level_span(l);
    uint32_t npages = (uint32_t)((span + BB_PAGE_SIZE - 1) / BB_PAGE_SIZE);
    uint64_t pgid = t->next_pgid;
    t->next_pgid += npages;
    if (t->emit) write_page(t, level, pgid, npages);
    l->closed++;
    if (!is_root && level_add(t, level + 1, l->first_key, l->first_len, NULL, 0, pgid) < 0) t->failed = true;
    l->n = 0;
    l->data_len = 0;
    l->first_len = 0;
    return pgid;
}

static void grow(void **p, size_t *cap, size_t need, size_t unit) {
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    *p = xrealloc(*p, c * unit);
    *cap = c;
}

static int level_add(bb_tree *t, int level, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen,
                     uint64_t pgid) {
    if (level >= BB_MAX_DEPTH) return -1;
    bb_level *l = &t->lv[level];
    size_t add = BB_ELEM + klen + vlen;
    if (l->n > 0 && (level_span(l) + add > BB_PAGE_SIZE || l->n == 0xFFFF)) close_level(t, level, false);
    if (l->n == 0) {
        grow((void **)&l->first_key, &l->first_cap, klen ? klen : 1, 1);
        memcpy(l->first_key, k, klen);
        l->first_len = klen;
    }
    grow((void **)&l->elems, &l->elems_cap, l->n + 1, sizeof *l->elems);
    grow((void **)&l->data, &l->data_cap, l->data_len + klen + vlen, 1);
    l->elems[l->n++] = (bb_elem){
        .pgid = pgid, .ksize = (uint32_t)klen, .vsize = (uint32_t)vlen, .off = (uint32_t)l->data_len};
    memcpy(l->data + l->data_len, k, klen);
    if (vlen) memcpy(l->data + l->data_len + klen, v, vlen);
    l->data_len += klen + vlen;
    return 0;
}

int bb_tree_add(bb_tree *t, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen) {
    if (t->finished || t->failed || klen == 0 || klen > BB_MAX_KEY || vlen > (1u << 30)) return -1;
    if (klen <= sizeof t->last_key) {
        size_t m = klen < t->last_len ? klen : t->last_len;
        int c = memcmp(k, t->last_key, m);
        if (t->entries > 0 && (c < 0 || (c == 0 && klen <= t->last_len))) return -1;
        memcpy(t->last_key, k, klen);
        t->last_len = klen;
    }
    if (level_add(t, 0, k, klen, v, vlen, 0) < 0 || t->failed) return -1;
    t->entries++;
    return 0;
}

uint64_t bb_tree_finish(bb_tree *t, uint64_t *root) {
    t->finished = true;
    for (int level = 0; level < BB_MAX_DEPTH; level++) {
        if (t->lv[level].closed == 0) { /* the one page of the top level (an empty leaf if no keys) */
            t->root = close_level(t, level, true);
            break;
        }
        close_level(t, level, false);
    }
    *root = t->root;
    return t->next_pgid;
}

/* ---------- buckets and the head of the file ---------- */

/* Lays out a leaf page (header and elements) of n sorted pairs at out; returns its length, 0 if it
 * would pass cap. */
static size_t leaf_layout(uint8_t *out, size_t cap, uint64_t id, uint32_t elem_flags, const bb_kv *kvs,
                          size_t n) {
    size_t len = BB_HDR + BB_ELEM * n;
    for (size_t i = 0; i < n; i++)
        len += kvs[i].klen + kvs[i].vlen;
    if (len > cap) return 0;
    memset(out, 0, len);
    page_header(out, id, BB_FLAG_LEAF, (uint16_t)n, 0);
    size_t at = BB_HDR + BB_ELEM * n;
    for (size_t i = 0; i < n; i++) {
        uint8_t *e = out + BB_HDR + BB_ELEM * i;
        put32(e, elem_flags);
        put32(e + 4, (uint32_t)(at - (BB_HDR + BB_ELEM * i)));
        put32(e + 8, (uint32_t)kvs[i].klen);
        put32(e + 12, (uint32_t)kvs[i].vlen);
        memcpy(out + at, kvs[i].k, kvs[i].klen);
        at += kvs[i].klen;
        if (kvs[i].vlen) memcpy(out + at, kvs[i].v, kvs[i].vlen);
        at += kvs[i].vlen;
    }
    return len;
}

void bb_bucket_ref(uint8_t out[16], uint64_t root) {
    put64(out, root);
    put64(out + 8, 0); /* sequence */
}

size_t bb_inline_bucket(uint8_t *out, size_t cap, const bb_kv *kvs, size_t n) {
    if (cap < 16) return 0;
    bb_bucket_ref(out, 0);
    size_t len = leaf_layout(out + 16, cap - 16, 0, 0, kvs, n);
    return len ? 16 + len : 0;
}

static void meta_page(uint8_t *p, uint64_t id, uint64_t total_pages, uint64_t txid) {
    page_header(p, id, BB_FLAG_META, 0, 0);
    uint8_t *m = p + BB_HDR;
    put32(m, BB_MAGIC);
    put32(m + 4, BB_VERSION);
    put32(m + 8, BB_PAGE_SIZE);
    put32(m + 12, 0); /* flags */
    put64(m + 16, 3); /* root bucket: page 3 */
    put64(m + 24, 0); /* its sequence */
    put64(m + 32, 2); /* freelist: page 2 */
    put64(m + 40, total_pages);
    put64(m + 48, txid);
    put64(m + 56, bb_fnv64a(m, 56));
}

int bb_head_pages(uint8_t *out, uint64_t total_pages, uint64_t txid, const bb_kv *buckets, size_t n) {
    memset(out, 0, BB_HEAD_PAGES * BB_PAGE_SIZE);
    meta_page(out, 0, total_pages, txid);                    /* bbolt takes the valid meta with the */
    meta_page(out + BB_PAGE_SIZE, 1, total_pages, txid + 1); /* higher txid; both name the same tree */
    page_header(out + 2 * BB_PAGE_SIZE, 2, BB_FLAG_FREELIST, 0, 0);
    return leaf_layout(out + 3 * BB_PAGE_SIZE, BB_PAGE_SIZE, 3, BB_LEAF_BUCKET, buckets, n) ? 0 : -1;
}
