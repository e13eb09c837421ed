/* log.h: the append-only log. Numbered segment files of checksummed records in the data dir.
 * Appends go to an in-memory batch; log_commit writes and fdatasyncs the batch once (group commit).
 * Knows nothing of what a payload means: storage/mvcc.c encodes and decodes payloads. */
#ifndef CETCD_LOG_H
#define CETCD_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum log_record_type {
    LOG_PUT = 1,    /* one key written */
    LOG_DELETE = 2, /* keys deleted under one revision */
    LOG_TXN = 3,    /* a group of puts/deletes sharing one main revision */
    LOG_LEASE_GRANT = 4,
    LOG_LEASE_REVOKE = 5,
    LOG_COMPACT = 6,    /* revision compaction mark */
    LOG_CHECKPOINT = 7, /* index checkpoint (hint) */
    LOG_AUTH = 8,       /* the whole auth state, as src/ encodes it; the last one counts */
    LOG_COVERS = 9,     /* first record of a merged file: u32, the highest segment id it stands for */
    LOG_ALARMS = 10,    /* the member's alarms, as src/ encodes them; the last one counts */
    LOG_DOWNGRADE = 11, /* the cluster's downgrade job (Maintenance/Downgrade); the last one counts */
};

/* A byte range inside one segment file: where a payload, or a part of it, lives. */
typedef struct log_place {
    uint32_t segment;
    uint32_t length;
    uint64_t offset;
} log_place;

typedef struct wal wal;

/* Called for every valid record in order during log_open. Returning non-zero aborts the open. */
typedef int (*log_replay_fn)(void *ctx, int type, int64_t revision, const uint8_t *payload, size_t len,
                             log_place where);

typedef struct log_options {
    bool fsync;             /* false: --unsafe-no-fsync */
    uint64_t segment_bytes; /* roll to a new segment past this size; 0 = default (64 MiB) */
    /* At open, called for the record PEEK_AHEAD records in front of the one being replayed, before it
     * is verified: a hint (to prefetch what its replay will touch), never a source of state. */
    void (*peek)(void *ctx, int type, const uint8_t *payload, size_t len);
} log_options;

/* Opens (creating if needed) the log in dir, replays it through fn, truncates a torn tail of the last
 * segment. On failure returns NULL and writes a one-line reason (naming file and offset) into err. */
wal *log_open(const char *dir, const log_options *opt, log_replay_fn fn, void *ctx, char *err, size_t errlen);
void log_close(wal *l);

/* Adds a record to the current batch. Returns the place of its payload. Never fails (memory aside). */
log_place log_append(wal *l, int type, int64_t revision, const uint8_t *payload, size_t len);
/* Copies bytes of a place (which may still be in the unwritten batch) into dst. 0 or -errno. */
int log_read(wal *l, log_place where, uint8_t *dst);
/* Whether a place's bytes are in its segment's file (written), not only in the batch in memory. */
bool log_in_file(const wal *l, log_place where);
/* A descriptor of our own for reading segment id's file (closed with sio_close), or -errno: reads by it
 * see the same bytes even after the log has rewritten or dropped the segment. */
int log_open_segment_file(wal *l, uint32_t id);
bool log_has_batch(const wal *l);
bool log_wants_job(const wal *l); /* a batch, a side sync (below) or files to close, for the sync thread */
bool log_closes_pending(const wal *l); /* dropped files not yet closed (log_close_later) */
/* Writes the batch and fdatasyncs it (once per segment it touches), on the caller's thread: the job
 * below, run at once. 0 on success; -errno on failure. After a failure the log refuses further
 * commits: the caller must stop (never retry a failed fsync). */
int log_commit(wal *l);

/* Group commit in two steps, so that neither the write nor the fdatasync runs on the loop's thread:
 * log_write_batch hands the batch over as a job (*job NULL when nothing needs the thread: no batch,
 * or fsync off and no segment roll, written at once); log_run_job (thread-safe) writes and syncs
 * it, segment by segment, and for a batch that crossed into a new segment also creates its file
 * and rewrites MANIFEST (a roll costs the loop no more than any batch); log_sync_finished records
 * the outcome on the loop thread. Reads of the batch's records are served from memory meanwhile.
 * One job at a time. A failure makes every later commit fail, as log_commit's does. */
typedef struct log_job log_job;
int log_write_batch(wal *l, log_job **job);
int log_run_job(log_job *job);
void log_sync_finished(wal *l, int rc);

/* A side sync: asks that fd (log compaction's new file) be fdatasynced off the loop, by the next job
 * (a job of its own if no batch comes: log_wants_job says so until it is handed over) or inline
 * by log_commit. log_side_sync_result: true once done, with its result in *rc, and no job is
 * rewriting MANIFEST (the caller goes on to switch a file in, which rewrites it). A cancelled request's
 * result is dropped; the fd may then be closed even while the thread still syncs it (it syncs
 * nothing of the log's, or fails with EBADF, and is ignored). One request at a time. */
void log_request_side_sync(wal *l, int fd);
bool log_side_sync_result(const wal *l, int *rc);
void log_cancel_side_sync(wal *l);

uint64_t log_total_bytes(const wal *l);            /* bytes in all segments, for dbSize/quota */
int log_free_space(const wal *l, uint64_t *bytes); /* free on the data dir's file system; 0 or -errno */
uint64_t log_fsync_count(const wal *l);            /* fdatasync calls so far, for tests and metrics */

/* Marks for ordering durability against other work: every append moves the mark on, and a mark is
 * durable once the batch holding it was written and synced. Log compaction waits for the mark of its
 * last decision before it switches a rewritten file in. */
uint64_t log_appended_mark(const wal *l);
bool log_is_durable(const wal *l, uint64_t mark);
size_t log_segment_count(const wal *l); /* segment files, each with one open descriptor */

/* --- log compaction: rewriting sealed segments in place (storage/log_rewrite.c) --- */

/* Ends the current segment: the next append starts a new one, and this one becomes sealed. */
void log_seal(wal *l);
/* Ids of the sealed segments (all but the one taking appends), oldest first; *ids is malloc'd. */
size_t log_sealed_segments(const wal *l, uint32_t **ids);
bool log_has_segment(const wal *l, uint32_t id);
uint64_t log_segment_bytes(const wal *l); /* the size past which a segment rolls */
/* True once a sealed segment's bytes are all written and durable, so it can be scanned and replaced. */
bool log_segment_settled(const wal *l, uint32_t id);
/* Reads records of a sealed segment from *cursor (0 = the start), at most max_records, calling fn
 * for each. Returns 1 if more remain, 0 at the end, -errno on failure. */
int log_segment_scan(wal *l, uint32_t id, uint64_t *cursor, size_t max_records, log_replay_fn fn, void *ctx);

/* A new version of sealed segments first..last (one, or several merged), built beside the first and
 * switched in with rename. NULL with errno set on failure. */
typedef struct log_rewrite log_rewrite;
log_rewrite *log_rewrite_begin(wal *l, uint32_t first);
/* Adds a record; returns the place its payload will have once the rewrite is switched in. */
log_place log_rewrite_append(log_rewrite *rw, int type, int64_t revision, const uint8_t *payload, size_t len);
uint64_t log_rewrite_bytes(const log_rewrite *rw); /* the new file's size so far */
/* Syncs the new file (its header naming last as the highest id it stands for), renames it over the
 * first segment, syncs the directory, then unlinks the segments after first up to last. A file left
 * with no record is removed too. 0, or -errno. *switched_in tells whether the new file took the
 * old ones' place (a failure after the rename leaves it in place); if not, they are untouched.
 * Frees rw either way. */
int log_rewrite_finish(log_rewrite *rw, uint32_t last, bool *switched_in);
void log_rewrite_abort(log_rewrite *rw);
/* The first half of finish, for a sync off the loop: writes out the complete file (its header naming
 * last) and returns its descriptor to sync, or -errno. Once that sync succeeded, log_rewrite_synced
 * tells finish not to sync again. */
int log_rewrite_prepare(log_rewrite *rw, uint32_t last);
void log_rewrite_synced(log_rewrite *rw);

/* --- whole-segment copies for snapshots --- */
typedef struct log_file_copy {
    uint32_t id;
    int fd;        /* a private descriptor: a later rewrite of the segment does not affect it */
    uint64_t size; /* durable bytes at the time of the copy */
} log_file_copy;
/* Opens every segment for reading, up to its durable bytes: a copy never shows a write that a crash
 * could still lose. Returns the count, -errno on failure. */
long log_copy_segments(wal *l, log_file_copy **out);
/* Reads the records of copied segments in log order, one per call: 1 with the record's type,
 * revision and payload (in *buf, grown as needed, valid until the next call), 0 at the end, -errno
 * (-EIO for a record that fails its checksum). cursor starts zeroed; the file is read ahead in large
 * pieces (one pread for many records), freed by log_copy_cursor_free. */
typedef struct log_copy_cursor {
    long file;
    uint64_t offset;
    uint8_t *ahead; /* bytes [ahead_start, ahead_start + ahead_len) of file ahead_file */
    size_t ahead_len;
    uint64_t ahead_start;
    long ahead_file;
} log_copy_cursor;
void log_copy_cursor_free(log_copy_cursor *cursor);
int log_copy_next(const log_file_copy *files, long n, log_copy_cursor *cursor, uint8_t **buf, size_t *cap,
                  int *type, int64_t *revision, size_t *len);
/* Is this place inside the durable bytes of its segment? */
bool log_place_durable(const wal *l, log_place where);
/* Writes segment files into an empty dir (restore). 0 or -errno. */
int log_install_segment(const char *dir, uint32_t id, const uint8_t *data, uint64_t size);
#endif
