/* log_rewrite.c: whole-segment work. Log compaction scans sealed segments and replaces them with a
 * rewritten copy: written beside the first as "<id>.log.rewrite", synced, renamed over it, the
 * directory synced, and only then the merged segments after it unlinked, so a crash leaves either
 * version whole (docs/architecture.md, "Storage"). Snapshots copy segments out; restores install them. */
#include "alloc.h"
#include "log_internal.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REWRITE_SUFFIX ".rewrite"
#define REWRITE_NAME_BYTES (SEG_NAME_BYTES + sizeof REWRITE_SUFFIX)
#define REWRITE_FLUSH_BYTES (1u << 20)

struct log_rewrite {
    wal *l;
    uint32_t id;
    int fd;
    uint8_t *buf;
    size_t len, cap;
    uint64_t flushed; /* file offset where buf starts */
    int err;
    bool prepared; /* complete and written out, its header naming prepared_last */
    uint32_t prepared_last;
    bool synced; /* and durable: the sync thread synced it (log_rewrite_synced) */
};

static void rewrite_name(char out[REWRITE_NAME_BYTES], uint32_t id) {
    char seg[SEG_NAME_BYTES];
    log_segment_name(seg, id);
    snprintf(out, REWRITE_NAME_BYTES, "%s%s", seg, REWRITE_SUFFIX);
}

void log_remove_stale_rewrites(wal *l) {
    int fd = dup(l->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return;
    }
    struct dirent *e;
    size_t suffix = strlen(REWRITE_SUFFIX);
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > suffix && strcmp(e->d_name + n - suffix, REWRITE_SUFFIX) == 0)
            sio_unlink(l->dirfd, e->d_name);
    }
    rewinddir(d); /* the stream's position is shared with the log's directory fd */
    closedir(d);
}

size_t log_sealed_segments(const wal *l, uint32_t **ids) {
    size_t n = 0;
    *ids = xmalloc((l->nsegs ? l->nsegs : 1) * sizeof **ids);
    for (size_t i = 0; i + 1 < l->nsegs; i++)
        if (l->segs[i].fd >= 0 || l->segs[i].inflight_len || l->segs[i].pending_len)
            (*ids)[n++] = l->segs[i].id;
    return n;
}

bool log_has_segment(const wal *l, uint32_t id) {
    return log_find_segment(l, id) != NULL;
}

uint64_t log_segment_bytes(const wal *l) {
    return l->opt.segment_bytes;
}

bool log_segment_settled(const wal *l, uint32_t id) {
    const segment *s = log_find_segment(l, id);
    return s && s != &l->segs[l->nsegs - 1] && s->pending_len == 0 && s->inflight_len == 0 && s->fd >= 0 &&
           s->synced == s->size;
}

int log_segment_scan(wal *l, uint32_t id, uint64_t *cursor, size_t max_records, log_replay_fn fn, void *ctx) {
    if (!log_segment_settled(l, id)) return -ENOENT;
    segment *s = log_find_segment(l, id);
    if (*cursor < SEG_HDR_BYTES) *cursor = SEG_HDR_BYTES;
    if (*cursor >= s->size) return 0;
    uint8_t *data = sio_map(s->fd, s->size);
    if (!data) return errno ? -errno : -EIO;
    int rc = 1;
    for (size_t i = 0; i < max_records && *cursor < s->size; i++) {
        uint64_t rec_bytes;
        const uint8_t *rec = data + *cursor;
        if (log_check_record(rec, s->size - *cursor, &rec_bytes)) {
            rc = -EIO;
            break;
        }
        uint32_t len = le_u32(rec);
        log_place where = {.segment = id, .length = len, .offset = *cursor + REC_HDR_BYTES};
        if (fn(ctx, rec[4], (int64_t)le_get(rec + 8, 8), rec + REC_HDR_BYTES, len, where)) {
            rc = -ECANCELED;
            break;
        }
        *cursor += rec_bytes;
    }
    sio_unmap(data, s->size);
    if (rc == 1 && *cursor >= s->size) rc = 0;
    return rc;
}

/* ---------- building the new file ---------- */

static void rewrite_reserve(log_rewrite *rw, size_t more) {
    if (rw->len + more <= rw->cap) return;
    size_t cap = rw->cap ? rw->cap : 64 * 1024;
    while (cap < rw->len + more)
        cap *= 2;
    rw->buf = xrealloc(rw->buf, cap);
    rw->cap = cap;
}

static void rewrite_flush(log_rewrite *rw) {
    if (rw->err || rw->len == 0) return;
    rw->err = sio_write_all(rw->fd, rw->buf, rw->len, rw->flushed);
    /* the disk starts on it now, so that the fdatasync at switch-in, on the loop, finds little left */
    if (!rw->err && rw->l->opt.fsync) sio_start_writeback(rw->fd, rw->flushed, rw->len);
    rw->flushed += rw->len;
    rw->len = 0;
}

log_rewrite *log_rewrite_begin(wal *l, uint32_t first) {
    assert(log_segment_settled(l, first));
    char name[REWRITE_NAME_BYTES];
    rewrite_name(name, first);
    int fd = sio_open(l->dirfd, name, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return NULL;
    log_rewrite *rw = xcalloc(1, sizeof *rw);
    *rw = (log_rewrite){.l = l, .id = first, .fd = fd};
    rewrite_reserve(rw, SEG_HDR_BYTES);
    log_fill_segment_header(rw->buf);
    rw->len = SEG_HDR_BYTES;
    uint8_t covers[4];
    le_put(covers, first, 4); /* the last id goes here when the file is finished */
    log_rewrite_append(rw, LOG_COVERS, 0, covers, sizeof covers);
    return rw;
}

log_place log_rewrite_append(log_rewrite *rw, int type, int64_t revision, const uint8_t *payload,
                             size_t len) {
    rewrite_reserve(rw, REC_HDR_BYTES + len);
    uint64_t at = rw->flushed + rw->len;
    log_encode_record(rw->buf + rw->len, type, revision, payload, len);
    rw->len += REC_HDR_BYTES + len;
    if (rw->len >= REWRITE_FLUSH_BYTES) rewrite_flush(rw);
    return (log_place){.segment = rw->id, .length = (uint32_t)len, .offset = at + REC_HDR_BYTES};
}

uint64_t log_rewrite_bytes(const log_rewrite *rw) {
    return rw->flushed + rw->len;
}

static void rewrite_free(log_rewrite *rw, bool remove_file) {
    if (remove_file) {
        char name[REWRITE_NAME_BYTES];
        rewrite_name(name, rw->id);
        sio_close(rw->fd);
        sio_unlink(rw->l->dirfd, name);
    }
    free(rw->buf);
    free(rw);
}

void log_rewrite_abort(log_rewrite *rw) {
    if (rw) rewrite_free(rw, true);
}

/* ---------- switching it in ---------- */

int log_rewrite_prepare(log_rewrite *rw, uint32_t last) {
    assert(!rw->prepared || rw->prepared_last == last);
    if (rw->prepared) return rw->fd;
    rewrite_flush(rw);
    if (rw->err) return rw->err;
    if (last != rw->id) {
        uint8_t covers[4], rec[COVERS_RECORD_BYTES];
        le_put(covers, last, 4);
        log_encode_record(rec, LOG_COVERS, 0, covers, sizeof covers);
        int rc = sio_write_all(rw->fd, rec, sizeof rec, SEG_HDR_BYTES);
        if (rc < 0) return rc;
    }
    rw->prepared = true;
    rw->prepared_last = last;
    return rw->fd;
}

void log_rewrite_synced(log_rewrite *rw) {
    assert(rw->prepared);
    rw->synced = true;
}

/* Makes the new file durable, its first record naming the last id it stands for. */
static int make_durable(log_rewrite *rw, uint32_t last) {
    int rc = log_rewrite_prepare(rw, last);
    if (rc < 0) return rc;
    return rw->l->opt.fsync && !rw->synced ? sio_sync_data_err(rw->fd) : 0;
}

/* Unlinks the segments after first up to last (now inside the new file), then the new file itself
 * if it holds no record; each step durable before the next, so a leftover is always covered. */
static int drop_merged(wal *l, uint32_t first, uint32_t last) {
    bool any = false;
    while (l->nsegs > 1) {
        segment *next = log_find_segment(l, first) + 1;
        if (next >= &l->segs[l->nsegs - 1] || next->id > last) break;
        char name[SEG_NAME_BYTES];
        log_segment_name(name, next->id);
        sio_unlink(l->dirfd, name); /* a failure leaves a covered leftover: removed at the next open */
        log_drop_segment(l, next->id);
        any = true;
    }
    if (any && sio_sync_dir(l->dirfd) < 0) return -errno;
    segment *s = log_find_segment(l, first);
    bool empty = s->size <= SEG_HDR_BYTES + COVERS_RECORD_BYTES;
    if (empty) log_drop_segment(l, first); /* out of MANIFEST first: a header-only file left is harmless */
    int rc = manifest_save(l, 0, 0);
    if (rc < 0 || !empty) return rc;
    char name[SEG_NAME_BYTES];
    log_segment_name(name, first);
    if (sio_unlink(l->dirfd, name) < 0) return -errno;
    return sio_sync_dir(l->dirfd) < 0 ? -errno : 0;
}

int log_rewrite_finish(log_rewrite *rw, uint32_t last, bool *switched_in) {
    wal *l = rw->l;
    *switched_in = false;
    segment *s = log_find_segment(l, rw->id);
    int rc = s && log_segment_settled(l, rw->id) ? make_durable(rw, last) : -ENOENT;
    /* MANIFEST first allows either version of the segment: the old one, or the smaller new one */
    if (rc == 0) rc = manifest_save(l, rw->id, log_rewrite_bytes(rw));
    char tmp[REWRITE_NAME_BYTES], name[SEG_NAME_BYTES];
    rewrite_name(tmp, rw->id);
    log_segment_name(name, rw->id);
    if (rc == 0 && sio_rename(l->dirfd, tmp, name) < 0) rc = -errno;
    if (rc < 0) {
        rewrite_free(rw, true);
        return rc;
    }
    /* the new file is the segment's now, whatever happens next */
    *switched_in = true;
    log_close_later(l, s->fd); /* the old file, renamed over: its last close frees it */
    s->fd = rw->fd;
    l->total_bytes = l->total_bytes - s->size + log_rewrite_bytes(rw);
    s->size = s->synced = log_rewrite_bytes(rw);
    s->covers = last > s->id ? last : s->id;
    rewrite_free(rw, false);
    if (sio_sync_dir(l->dirfd) < 0) return -errno;
    return drop_merged(l, s->id, last);
}

/* ---------- snapshots and restores ---------- */

long log_copy_segments(wal *l, log_file_copy **out) {
    *out = xcalloc(l->nsegs ? l->nsegs : 1, sizeof **out);
    long n = 0;
    for (size_t i = 0; i < l->nsegs; i++) {
        segment *s = &l->segs[i];
        if (s->fd < 0 || s->synced == 0) continue;
        char name[SEG_NAME_BYTES];
        log_segment_name(name, s->id);
        int fd = sio_open(l->dirfd, name, O_RDONLY, 0);
        if (fd < 0) {
            int rc = -errno;
            while (n > 0)
                sio_close((*out)[--n].fd);
            free(*out);
            *out = NULL;
            return rc;
        }
        (*out)[n++] = (log_file_copy){.id = s->id, .fd = fd, .size = s->synced};
    }
    return n;
}

static void copy_buf_reserve(uint8_t **buf, size_t *cap, size_t n) {
    if (n <= *cap) return;
    *buf = xrealloc(*buf, n);
    *cap = n;
}

#define READ_AHEAD_BYTES (256u << 10)

void log_copy_cursor_free(log_copy_cursor *cur) {
    free(cur->ahead);
    cur->ahead = NULL;
    cur->ahead_len = 0;
}

/* Copies n bytes at offset of file index fi into dst, from the read-ahead window, refilled with one
 * large read when the bytes are not in it; a piece larger than half the window is read directly. */
static int read_ahead(const log_file_copy *files, long fi, log_copy_cursor *cur, uint8_t *dst, size_t n,
                      uint64_t offset) {
    bool inside = cur->ahead_len && cur->ahead_file == fi && offset >= cur->ahead_start &&
                  offset + n <= cur->ahead_start + cur->ahead_len;
    if (!inside) {
        if (n > READ_AHEAD_BYTES / 2) return sio_read_all(files[fi].fd, dst, n, offset);
        uint64_t left = files[fi].size > offset ? files[fi].size - offset : 0;
        size_t want = left < READ_AHEAD_BYTES ? (size_t)left : READ_AHEAD_BYTES;
        if (want < n) return -EIO; /* the caller checked the record fits the file */
        if (!cur->ahead) cur->ahead = xmalloc(READ_AHEAD_BYTES);
        cur->ahead_len = 0;
        int rc = sio_read_all(files[fi].fd, cur->ahead, want, offset);
        if (rc < 0) return rc;
        cur->ahead_file = fi;
        cur->ahead_start = offset;
        cur->ahead_len = want;
    }
    memcpy(dst, cur->ahead + (offset - cur->ahead_start), n);
    return 0;
}

int log_copy_next(const log_file_copy *files, long n, log_copy_cursor *cur, uint8_t **buf, size_t *cap,
                  int *type, int64_t *revision, size_t *len) {
    while (cur->file < n && cur->offset + REC_HDR_BYTES > files[cur->file].size) {
        cur->file++;
        cur->offset = SEG_HDR_BYTES;
    }
    if (cur->file >= n) return 0;
    if (cur->offset < SEG_HDR_BYTES) cur->offset = SEG_HDR_BYTES;
    const log_file_copy *f = &files[cur->file];
    copy_buf_reserve(buf, cap, REC_HDR_BYTES);
    int rc = read_ahead(files, cur->file, cur, *buf, REC_HDR_BYTES, cur->offset);
    uint64_t rec_bytes = REC_HDR_BYTES + (uint64_t)le_u32(*buf);
    if (rc == 0 && cur->offset + rec_bytes > f->size) rc = -EIO;
    if (rc < 0) return rc;
    copy_buf_reserve(buf, cap, rec_bytes);
    rc = read_ahead(files, cur->file, cur, *buf + REC_HDR_BYTES, rec_bytes - REC_HDR_BYTES,
                    cur->offset + REC_HDR_BYTES);
    if (rc == 0 && log_check_record(*buf, rec_bytes, &rec_bytes)) rc = -EIO;
    if (rc < 0) return rc;
    *type = (*buf)[4];
    *revision = (int64_t)le_get(*buf + 8, 8);
    *len = rec_bytes - REC_HDR_BYTES;
    memmove(*buf, *buf + REC_HDR_BYTES, *len);
    cur->offset += rec_bytes;
    return 1;
}

bool log_place_durable(const wal *l, log_place where) {
    const segment *s = log_find_segment(l, where.segment);
    return s && where.offset + where.length <= s->synced;
}

int log_install_segment(const char *dir, uint32_t id, const uint8_t *data, uint64_t size) {
    char path[4096], name[SEG_NAME_BYTES];
    log_segment_name(name, id);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = sio_open(AT_FDCWD, path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) return -errno;
    int rc = sio_write_all(fd, data, size, 0);
    if (rc == 0 && sio_sync_data(fd) < 0) rc = -errno;
    sio_close(fd);
    return rc;
}
