/* compactor.c: log compaction (space reclaim). Sealed segments are rewritten keeping only what the
 * store still needs: changes the index holds, grants of leases still granted, the latest compaction
 * mark. Small results are merged into one file. Work goes in slices of about a millisecond; new
 * places are published only once the new file is switched in, and only after every decision it
 * rests on is durable. A revision compaction restarts the run. See docs/architecture.md, "Storage". */
#include "alloc.h"
#include "le.h"
#include "mvcc_internal.h"
#include "storage_io.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MIN_GARBAGE_BYTES (1u << 20)
#define RECORDS_PER_CLOCK_CHECK 64

/* A value that moves: its entry gets the new place once the rewrite is switched in. */
typedef struct moved_value {
    keyhist *kh;
    int64_t main_rev;
    uint32_t sub_rev;
    uint64_t offset;
} moved_value;

/* A record that moves (or, with a zero place, is gone): the revision table or a lease learns it. */
typedef struct moved_record {
    int64_t id; /* revision, or lease id (> 0), or a state blob's record type negated */
    log_place from, to;
} moved_record;

typedef struct moved_list {
    void *items;
    size_t n, cap, size;
} moved_list;

typedef struct log_compaction {
    uint32_t *segments; /* the sealed segments of this run, oldest first */
    size_t n_segments, next;
    uint64_t cursor;
    log_rewrite *rw;       /* the file being built, standing for segments[first_input..next) */
    uint32_t first_input;  /* its first segment's id */
    bool finish_due;       /* the file is complete: switch it in once its decisions are durable */
    bool sync_asked;       /* and its fdatasync was handed to the sync thread (log_request_side_sync) */
    uint64_t decided_mark; /* the log's appended mark at the last keep/drop decision */
    moved_list values, revisions, leases;
    uint8_t *kept; /* the payload being rebuilt */
    size_t kept_len, kept_cap;
} log_compaction;

bool mvcc_log_compaction_running(const mvcc *s) {
    return s->compaction != NULL;
}

bool mvcc_log_compaction_wanted(const mvcc *s) {
    uint64_t total = log_total_bytes(s->log);
    uint64_t garbage = total > s->live_bytes ? total - s->live_bytes : 0;
    bool grew = total > s->bytes_after_compaction + MIN_GARBAGE_BYTES;
    return !s->compaction && grew && garbage > MIN_GARBAGE_BYTES && garbage > total / 2;
}

void log_compaction_free(mvcc *s) {
    log_compaction *c = s->compaction;
    if (!c) return;
    if (c->sync_asked) log_cancel_side_sync(s->log); /* before the file goes (log.h says why it may) */
    if (c->rw) log_rewrite_abort(c->rw);
    free(c->segments);
    free(c->values.items);
    free(c->revisions.items);
    free(c->leases.items);
    free(c->kept);
    free(c);
    s->compaction = NULL;
}

void mvcc_log_compaction_start(mvcc *s, bool seal_current) {
    if (s->compaction) return;
    if (seal_current) log_seal(s->log);
    log_compaction *c = xcalloc(1, sizeof *c);
    c->n_segments = log_sealed_segments(s->log, &c->segments);
    c->values.size = sizeof(moved_value);
    c->revisions.size = c->leases.size = sizeof(moved_record);
    s->compaction = c;
}

/* Decisions rest on the index, which a revision compaction changes: start over from the oldest
 * segment, with every segment sealed so far (those a Defragment sealed included). */
void log_compaction_restart(mvcc *s) {
    if (!s->compaction) return;
    log_compaction_free(s);
    mvcc_log_compaction_start(s, false);
}

static void *moved_add(moved_list *m) {
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 256;
        m->items = xrealloc(m->items, m->cap * m->size);
    }
    return (uint8_t *)m->items + m->size * m->n++;
}

static void note_record(moved_list *m, int64_t id, log_place from, log_place to) {
    *(moved_record *)moved_add(m) = (moved_record){id, from, to};
}

static void kept_add(log_compaction *c, const uint8_t *p, size_t n) {
    if (c->kept_len + n > c->kept_cap) {
        size_t cap = c->kept_cap ? c->kept_cap : 256;
        while (cap < c->kept_len + n)
            cap *= 2;
        c->kept = xrealloc(c->kept, cap);
        c->kept_cap = cap;
    }
    memcpy(c->kept + c->kept_len, p, n);
    c->kept_len += n;
}

static bool same_place(log_place a, log_place b) {
    return a.segment == b.segment && a.offset == b.offset;
}

/* Is this change still needed: its entry is in the index, and made by this very record. */
static bool change_is_live(mvcc *s, int64_t rev, const change *c, log_place where) {
    keyhist *kh = bptree_get(s->index, c->key, c->key_len);
    rev_entry *e = kh ? keyhist_find(kh, rev, c->sub_rev) : NULL;
    if (!e) return false;
    if (c->kind == CHANGE_DELETE) return same_place(revision_place(s, rev), where);
    log_place value = {.segment = where.segment, .offset = where.offset + c->value_at};
    return same_place(value_log_place(e->value), value);
}

/* Copies a live change into the rebuilt payload, with a sub-revision marker when changes before it
 * were dropped, so that it keeps its sub-revision. */
static void keep_change(mvcc *s, int64_t rev, const change *ch, const uint8_t *payload, uint32_t *next_sub) {
    log_compaction *c = s->compaction;
    if (ch->sub_rev != *next_sub) {
        uint8_t marker[CHANGE_SUBREV_BYTES];
        change_encode_subrev(marker, ch->sub_rev);
        kept_add(c, marker, sizeof marker);
    }
    *next_sub = ch->sub_rev + 1;
    if (ch->kind == CHANGE_PUT) {
        keyhist *kh = bptree_get(s->index, ch->key, ch->key_len);
        *(moved_value *)moved_add(&c->values) =
            (moved_value){kh, rev, ch->sub_rev, c->kept_len + (ch->value_at - ch->at)};
    }
    kept_add(c, payload + ch->at, ch->bytes);
}

static int rewrite_changes(mvcc *s, int type, int64_t rev, const uint8_t *payload, size_t len,
                           log_place where) {
    log_compaction *c = s->compaction;
    size_t first_moved = c->values.n;
    uint32_t next_sub = 0;
    change_iter it;
    change ch;
    int got;
    c->kept_len = 0;
    change_iter_init(&it, payload, len);
    while ((got = change_next(&it, &ch)) == 1)
        if (change_is_live(s, rev, &ch, where)) keep_change(s, rev, &ch, payload, &next_sub);
    if (got < 0) return -1;
    if (c->kept_len == 0) { /* every change of this revision was compacted away */
        note_record(&c->revisions, rev, where, (log_place){0});
        return 0;
    }
    log_place now = log_rewrite_append(c->rw, type, rev, c->kept, c->kept_len);
    moved_value *mv = c->values.items;
    for (size_t i = first_moved; i < c->values.n; i++)
        mv[i].offset += now.offset;
    note_record(&c->revisions, rev, where, now);
    return 0;
}

static bool record_is_live(mvcc *s, int type, const uint8_t *payload, size_t len, log_place where) {
    switch (type) {
    case LOG_LEASE_GRANT:
        return len == 16 && lease_grant_is_live(s, le_i64(payload), where);
    case LOG_LEASE_REVOKE: /* older segments, rewritten first in this run, hold no stale grant */
    case LOG_CHECKPOINT:
    case LOG_COVERS: /* each file written here gets its own */
        return false;
    case LOG_COMPACT:
        return len == 8 && le_i64(payload) == s->compact_revision;
    case LOG_AUTH:
    case LOG_ALARMS:
    case LOG_DOWNGRADE:
        return state_record_is_live(s, type, where);
    default:
        return true; /* a type this version does not know is kept as it is */
    }
}

static int rewrite_record(void *ctx, int type, int64_t rev, const uint8_t *payload, size_t len,
                          log_place where) {
    mvcc *s = ctx;
    log_compaction *c = s->compaction;
    if (type == LOG_PUT || type == LOG_DELETE || type == LOG_TXN)
        return rewrite_changes(s, type, rev, payload, len, where);
    if (!record_is_live(s, type, payload, len, where)) return 0;
    log_place now = log_rewrite_append(c->rw, type, rev, payload, len);
    if (type == LOG_LEASE_GRANT) note_record(&c->leases, le_i64(payload), where, now);
    if (state_kind_of_record(type) >= 0) note_record(&c->leases, -type, where, now); /* no lease id */
    return 0;
}

/* The new file is in place: point the index, the revision table and the leases at it. */
static void publish_places(mvcc *s, uint32_t segment) {
    log_compaction *c = s->compaction;
    moved_value *mv = c->values.items;
    for (size_t i = 0; i < c->values.n; i++) {
        rev_entry *e = keyhist_find(mv[i].kh, mv[i].main_rev, mv[i].sub_rev);
        assert(e && !(e->flags & REV_PENDING));
        e->value = value_place_of(
            (log_place){.segment = segment, .length = e->value.length, .offset = mv[i].offset});
    }
    moved_record *mr = c->revisions.items;
    for (size_t i = 0; i < c->revisions.n; i++) {
        assert(mr[i].id < s->revs.base || same_place(revision_place(s, mr[i].id), mr[i].from));
        remember_revision_place(s, mr[i].id, mr[i].to);
    }
    mr = c->leases.items; /* a lease revoked and granted again since has a grant of its own now */
    for (size_t i = 0; i < c->leases.n; i++) {
        if (mr[i].id < 0) /* a state blob: moved only if not saved again since */
            state_record_moved(s, (int)-mr[i].id, mr[i].from, mr[i].to);
        else
            lease_grant_moved(s, mr[i].id, mr[i].from, mr[i].to);
    }
    c->values.n = c->revisions.n = c->leases.n = 0;
}

/* The new file's fdatasync leaves the loop: it rides with the next batch to the sync thread (or goes
 * alone). 1 once it is durable (or fsync is off), 0 while waiting, -errno if it failed. */
static int sync_output(mvcc *s) {
    log_compaction *c = s->compaction;
    if (!s->opt.fsync) return 1;
    int rc;
    if (!c->sync_asked) {
        rc = log_rewrite_prepare(c->rw, c->segments[c->next - 1]);
        if (rc < 0) return rc;
        log_request_side_sync(s->log, rc);
        c->sync_asked = true;
        return 0;
    }
    if (!log_side_sync_result(s->log, &rc)) return 0;
    if (rc < 0) return rc;
    log_rewrite_synced(c->rw);
    return 1;
}

static int finish_output(mvcc *s) {
    log_compaction *c = s->compaction;
    uint32_t last = c->segments[c->next - 1];
    bool switched_in;
    int rc = log_rewrite_finish(c->rw, last, &switched_in);
    c->rw = NULL;
    c->finish_due = false;
    c->sync_asked = false;
    if (switched_in) publish_places(s, c->first_input);
    return rc;
}

static uint64_t output_target_bytes(const mvcc *s) {
    return log_segment_bytes(s->log) / 2;
}

/* Scans a slice of the current input segment into the output. 1 when more remains, 0 or -errno. */
static int scan_slice(mvcc *s) {
    log_compaction *c = s->compaction;
    uint32_t id = c->segments[c->next];
    if (!c->rw) {
        if (!(c->rw = log_rewrite_begin(s->log, id))) return errno ? -errno : -EIO;
        c->first_input = id;
    }
    int rc = log_segment_scan(s->log, id, &c->cursor, RECORDS_PER_CLOCK_CHECK, rewrite_record, s);
    c->decided_mark = log_appended_mark(s->log);
    if (rc != 0) return rc;
    c->next++;
    c->cursor = 0;
    c->finish_due = c->next == c->n_segments || log_rewrite_bytes(c->rw) >= output_target_bytes(s);
    return 1;
}

int mvcc_log_compaction_step(mvcc *s, uint64_t budget_us) {
    log_compaction *c = s->compaction;
    if (!c) return 0;
    uint64_t deadline = sio_now_us() + budget_us;
    if (!index_prune(s, deadline)) return 1; /* keep decisions and kept pointers need a pruned index */
    while (c->finish_due || c->next < c->n_segments) {
        int rc;
        if (c->finish_due) {
            if (!log_is_durable(s->log, c->decided_mark)) return 1; /* the next commit settles it */
            rc = sync_output(s);
            if (rc == 0) return 1; /* the sync thread has it */
            if (rc > 0) rc = finish_output(s);
        } else if (!log_has_segment(s->log, c->segments[c->next])) {
            c->next++; /* gone: nothing to do for it */
            continue;
        } else if (!log_segment_settled(s->log, c->segments[c->next])) {
            return 1; /* a sealed segment's last batch is not yet durable: the next commit settles it */
        } else {
            rc = scan_slice(s);
        }
        if (rc < 0) {
            log_compaction_free(s);
            return rc;
        }
        if (sio_now_us() >= deadline) break;
    }
    if (c->finish_due || c->next < c->n_segments) return 1;
    if (log_closes_pending(s->log)) return 1; /* the old files are freed on the sync thread: wait */
    s->bytes_after_compaction = log_total_bytes(s->log);
    log_compaction_free(s);
    return 0;
}
