/* bbolt_read.h: reads a bbolt database file (etcd's backend, as `etcdctl snapshot save` writes it) from
 * memory, checking every page it touches, so that a damaged file is refused with a reason instead of
 * being trusted: cetcd --restore imports etcd's snapshots through it. */
#ifndef CETCD_BBOLT_READ_H
#define CETCD_BBOLT_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BB_READ_MAX_DEPTH 32

typedef struct bb_db {
    const uint8_t *d;
    uint64_t size; /* bytes of the database (without etcd's sha256 trailer) */
    uint32_t page_size;
    uint64_t npages;     /* the meta's high water mark */
    uint64_t root, txid; /* the root bucket's page */
} bb_db;

/* A bucket: a tree from a page, or an inline leaf inside its parent's value. */
typedef struct bb_bucket {
    uint64_t root;
    const uint8_t *inline_page; /* when root == 0 */
    size_t inline_len;
} bb_bucket;

/* Checks the meta pages (magic, version, FNV-64a checksum; the valid one with the higher txid wins)
 * and that the file holds every page they count. 0, or -1 with err set. */
int bb_open(bb_db *db, const uint8_t *d, uint64_t size, char *err, size_t errlen);
void bb_root_bucket(const bb_db *db, bb_bucket *out);

/* Iterates a bucket's pairs in key order, checking each page (bounds, type, counts, element
 * offsets), the depth, and that keys strictly ascend across pages. */
typedef struct bb_frame {
    const uint8_t *page;
    size_t len; /* bytes of the page including overflow */
    uint32_t idx, count;
    bool leaf;
} bb_frame;

typedef struct bb_cursor {
    const bb_db *db;
    bb_bucket b;
    bb_frame st[BB_READ_MAX_DEPTH];
    int depth; /* entries of st in use; 0 before the first call */
    bool started, done;
    uint8_t *last; /* the previous key, for the order check */
    size_t last_len, last_cap;
    char err[160];
} bb_cursor;

void bb_cursor_init(bb_cursor *c, const bb_db *db, const bb_bucket *b);
/* 1 with the next pair (pointers into the file; *flags 1 for a nested bucket), 0 at the end, -1 with
 * c->err set. */
int bb_cursor_next(bb_cursor *c, const uint8_t **k, size_t *klen, const uint8_t **v, size_t *vlen,
                   uint32_t *flags);
void bb_cursor_free(bb_cursor *c);

/* Finds a nested bucket of parent by name: 1 found, 0 absent, -1 damaged (err set). */
int bb_bucket_find(const bb_db *db, const bb_bucket *parent, const char *name, bb_bucket *out, char *err,
                   size_t errlen);
/* Finds a key of a bucket (a linear scan: for small buckets). 1 found, 0 absent, -1 damaged. */
int bb_get(const bb_db *db, const bb_bucket *b, const char *key, const uint8_t **v, size_t *vlen, char *err,
           size_t errlen);

#endif
