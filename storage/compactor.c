/* compactor.c: log compaction (space reclaim). Each sealed segment is rewritten keeping only the
 * changes the index still holds, in slices of about a millisecond; once the new file is renamed in,
 * the index's value places are moved to it. Revision compaction meanwhile aborts the run (it frees
 * histories this holds pointers to); the next trigger starts over. */
#include "le.h"
#include "mvcc_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIN_GARBAGE_BYTES (1u << 20)
#define RECORDS_PER_CLOCK_CHECK 64

/* A value that moves: its entry gets the new offset once the rewrite is switched in. */
typedef struct moved_value {
    keyhist *kh;
    int64_t main_rev;
    uint32_t sub_rev;
    uint64_t offset;
} moved_value;

typedef struct log_compaction {
    uint32_t *segments;
    size_t n_segments, next;
    uint64_t cursor;
    log_rewrite *rw;
    moved_value *moved;
    size_t n_moved, cap_moved;
    uint8_t *kept; /* the payload being rebuilt */
    size_t kept_len, kept_cap;
} log_compaction;

bool mvcc_log_compaction_running(const mvcc *s) {
    return s->compaction != NULL;
}

bool mvcc_log_compaction_wanted(const mvcc *s) {
    uint64_t total = log_total_bytes(s->log);
    uint64_t garbage = total > s->live_bytes ? total - s->live_bytes : 0;
    return !s->compaction && garbage > MIN_GARBAGE_BYTES && garbage > total / 2;
}

void log_compaction_free(mvcc *s) {
    log_compaction *c = s->compaction;
    if (!c) return;
    if (c->rw) log_rewrite_abort(c->rw);
    free(c->segments);
    free(c->moved);
    free(c->kept);
    free(c);
    s->compaction = NULL;
}

void log_compaction_abort(mvcc *s) {
    log_compaction_free(s);
}

void mvcc_log_compaction_start(mvcc *s, bool seal_current) {
    if (s->compaction) return;
    if (seal_current) log_seal(s->log);
    log_compaction *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->n_segments = log_sealed_segments(s->log, &c->segments);
    s->compaction = c;
}

static void kept_add(log_compaction *c, const uint8_t *p, size_t n) {
    if (c->kept_len + n > c->kept_cap) {
        size_t cap = c->kept_cap ? c->kept_cap : 256;
        while (cap < c->kept_len + n)
            cap *= 2;
        c->kept = realloc(c->kept, cap);
        if (!c->kept) abort();
        c->kept_cap = cap;
    }
    memcpy(c->kept + c->kept_len, p, n);
    c->kept_len += n;
}

static void note_moved(log_compaction *c, keyhist *kh, int64_t rev, uint32_t sub, uint64_t rel) {
    if (c->n_moved == c->cap_moved) {
        c->cap_moved = c->cap_moved ? c->cap_moved * 2 : 256;
        c->moved = realloc(c->moved, c->cap_moved * sizeof *c->moved);
        if (!c->moved) abort();
    }
    c->moved[c->n_moved++] = (moved_value){kh, rev, sub, rel};
}

/* Size of the change at p (0 if malformed) and, for a put, where its value starts. */
static size_t change_size(const uint8_t *p, size_t left, size_t *value_at) {
    if (left < 5) return 0;
    size_t size = 5 + (size_t)le_u32(p + 1);
    if (p[0] == CHANGE_DELETE) return size <= left ? size : 0;
    if (size + 28 > left) return 0;
    *value_at = size + 28;
    size += 28 + le_u32(p + size + 24);
    return size <= left ? size : 0;
}

/* Keeps a change if the index still has the entry it made. Puts note their value's new offset
 * relative to the rebuilt payload; the record's place is added when it is written. */
static bool keep_change(mvcc *s, int64_t rev, uint32_t sub, const uint8_t *p, size_t size, size_t value_at) {
    log_compaction *c = s->compaction;
    keyhist *kh = bptree_get(s->index, p + 5, le_u32(p + 1));
    rev_entry *e = kh ? keyhist_find(kh, rev, sub) : NULL;
    if (!e) return false;
    if (p[0] == CHANGE_PUT) note_moved(c, kh, rev, sub, c->kept_len + value_at);
    kept_add(c, p, size);
    return true;
}

static int rewrite_changes(mvcc *s, int type, int64_t rev, const uint8_t *payload, size_t len) {
    log_compaction *c = s->compaction;
    size_t first_moved = c->n_moved, at = 0;
    c->kept_len = 0;
    for (uint32_t sub = 0; at < len; sub++) {
        size_t value_at = 0, size = change_size(payload + at, len - at, &value_at);
        if (!size) return -1;
        keep_change(s, rev, sub, payload + at, size, value_at);
        at += size;
    }
    if (c->kept_len == 0) { /* every change of this revision was compacted away */
        remember_revision_place(s, rev, (log_place){0});
        return 0;
    }
    log_place where = log_rewrite_append(c->rw, type, rev, c->kept, c->kept_len);
    for (size_t i = first_moved; i < c->n_moved; i++)
        c->moved[i].offset += where.offset;
    remember_revision_place(s, rev, where);
    return 0;
}

static int rewrite_record(void *ctx, int type, int64_t rev, const uint8_t *payload, size_t len,
                          log_place where) {
    mvcc *s = ctx;
    (void)where;
    if (type == LOG_PUT || type == LOG_DELETE || type == LOG_TXN)
        return rewrite_changes(s, type, rev, payload, len);
    log_rewrite_append(s->compaction->rw, type, rev, payload, len);
    return 0;
}

/* The rewrite is in place: point the moved values at it. */
static void move_values(mvcc *s) {
    log_compaction *c = s->compaction;
    for (size_t i = 0; i < c->n_moved; i++) {
        moved_value *m = &c->moved[i];
        rev_entry *e = keyhist_find(m->kh, m->main_rev, m->sub_rev);
        if (e) e->value.offset = m->offset;
    }
    c->n_moved = 0;
}

static int finish_segment(mvcc *s) {
    log_compaction *c = s->compaction;
    int rc = log_rewrite_finish(c->rw);
    c->rw = NULL;
    if (rc < 0) return rc;
    move_values(s);
    c->next++;
    c->cursor = 0;
    return 0;
}

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int mvcc_log_compaction_step(mvcc *s, uint64_t budget_us) {
    log_compaction *c = s->compaction;
    if (!c) return 0;
    uint64_t deadline = now_us() + budget_us;
    while (c->next < c->n_segments) {
        uint32_t id = c->segments[c->next];
        if (!c->rw && !(c->rw = log_rewrite_begin(s->log, id))) return errno ? -errno : -EIO;
        int rc = log_segment_scan(s->log, id, &c->cursor, RECORDS_PER_CLOCK_CHECK, rewrite_record, s);
        if (rc < 0) return rc;
        if (rc == 0 && (rc = finish_segment(s)) < 0) return rc;
        if (now_us() >= deadline) return c->next < c->n_segments ? 1 : (log_compaction_free(s), 0);
    }
    log_compaction_free(s);
    return 0;
}
