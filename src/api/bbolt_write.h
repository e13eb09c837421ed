/* bbolt_write.h: writes a bbolt database file (the format of etcd's backend) as a stream of pages,
 * so that a snapshot in etcd's format can be produced without holding the store in memory: a bucket's
 * B+ tree is built from keys given in ascending order, and each page leaves as soon as it is full. */
#ifndef CETCD_BBOLT_WRITE_H
#define CETCD_BBOLT_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BB_PAGE_SIZE 4096u
#define BB_MAX_DEPTH 16

/* Where finished pages go: len is a whole number of pages; NULL only counts (a first pass). */
typedef void (*bb_page_fn)(void *ctx, const uint8_t *page, size_t len);

typedef struct bb_elem {
    uint64_t pgid;              /* a branch element's child */
    uint32_t ksize, vsize, off; /* off: where the key starts in the level's data */
} bb_elem;

typedef struct bb_level {
    bb_elem *elems;
    uint8_t *data; /* the keys and values the elements point to */
    size_t n, elems_cap, data_len, data_cap;
    uint8_t *first_key; /* the first key of the open page, which the parent points with */
    size_t first_len, first_cap;
    uint64_t closed; /* pages finished at this level */
} bb_level;

/* One bucket's tree, written in post-order: leaves as they fill, a branch once its children are out.
 * Page ids are given in emission order from first_pgid, so a counting pass with the same input finds
 * the same ids. Memory: one open page per level (a leaf holding one big value grows to fit it). */
typedef struct bb_tree {
    bb_level lv[BB_MAX_DEPTH];
    uint64_t next_pgid, root, entries;
    uint8_t *page; /* scratch for assembling a page */
    size_t page_cap;
    uint8_t last_key[32]; /* ascending-order check of short keys (etcd's revision keys) */
    size_t last_len;
    bool finished, failed;
    bb_page_fn emit;
    void *ctx;
} bb_tree;

void bb_tree_init(bb_tree *t, uint64_t first_pgid, bb_page_fn emit, void *ctx);
/* Adds a key in ascending order (keys up to 32 bytes are checked). 0, or -1 if out of order or too
 * big for bbolt (key over 32 KiB). */
int bb_tree_add(bb_tree *t, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen);
/* Writes the open pages. *root gets the root page id; returns the next free page id. */
uint64_t bb_tree_finish(bb_tree *t, uint64_t *root);
void bb_tree_free(bb_tree *t);

/* A small bucket held inside its parent's leaf ("inline"): build its value from up to a page of
 * sorted key-value pairs. Returns the value's length, written to out (cap bytes); 0 if too big. */
typedef struct bb_kv {
    const void *k, *v;
    size_t klen, vlen;
} bb_kv;
size_t bb_inline_bucket(uint8_t *out, size_t cap, const bb_kv *kvs, size_t n);
/* The value of a bucket whose tree starts at root (16 bytes: root page id, sequence 0). */
void bb_bucket_ref(uint8_t out[16], uint64_t root);

/* The fixed pages at the start of a file: two meta pages (0 and 1), an empty freelist (2), and the
 * root bucket's leaf (3), whose entries are buckets (kvs sorted by name, values from the two
 * functions above). out gets 4 pages. 0, or -1 if the root leaf does not fit in a page. */
#define BB_HEAD_PAGES 4u
int bb_head_pages(uint8_t *out, uint64_t total_pages, uint64_t txid, const bb_kv *buckets, size_t n);

/* bbolt's meta checksum: FNV-64a over the meta fields before the checksum. */
uint64_t bb_fnv64a(const uint8_t *p, size_t n);

#endif
