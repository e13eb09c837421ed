/* mvcc_internal.h: the store's private state, shared by the mvcc_*.c files and nothing else.
 * Split out so that range, txn and recovery can live in files of their own. */
#ifndef CETCD_MVCC_INTERNAL_H
#define CETCD_MVCC_INTERNAL_H

#include "arena.h"
#include "bptree.h"
#include "change.h"
#include "keyhist.h"
#include "log.h"
#include "mvcc.h"
#include "rev_table.h"

/* A value written by the write in progress: its entry gets its final log place at write_finish. */
typedef struct pending_value {
    keyhist *kh;
    uint32_t entry;
} pending_value;

/* The write in progress: every change of one main revision becomes one log record. */
typedef struct write_batch {
    bool active;
    int64_t revision;
    uint32_t next_sub;
    uint8_t *payload;
    size_t len, cap;
    pending_value *pending;
    size_t n_pending, cap_pending;
    int record_type;
} write_batch;

struct log_compaction;

struct mvcc {
    wal *log;
    bptree *index;
    int64_t revision;
    int64_t compact_revision;
    mvcc_options opt;
    write_batch wb;
    rev_table revs; /* record of each revision since revs.base, for history replay, in 12 bytes
                       (keyhist.h); trimmed below the compaction revision, so it follows history,
                       not the age (rev_table.h) */
    bool replaying; /* at open: places are listed in `replayed`, the table built at the end */
    struct replay_map *replay_keys; /* at open: keys are found here, and moved to `index` at the end */
    struct replay_clock {
        uint64_t started_us, reported_us, records;
    } replay_clock; /* for the progress lines of a long start (mvcc_options.on_replay_progress) */
    struct replayed_place {
        int64_t rev;
        log_place where;
    } * replayed;
    size_t n_replayed, cap_replayed;
    uint64_t live_keys;
    uint64_t live_bytes; /* log bytes of the changes, leases and mark the store still needs (estimate) */
    struct log_compaction *compaction; /* NULL unless log compaction is running */
    uint64_t bytes_after_compaction;   /* log size when the last run ended: a run needs growth past it */
    struct state_blob {
        uint8_t *blob;
        size_t len;
        log_place place;     /* of its record: the only one log compaction copies forward */
    } state[MV_STATE_KINDS]; /* state_blobs.c */
    struct disk_space {
        bool known;                   /* read at least once */
        uint64_t free_at_check;       /* free bytes on the data dir's file system when last read */
        uint64_t log_bytes_at_check;  /* the log's size then */
    } disk;                           /* disk_guard.c */
    int exports_open;                 /* while > 0, pruning of the index waits */
    struct mv_range_rest *rests_open; /* unfinished counts: pruning waits while one reads below it */
    int64_t prune_revision;           /* the index is pruned in slices up to this compaction; 0 when done */
    uint8_t *prune_cursor;            /* the next key to prune from (NULL: the first) */
    size_t prune_cursor_len;
    bptree *leases; /* 8-byte big-endian id -> struct lease */
    mv_revision_hook on_revision;
    void *on_revision_ctx;
};

/* mvcc.c */
/* The key's history, created empty if the key is new. */
keyhist *history_for_write(mvcc *s, mv_bytes key);
void write_begin(mvcc *s);
/* Writes key=value at the write's revision. Fills *prev with the key's live entry before, if any. */
void write_put(mvcc *s, mv_bytes key, mv_bytes value, int64_t lease, rev_entry *prev, bool *had_prev);
/* A tombstone for key, whose history is kh and live entry live (both from the index, now). */
void write_delete(mvcc *s, mv_bytes key, keyhist *kh, const rev_entry *live);
bool write_has_changes(const mvcc *s);
/* Marks the write as the revocation of lease id (storage/change.h). */
void write_revoke_marker(mvcc *s, int64_t id);
void write_finish(mvcc *s);
/* The revision reads see: the write's revision once it changed something, else the current one. */
int64_t read_revision(const mvcc *s);
/* A value the index points at could not be read: the log is damaged under the server. Aborts. */
_Noreturn void value_read_failed(void);
/* Copies the value of an entry into the arena; returns its bytes. */
mv_bytes read_value(mvcc *s, const rev_entry *e, mv_arena *a);
void fill_kv(mvcc *s, mv_kv *kv, mv_bytes key, const rev_entry *e, bool with_value, mv_arena *a);
bool over_quota(const mvcc *s, size_t incoming);
bool disk_too_low(const mvcc *s, size_t incoming); /* disk_guard.c: incoming would eat the reserve */

/* A key found by a Range's scan, before values are read (mvcc_range.c). */
typedef struct candidate {
    mv_bytes key;
    rev_entry *entry;
    mv_bytes value; /* read early only when sorting by value */
} candidate;

/* range_values.c: fills out[i].value with the value of each candidate (into a), neighbours in the log
 * read with one pread. */
void read_values(mvcc *s, const candidate *c, size_t n, mv_kv *out, mv_arena *a);

/* range_top.c: a Range's best `limit` keys by create or mod revision (or by key, descending),
 * kept while it is walked. fits: whether the request can be answered so (a limit under
 * MV_RANGE_STEP_KEYS, one of those targets; the caller also requires etcd to fetch all first).
 * offer each live key that passes the filters; finish sorts the kept ones (at most limit + 1) into
 * out, looked up again at rev, and returns how many, or -1 if two tie on the target (then etcd's
 * order is that of Go's sort over all keys: gather them all). */
typedef struct range_top range_top;
bool range_top_fits(const mv_range_req *r);
range_top *range_top_new(const mv_range_req *r);
void range_top_offer(range_top *t, mv_bytes key, const rev_entry *e);
long range_top_finish(range_top *t, mvcc *s, int64_t rev, candidate *out);
void range_top_free(range_top *t);

/* mvcc_range.c */
/* Range at an already validated revision. */
void range_at(mvcc *s, const mv_range_req *r, int64_t rev, mv_arena *a, mv_range_resp *out);
mv_err check_read_revision(const mvcc *s, int64_t rev);
/* Keys' order, etcd's: unsigned bytes, the shorter first on a tie. */
int compare_bytes(mv_bytes a, mv_bytes b);
/* Calls fn for each live key in [key, range_end) at rev (range_end rules as Range). fn returns false to stop.
 */
typedef bool (*live_key_fn)(void *ctx, mv_bytes key, keyhist *kh, rev_entry *e);
void for_each_live(mvcc *s, mv_bytes key, mv_bytes range_end, int64_t rev, live_key_fn fn, void *ctx);
/* Whether pruning the index up to rev would change what an unfinished count reads. */
bool rests_pin_below(const mvcc *s, int64_t rev);

/* lease.c */
void leases_init(mvcc *s);
void leases_free(mvcc *s);
/* Keeps lease key sets in step with a key's change from the live entry before (may be NULL). */
void lease_track_put(mvcc *s, mv_bytes key, const rev_entry *before, int64_t lease);
void lease_track_delete(mvcc *s, mv_bytes key, const rev_entry *before);
int replay_lease_record(mvcc *s, int type, const uint8_t *payload, size_t len, log_place where);
void lease_forget(mvcc *s, int64_t id); /* drops a lease from the table (its keys are the caller's) */

/* compactor.c */
void log_compaction_free(mvcc *s);

/* lease.c, for log compaction: is this grant record the one of a lease still granted; its new
 * place (only if the lease still has the grant that was copied: not if revoked and granted again) */
bool lease_grant_is_live(const mvcc *s, int64_t id, log_place where);
void lease_grant_moved(mvcc *s, int64_t id, log_place from, log_place to);
/* Log bytes of a lease grant record, counted as live while the lease is granted. */
#define LEASE_RECORD_BYTES (24u + 16u)
#define COMPACT_RECORD_BYTES (24u + 8u)

/* state_blobs.c: the records of the member's state blobs (LOG_AUTH, LOG_ALARMS, LOG_DOWNGRADE) */
int state_kind_of_record(int type); /* -1 if type is not one of them */
int replay_state_record(mvcc *s, int type, const uint8_t *payload, size_t len, log_place where);
bool state_record_is_live(const mvcc *s, int type, log_place where);
void state_record_moved(mvcc *s, int type, log_place from, log_place to);
void state_blobs_free(mvcc *s);

/* export.c: leases whose grant is durable, for an export. */
size_t durable_leases(const mvcc *s, mv_lease_info **out);

/* compactor.c: Compact calls this: a running log compaction starts over with the new revision. */
void log_compaction_restart(mvcc *s);

/* mvcc_recover.c */
int replay_record(void *ctx, int type, int64_t revision, const uint8_t *payload, size_t len, log_place where);
/* log_options.peek at open: prefetches the hash table slots of a record replay will soon reach. */
void replay_peek(void *ctx, int type, const uint8_t *payload, size_t len);
typedef struct replayed_place replayed_place;
void remember_revision_place(mvcc *s, int64_t rev, log_place where);
/* Counts a replayed record and reports progress when a second has passed since the last report. */
void note_replay_progress(mvcc *s, bool done);
/* After replay: the table from the compaction revision up. 0, or -1 with err set (a damaged log). */
int build_revision_table(mvcc *s, char *err, size_t errlen);
/* The record of rev, or a zero place if none is left (or rev is below the table). */
log_place revision_place(const mvcc *s, int64_t rev);
/* Revision compaction of the index at rev: readers see the compacted history at once (through
 * keyhist_holds); the entries are pruned in slices, by index_prune, or all at once. */
void compact_index(mvcc *s, int64_t rev);
void compact_index_now(mvcc *s, int64_t rev);
/* Prunes until deadline_us (sio_now_us); true when nothing is left to prune. */
bool index_prune(mvcc *s, uint64_t deadline_us);

#endif
