/* log_open.c: opening a data dir's log: the lock, the segment list, leftovers of an interrupted merge,
 * and the replay that verifies every record, cuts a torn tail of the last segment and refuses any
 * other damage with a message naming the file and offset. */
#include "alloc.h"
#include "log_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---------- directory and segment list ---------- */

/* mkdir of the last path component; a new directory's entry is made durable in its parent. */
static int ensure_dir(const char *dir, char *err, size_t errlen) {
    if (sio_mkdir(AT_FDCWD, dir, 0755) < 0) {
        if (errno == EEXIST) return 0;
        log_set_err(err, errlen, "%s: mkdir: %s", dir, strerror(errno));
        return -1;
    }
    char *copy = xstrdup(dir);
    int pfd = sio_open(AT_FDCWD, dirname(copy), O_RDONLY | O_DIRECTORY, 0);
    free(copy);
    if (pfd >= 0) {
        sio_sync_dir(pfd);
        sio_close(pfd);
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
        log_set_err(err, errlen, "%s: opendir: %s", l->dir, strerror(errno));
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
            ids = xrealloc(ids, cap * sizeof *ids);
        }
        ids[n++] = id;
    }
    closedir(d);
    if (n) qsort(ids, n, sizeof *ids, cmp_u32);
    *ids_out = ids;
    return (long)n;
}

/* The highest id a segment file stands for, from its first record if that is a valid LOG_COVERS
 * (its own id if it is no merge; a damaged record is reported by the replay, not trusted here). */
static uint32_t read_covers(int fd, uint32_t id, uint64_t size) {
    uint8_t buf[SEG_HDR_BYTES + COVERS_RECORD_BYTES];
    uint64_t rec_bytes;
    if (size < sizeof buf || sio_read_all(fd, buf, sizeof buf, 0) < 0) return id;
    const uint8_t *rec = buf + SEG_HDR_BYTES;
    if (memcmp(buf, SEG_MAGIC, SEG_MAGIC_LEN) != 0 || log_check_record(rec, COVERS_RECORD_BYTES, &rec_bytes))
        return id;
    if (rec[4] != LOG_COVERS || le_u32(rec) != 4) return id;
    uint32_t covers = le_u32(rec + REC_HDR_BYTES);
    return covers > id && covers <= SEG_ID_MAX ? covers : id;
}

/* A merged file stands for the segments up to its covers id: any of them still here is a leftover
 * of a log compaction interrupted after the merge was switched in. Its records are in the merge. */
static void remove_leftover(wal *l, uint32_t id, uint32_t merged_into) {
    char name[SEG_NAME_BYTES];
    log_segment_name(name, id);
    if (sio_unlink(l->dirfd, name) == 0)
        fprintf(stderr, "cetcd: log: removed %s, a leftover of a merge into segment %" PRIu32 "\n", name,
                merged_into);
}

static int open_one(wal *l, uint32_t id, char *err, size_t errlen) {
    char name[SEG_NAME_BYTES];
    log_segment_name(name, id);
    if (id > SEG_ID_MAX) {
        log_set_err(err, errlen, "%s/%s: segment id out of range", l->dir, name);
        return -1;
    }
    uint64_t size = 0;
    int fd = sio_open(l->dirfd, name, O_RDWR, 0);
    if (fd < 0 || sio_file_size(fd, &size) < 0) {
        log_set_err(err, errlen, "%s/%s: open: %s", l->dir, name, strerror(errno));
        if (fd >= 0) sio_close(fd);
        return -1;
    }
    segment *s = log_add_segment(l, id, fd, size);
    s->covers = read_covers(fd, id, size);
    return 0;
}

static int open_segments(wal *l, char *err, size_t errlen) {
    uint32_t *ids = NULL;
    long n = list_segment_ids(l, &ids, err, errlen);
    bool removed = false;
    for (long i = 0; i < n; i++) {
        segment *last = l->nsegs ? &l->segs[l->nsegs - 1] : NULL;
        if (last && ids[i] <= last->covers) {
            remove_leftover(l, ids[i], last->id);
            removed = true;
        } else if (open_one(l, ids[i], err, errlen) < 0) {
            n = -1;
        }
    }
    free(ids);
    if (removed && sio_sync_dir(l->dirfd) < 0) {
        log_set_err(err, errlen, "%s: fsync: %s", l->dir, strerror(errno));
        return -1;
    }
    return n < 0 ? -1 : 0;
}

/* ---------- verifying and replaying segments ---------- */

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
    char name[SEG_NAME_BYTES];
    log_segment_name(name, c->seg->id);
    log_set_err(c->err, c->errlen, "%s/%s: offset %" PRIu64 ": %s", c->l->dir, name, offset, why);
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

enum { PEEK_AHEAD = 8 };

/* Moves *ahead past the next record and shows it to the peek hook, if its length fits the file. */
static void peek_next(scan_ctx *c, const uint8_t *data, uint64_t *ahead) {
    uint64_t size = c->seg->size;
    if (*ahead + REC_HDR_BYTES > size) {
        *ahead = size;
        return;
    }
    uint32_t len = le_u32(data + *ahead);
    if (len > size - *ahead - REC_HDR_BYTES) {
        *ahead = size; /* damage, or a torn tail: the scan itself will say */
        return;
    }
    c->l->opt.peek(c->fn_ctx, data[*ahead + 4], data + *ahead + REC_HDR_BYTES, len);
    *ahead += REC_HDR_BYTES + len;
}

static int scan_records(scan_ctx *c, const uint8_t *data) {
    uint64_t size = c->seg->size, off = SEG_HDR_BYTES, ahead = off;
    int peeked = 0; /* records between off and ahead */
    while (off < size) {
        if (c->fn && c->l->opt.peek)
            for (; peeked < PEEK_AHEAD && ahead < size; peeked++)
                peek_next(c, data, &ahead);
        peeked = peeked > 0 ? peeked - 1 : 0;
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
    uint8_t *map = sio_map(c->seg->fd, size);
    if (!map) {
        scan_err(c, 0, strerror(errno));
        return -1;
    }
    madvise(map, size, MADV_SEQUENTIAL);
    int rc = check_segment_header(c, map);
    if (rc == 0) rc = scan_records(c, map);
    sio_unmap(map, size);
    return rc < 0 ? -1 : 0;
}

static int cut_torn_tail(wal *l, segment *s, uint64_t keep, char *err, size_t errlen) {
    char name[SEG_NAME_BYTES];
    log_segment_name(name, s->id);
    if (keep < s->min_size) {
        log_set_err(err, errlen, "%s/%s: damaged at offset %llu, but %llu bytes were durable", l->dir, name,
                    (unsigned long long)keep, (unsigned long long)s->min_size);
        return -1;
    }
    if (sio_truncate(s->fd, (off_t)keep) < 0 || sio_sync_data(s->fd) < 0) {
        log_set_err(err, errlen, "%s/%s: truncating torn tail: %s", l->dir, name, strerror(errno));
        return -1;
    }
    fprintf(stderr, "cetcd: log: truncated torn tail of %s at offset %" PRIu64 " (%" PRIu64 " bytes cut)\n",
            name, keep, s->size - keep);
    l->total_bytes -= s->size - keep;
    s->size = s->synced = keep;
    return 0;
}

/* While replay works through one segment, a helper thread asks the kernel to read the next few into
 * the page cache (the seam's read_ahead, a hint), so that on a cold start the disk and the replay
 * overlap instead of taking turns. It stays READ_AHEAD_SEGMENTS ahead, so that the cache holds what
 * replay is about to need rather than the whole log. */
enum { READ_AHEAD_SEGMENTS = 4 };

typedef struct read_ahead {
    struct {
        int fd;
        uint64_t size;
    } * segs; /* copied at the start: replay may cut the last one meanwhile */
    size_t n;
    pthread_mutex_t mu;
    pthread_cond_t moved;
    size_t replaying; /* the segment replay is on */
    bool done;        /* replay ended: no more waiting */
    bool running;
    pthread_t thread;
} read_ahead;

static void *read_ahead_main(void *arg) {
    read_ahead *ra = arg;
    for (size_t i = 1; i < ra->n; i++) {
        pthread_mutex_lock(&ra->mu);
        while (!ra->done && i > ra->replaying + READ_AHEAD_SEGMENTS)
            pthread_cond_wait(&ra->moved, &ra->mu);
        pthread_mutex_unlock(&ra->mu);
        if (ra->segs[i].size) /* once replay is done, on cached pages: cheap */
            sio_read_ahead(ra->segs[i].fd, 0, ra->segs[i].size);
    }
    return NULL;
}

static void read_ahead_start(read_ahead *ra, const wal *l) {
    *ra = (read_ahead){.n = l->nsegs};
    ra->segs = xcalloc(l->nsegs ? l->nsegs : 1, sizeof *ra->segs);
    for (size_t i = 0; i < l->nsegs; i++) {
        ra->segs[i].fd = l->segs[i].fd;
        ra->segs[i].size = l->segs[i].size;
    }
    pthread_mutex_init(&ra->mu, NULL);
    pthread_cond_init(&ra->moved, NULL);
    ra->running = l->nsegs > 1 && pthread_create(&ra->thread, NULL, read_ahead_main, ra) == 0;
}

static void read_ahead_at(read_ahead *ra, size_t segment_index) {
    pthread_mutex_lock(&ra->mu);
    ra->replaying = segment_index;
    pthread_cond_signal(&ra->moved);
    pthread_mutex_unlock(&ra->mu);
}

static void read_ahead_stop(read_ahead *ra) {
    pthread_mutex_lock(&ra->mu);
    ra->done = true;
    pthread_cond_signal(&ra->moved);
    pthread_mutex_unlock(&ra->mu);
    if (ra->running) pthread_join(ra->thread, NULL);
    pthread_cond_destroy(&ra->moved);
    pthread_mutex_destroy(&ra->mu);
    free(ra->segs);
}

static int replay_segments(wal *l, log_replay_fn fn, void *ctx, char *err, size_t errlen) {
    read_ahead ra;
    read_ahead_start(&ra, l);
    int rc = 0;
    for (size_t i = 0; i < l->nsegs && rc == 0; i++) {
        read_ahead_at(&ra, i);
        scan_ctx c = {.l = l,
                      .seg = &l->segs[i],
                      .is_last = i + 1 == l->nsegs,
                      .fn = fn,
                      .fn_ctx = ctx,
                      .err = err,
                      .errlen = errlen};
        if (scan_segment(&c) < 0)
            rc = -1;
        else if (c.is_last && c.keep_bytes < l->segs[i].size)
            rc = cut_torn_tail(l, &l->segs[i], c.keep_bytes, err, errlen);
    }
    read_ahead_stop(&ra);
    return rc;
}

/* One process per data dir: a second one would interleave segments. The lock is on the directory
 * itself, so no file removed inside it can free it. */
static int lock_dir(wal *l, char *err, size_t errlen) {
    if (flock(l->dirfd, LOCK_EX | LOCK_NB) == 0) return 0;
    if (errno == EWOULDBLOCK)
        log_set_err(err, errlen, "%s: data dir is in use by another process", l->dir);
    else
        log_set_err(err, errlen, "%s: cannot lock the data dir: %s", l->dir, strerror(errno));
    return -1;
}

/* Segments checked against MANIFEST, then replayed; then MANIFEST written afresh (which also tells a
 * data dir that cannot be written to, before anything is acknowledged). */
static int open_checked(wal *l, log_replay_fn fn, void *ctx, char *err, size_t errlen) {
    manifest m;
    if (manifest_load(l, &m, err, errlen) < 0) return -1;
    int rc = open_segments(l, err, errlen);
    if (rc == 0 && m.exists) rc = manifest_check(l, &m, err, errlen);
    manifest_free(&m);
    if (rc == 0) rc = replay_segments(l, fn, ctx, err, errlen);
    if (rc < 0) return -1;
    if ((rc = manifest_save(l, 0, 0)) < 0) {
        log_set_err(err, errlen, "%s: cannot write MANIFEST: %s", l->dir, strerror(-rc));
        return -1;
    }
    l->opened = true;
    return 0;
}

wal *log_open(const char *dir, const log_options *opt, log_replay_fn fn, void *ctx, char *err,
              size_t errlen) {
    if (ensure_dir(dir, err, errlen) < 0) return NULL;
    wal *l = xcalloc(1, sizeof *l);
    l->dir = xstrdup(dir);
    l->opt = opt ? *opt : (log_options){.fsync = true};
    if (l->opt.segment_bytes == 0) l->opt.segment_bytes = DEFAULT_SEGMENT_BYTES;
    l->dirfd = sio_open(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY, 0);
    if (l->dirfd < 0) {
        log_set_err(err, errlen, "%s: open: %s", dir, strerror(errno));
        log_close(l);
        return NULL;
    }
    if (lock_dir(l, err, errlen) < 0) {
        log_close(l);
        return NULL;
    }
    log_remove_stale_rewrites(l);
    if (open_checked(l, fn, ctx, err, errlen) < 0) {
        log_close(l);
        return NULL;
    }
    if (l->nsegs == 0) log_add_segment(l, 1, -1, 0);
    return l;
}
