/* mvcc.h: the multi-version key-value store with etcd's semantics, the one API src/ uses for data.
 * Writes are applied to the in-memory index at once, each taking the next revision, and their records
 * go to the log's batch; mvcc_commit makes the batch durable. Values live in the log, not in memory. */
#ifndef CETCD_MVCC_H
#define CETCD_MVCC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mvcc mvcc;

typedef struct mv_bytes {
    const uint8_t *data;
    size_t len;
} mv_bytes;

/* One key-value as etcd's mvccpb.KeyValue. */
typedef struct mv_kv {
    mv_bytes key, value;
    int64_t create_revision, mod_revision, version, lease;
} mv_kv;

/* Errors, each mapped by src/ to etcd's gRPC status and string. */
typedef enum mv_err {
    MV_OK = 0,
    MV_ERR_COMPACTED,       /* "etcdserver: mvcc: required revision has been compacted" */
    MV_ERR_FUTURE_REV,      /* "etcdserver: mvcc: required revision is a future revision" */
    MV_ERR_EMPTY_KEY,       /* "etcdserver: key is not provided" */
    MV_ERR_DUPLICATE_KEY,   /* "etcdserver: duplicate key given in txn request" */
    MV_ERR_TOO_MANY_OPS,    /* "etcdserver: too many operations in txn request" */
    MV_ERR_NO_SPACE,        /* "etcdserver: mvcc: database space exceeded" */
    MV_ERR_LEASE_NOT_FOUND, /* "etcdserver: requested lease not found" */
    MV_ERR_KEY_NOT_FOUND,   /* "etcdserver: key not found" (ignore_value/ignore_lease on a missing key) */
    MV_ERR_VALUE_PROVIDED,  /* "etcdserver: value is provided" */
    MV_ERR_LEASE_PROVIDED,  /* "etcdserver: lease is provided" */
    MV_ERR_LEASE_EXISTS,    /* "etcdserver: lease already exists" */
    MV_ERR_IO,              /* log failure: the server must stop */
    MV_ERR_REPLY_TOO_LARGE, /* a delete's prev_kvs would pass mv_delete_req.max_bytes: nothing applied */
} mv_err;

/* --- requests (mirrors of etcdserverpb messages, without protobuf) --- */

enum mv_sort_order { MV_SORT_NONE = 0, MV_SORT_ASCEND = 1, MV_SORT_DESCEND = 2 };
enum mv_sort_target {
    MV_SORT_KEY = 0,
    MV_SORT_VERSION = 1,
    MV_SORT_CREATE = 2,
    MV_SORT_MOD = 3,
    MV_SORT_VALUE = 4
};

/* Remembers, for a few ranges at a revision, how many live keys follow every 256th key counted, so
 * that the pages of one list (each a Range with a limit at one revision, counting every key after its
 * page as etcd's count does) count only up to the next remembered key: the list then costs the keys
 * once instead of once per page. A cache belongs to one store (counts at a revision never change in
 * it: later writes are above it, compaction keeps what was live at any revision still readable). */
typedef struct mv_count_cache mv_count_cache;
mv_count_cache *mv_count_cache_new(void);
void mv_count_cache_free(mv_count_cache *c);

/* range_end: empty = the single key; "\0" = every key >= key; otherwise [key, range_end). */
typedef struct mv_range_req {
    mv_bytes key, range_end;
    int64_t limit;    /* 0 = no limit */
    int64_t revision; /* <= 0 = current */
    int sort_order, sort_target;
    bool keys_only, count_only;
    int64_t min_mod_revision, max_mod_revision, min_create_revision, max_create_revision; /* 0 = off */
    /* 0 = none. A budget for the result's memory, shared by every range of one call (a Txn's ranges
     * fill one arena): a range whose keys and values would take the call's result past it reads no
     * value, returns no kvs and sets too_large (count and more then mean nothing). src/ answers
     * RESOURCE_EXHAUSTED; a Txn's writes are applied all the same, as etcd's are when its reply is
     * over gRPC's send limit. */
    uint64_t max_bytes;
    mv_count_cache *counts; /* NULL, or the store's cache for this range's count */
} mv_range_req;

typedef struct mv_put_req {
    mv_bytes key, value;
    int64_t lease;
    bool prev_kv, ignore_value, ignore_lease;
} mv_put_req;

typedef struct mv_delete_req {
    mv_bytes key, range_end;
    bool prev_kv;
    uint64_t max_bytes; /* with prev_kv: the whole call fails (MV_ERR_REPLY_TOO_LARGE), before
                           anything is deleted, if the prev_kvs would take more; 0 = no limit */
} mv_delete_req;

enum mv_cmp_result { MV_CMP_EQUAL = 0, MV_CMP_GREATER = 1, MV_CMP_LESS = 2, MV_CMP_NOT_EQUAL = 3 };
enum mv_cmp_target {
    MV_CMP_VERSION = 0,
    MV_CMP_CREATE = 1,
    MV_CMP_MOD = 2,
    MV_CMP_VALUE = 3,
    MV_CMP_LEASE = 4
};

typedef struct mv_compare {
    int result, target;
    mv_bytes key, range_end; /* range_end as in Range: the compare must hold for every key in range */
    int64_t number;          /* version / create / mod revision / lease, by target */
    mv_bytes value;          /* target VALUE */
} mv_compare;

enum mv_op_type { MV_OP_RANGE = 0, MV_OP_PUT = 1, MV_OP_DELETE = 2, MV_OP_TXN = 3 };

struct mv_txn_req;
typedef struct mv_op {
    int type;
    union {
        mv_range_req range;
        mv_put_req put;
        mv_delete_req del;
        struct mv_txn_req *txn;
    } u;
} mv_op;

typedef struct mv_txn_req {
    mv_compare *compare;
    size_t n_compare;
    mv_op *success, *failure;
    size_t n_success, n_failure;
} mv_txn_req;

/* --- responses: all memory belongs to the result's arena, freed by mv_result_free --- */

typedef struct mv_range_resp {
    mv_kv *kvs;
    size_t n_kvs;
    bool more;
    int64_t count;
    bool too_large;       /* over req.max_bytes: kvs left out */
    const void *selected; /* mvcc_range_select: what mvcc_range_values reads; NULL otherwise */
} mv_range_resp;

typedef struct mv_put_resp {
    mv_kv *prev_kv; /* NULL unless asked and the key existed */
} mv_put_resp;

typedef struct mv_delete_resp {
    int64_t deleted;
    mv_kv *prev_kvs;
    size_t n_prev_kvs;
} mv_delete_resp;

struct mv_txn_resp;
typedef struct mv_op_resp {
    int type;
    int64_t header_revision; /* etcd fills each response of a Txn with the revision it saw or made */
    union {
        mv_range_resp range;
        mv_put_resp put;
        mv_delete_resp del;
        struct mv_txn_resp *txn;
    } u;
} mv_op_resp;

typedef struct mv_txn_resp {
    bool succeeded;
    mv_op_resp *responses;
    size_t n_responses;
} mv_txn_resp;

typedef struct mv_arena mv_arena;

/* A call's answer. header_revision is the store revision to put in the ResponseHeader. */
typedef struct mv_result {
    mv_err err;
    int64_t header_revision;
    mv_op_resp resp;
    mv_arena *arena;
} mv_result;

void mv_result_free(mv_result *r);

/* --- the store --- */

/* How far a start-up replay has come: reported once a second after its first second, and once at
 * the end (done) if it took longer than that. */
typedef struct mv_replay_progress {
    uint64_t records; /* log records read so far */
    uint64_t keys;    /* distinct keys seen */
    int64_t revision; /* the newest revision read */
    double seconds;   /* since the open began */
    bool done;
} mv_replay_progress;

typedef struct mvcc_options {
    bool fsync;                  /* false: --unsafe-no-fsync */
    uint64_t quota_bytes;        /* 0 = etcd's default 2 GiB */
    size_t max_txn_ops;          /* 0 = etcd's default 128 */
    uint64_t segment_bytes;      /* log segment size; 0 = the log's default */
    uint64_t disk_reserve_bytes; /* writes are refused as over the quota once the data dir's file
                                    system has less free (disk_guard.c); 0 = no such check */
    void (*on_replay_progress)(const mv_replay_progress *p); /* may be NULL */
} mvcc_options;

/* Reads the free space of the data dir's file system (every second or so, from the loop): a write
 * that would leave less than disk_reserve_bytes is then refused with MV_ERR_NO_SPACE. 0 or -errno. */
int mvcc_check_disk(mvcc *s, uint64_t *free_bytes);
bool mvcc_disk_low(const mvcc *s); /* less than disk_reserve_bytes is left, as last counted */

/* Opens or creates the store in dir, recovering it from the log. NULL on failure, reason in err. */
mvcc *mvcc_open(const char *dir, const mvcc_options *opt, char *err, size_t errlen);
void mvcc_close(mvcc *s);

int64_t mvcc_revision(const mvcc *s);         /* current revision (1 on an empty store, as etcd) */
int64_t mvcc_compact_revision(const mvcc *s); /* last compacted revision, -1 if none */

/* Each call fills *out; the caller frees it with mv_result_free. */
void mvcc_range(mvcc *s, const mv_range_req *req, mv_result *out);
/* mvcc_range as far as choosing the keys: the same kvs, count, more and too_large, but no value is read
 * (each kv's value has data NULL and len its length; keys_only: 0) and each key points into the store's
 * index, so the result holds only until the store next changes. mvcc_range_values then copies the value
 * of kvs[i] to dst[i] (room for value.len bytes each), so a reply can be packed without a second copy. */
typedef struct mv_range_rest mv_range_rest; /* below */
void mvcc_range_select(mvcc *s, const mv_range_req *req, mv_result *out, mv_range_rest **rest);
void mvcc_range_values(mvcc *s, const mv_range_resp *selected, uint8_t *const *dst);
/* With rest non-NULL, mvcc_range_select walks at most MV_RANGE_STEP_KEYS keys (etcd's count covers
 * the whole range: a page of a list of 1M keys counts 1M, ~50 ms). If more are left, *rest goes on
 * from there (else it is NULL), at the range's revision, whatever the store does between its steps
 * (pruning of the index waits for it); end frees it, done or not (before mvcc_close). Either:
 * - the keys to return were all chosen (the result's kvs are the reply's) and only the count is left
 *   (its count is the part counted so far); a range sorted by key, descending, with a limit under
 *   MV_RANGE_STEP_KEYS and no filter gets here too: its last keys are walked backwards first, or
 * - (mvcc_range_rest_sizing) a range in key order (filtered or not) had more keys to return: the
 *   result's kvs are only the first ones. Each further key it returns goes to the step's fn, which
 *   learns its size (value: data NULL, len), then mvcc_range_rest_pack walks the range again, a chunk
 *   of keys a call, from the first, and copies each value where fn says, in the same call.
 * Each step takes about MV_RANGE_STEP_KEYS keys (a pack chunk stops at MV_RANGE_STEP_VALUE_BYTES of
 * values too) and says whether it was the last; mvcc_range_rest_result then has kvs (their number),
 * more, count and too_large as mvcc_range_select would have given them. */
#define MV_RANGE_STEP_KEYS 8192
#define MV_RANGE_STEP_VALUE_BYTES ((uint64_t)2 << 20)
typedef void (*mv_range_size_fn)(void *ctx, const mv_kv *kv);
typedef uint8_t *(*mv_range_pack_fn)(void *ctx, const mv_kv *kv); /* where the value goes */
bool mvcc_range_rest_sizing(const mv_range_rest *c);
/* A range sorted by create or mod revision (or by key, descending, filtered) with a limit under
 * MV_RANGE_STEP_KEYS: its best keys are kept while it walks (the result has no kvs yet); once the steps
 * are done, chosen gives the whole result, as mvcc_range_select would have (header_revision: the
 * store's now). With two of the best tying on the target it gathers and sorts every key of the range
 * then, in that call, as etcd's order for ties is that of Go's sort over all of them. */
bool mvcc_range_rest_choosing(const mv_range_rest *c);
void mvcc_range_rest_chosen(mv_range_rest *c, mv_result *out);
bool mvcc_range_rest_step(mv_range_rest *c, mv_range_size_fn fn, void *ctx);
void mvcc_range_rest_result(const mv_range_rest *c, mv_range_resp *out);
bool mvcc_range_rest_pack(mv_range_rest *c, mv_range_pack_fn fn, void *ctx);
void mvcc_range_rest_end(mv_range_rest *c);
/* mvcc_range_values in steps, for a reply too large to fill in one loop turn. begin (right after
 * mvcc_range_select, before the store changes) copies the values that are in memory and takes its own
 * descriptors of the segment files holding the rest, so that writes, compaction and log compaction
 * between the steps change nothing it copies (with too many files, it copies everything at once);
 * each step copies about budget bytes more and says whether all are done; end frees it, done or not. */
typedef struct mv_values_copy mv_values_copy;
mv_values_copy *mvcc_range_values_begin(mvcc *s, const mv_range_resp *selected, uint8_t *const *dst);
bool mvcc_range_values_step(mv_values_copy *c, size_t budget);
void mvcc_range_values_end(mv_values_copy *c);
void mvcc_put(mvcc *s, const mv_put_req *req, mv_result *out);
void mvcc_delete(mvcc *s, const mv_delete_req *req, mv_result *out);
void mvcc_txn(mvcc *s, const mv_txn_req *req, mv_result *out);
/* Compaction of history below rev (etcd's Compact). Persisted. Reads see it at once; the index's
 * entries are pruned in slices (mvcc_index_compaction_step, also run by log compaction steps). */
mv_err mvcc_compact(mvcc *s, int64_t rev, int64_t *header_revision);
/* Prunes for about budget_us: 1 while more remains, 0 when done. Never stalls the loop longer. */
int mvcc_index_compaction_step(mvcc *s, uint64_t budget_us);
bool mvcc_index_compaction_pending(const mvcc *s);

/* The commit rule: is there an unsynced batch; make it durable (one fdatasync). */
bool mvcc_has_batch(const mvcc *s);
/* A batch, or log compaction's new file waiting for its fdatasync: either makes a job for the thread
 * (a job with no batch makes nothing durable that a reply waits for). */
bool mvcc_wants_job(const mvcc *s);
int mvcc_commit(mvcc *s); /* 0 or -errno; on failure the caller exits */
/* The same in steps, so that the batch's write and fdatasync run on a helper thread and a stalled
 * disk stalls no read: hand the batch over as a job (*job NULL when nothing needs the thread), run
 * it there (thread-safe), then report its outcome on the loop thread. One job at a time. */
struct log_job;
int mvcc_write_batch(mvcc *s, struct log_job **job);
int mvcc_run_job(struct log_job *job);
void mvcc_sync_finished(mvcc *s, int rc);

/* --- leases (storage/lease.c): grants, revokes and attached keys, persisted in the log. Expiry
 * timing belongs to the server; here a lease is just an id, its granted TTL and its keys. --- */
bool mvcc_lease_exists(const mvcc *s, int64_t lease);
mv_err mvcc_lease_grant(mvcc *s, int64_t id, int64_t ttl);
/* Deletes the lease's keys in one revision (none if it has no keys) and forgets the lease.
 * Fills *out like a DeleteRange (prev_kvs of the deleted keys when with_prev). */
void mvcc_lease_revoke(mvcc *s, int64_t id, bool with_prev, mv_result *out);
int64_t mvcc_lease_ttl(const mvcc *s, int64_t id); /* granted TTL, 0 if unknown */
/* The keys attached to a lease, sorted, copied into arena a. */
size_t mvcc_lease_keys(const mvcc *s, int64_t id, mv_arena *a, mv_bytes **keys);
typedef void (*mv_lease_fn)(void *ctx, int64_t id, int64_t ttl);
void mvcc_lease_foreach(const mvcc *s, mv_lease_fn fn, void *ctx); /* ascending ids */
size_t mvcc_lease_count(const mvcc *s);

/* --- history, for watch (storage/mvcc_history.c) --- */
enum mv_event_type { MV_EVENT_PUT = 0, MV_EVENT_DELETE = 1 };
typedef struct mv_event {
    int type;
    mv_kv kv;       /* a delete carries the key and mod_revision only, as etcd's */
    mv_kv *prev_kv; /* when asked for and still in history (the key at revision - 1) */
} mv_event;
/* fn returns false to stop. */
typedef bool (*mv_event_fn)(void *ctx, const mv_event *ev);
/* Calls fn for each change made at revision rev, in order. MV_ERR_COMPACTED if rev is below the
 * compaction revision, MV_ERR_FUTURE_REV above the current revision. Memory comes from arena a. */
mv_err mvcc_events_at(mvcc *s, int64_t rev, bool with_prev_kv, mv_arena *a, mv_event_fn fn, void *ctx);
/* Called each time a new revision is made (before it is durable: callers' output waits for the
 * commit, as all output does). One hook; NULL clears it. */
typedef void (*mv_revision_hook)(void *ctx, int64_t rev);
void mvcc_on_revision(mvcc *s, mv_revision_hook fn, void *ctx);
/* An arena for a caller's own results (watch keeps each revision's events in one), freed at once. */
mv_arena *mv_arena_new(void);
void *mv_arena_alloc(mv_arena *a, size_t size); /* zeroed, 16-byte aligned; aborts on OOM */
void mv_arena_free(mv_arena *a);

/* Log compaction (space reclaim): sealed segments are rewritten without what the store no longer
 * needs, a slice at a time, so the loop never stalls; small results are merged and emptied segments
 * unlinked. A rewritten file is switched in only once the decisions it rests on are durable, so a
 * run makes progress only while the caller keeps committing (the server commits every loop turn).
 * mvcc_compact restarts a running run. storage/compactor.c. */
bool mvcc_log_compaction_wanted(const mvcc *s);
/* seal_current: also seal the segment taking appends, so it is compacted too (Defragment). */
void mvcc_log_compaction_start(mvcc *s, bool seal_current);
bool mvcc_log_compaction_running(const mvcc *s);
/* Works for about budget_us. 1 while work remains, 0 when done, -errno on an I/O failure: the run is
 * then abandoned (its temporary file removed) and the store goes on as it was. */
int mvcc_log_compaction_step(mvcc *s, uint64_t budget_us);

/* --- maintenance (storage/snapshot.c) --- */
/* HashKV: a 32-bit hash of every key revision the store holds at or below rev (0 = current): key,
 * revision, sub-revision, create revision, version, lease, tombstone flag and value, in key then
 * revision order (XXH3-64 folded to 32 bits). Equal for equal logical content, whatever the log's
 * layout. MV_ERR_COMPACTED / MV_ERR_FUTURE_REV as Range. *hash_rev gets the revision hashed. */
mv_err mvcc_hash_kv(mvcc *s, int64_t rev, uint32_t *hash, int64_t *hash_rev);
/* The same in slices (storage/hash_kv.c), for the loop: begin (NULL with *err for a compacted or
 * future revision), step until *done (a compaction meanwhile starts the walk again, or fails it with
 * MV_ERR_COMPACTED once rev is compacted), then the result; free in any state. */
typedef struct mv_hash_job mv_hash_job;
mv_hash_job *mvcc_hash_kv_begin(mvcc *s, int64_t rev, mv_err *err);
mv_err mvcc_hash_kv_step(mvcc *s, mv_hash_job *j, uint64_t budget_us, bool *done);
void mvcc_hash_kv_result(const mv_hash_job *j, uint32_t *hash, int64_t *hash_rev, int64_t *compact_rev);
void mvcc_hash_kv_free(mv_hash_job *j);
/* A consistent copy of the store as one byte stream: "CETCDSNP" header with the segment table,
 * the segments up to their durable bytes (never a write a crash could lose; no commit of its own),
 * and an XXH3-64 of all that at the end. */
typedef struct mv_snapshot mv_snapshot;
mv_snapshot *mvcc_snapshot_begin(mvcc *s, char *err, size_t errlen);
uint64_t mvcc_snapshot_size(const mv_snapshot *sn);
/* Copies up to n bytes; returns the count (0 at the end) or -errno. */
long mvcc_snapshot_read(mv_snapshot *sn, uint8_t *buf, size_t n);
void mvcc_snapshot_end(mv_snapshot *sn);
/* Restores a snapshot file into dir, which must not exist or be empty. 0, or -1 with err set. */
int mvcc_restore(const char *snapshot_file, const char *dir, char *err, size_t errlen);
/* The same from bytes in memory (size is exactly the snapshot's). */
int mvcc_restore_bytes(const uint8_t *d, uint64_t size, const char *dir, char *err, size_t errlen);
/* The length of the snapshot that starts at d (its header says), 0 if d does not start with one. */
uint64_t mvcc_snapshot_length(const uint8_t *d, uint64_t size);
/* Reads a whole file into a malloc'd buffer; NULL with err set on failure. */
uint8_t *mvcc_read_file(const char *path, uint64_t *size, char *err, size_t errlen);

/* --- the member's state (storage/state_blobs.c): small opaque blobs that src/ encodes, made durable
 * by the commit as any write (its reply waits for it), kept across log compaction; exports and
 * builds carry the auth state --- */
enum mv_state_kind { MV_STATE_AUTH, MV_STATE_ALARMS, MV_STATE_DOWNGRADE, MV_STATE_KINDS };
/* The quota refuses an auth state that does not fit (MV_ERR_NO_SPACE), never the alarms nor the
 * downgrade job (etcd's quota guards only puts, txns and lease grants). A blob is
 * never empty once saved: log compaction does not keep an empty one, so an older one could return. */
mv_err mvcc_state_save(mvcc *s, enum mv_state_kind kind, const uint8_t *blob, size_t len);
mv_bytes mvcc_state(const mvcc *s, enum mv_state_kind kind);     /* empty if never saved */
mv_err mvcc_auth_save(mvcc *s, const uint8_t *blob, size_t len); /* mvcc_state_save(AUTH) */
mv_bytes mvcc_auth_state(const mvcc *s);                         /* mvcc_state(AUTH) */

/* --- export and import, for snapshots in another format (etcd's): storage/export.c --- */
/* One change of the history, as etcd's key bucket holds it. */
typedef struct mv_change {
    mv_bytes key, value;
    int64_t mod_revision; /* the main revision */
    uint32_t sub_revision;
    int64_t create_revision, version, lease;
    bool tombstone; /* a delete: key and revisions only */
} mv_change;
typedef struct mv_lease_info {
    int64_t id, ttl;
} mv_lease_info;

/* A consistent view of the store's durable state as of its start: every change still held, in
 * revision order, read from private copies of the log in slices (memory bounded by one record), and
 * the leases. While any export is open, revision compaction of the index waits (Compact is answered
 * and recorded at once; the history it drops goes when the last export ends). */
typedef struct mv_export mv_export;
mv_export *mvcc_export_begin(mvcc *s, char *err, size_t errlen);
/* The next change: 1 with *c filled (valid until the next call), 0 at the end, -errno on a read or
 * checksum failure. Each call reads at most one log record. */
int mvcc_export_next(mv_export *x, mv_change *c);
void mvcc_export_rewind(mv_export *x); /* back to the first change, for a second pass */
/* After a full pass: the revision and the compaction revision (-1 if none) of the view. */
int64_t mvcc_export_revision(const mv_export *x);
int64_t mvcc_export_compact_revision(const mv_export *x);
size_t mvcc_export_leases(const mv_export *x, const mv_lease_info **leases);
mv_bytes mvcc_export_auth_state(const mv_export *x); /* durable auth state, empty if none */
void mvcc_export_end(mv_export *x);

/* Builds a new data dir (missing or empty) from changes in (revision, sub-revision) order, leases
 * first, with the given compaction revision (-1 for none). Finish commits and closes it; the
 * store then opens it as any other. Out of order or malformed input fails with err set. */
typedef struct mv_builder mv_builder;
mv_builder *mvcc_build_begin(const char *dir, int64_t compact_revision, char *err, size_t errlen);
int mvcc_build_lease(mv_builder *b, int64_t id, int64_t ttl);
int mvcc_build_auth_state(mv_builder *b, const uint8_t *blob, size_t len);
int mvcc_build_change(mv_builder *b, const mv_change *c);
/* 0, or -1 with err set. Frees b either way; after a failure the dir holds a partial store. */
int mvcc_build_finish(mv_builder *b, char *err, size_t errlen);
const char *mvcc_build_error(const mv_builder *b); /* why the last call failed */

uint64_t mvcc_db_size(const mvcc *s);
uint64_t mvcc_db_size_in_use(const mvcc *s); /* estimate of the bytes still needed */
uint64_t mvcc_key_count(const mvcc *s);
uint64_t mvcc_fsync_count(const mvcc *s);

#endif
