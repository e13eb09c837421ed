/* log.c: the append-only log of checksummed records in numbered segment files (DESIGN.md "Storage").
 * Appends collect in an in-memory batch per segment; log_commit writes and fdatasyncs it (group commit).
 * log_open verifies every record, cuts a torn tail of the last segment and refuses any other damage. */
#include "log_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* ---------- little-endian encoding ---------- */

static void die(const char *why) {
    fprintf(stderr, "cetcd: log: %s\n", why);
    abort();
}

void log_segment_name(char out[SEG_NAME_DIGITS + 5], uint32_t id) {
    snprintf(out, SEG_NAME_DIGITS + 5, "%016" PRIu32 ".log", id);
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---------- checksums ---------- */

/* XXH3-64 of hdr[0..16) + 8 zero bytes + payload, without needing them contiguous. */
static uint64_t record_checksum(const uint8_t *hdr, const uint8_t *payload, size_t len) {
    if (len <= SMALL_RECORD_BYTES - REC_HDR_BYTES) {
        uint8_t buf[SMALL_RECORD_BYTES];
        memcpy(buf, hdr, REC_CHECKSUM_AT);
        memset(buf + REC_CHECKSUM_AT, 0, REC_HDR_BYTES - REC_CHECKSUM_AT);
        if (len) memcpy(buf + REC_HDR_BYTES, payload, len);
        return XXH3_64bits(buf, REC_HDR_BYTES + len);
    }
    static const uint8_t zeros[REC_HDR_BYTES - REC_CHECKSUM_AT];
    XXH3_state_t *st = XXH3_createState();
    if (!st) die("out of memory");
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, hdr, REC_CHECKSUM_AT);
    XXH3_64bits_update(st, zeros, sizeof zeros);
    XXH3_64bits_update(st, payload, len);
    uint64_t sum = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return sum;
}

/* Returns NULL if a whole valid record starts at p (setting *rec_bytes), else why not. */
const char *log_check_record(const uint8_t *p, uint64_t avail, uint64_t *rec_bytes) {
    if (avail < REC_HDR_BYTES) return "incomplete record header";
    uint32_t len = le_u32(p);
    if (p[4] == 0 || p[5] || p[6] || p[7]) return "bad record type or reserved bytes";
    if ((uint64_t)len > avail - REC_HDR_BYTES) return "record runs past the end of the file";
    if (record_checksum(p, p + REC_HDR_BYTES, len) != le_get(p + REC_CHECKSUM_AT, 8))
        return "record checksum mismatch";
    *rec_bytes = REC_HDR_BYTES + (uint64_t)len;
    return NULL;
}

/* ---------- segment table and batch ---------- */

static segment *add_segment(wal *l, uint32_t id, int fd, uint64_t size) {
    if (l->nsegs == l->segs_cap) {
        size_t cap = l->segs_cap ? 2 * l->segs_cap : 8;
        segment *segs = realloc(l->segs, cap * sizeof *segs);
        if (!segs) die("out of memory");
        l->segs = segs;
        l->segs_cap = cap;
    }
    segment *s = &l->segs[l->nsegs++];
    *s = (segment){.id = id, .fd = fd, .size = size};
    l->total_bytes += size;
    return s;
}

segment *log_find_segment(const wal *l, uint32_t id) {
    size_t lo = 0, hi = l->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->segs[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < l->nsegs && l->segs[lo].id == id ? &l->segs[lo] : NULL;
}

static uint8_t *reserve_pending(wal *l, segment *s, size_t n) {
    if (n > SIZE_MAX - s->pending_len) die("out of memory");
    size_t need = s->pending_len + n;
    if (need > s->pending_cap) {
        size_t cap = s->pending_cap ? s->pending_cap : 4096;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : 2 * cap;
        uint8_t *buf = realloc(s->pending, cap);
        if (!buf) die("out of memory");
        s->pending = buf;
        s->pending_cap = cap;
    }
    uint8_t *at = s->pending + s->pending_len;
    s->pending_len = need;
    l->total_bytes += n;
    l->batch_bytes += n;
    return at;
}

static uint64_t segment_end(const segment *s) {
    return s->size + s->pending_len;
}

/* The segment the next record of rec_bytes goes to, rolling to a new one past segment_bytes. */
static segment *segment_for_record(wal *l, uint64_t rec_bytes) {
    segment *cur = &l->segs[l->nsegs - 1];
    uint64_t end = segment_end(cur);
    if (end > SEG_HDR_BYTES && end + rec_bytes > l->opt.segment_bytes)
        cur = add_segment(l, cur->id + 1, -1, 0);
    if (segment_end(cur) == 0) {
        uint8_t *hdr = reserve_pending(l, cur, SEG_HDR_BYTES);
        memcpy(hdr, SEG_MAGIC, SEG_MAGIC_LEN);
        le_put(hdr + SEG_MAGIC_LEN, SEG_VERSION, 4);
        le_put(hdr + SEG_MAGIC_LEN + 4, 0, 4);
    }
    return cur;
}

void log_encode_record(uint8_t *rec, int type, int64_t revision, const uint8_t *payload, size_t len) {
    le_put(rec, (uint32_t)len, 4);
    rec[4] = (uint8_t)type;
    rec[5] = rec[6] = rec[7] = 0;
    le_put(rec + 8, (uint64_t)revision, 8);
    le_put(rec + REC_CHECKSUM_AT, 0, 8);
    if (len) memcpy(rec + REC_HDR_BYTES, payload, len);
    le_put(rec + REC_CHECKSUM_AT, XXH3_64bits(rec, REC_HDR_BYTES + len), 8);
}

log_place log_append(wal *l, int type, int64_t revision, const uint8_t *payload, size_t len) {
    if (len > UINT32_MAX - REC_HDR_BYTES) die("record payload over 4 GiB");
    segment *s = segment_for_record(l, REC_HDR_BYTES + len);
    uint64_t at = segment_end(s);
    uint8_t *rec = reserve_pending(l, s, REC_HDR_BYTES + len);
    log_encode_record(rec, type, revision, payload, len);
    return (log_place){.segment = s->id, .length = (uint32_t)len, .offset = at + REC_HDR_BYTES};
}

void log_seal(wal *l) {
    segment *cur = &l->segs[l->nsegs - 1];
    if (segment_end(cur) > SEG_HDR_BYTES) add_segment(l, cur->id + 1, -1, 0);
}

bool log_has_batch(const wal *l) {
    return l->batch_bytes > 0;
}

/* ---------- reading ---------- */

static int pread_all(int fd, uint8_t *dst, size_t n, uint64_t off) {
    while (n > 0) {
        ssize_t got = pread(fd, dst, n, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return -errno;
        if (got == 0) return -EIO;
        dst += got;
        off += (uint64_t)got;
        n -= (size_t)got;
    }
    return 0;
}

int log_read(wal *l, log_place where, uint8_t *dst) {
    segment *s = log_find_segment(l, where.segment);
    if (!s) return -ENOENT;
    uint64_t end = where.offset + where.length;
    if (end < where.offset || end > segment_end(s)) return -EINVAL;
    if (where.length == 0) return 0;
    if (end <= s->size) return pread_all(s->fd, dst, where.length, where.offset);
    if (where.offset < s->size) return -EINVAL; /* records never straddle the written boundary */
    memcpy(dst, s->pending + (where.offset - s->size), where.length);
    return 0;
}

/* ---------- committing ---------- */

static ssize_t real_write_at(int fd, const void *buf, size_t n, off_t off) {
    return pwrite(fd, buf, n, off);
}

static int real_sync_data(int fd) {
    return fdatasync(fd);
}

void log_set_io(wal *l, const log_io *io) {
    l->io.write_at = io && io->write_at ? io->write_at : real_write_at;
    l->io.sync_data = io && io->sync_data ? io->sync_data : real_sync_data;
}

int log_fsync_fd(int fd) {
    int rc;
    do
        rc = fsync(fd);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

static int create_segment_file(wal *l, segment *s) {
    char name[SEG_NAME_DIGITS + 5];
    log_segment_name(name, s->id);
    int fd = openat(l->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    s->fd = fd;
    return log_fsync_fd(l->dirfd);
}

int log_write_all(wal *l, int fd, const uint8_t *buf, size_t n, uint64_t off) {
    while (n > 0) {
        ssize_t put = l->io.write_at(fd, buf, n, (off_t)off);
        if (put < 0 && errno == EINTR) continue;
        if (put < 0) return errno ? -errno : -EIO;
        if (put == 0) return -EIO;
        buf += put;
        off += (uint64_t)put;
        n -= (size_t)put;
    }
    return 0;
}

static void cut_failed_write(segment *s) {
    if (s->fd >= 0 && ftruncate(s->fd, (off_t)s->size) < 0)
        return; /* best effort: the next start cuts what it can as a torn tail */
}

/* Writes and syncs one segment's pending bytes. Each segment is durable before the next is created,
 * so after a crash only the last segment can have a torn tail. A failed write's bytes are cut off
 * again (best effort) so that whole records of the failed batch do not reappear at the next start. */
static int commit_segment(wal *l, segment *s) {
    int rc = s->fd < 0 ? create_segment_file(l, s) : 0;
    if (rc == 0) rc = log_write_all(l, s->fd, s->pending, s->pending_len, s->size);
    if (rc < 0) cut_failed_write(s);
    if (rc == 0 && l->opt.fsync) {
        l->fsyncs++;
        if (l->io.sync_data(s->fd) < 0) rc = errno ? -errno : -EIO;
    }
    if (rc < 0) return rc;
    s->size += s->pending_len;
    l->batch_bytes -= s->pending_len;
    s->pending_len = 0;
    return 0;
}

static void release_pending(segment *s, bool keep) {
    if (keep && s->pending_cap <= (1u << 20)) return;
    free(s->pending);
    s->pending = NULL;
    s->pending_cap = 0;
}

/* The batch only ever touches the last segments: find the first of them. */
static size_t first_pending_segment(const wal *l) {
    size_t i = l->nsegs - 1;
    while (i > 0 && (l->segs[i - 1].pending_len > 0 || l->segs[i].pending_len == 0))
        i--;
    return i;
}

int log_commit(wal *l) {
    if (l->failed_errno) return -l->failed_errno;
    if (l->batch_bytes == 0) return 0;
    for (size_t i = first_pending_segment(l); i < l->nsegs; i++) {
        segment *s = &l->segs[i];
        if (s->pending_len == 0) continue;
        int rc = commit_segment(l, s);
        if (rc < 0) {
            l->failed_errno = -rc;
            return rc;
        }
        release_pending(s, i == l->nsegs - 1);
    }
    return 0;
}

/* Writes one segment's pending bytes without syncing them. */
static int write_segment(wal *l, segment *s) {
    int rc = s->fd < 0 ? create_segment_file(l, s) : 0;
    if (rc == 0) rc = log_write_all(l, s->fd, s->pending, s->pending_len, s->size);
    if (rc < 0) {
        cut_failed_write(s);
        return rc;
    }
    s->size += s->pending_len;
    l->batch_bytes -= s->pending_len;
    s->pending_len = 0;
    release_pending(s, true);
    return 0;
}

int log_write_batch(wal *l, int *sync_fd) {
    *sync_fd = -1;
    if (l->failed_errno) return -l->failed_errno;
    if (l->batch_bytes == 0) return 0;
    size_t first = first_pending_segment(l);
    if (first != l->nsegs - 1 || !l->opt.fsync) return log_commit(l); /* rare: a segment roll */
    segment *s = &l->segs[first];
    int rc = write_segment(l, s);
    if (rc == 0 && (*sync_fd = dup(s->fd)) < 0) rc = -errno;
    if (rc < 0) l->failed_errno = -rc;
    return rc;
}

int log_sync_fd(const wal *l, int fd) {
    int rc = l->io.sync_data(fd) < 0 ? (errno ? -errno : -EIO) : 0;
    close(fd);
    return rc;
}

void log_sync_finished(wal *l, int rc) {
    l->fsyncs++;
    if (rc < 0 && !l->failed_errno) l->failed_errno = -rc;
}

uint64_t log_total_bytes(const wal *l) {
    return l->total_bytes;
}

uint64_t log_fsync_count(const wal *l) {
    return l->fsyncs;
}

void log_close(wal *l) {
    if (!l) return;
    for (size_t i = 0; i < l->nsegs; i++) {
        if (l->segs[i].fd >= 0) close(l->segs[i].fd);
        free(l->segs[i].pending);
    }
    if (l->dirfd >= 0) close(l->dirfd);
    if (l->lockfd >= 0) close(l->lockfd);
    free(l->segs);
    free(l->dir);
    free(l);
}

/* ---------- opening: directory and segment list ---------- */

/* mkdir of the last path component; a new directory's entry is made durable in its parent. */
static int ensure_dir(const char *dir, char *err, size_t errlen) {
    if (mkdir(dir, 0755) < 0) {
        if (errno == EEXIST) return 0;
        set_err(err, errlen, "%s: mkdir: %s", dir, strerror(errno));
        return -1;
    }
    char *copy = strdup(dir);
    if (!copy) die("out of memory");
    int pfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (pfd >= 0) {
        log_fsync_fd(pfd);
        close(pfd);
    }
    return 0;
}

static bool parse_seg_name(const char *name, uint32_t *id) {
    uint64_t v = 0;
    for (int i = 0; i < SEG_NAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9') return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    if (strcmp(name + SEG_NAME_DIGITS, ".log") != 0 || v == 0 || v > UINT32_MAX) return false;
    *id = (uint32_t)v;
    return true;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The ids of the segment files in dir, ascending. Returns the count, or -1 with err set. */
static long list_segment_ids(wal *l, uint32_t **ids_out, char *err, size_t errlen) {
    int fd = dup(l->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        set_err(err, errlen, "%s: opendir: %s", l->dir, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    rewinddir(d); /* dup'd descriptors share their position */
    uint32_t *ids = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint32_t id;
        if (!parse_seg_name(e->d_name, &id)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            ids = realloc(ids, cap * sizeof *ids);
            if (!ids) die("out of memory");
        }
        ids[n++] = id;
    }
    closedir(d);
    if (n) qsort(ids, n, sizeof *ids, cmp_u32);
    *ids_out = ids;
    return (long)n;
}

static int open_segments(wal *l, char *err, size_t errlen) {
    uint32_t *ids = NULL;
    long n = list_segment_ids(l, &ids, err, errlen);
    for (long i = 0; i < n; i++) {
        char name[SEG_NAME_DIGITS + 5];
        log_segment_name(name, ids[i]);
        int fd = openat(l->dirfd, name, O_RDWR | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            set_err(err, errlen, "%s/%s: open: %s", l->dir, name, strerror(errno));
            if (fd >= 0) close(fd);
            n = -1;
            break;
        }
        add_segment(l, ids[i], fd, (uint64_t)st.st_size);
    }
    free(ids);
    return n < 0 ? -1 : 0;
}

/* ---------- opening: verifying and replaying segments ---------- */

typedef struct scan_ctx {
    wal *l;
    const segment *seg;
    bool is_last;
    log_replay_fn fn;
    void *fn_ctx;
    char *err;
    size_t errlen;
    uint64_t keep_bytes; /* out: the valid prefix of the file */
} scan_ctx;

static void scan_err(scan_ctx *c, uint64_t offset, const char *why) {
    char name[SEG_NAME_DIGITS + 5];
    log_segment_name(name, c->seg->id);
    set_err(c->err, c->errlen, "%s/%s: offset %" PRIu64 ": %s", c->l->dir, name, offset, why);
}

/* True if any valid record starts in data[from..size): then damage before it is not a torn tail. */
static bool valid_record_after(const uint8_t *data, uint64_t size, uint64_t from, uint64_t *found) {
    for (uint64_t p = from; p + REC_HDR_BYTES <= size; p++) {
        uint64_t rec_bytes;
        if (!log_check_record(data + p, size - p, &rec_bytes)) {
            *found = p;
            return true;
        }
    }
    return false;
}

/* Bad bytes at `at`: a torn tail if in the last segment with nothing valid after; else fatal. */
static int damage_at(scan_ctx *c, const uint8_t *data, uint64_t at, const char *why) {
    uint64_t valid_at;
    char msg[160];
    if (!c->is_last) {
        scan_err(c, at, why);
        return -1;
    }
    if (valid_record_after(data, c->seg->size, at + 1, &valid_at)) {
        snprintf(msg, sizeof msg, "%s, followed by a valid record at offset %" PRIu64, why, valid_at);
        scan_err(c, at, msg);
        return -1;
    }
    c->keep_bytes = at < SEG_HDR_BYTES ? 0 : at;
    return 0;
}

static bool all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

/* 0 if the segment header is good, 1 if it is torn (last segment only), -1 if fatal. */
static int check_segment_header(scan_ctx *c, const uint8_t *data) {
    uint64_t size = c->seg->size;
    if (size < SEG_HDR_BYTES || all_zero(data, SEG_HDR_BYTES)) {
        if (damage_at(c, data, 0, "incomplete segment header") < 0) return -1;
        return 1;
    }
    if (memcmp(data, SEG_MAGIC, SEG_MAGIC_LEN) != 0) {
        scan_err(c, 0, "not a cetcd log segment (bad magic)");
        return -1;
    }
    if (le_u32(data + SEG_MAGIC_LEN) != SEG_VERSION) {
        scan_err(c, SEG_MAGIC_LEN, "unsupported segment version");
        return -1;
    }
    return 0;
}

static int scan_records(scan_ctx *c, const uint8_t *data) {
    uint64_t size = c->seg->size, off = SEG_HDR_BYTES;
    while (off < size) {
        uint64_t rec_bytes;
        const char *why = log_check_record(data + off, size - off, &rec_bytes);
        if (why) return damage_at(c, data, off, why);
        const uint8_t *p = data + off;
        log_place place = {.segment = c->seg->id, .length = le_u32(p), .offset = off + REC_HDR_BYTES};
        if (c->fn &&
            c->fn(c->fn_ctx, p[4], (int64_t)le_get(p + 8, 8), p + REC_HDR_BYTES, place.length, place) != 0) {
            scan_err(c, off, "replay of record refused");
            return -1;
        }
        off += rec_bytes;
    }
    c->keep_bytes = size;
    return 0;
}

static int scan_segment(scan_ctx *c) {
    uint64_t size = c->seg->size;
    if (size == 0) {
        if (c->is_last) return 0; /* created, then crashed before its first write */
        scan_err(c, 0, "empty segment before the last one");
        return -1;
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, c->seg->fd, 0);
    if (map == MAP_FAILED) {
        scan_err(c, 0, strerror(errno));
        return -1;
    }
    madvise(map, size, MADV_SEQUENTIAL);
    int rc = check_segment_header(c, map);
    if (rc == 0) rc = scan_records(c, map);
    munmap(map, size);
    return rc < 0 ? -1 : 0;
}

static int cut_torn_tail(wal *l, segment *s, uint64_t keep, char *err, size_t errlen) {
    char name[SEG_NAME_DIGITS + 5];
    log_segment_name(name, s->id);
    if (ftruncate(s->fd, (off_t)keep) < 0 || log_fsync_fd(s->fd) < 0) {
        set_err(err, errlen, "%s/%s: truncating torn tail: %s", l->dir, name, strerror(errno));
        return -1;
    }
    fprintf(stderr, "cetcd: log: truncated torn tail of %s at offset %" PRIu64 " (%" PRIu64 " bytes cut)\n",
            name, keep, s->size - keep);
    l->total_bytes -= s->size - keep;
    s->size = keep;
    return 0;
}

static int replay_segments(wal *l, log_replay_fn fn, void *ctx, char *err, size_t errlen) {
    for (size_t i = 0; i < l->nsegs; i++) {
        scan_ctx c = {.l = l,
                      .seg = &l->segs[i],
                      .is_last = i + 1 == l->nsegs,
                      .fn = fn,
                      .fn_ctx = ctx,
                      .err = err,
                      .errlen = errlen};
        if (scan_segment(&c) < 0) return -1;
        if (c.is_last && c.keep_bytes < l->segs[i].size)
            return cut_torn_tail(l, &l->segs[i], c.keep_bytes, err, errlen);
    }
    return 0;
}

/* One process per data dir: a second one would interleave segments. */
static int lock_dir(wal *l, char *err, size_t errlen) {
    l->lockfd = openat(l->dirfd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (l->lockfd < 0 || flock(l->lockfd, LOCK_EX | LOCK_NB) < 0) {
        set_err(err, errlen, "%s: data dir is in use by another process (%s)", l->dir, strerror(errno));
        return -1;
    }
    return 0;
}

wal *log_open(const char *dir, const log_options *opt, log_replay_fn fn, void *ctx, char *err,
              size_t errlen) {
    if (ensure_dir(dir, err, errlen) < 0) return NULL;
    wal *l = calloc(1, sizeof *l);
    if (!l || !(l->dir = strdup(dir))) die("out of memory");
    l->opt = opt ? *opt : (log_options){.fsync = true};
    if (l->opt.segment_bytes == 0) l->opt.segment_bytes = DEFAULT_SEGMENT_BYTES;
    log_set_io(l, NULL);
    l->lockfd = -1;
    l->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (l->dirfd < 0) {
        set_err(err, errlen, "%s: open: %s", dir, strerror(errno));
        log_close(l);
        return NULL;
    }
    if (lock_dir(l, err, errlen) < 0) {
        log_close(l);
        return NULL;
    }
    log_remove_stale_rewrites(l);
    if (open_segments(l, err, errlen) < 0 || replay_segments(l, fn, ctx, err, errlen) < 0) {
        log_close(l);
        return NULL;
    }
    if (l->nsegs == 0) add_segment(l, 1, -1, 0);
    return l;
}
