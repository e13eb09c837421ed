/* log.c: the append-only log of checksummed records in numbered segment files (docs/architecture.md,
 * "Storage"). Appends collect in an in-memory batch per segment; a job writes and fdatasyncs it
 * (group commit), creating the file of a segment it rolls to, on the sync thread or inline
 * (log_commit). Opening and replay live in log_open.c, log compaction's rewrites in log_rewrite.c. */
#include "log_internal.h"

#include "alloc.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

static void die(const char *why) {
    fprintf(stderr, "cetcd: log: %s\n", why);
    abort();
}

void log_segment_name(char out[SEG_NAME_BYTES], uint32_t id) {
    snprintf(out, SEG_NAME_BYTES, "%016" PRIu32 ".log", id);
}

void log_set_err(char *err, size_t errlen, const char *fmt, ...) {
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
    if (!st) out_of_memory();
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, hdr, REC_CHECKSUM_AT);
    XXH3_64bits_update(st, zeros, sizeof zeros);
    XXH3_64bits_update(st, payload, len);
    uint64_t sum = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return sum;
}

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

segment *log_add_segment(wal *l, uint32_t id, int fd, uint64_t size) {
    assert(l->nsegs == 0 || l->segs[l->nsegs - 1].covers < id);
    if (l->nsegs == l->segs_cap) {
        size_t cap = l->segs_cap ? 2 * l->segs_cap : 8;
        segment *segs = xrealloc(l->segs, cap * sizeof *segs);
        l->segs = segs;
        l->segs_cap = cap;
    }
    segment *s = &l->segs[l->nsegs++];
    *s = (segment){.id = id, .covers = id, .fd = fd, .size = size, .synced = size};
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

void log_drop_segment(wal *l, uint32_t id) {
    segment *s = log_find_segment(l, id);
    assert(s && s != &l->segs[l->nsegs - 1] && s->pending_len == 0 && s->inflight_len == 0);
    if (s->fd >= 0) log_close_later(l, s->fd);
    free(s->pending);
    free(s->inflight);
    l->total_bytes -= s->size;
    size_t i = (size_t)(s - l->segs);
    memmove(s, s + 1, (l->nsegs - i - 1) * sizeof *s);
    l->nsegs--;
}

size_t log_segment_count(const wal *l) {
    size_t n = 0;
    for (size_t i = 0; i < l->nsegs; i++)
        n += l->segs[i].fd >= 0;
    return n;
}

static uint8_t *reserve_pending(wal *l, segment *s, size_t n) {
    if (n > SIZE_MAX - s->pending_len) out_of_memory();
    size_t need = s->pending_len + n;
    if (need > s->pending_cap) {
        size_t cap = s->pending_cap ? s->pending_cap : 4096;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : 2 * cap;
        uint8_t *buf = xrealloc(s->pending, cap);
        s->pending = buf;
        s->pending_cap = cap;
    }
    uint8_t *at = s->pending + s->pending_len;
    s->pending_len = need;
    l->total_bytes += n;
    l->batch_bytes += n;
    l->appended += n;
    return at;
}

static uint64_t segment_end(const segment *s) {
    return s->size + s->inflight_len + s->pending_len;
}

void log_fill_segment_header(uint8_t hdr[SEG_HDR_BYTES]) {
    memcpy(hdr, SEG_MAGIC, SEG_MAGIC_LEN);
    le_put(hdr + SEG_MAGIC_LEN, SEG_VERSION, 4);
    le_put(hdr + SEG_MAGIC_LEN + 4, 0, 4);
}

/* A new segment after the last one; its id is above every id the last one stands for. */
/* A new segment after the last one; its id is above every id the last one stands for. With ids
 * exhausted (only a crafted data dir gets there) the last one goes on taking appends, so every
 * store that opens can be written and opened again. */
static segment *start_segment(wal *l) {
    segment *last = &l->segs[l->nsegs - 1];
    if (last->covers >= SEG_ID_MAX) return last;
    return log_add_segment(l, last->covers + 1, -1, 0);
}

/* The segment the next record of rec_bytes goes to, rolling to a new one past segment_bytes. */
static segment *segment_for_record(wal *l, uint64_t rec_bytes) {
    segment *cur = &l->segs[l->nsegs - 1];
    uint64_t end = segment_end(cur);
    if ((end > SEG_HDR_BYTES && end + rec_bytes > l->opt.segment_bytes) || cur->covers != cur->id)
        cur = start_segment(l);
    if (segment_end(cur) == 0) log_fill_segment_header(reserve_pending(l, cur, SEG_HDR_BYTES));
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
    if (segment_end(cur) > SEG_HDR_BYTES) start_segment(l);
}

bool log_has_batch(const wal *l) {
    return l->batch_bytes > 0;
}

bool log_wants_job(const wal *l) {
    return l->batch_bytes > 0 || l->side.state == SIDE_WANTED || l->n_closing > 0;
}

void log_close_later(wal *l, int fd) {
    if (!l->opened) { /* at open: no loop to spare */
        sio_close(fd);
        return;
    }
    if (l->n_closing == l->cap_closing) {
        l->cap_closing = l->cap_closing ? 2 * l->cap_closing : 8;
        l->closing = xrealloc(l->closing, l->cap_closing * sizeof *l->closing);
    }
    l->closing[l->n_closing++] = fd;
}

bool log_closes_pending(const wal *l) {
    return l->n_closing > 0 || (l->job_busy && l->job.n_close > 0);
}

static void close_all(int *fds, size_t n) {
    for (size_t i = 0; i < n; i++)
        sio_close(fds[i]);
}

/* Hands the descriptors waiting to be closed to the job being built. */
static void attach_closes(wal *l) {
    l->job.close_fds = l->closing;
    l->job.n_close = l->n_closing;
    l->closing = NULL;
    l->n_closing = l->cap_closing = 0;
}

void log_request_side_sync(wal *l, int fd) {
    assert(fd >= 0 && (l->side.state == SIDE_NONE || l->side.state == SIDE_DONE));
    l->side = (side_sync){.state = SIDE_WANTED, .fd = fd, .id = l->side.id + 1};
}

bool log_side_sync_result(const wal *l, int *rc) {
    if (l->side.state != SIDE_DONE || (l->job_busy && l->job.writes_manifest)) return false;
    *rc = l->side.rc;
    return true;
}

void log_cancel_side_sync(wal *l) {
    l->side.state = SIDE_NONE;
    l->side.fd = -1;
}

/* Hands a wanted side sync to the job being built. */
static void attach_side_sync(wal *l) {
    l->job.side_fd = -1;
    if (l->side.state != SIDE_WANTED) return;
    l->job.side_fd = l->side.fd;
    l->job.side_id = l->side.id;
    l->side.state = SIDE_INFLIGHT;
}

/* log_commit's way: the wanted side sync, at once. */
static void run_side_sync_inline(wal *l) {
    if (l->side.state != SIDE_WANTED) return;
    l->side.rc = sio_sync_data_err(l->side.fd);
    l->side.state = SIDE_DONE;
}

uint64_t log_appended_mark(const wal *l) {
    return l->appended;
}

bool log_is_durable(const wal *l, uint64_t mark) {
    return l->durable >= mark;
}

/* ---------- reading ---------- */

int log_read(wal *l, log_place where, uint8_t *dst) {
    segment *s = log_find_segment(l, where.segment);
    if (!s) return -ENOENT;
    uint64_t end = where.offset + where.length;
    if (end < where.offset || end > segment_end(s)) return -EINVAL;
    if (where.length == 0) return 0;
    if (end <= s->size) return sio_read_all(s->fd, dst, where.length, where.offset);
    if (where.offset < s->size) return -EINVAL; /* records never straddle the written boundary */
    uint64_t at = where.offset - s->size;
    if (at + where.length <= s->inflight_len)
        memcpy(dst, s->inflight + at, where.length);
    else if (at >= s->inflight_len)
        memcpy(dst, s->pending + (at - s->inflight_len), where.length);
    else
        return -EINVAL; /* nor the boundary of the batch in flight */
    return 0;
}

bool log_in_file(const wal *l, log_place where) {
    const segment *s = log_find_segment(l, where.segment);
    return s && where.offset + where.length <= s->size;
}

int log_open_segment_file(wal *l, uint32_t id) {
    const segment *s = log_find_segment(l, id);
    if (!s || s->fd < 0) return -ENOENT;
    char name[SEG_NAME_BYTES];
    log_segment_name(name, id);
    int fd = sio_open(l->dirfd, name, O_RDONLY, 0);
    return fd < 0 ? -errno : fd;
}

/* ---------- committing ---------- */

/* A segment file removed or replaced under a running server: acknowledging writes into it would lose
 * them at the next start, so the write fails instead. */
static int check_still_named(wal *l, segment *s) {
    char name[SEG_NAME_BYTES];
    log_segment_name(name, s->id);
    int same = sio_same_file(l->dirfd, name, s->fd);
    if (same == 1) return 0;
    if (same == 0)
        fprintf(stderr, "cetcd: log: %s/%s was removed or replaced while in use; no write goes into it\n",
                l->dir, name);
    return same == 0 ? -ENOENT : (errno ? -errno : -EIO);
}

/* The batch only ever touches the last segments: find the first of them. */
static size_t first_pending_segment(const wal *l) {
    size_t i = l->nsegs - 1;
    while (i > 0 && (l->segs[i - 1].pending_len > 0 || l->segs[i].pending_len == 0))
        i--;
    return i;
}

/* Segment s's pending bytes become the job's next part; appends to it go into a new buffer. */
static void add_part(wal *l, segment *s) {
    if (l->job.n_parts == l->parts_cap) {
        l->parts_cap = l->parts_cap ? 2 * l->parts_cap : 4;
        l->parts = xrealloc(l->parts, l->parts_cap * sizeof *l->parts);
    }
    s->inflight = s->pending;
    s->inflight_len = s->pending_len;
    s->inflight_cap = s->pending_cap;
    s->pending = NULL;
    s->pending_len = s->pending_cap = 0;
    l->batch_bytes -= s->inflight_len;
    l->parts[l->job.n_parts++] = (log_job_part){
        .segment = s->id, .fd = s->fd, .buf = s->inflight, .len = s->inflight_len, .offset = s->size};
}

/* Each new file's MANIFEST, as log_commit wrote it when it created the file on the loop: the files
 * so far with their durable bytes, the job's earlier parts at their final size, the new file empty. */
static void encode_manifests(wal *l) {
    manifest_entry *e = xmalloc((l->nsegs + 1) * sizeof *e);
    size_t n = manifest_entries(l, e);
    for (size_t i = 0; i < l->job.n_parts; i++) {
        log_job_part *p = &l->job.parts[i];
        if (p->fd < 0) {
            const segment *s = log_find_segment(l, p->segment);
            assert(n <= l->nsegs && (n == 0 || e[n - 1].id < s->id));
            e[n++] = (manifest_entry){s->id, s->covers, 0};
            p->manifest_len = manifest_encode(e, n, &p->manifest);
            l->job.writes_manifest = true;
        }
        assert(n > 0 && e[n - 1].id == p->segment); /* only the first part may have a file already */
        e[n - 1].min_size = p->offset + p->len;
    }
    free(e);
}

/* The batch becomes the job, one part per segment it touches; appends go on into a fresh (or
 * recycled) buffer. Nothing here makes a system call but the check that the file is still named. */
static int build_job(wal *l) {
    segment *first = &l->segs[first_pending_segment(l)];
    int rc = first->fd >= 0 ? check_still_named(l, first) : 0;
    if (rc < 0) {
        l->failed_errno = -rc;
        return rc;
    }
    l->job = (log_job){.dirfd = l->dirfd, .fsync = l->opt.fsync, .mark = l->appended};
    for (segment *s = first; s < l->segs + l->nsegs; s++)
        if (s->pending_len > 0) add_part(l, s);
    assert(l->batch_bytes == 0 && l->job.n_parts > 0);
    l->job.parts = l->parts;
    segment *last = &l->segs[l->nsegs - 1];
    if (!last->pending) {
        last->pending = l->spare;
        last->pending_cap = l->spare_cap;
        l->spare = NULL;
        l->spare_cap = 0;
    }
    encode_manifests(l);
    attach_side_sync(l);
    attach_closes(l);
    l->job_busy = true;
    return 0;
}

/* Does the batch go into a segment that has no file yet (a roll)? */
static bool creates_file(const wal *l) {
    for (size_t i = first_pending_segment(l); i < l->nsegs; i++)
        if (l->segs[i].pending_len > 0 && l->segs[i].fd < 0) return true;
    return false;
}

/* Writes the batch and fdatasyncs it: the same job as the sync thread's, run at once. */
int log_commit(wal *l) {
    if (l->failed_errno) return -l->failed_errno;
    if (!l->job_busy) {
        run_side_sync_inline(l);
        close_all(l->closing, l->n_closing);
        l->n_closing = 0;
    }
    if (l->batch_bytes == 0) return 0;
    assert(!l->job_busy); /* the caller waits for the job in flight first */
    int rc = build_job(l);
    if (rc < 0) return rc;
    rc = log_run_job(&l->job);
    log_sync_finished(l, rc);
    return rc;
}

/* No batch, but a side sync or closes are waiting: a job of their own. */
static int side_only_job(wal *l, log_job **job) {
    if ((l->side.state != SIDE_WANTED && l->n_closing == 0) || l->job_busy) return 0;
    l->job = (log_job){.dirfd = l->dirfd, .mark = l->durable};
    attach_side_sync(l);
    attach_closes(l);
    l->job_busy = true;
    *job = &l->job;
    return 0;
}

int log_write_batch(wal *l, log_job **job) {
    *job = NULL;
    if (l->failed_errno) return -l->failed_errno;
    if (l->batch_bytes == 0) return side_only_job(l, job);
    assert(!l->job_busy);
    if (!l->opt.fsync && !creates_file(l)) return log_commit(l); /* nothing to wait for: written at once */
    int rc = build_job(l);
    if (rc < 0) return rc;
    *job = &l->job;
    return 0;
}

/* ---------- the job, on the sync thread (or inline from log_commit) ---------- */

/* A new segment's file: created, its directory entry made durable, then MANIFEST naming it. */
static int create_file(const log_job *job, log_job_part *p) {
    char name[SEG_NAME_BYTES];
    log_segment_name(name, p->segment);
    p->fd = sio_open(job->dirfd, name, O_RDWR | O_CREAT | O_EXCL, 0644);
    if (p->fd < 0) return -errno;
    if (sio_sync_dir(job->dirfd) < 0) return -errno;
    return manifest_write(job->dirfd, p->manifest, p->manifest_len);
}

static int run_part(log_job *job, log_job_part *p) {
    int rc = p->fd < 0 ? create_file(job, p) : 0;
    if (rc == 0) rc = sio_write_all(p->fd, p->buf, p->len, p->offset);
    if (rc < 0 || !job->fsync) return rc;
    job->syncs++;
    return sio_sync_data_err(p->fd);
}

int log_run_job(log_job *job) {
    int rc = 0;
    while (rc == 0 && job->parts_done < job->n_parts)
        if ((rc = run_part(job, &job->parts[job->parts_done])) == 0) job->parts_done++;
    if (job->side_fd >= 0) job->side_rc = sio_sync_data_err(job->side_fd);
    close_all(job->close_fds, job->n_close);
    return rc;
}

/* ---------- the job's outcome, on the loop ---------- */

/* The side sync of the finished job, unless its request was cancelled since. */
static void side_sync_finished(wal *l) {
    if (l->job.side_fd < 0 || l->side.state != SIDE_INFLIGHT || l->side.id != l->job.side_id) return;
    l->side.rc = l->job.side_rc;
    l->side.state = SIDE_DONE;
}

/* A failed write's bytes are cut off again (best effort) so that whole records of the failed batch
 * do not reappear at the next start; the batch stays readable in memory until the caller stops. */
static void cut_failed_write(segment *s) {
    if (s->fd >= 0 && sio_truncate(s->fd, (off_t)s->size) < 0)
        return; /* best effort: the next start cuts what it can as a torn tail */
}

/* A part written and synced: its bytes are the file's now; its buffer may serve the next batch. */
static void part_durable(wal *l, segment *s) {
    s->size += s->inflight_len;
    s->synced = s->size;
    if (!l->spare && s->inflight_cap <= (1u << 20)) {
        l->spare = s->inflight;
        l->spare_cap = s->inflight_cap;
    } else {
        free(s->inflight);
    }
    s->inflight = NULL;
    s->inflight_len = s->inflight_cap = 0;
}

void log_sync_finished(wal *l, int rc) {
    assert(l->job_busy);
    log_job *job = &l->job;
    l->job_busy = false;
    side_sync_finished(l);
    free(job->close_fds);
    job->close_fds = NULL;
    job->n_close = 0;
    l->fsyncs += job->syncs;
    assert(rc < 0 || job->parts_done == job->n_parts);
    for (size_t i = 0; i < job->n_parts; i++) {
        log_job_part *p = &job->parts[i];
        segment *s = log_find_segment(l, p->segment);
        assert(s && s->inflight_len == p->len);
        if (s->fd < 0) s->fd = p->fd; /* the file the thread created (-1 if it did not get there) */
        free(p->manifest);
        p->manifest = NULL;
        if (i < job->parts_done)
            part_durable(l, s);
        else if (i == job->parts_done)
            cut_failed_write(s);
    }
    if (rc < 0) {
        if (!l->failed_errno) l->failed_errno = -rc;
        return;
    }
    if (job->n_parts) l->durable = job->mark;
}

uint64_t log_total_bytes(const wal *l) {
    return l->total_bytes;
}

int log_free_space(const wal *l, uint64_t *bytes) {
    return sio_free_space(l->dirfd, bytes) < 0 ? -errno : 0;
}

uint64_t log_fsync_count(const wal *l) {
    return l->fsyncs;
}

void log_close(wal *l) {
    if (!l) return;
    if (l->opened && !l->failed_errno && l->batch_bytes == 0 && !l->job_busy)
        manifest_save(l, 0, 0); /* the final sizes, so a later truncation is caught */
    for (size_t i = 0; i < l->nsegs; i++) {
        if (l->segs[i].fd >= 0) sio_close(l->segs[i].fd);
        free(l->segs[i].pending);
        free(l->segs[i].inflight);
    }
    close_all(l->closing, l->n_closing);
    free(l->closing);
    for (size_t i = 0; i < l->job.n_parts; i++)
        free(l->job.parts[i].manifest); /* a job never finished (its log failed) */
    free(l->parts);
    free(l->spare);
    if (l->dirfd >= 0) sio_close(l->dirfd);
    free(l->segs);
    free(l->dir);
    free(l);
}
