/* log_internal.h: the log's on-disk format and in-memory state, shared by log.c (append, commit,
 * read), log_open.c (opening and replay) and log_rewrite.c (log compaction). Nothing outside
 * storage/log*.c includes it. The format is described in docs/architecture.md, "Storage". */
#ifndef CETCD_LOG_INTERNAL_H
#define CETCD_LOG_INTERNAL_H

#include "le.h"
#include "log.h"
#include "storage_io.h"

/* Segment file: 16-byte header (magic, u32 version, u32 zero), then records. A file written by log
 * compaction starts with a LOG_COVERS record (checksummed like any record) naming the highest segment
 * id whose records it holds: segments with ids up to it are leftovers of an interrupted merge,
 * removed at open.
 * Record: u32 payload length, u8 type, 3 zero bytes, i64 revision, u64 checksum, payload.
 * The checksum is XXH3-64 of the record header (checksum field zeroed) followed by the payload. */
#define SEG_MAGIC "CETCDLOG"
#define SEG_MAGIC_LEN 8
#define SEG_VERSION 1u
#define COVERS_RECORD_BYTES (24u + 4u)
#define SEG_ID_MAX (UINT32_MAX - 1) /* once the last segment stands for it, it takes every append */
#define SEG_HDR_BYTES 16u
#define REC_HDR_BYTES 24u
#define REC_CHECKSUM_AT 16u
#define DEFAULT_SEGMENT_BYTES (64ull << 20)
#define SEG_NAME_DIGITS 16
#define SEG_NAME_BYTES (SEG_NAME_DIGITS + 5)
#define SMALL_RECORD_BYTES 4096u

typedef struct segment {
    uint32_t id;
    uint32_t covers;   /* the highest id this file stands for (== id unless it is a merge) */
    int fd;            /* -1 until the job writing its first batch created the file */
    uint64_t size;     /* bytes written to the file */
    uint64_t synced;   /* bytes of the file known to be durable */
    uint64_t min_size; /* at open: the durable bytes MANIFEST recorded; a torn tail is never cut below */
    uint8_t *inflight; /* the batch the sync thread is writing at offset `size` (log_job) */
    size_t inflight_len, inflight_cap;
    uint8_t *pending; /* batch bytes that go after those, not yet handed over */
    size_t pending_len;
    size_t pending_cap;
} segment;

/* One segment's share of a job: its batch bytes written at `offset` and synced. A segment without a
 * file gets one first: created, its directory entry synced, then MANIFEST replaced by `manifest`
 * (encoded on the loop: every file so far, this one included, the earlier ones at their final
 * sizes), as log_commit did on the loop before the job took it over. */
typedef struct log_job_part {
    uint32_t segment;
    int fd; /* -1: the thread creates the file and sets it (the loop keeps it, even after a failure) */
    const uint8_t *buf;
    size_t len;
    uint64_t offset;
    uint8_t *manifest; /* for a new file only */
    size_t manifest_len;
} log_job_part;

/* The batch handed to the sync thread: written and synced there, so a stalled disk stalls no read.
 * Its parts go in segment order, each durable before the next file is created, so after a crash
 * only the last segment can have a torn tail. */
struct log_job {
    int dirfd;
    bool fsync;          /* false: the parts are written, not synced (--unsafe-no-fsync, log_commit) */
    log_job_part *parts; /* none: a job for a side sync or closes alone */
    size_t n_parts;
    size_t parts_done;    /* out: parts written (and synced), from the first */
    uint64_t syncs;       /* out: fdatasync calls on segment files */
    uint64_t mark;        /* the appended mark it makes durable */
    bool writes_manifest; /* a part creates a file: the loop must not write MANIFEST meanwhile */
    int side_fd;          /* another file to fdatasync after the batch (log_request_side_sync), or -1 */
    uint64_t side_id;
    int side_rc;    /* out, from the thread: that sync's result */
    int *close_fds; /* descriptors of dropped files, closed by the thread (log_close_later) */
    size_t n_close;
};

/* A side sync: a file other than the batch's made durable by the sync thread (log_request_side_sync). */
typedef struct side_sync {
    enum { SIDE_NONE, SIDE_WANTED, SIDE_INFLIGHT, SIDE_DONE } state;
    int fd;
    uint64_t id; /* one per request, so that a cancelled request's late result is ignored */
    int rc;
} side_sync;

struct wal {
    char *dir;
    int dirfd; /* holds an exclusive flock while the log is open */
    log_options opt;
    segment *segs; /* ascending by id; the last one takes appends */
    size_t nsegs, segs_cap;
    uint64_t total_bytes; /* file bytes plus pending batch bytes */
    uint64_t batch_bytes;
    uint64_t fsyncs;
    uint64_t appended;  /* bytes ever appended: a mark that only grows */
    uint64_t durable;   /* every append up to this mark is durable */
    struct log_job job; /* the one batch in flight, if job_busy */
    bool job_busy;
    log_job_part *parts; /* the job's parts (kept for the next job) */
    size_t parts_cap;
    side_sync side;
    int *closing; /* descriptors of dropped, unlinked files waiting to be closed off the loop */
    size_t n_closing, cap_closing;
    uint8_t *spare; /* a finished job's buffer, reused for the next batch */
    size_t spare_cap;
    int failed_errno; /* nonzero once a write or sync failed: commits are refused from then on */
    bool opened;      /* replay finished: MANIFEST is kept up to date from here on */
};

/* manifest.c: the segment files a data dir must hold. */
typedef struct manifest_entry {
    uint32_t id, covers;
    uint64_t min_size;
} manifest_entry;
typedef struct manifest {
    manifest_entry *entries;
    size_t n;
    bool exists;
} manifest;
/* Reads MANIFEST (m->exists false if there is none). 0, or -1 with err set if it is damaged. */
int manifest_load(wal *l, manifest *m, char *err, size_t errlen);
/* Checks the opened segments against it: every listed one present (or merged into one present) and
 * not shorter than its durable bytes, none unknown. 0, or -1 with err naming the file. */
int manifest_check(wal *l, const manifest *m, char *err, size_t errlen);
void manifest_free(manifest *m);
/* Writes MANIFEST from the segment table, recording at most min_size durable bytes for segment id
 * (a rewrite about to replace it). 0 or -errno. Never while a job writes it (log_job.writes_manifest). */
int manifest_save(wal *l, uint32_t id, uint64_t min_size);
/* The entries of the segment table's files (at most l->nsegs, into e): how many. */
size_t manifest_entries(const wal *l, manifest_entry *e);
/* MANIFEST's bytes for n entries, in a new buffer: its length. */
size_t manifest_encode(const manifest_entry *e, size_t n, uint8_t **out);
/* Replaces MANIFEST in dirfd by b: written beside, synced, renamed, the directory synced. 0 or -errno.
 * Thread-safe: the sync thread calls it for a job's new segment. */
int manifest_write(int dirfd, const uint8_t *b, size_t len);

void log_segment_name(char out[SEG_NAME_BYTES], uint32_t id);
/* Returns NULL if a whole valid record starts at p (setting *rec_bytes), else why not. */
const char *log_check_record(const uint8_t *p, uint64_t avail, uint64_t *rec_bytes);
segment *log_find_segment(const wal *l, uint32_t id);
segment *log_add_segment(wal *l, uint32_t id, int fd, uint64_t size);
/* Removes a segment from the table (closing its descriptor, later); the file is the caller's business. */
void log_drop_segment(wal *l, uint32_t id);
/* Closes fd, a dropped file's, off the loop once the log is open: the last close of an unlinked
 * 64 MiB file frees its blocks, 5-20 ms in the kernel. The next job's thread closes it (log_commit
 * does at once); until then log_wants_job says so. */
void log_close_later(wal *l, int fd);
void log_fill_segment_header(uint8_t hdr[SEG_HDR_BYTES]);
/* Fills rec (REC_HDR_BYTES + len bytes) with one record. */
void log_encode_record(uint8_t *rec, int type, int64_t revision, const uint8_t *payload, size_t len);
/* log_rewrite.c: removes rewrite files a crash left behind (the segments they were for are intact). */
void log_remove_stale_rewrites(wal *l);
void log_set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
