/* log_rewrite.c: whole-segment work: log compaction scans a sealed segment and replaces it with a
 * rewritten copy (written beside it, synced, renamed over it, directory synced, so a crash leaves
 * either complete version); snapshots copy segments out and restores install them. */
#include "log_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define REWRITE_SUFFIX ".rewrite"
#define REWRITE_FLUSH_BYTES (1u << 20)

struct log_rewrite {
    wal *l;
    uint32_t id;
    int fd;
    uint8_t *buf;
    size_t len, cap;
    uint64_t flushed; /* file offset where buf starts */
    int err;
};

static void rewrite_name(char *out, size_t n, uint32_t id) {
    char seg[SEG_NAME_DIGITS + 5];
    log_segment_name(seg, id);
    snprintf(out, n, "%s%s", seg, REWRITE_SUFFIX);
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
            unlinkat(l->dirfd, e->d_name, 0);
    }
    rewinddir(d); /* the stream's position is shared with the log's directory fd */
    closedir(d);
}

static bool is_sealed(const wal *l, size_t i) {
    const segment *s = &l->segs[i];
    return i + 1 < l->nsegs && s->pending_len == 0 && s->fd >= 0;
}

size_t log_sealed_segments(const wal *l, uint32_t **ids) {
    size_t n = 0;
    *ids = malloc((l->nsegs ? l->nsegs : 1) * sizeof **ids);
    if (!*ids) abort();
    for (size_t i = 0; i < l->nsegs; i++)
        if (is_sealed(l, i)) (*ids)[n++] = l->segs[i].id;
    return n;
}

int log_segment_scan(wal *l, uint32_t id, uint64_t *cursor, size_t max_records, log_replay_fn fn, void *ctx) {
    segment *s = log_find_segment(l, id);
    if (!s || s->fd < 0 || s->pending_len) return -ENOENT;
    if (*cursor < SEG_HDR_BYTES) *cursor = SEG_HDR_BYTES;
    if (*cursor >= s->size) return 0;
    uint8_t *data = mmap(NULL, s->size, PROT_READ, MAP_SHARED, s->fd, 0);
    if (data == MAP_FAILED) return -errno;
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
    munmap(data, s->size);
    if (rc == 1 && *cursor >= s->size) rc = 0;
    return rc;
}

static void rewrite_reserve(log_rewrite *rw, size_t more) {
    if (rw->len + more <= rw->cap) return;
    size_t cap = rw->cap ? rw->cap : 64 * 1024;
    while (cap < rw->len + more)
        cap *= 2;
    rw->buf = realloc(rw->buf, cap);
    if (!rw->buf) abort();
    rw->cap = cap;
}

static void rewrite_flush(log_rewrite *rw) {
    if (rw->err || rw->len == 0) return;
    rw->err = log_write_all(rw->l, rw->fd, rw->buf, rw->len, rw->flushed);
    rw->flushed += rw->len;
    rw->len = 0;
}

log_rewrite *log_rewrite_begin(wal *l, uint32_t id) {
    char name[SEG_NAME_DIGITS + 16];
    rewrite_name(name, sizeof name, id);
    int fd = openat(l->dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return NULL;
    log_rewrite *rw = calloc(1, sizeof *rw);
    if (!rw) abort();
    *rw = (log_rewrite){.l = l, .id = id, .fd = fd};
    rewrite_reserve(rw, SEG_HDR_BYTES);
    memcpy(rw->buf, SEG_MAGIC, SEG_MAGIC_LEN);
    le_put(rw->buf + SEG_MAGIC_LEN, SEG_VERSION, 4);
    le_put(rw->buf + SEG_MAGIC_LEN + 4, 0, 4);
    rw->len = SEG_HDR_BYTES;
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

static void rewrite_free(log_rewrite *rw, bool remove_file) {
    if (remove_file) {
        char name[SEG_NAME_DIGITS + 16];
        rewrite_name(name, sizeof name, rw->id);
        close(rw->fd);
        unlinkat(rw->l->dirfd, name, 0);
    }
    free(rw->buf);
    free(rw);
}

void log_rewrite_abort(log_rewrite *rw) {
    if (rw) rewrite_free(rw, true);
}

/* Makes the new file durable and puts it in the segment's place. */
static int switch_in(log_rewrite *rw, segment *s) {
    char tmp[SEG_NAME_DIGITS + 16], name[SEG_NAME_DIGITS + 5];
    rewrite_name(tmp, sizeof tmp, rw->id);
    log_segment_name(name, rw->id);
    if (rw->l->opt.fsync && rw->l->io.sync_data(rw->fd) < 0) return errno ? -errno : -EIO;
    if (renameat(rw->l->dirfd, tmp, rw->l->dirfd, name) < 0) return -errno;
    int rc = log_fsync_fd(rw->l->dirfd);
    close(s->fd);
    s->fd = rw->fd;
    rw->l->total_bytes = rw->l->total_bytes - s->size + rw->flushed;
    s->size = rw->flushed;
    return rc;
}

int log_rewrite_finish(log_rewrite *rw) {
    segment *s = log_find_segment(rw->l, rw->id);
    rewrite_flush(rw);
    int rc = rw->err ? rw->err : (!s || s->pending_len ? -ENOENT : 0);
    if (rc == 0) rc = switch_in(rw, s);
    /* after a successful rename the file is the segment's: only a failure before it removes it */
    bool renamed = rc == 0 || (s && s->fd == rw->fd);
    rewrite_free(rw, !renamed);
    return rc;
}

long log_copy_segments(wal *l, log_file_copy **out) {
    int rc = log_commit(l);
    if (rc < 0) return rc;
    *out = calloc(l->nsegs ? l->nsegs : 1, sizeof **out);
    if (!*out) abort();
    long n = 0;
    for (size_t i = 0; i < l->nsegs; i++) {
        segment *s = &l->segs[i];
        if (s->fd < 0 || s->size == 0) continue;
        char name[SEG_NAME_DIGITS + 5];
        log_segment_name(name, s->id);
        int fd = openat(l->dirfd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = -errno;
            while (n > 0)
                close((*out)[--n].fd);
            free(*out);
            *out = NULL;
            return rc;
        }
        (*out)[n++] = (log_file_copy){.id = s->id, .fd = fd, .size = s->size};
    }
    return n;
}

int log_install_segment(const char *dir, uint32_t id, const uint8_t *data, uint64_t size) {
    char path[4096], name[SEG_NAME_DIGITS + 5];
    log_segment_name(name, id);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    uint64_t done = 0;
    int rc = 0;
    while (done < size && rc == 0) {
        ssize_t put = write(fd, data + done, size - done);
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0)
            rc = put < 0 ? -errno : -EIO;
        else
            done += (uint64_t)put;
    }
    if (rc == 0 && fsync(fd) < 0) rc = -errno;
    close(fd);
    return rc;
}
