/* manifest.c: MANIFEST, the list of segment files a data dir must hold and the bytes each had when
 * last known durable. With it, start-up tells a clean data dir from a damaged one: a segment that is
 * missing, truncated below what was durable, or unknown is refused with a message naming it, and a
 * dir that held data never starts empty (docs/architecture.md, "Storage").
 * Format: "CETCDMAN", u32 version, u32 count, count x (u32 id, u32 covers, u64 durable bytes),
 * u64 XXH3-64 of everything before it. Replaced whole: written beside, synced, renamed, dir synced. */
#include "alloc.h"
#include "log_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define MANIFEST_NAME "MANIFEST"
#define MANIFEST_TMP "MANIFEST.tmp"
#define MANIFEST_MAGIC "CETCDMAN"
#define MANIFEST_VERSION 1u
#define MANIFEST_HEAD 16u
#define MANIFEST_ENTRY 16u

size_t manifest_entries(const wal *l, manifest_entry *e) {
    size_t n = 0;
    for (size_t i = 0; i < l->nsegs; i++) {
        const segment *s = &l->segs[i];
        if (s->fd >= 0) e[n++] = (manifest_entry){s->id, s->covers, s->synced};
    }
    return n;
}

size_t manifest_encode(const manifest_entry *e, size_t n, uint8_t **out) {
    size_t len = MANIFEST_HEAD + n * MANIFEST_ENTRY + 8;
    uint8_t *b = xcalloc(1, len);
    memcpy(b, MANIFEST_MAGIC, 8);
    le_put(b + 8, MANIFEST_VERSION, 4);
    le_put(b + 12, n, 4);
    for (size_t i = 0; i < n; i++) {
        uint8_t *at = b + MANIFEST_HEAD + i * MANIFEST_ENTRY;
        le_put(at, e[i].id, 4);
        le_put(at + 4, e[i].covers, 4);
        le_put(at + 8, e[i].min_size, 8);
    }
    le_put(b + len - 8, XXH3_64bits(b, len - 8), 8);
    *out = b;
    return len;
}

int manifest_write(int dirfd, const uint8_t *b, size_t len) {
    int fd = sio_open(dirfd, MANIFEST_TMP, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = fd < 0 ? -errno : sio_write_all(fd, b, len, 0);
    if (rc == 0) rc = sio_sync_data_err(fd);
    if (fd >= 0) sio_close(fd);
    if (rc == 0 && sio_rename(dirfd, MANIFEST_TMP, MANIFEST_NAME) < 0) rc = -errno;
    if (rc == 0 && sio_sync_dir(dirfd) < 0) rc = -errno;
    return rc;
}

int manifest_save(wal *l, uint32_t id, uint64_t min_size) {
    assert(!(l->job_busy && l->job.writes_manifest));
    manifest_entry *e = xmalloc((l->nsegs ? l->nsegs : 1) * sizeof *e);
    size_t n = manifest_entries(l, e);
    for (size_t i = 0; i < n; i++)
        if (e[i].id == id && min_size < e[i].min_size) e[i].min_size = min_size;
    uint8_t *b;
    size_t len = manifest_encode(e, n, &b);
    free(e);
    int rc = manifest_write(l->dirfd, b, len);
    free(b);
    return rc;
}

void manifest_free(manifest *m) {
    free(m->entries);
    *m = (manifest){0};
}

static int parse(manifest *m, const uint8_t *b, uint64_t len) {
    if (len < MANIFEST_HEAD + 8 || memcmp(b, MANIFEST_MAGIC, 8) != 0) return -1;
    if (le_u32(b + 8) != MANIFEST_VERSION) return -1;
    uint64_t n = le_u32(b + 12);
    if (len != MANIFEST_HEAD + n * MANIFEST_ENTRY + 8 || XXH3_64bits(b, len - 8) != le_get(b + len - 8, 8))
        return -1;
    m->entries = xcalloc(n ? n : 1, sizeof *m->entries);
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *e = b + MANIFEST_HEAD + i * MANIFEST_ENTRY;
        m->entries[i] = (manifest_entry){le_u32(e), le_u32(e + 4), le_get(e + 8, 8)};
    }
    m->n = (size_t)n;
    return 0;
}

int manifest_load(wal *l, manifest *m, char *err, size_t errlen) {
    *m = (manifest){0};
    sio_unlink(l->dirfd, MANIFEST_TMP); /* a crash's leftover; the rename had not happened */
    int fd = sio_open(l->dirfd, MANIFEST_NAME, O_RDONLY, 0);
    if (fd < 0 && errno == ENOENT) return 0;
    uint64_t len = 0;
    if (fd < 0 || sio_file_size(fd, &len) < 0 || len > (64u << 20)) {
        log_set_err(err, errlen, "%s/%s: %s", l->dir, MANIFEST_NAME, fd < 0 ? strerror(errno) : "unreadable");
        if (fd >= 0) sio_close(fd);
        return -1;
    }
    uint8_t *b = xmalloc(len ? len : 1);
    int rc = sio_read_all(fd, b, len, 0);
    sio_close(fd);
    if (rc == 0) rc = parse(m, b, len);
    free(b);
    if (rc < 0) {
        log_set_err(err, errlen, "%s/%s: damaged (bad magic, length or checksum)", l->dir, MANIFEST_NAME);
        return -1;
    }
    m->exists = true;
    return 0;
}

static const manifest_entry *find_entry(const manifest *m, uint32_t id) {
    for (size_t i = 0; i < m->n; i++)
        if (m->entries[i].id == id) return &m->entries[i];
    return NULL;
}

/* Is id inside a merge that a present segment stands for (a leftover already removed)? */
static bool covered(const wal *l, uint32_t id) {
    for (size_t i = 0; i < l->nsegs; i++)
        if (l->segs[i].id < id && id <= l->segs[i].covers) return true;
    return false;
}

static uint32_t highest_listed(const manifest *m) {
    uint32_t hi = 0;
    for (size_t i = 0; i < m->n; i++)
        if (m->entries[i].covers > hi) hi = m->entries[i].covers;
    return hi;
}

int manifest_check(wal *l, const manifest *m, char *err, size_t errlen) {
    char name[SEG_NAME_BYTES];
    for (size_t i = 0; i < m->n; i++) {
        const manifest_entry *e = &m->entries[i];
        segment *s = log_find_segment(l, e->id);
        log_segment_name(name, e->id);
        if (!s && !covered(l, e->id)) {
            log_set_err(err, errlen, "%s/%s is missing: MANIFEST lists it (refusing to start without it)",
                        l->dir, name);
            return -1;
        }
        if (s && s->size < e->min_size) {
            log_set_err(err, errlen, "%s/%s has %llu bytes, but %llu were durable (truncated)", l->dir, name,
                        (unsigned long long)s->size, (unsigned long long)e->min_size);
            return -1;
        }
        if (s) s->min_size = e->min_size;
    }
    uint32_t hi = highest_listed(m);
    for (size_t i = 0; i < l->nsegs; i++) {
        const segment *s = &l->segs[i];
        if (find_entry(m, s->id) || s->id > hi || s->size <= SEG_HDR_BYTES + COVERS_RECORD_BYTES) continue;
        log_segment_name(name, s->id);
        log_set_err(err, errlen, "%s/%s is not in MANIFEST: it was not written by this data dir's log",
                    l->dir, name);
        return -1;
    }
    return 0;
}
