/* bbolt_read.c: the checking reader of bbolt_read.h. Nothing read from the file is trusted: every
 * page id, count, offset and length is checked against the file before it is followed, the tree's
 * depth is bounded, and keys must strictly ascend (a cycle or a page shared by two parents shows as
 * keys out of order). Layout as in bbolt_write.c. */
#include "bbolt_read.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define BB_MAGIC 0xED0CDAEDu
#define BB_HDR 16u
#define BB_ELEM 16u
#define BB_FLAG_BRANCH 0x01u
#define BB_FLAG_LEAF 0x02u
#define BB_FLAG_META 0x04u

static uint16_t get16(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p) {
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint64_t fnv64a(const uint8_t *p, size_t n) {
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* The meta at byte offset off, if it is valid. */
static bool meta_ok(const uint8_t *d, uint64_t size, uint64_t off, uint32_t *page_size) {
    if (off + BB_HDR + 64 > size) return false;
    const uint8_t *p = d + off;
    const uint8_t *m = p + BB_HDR;
    if (!(get16(p + 8) & BB_FLAG_META) || get32(m) != BB_MAGIC || get32(m + 4) != 2) return false;
    if (get64(m + 56) != fnv64a(m, 56)) return false;
    *page_size = get32(m + 8);
    return true;
}

int bb_open(bb_db *db, const uint8_t *d, uint64_t size, char *err, size_t errlen) {
    memset(db, 0, sizeof *db);
    uint32_t ps0 = 0, ps1 = 0;
    bool ok0 = meta_ok(d, size, 0, &ps0);
    /* the second meta is one page in: its size comes from the first, or is tried at common sizes */
    static const uint32_t sizes[] = {4096, 8192, 16384, 65536, 1024, 2048, 32768, 512};
    bool ok1 = false;
    if (ok0) ok1 = meta_ok(d, size, ps0, &ps1) && ps1 == ps0;
    for (size_t i = 0; !ok0 && !ok1 && i < sizeof sizes / sizeof *sizes; i++)
        ok1 = meta_ok(d, size, sizes[i], &ps1) && ps1 == sizes[i];
    if (!ok0 && !ok1) {
        snprintf(
            err, errlen,
            "not a bbolt database, or both of its meta pages are damaged (bad magic, version or checksum)");
        return -1;
    }
    const uint8_t *m0 = d + BB_HDR, *m1 = ok1 ? d + (ok0 ? ps0 : ps1) + BB_HDR : NULL;
    const uint8_t *m = !ok0 ? m1 : !ok1 ? m0 : get64(m1 + 48) > get64(m0 + 48) ? m1 : m0;
    db->d = d;
    db->size = size;
    db->page_size = get32(m + 8);
    db->root = get64(m + 16);
    db->npages = get64(m + 40);
    db->txid = get64(m + 48);
    uint32_t ps = db->page_size;
    if (ps < 512 || ps > (1u << 20) || (ps & (ps - 1))) {
        snprintf(err, errlen, "bad page size %" PRIu32, ps);
        return -1;
    }
    if (db->npages < 3 || db->npages > size / ps) {
        snprintf(err, errlen,
                 "truncated: the database counts %" PRIu64 " pages of %" PRIu32
                 " bytes, the file holds %" PRIu64 " bytes",
                 db->npages, ps, size);
        return -1;
    }
    if (db->root < 2 || db->root >= db->npages) {
        snprintf(err, errlen, "root bucket page %" PRIu64 " out of bounds", db->root);
        return -1;
    }
    return 0;
}

void bb_root_bucket(const bb_db *db, bb_bucket *out) {
    *out = (bb_bucket){.root = db->root};
}

void bb_cursor_init(bb_cursor *c, const bb_db *db, const bb_bucket *b) {
    memset(c, 0, sizeof *c);
    c->db = db;
    c->b = *b;
}

void bb_cursor_free(bb_cursor *c) {
    free(c->last);
    c->last = NULL;
}

__attribute__((format(printf, 2, 3))) static int fail(bb_cursor *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    c->done = true;
    return -1;
}

/* Pushes the page pgid (or the inline page when pgid is 0 at the top) onto the stack, checked. */
static int push_page(bb_cursor *c, uint64_t pgid) {
    if (c->depth >= BB_READ_MAX_DEPTH)
        return fail(c, "tree deeper than %d (at page %" PRIu64 "): a cycle?", BB_READ_MAX_DEPTH, pgid);
    const uint8_t *p;
    size_t len;
    if (pgid == 0) {
        p = c->b.inline_page;
        len = c->b.inline_len;
        if (len < BB_HDR) return fail(c, "inline bucket of %zu bytes is too short", len);
    } else {
        const bb_db *db = c->db;
        if (pgid < 2 || pgid >= db->npages)
            return fail(c, "page %" PRIu64 " out of bounds (%" PRIu64 " pages)", pgid, db->npages);
        p = db->d + pgid * db->page_size;
        if (get64(p) != pgid) return fail(c, "page %" PRIu64 " says it is page %" PRIu64, pgid, get64(p));
        uint64_t overflow = get32(p + 12);
        if (pgid + overflow >= db->npages)
            return fail(c, "page %" PRIu64 " overflows past the end (%" PRIu64 " pages)", pgid, overflow);
        len = (size_t)((overflow + 1) * db->page_size);
    }
    uint16_t flags = get16(p + 8);
    uint32_t count = get16(p + 10);
    if (flags != BB_FLAG_LEAF && flags != BB_FLAG_BRANCH)
        return fail(c, "page %" PRIu64 ": not a leaf or branch (flags %#x)", pgid, (unsigned)flags);
    if (flags == BB_FLAG_BRANCH && (pgid == 0 || count == 0))
        return fail(c, "page %" PRIu64 ": bad branch (%" PRIu32 " elements)", pgid, count);
    if (BB_HDR + (uint64_t)count * BB_ELEM > len)
        return fail(c, "page %" PRIu64 ": %" PRIu32 " elements do not fit", pgid, count);
    c->st[c->depth++] = (bb_frame){.page = p, .len = len, .count = count, .leaf = flags == BB_FLAG_LEAF};
    return 0;
}

/* The element's key (and value for a leaf), bounds-checked. */
static int element(bb_cursor *c, int lv, const uint8_t **k, size_t *klen, const uint8_t **v, size_t *vlen,
                   uint32_t *flags, uint64_t *child) {
    const uint8_t *p = c->st[lv].page;
    size_t at = BB_HDR + (size_t)c->st[lv].idx * BB_ELEM;
    const uint8_t *e = p + at;
    uint64_t pos, ks, vs = 0;
    if (c->st[lv].leaf) {
        *flags = get32(e);
        pos = get32(e + 4);
        ks = get32(e + 8);
        vs = get32(e + 12);
    } else {
        pos = get32(e);
        ks = get32(e + 4);
        *child = get64(e + 8);
    }
    if (at + pos + ks + vs > c->st[lv].len)
        return fail(c, "element %" PRIu32 " points past its page (offset %" PRIu64 ")", c->st[lv].idx,
                    at + pos);
    *k = e + pos;
    *klen = ks;
    if (c->st[lv].leaf) {
        *v = e + pos + ks;
        *vlen = vs;
    }
    return 0;
}

int bb_cursor_next(bb_cursor *c, const uint8_t **k, size_t *klen, const uint8_t **v, size_t *vlen,
                   uint32_t *flags) {
    if (c->done) return c->err[0] ? -1 : 0;
    if (!c->started) {
        c->started = true;
        if (push_page(c, c->b.root) < 0) return -1;
    }
    for (;;) {
        if (c->depth == 0) {
            c->done = true;
            return 0;
        }
        int lv = c->depth - 1;
        if (c->st[lv].idx >= c->st[lv].count) {
            c->depth--;
            if (c->depth > 0) c->st[c->depth - 1].idx++;
            continue;
        }
        const uint8_t *key = NULL, *val = NULL;
        size_t kl = 0, vl = 0;
        uint32_t fl = 0;
        uint64_t child = 0;
        if (element(c, lv, &key, &kl, &val, &vl, &fl, &child) < 0) return -1;
        if (!c->st[lv].leaf) {
            if (child == 0) return fail(c, "branch element %" PRIu32 " points to page 0", c->st[lv].idx);
            if (push_page(c, child) < 0) return -1;
            continue;
        }
        c->st[lv].idx++;
        if (c->last_len || c->last) { /* strictly ascending keys */
            size_t m = kl < c->last_len ? kl : c->last_len;
            int cmp = memcmp(key, c->last, m);
            if (cmp < 0 || (cmp == 0 && kl <= c->last_len))
                return fail(c, "keys out of order (a key of %zu bytes after one of %zu bytes)", kl,
                            c->last_len);
        }
        if (kl > c->last_cap) {
            c->last = xrealloc(c->last, kl);
            c->last_cap = kl;
        }
        if (!c->last) c->last = xmalloc(1);
        memcpy(c->last, key, kl);
        c->last_len = kl;
        *k = key, *klen = kl, *v = val, *vlen = vl, *flags = fl;
        return 1;
    }
}

int bb_bucket_find(const bb_db *db, const bb_bucket *parent, const char *name, bb_bucket *out, char *err,
                   size_t errlen) {
    const uint8_t *v;
    size_t vlen;
    bb_cursor c;
    bb_cursor_init(&c, db, parent);
    size_t nlen = strlen(name);
    const uint8_t *k;
    size_t klen;
    uint32_t flags;
    int rc;
    while ((rc = bb_cursor_next(&c, &k, &klen, &v, &vlen, &flags)) == 1) {
        if (klen != nlen || memcmp(k, name, nlen) != 0) continue;
        rc = -1;
        if (!(flags & 1) || vlen < 16)
            snprintf(c.err, sizeof c.err, "%s is not a bucket", name);
        else if (get64(v) == 0 && vlen < 16 + BB_HDR)
            snprintf(c.err, sizeof c.err, "bucket %s: inline page too short", name);
        else {
            *out = (bb_bucket){.root = get64(v)};
            if (out->root == 0) out->inline_page = v + 16, out->inline_len = vlen - 16;
            rc = 1;
        }
        break;
    }
    if (rc < 0) snprintf(err, errlen, "%s", c.err);
    bb_cursor_free(&c);
    return rc;
}

int bb_get(const bb_db *db, const bb_bucket *b, const char *key, const uint8_t **v, size_t *vlen, char *err,
           size_t errlen) {
    bb_cursor c;
    bb_cursor_init(&c, db, b);
    size_t nlen = strlen(key);
    const uint8_t *k;
    size_t klen;
    uint32_t flags;
    int rc;
    while ((rc = bb_cursor_next(&c, &k, &klen, v, vlen, &flags)) == 1)
        if (klen == nlen && memcmp(k, key, nlen) == 0) break;
    if (rc < 0) snprintf(err, errlen, "%s", c.err);
    bb_cursor_free(&c);
    return rc;
}
