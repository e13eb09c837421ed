/* export.c: the store's history as a stream of changes in revision order, and a new store built
 * from such a stream: what a snapshot in another format (etcd's bbolt file) is written from and
 * read into. An export reads private copies of the durable log, so it is consistent and never
 * reveals a write a crash could lose; it holds back revision compaction of the index meanwhile. */
#include "alloc.h"
#include "le.h"
#include "mvcc_internal.h"
#include "storage_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- export ---------- */

struct mv_export {
    mvcc *s;
    log_file_copy *files;
    long n_files;
    log_copy_cursor cursor;
    uint8_t *buf; /* the current record's payload */
    size_t cap, len;
    int64_t record_rev;
    change_iter changes;
    bool in_record;
    int64_t revision, compact_revision;
    int64_t held_at; /* the compaction the index had at the start: the view is the history it holds */
    mv_lease_info *leases;
    size_t n_leases;
    uint8_t *auth;
    size_t auth_len;
};

mv_export *mvcc_export_begin(mvcc *s, char *err, size_t errlen) {
    mv_export *x = xcalloc(1, sizeof *x);
    x->s = s;
    x->n_files = log_copy_segments(s->log, &x->files);
    if (x->n_files < 0) {
        snprintf(err, errlen, "export: %s", strerror((int)-x->n_files));
        free(x);
        return NULL;
    }
    x->n_leases = durable_leases(s, &x->leases);
    const struct state_blob *auth = &s->state[MV_STATE_AUTH];
    if (auth->len && log_place_durable(s->log, auth->place)) {
        x->auth = xmalloc(auth->len);
        memcpy(x->auth, auth->blob, auth->len);
        x->auth_len = auth->len;
    }
    x->revision = 1;
    x->compact_revision = x->held_at = s->compact_revision;
    s->exports_open++;
    return x;
}

void mvcc_export_rewind(mv_export *x) {
    log_copy_cursor_free(&x->cursor);
    x->cursor = (log_copy_cursor){0};
    x->in_record = false;
}

/* Was this change still held when the export began? (Index pruning waits while it is open.) */
static bool change_held(const mv_export *x, int64_t rev, const change *c) {
    /* above the compaction every change is held (keyhist_holds): no index lookup, which was most of
     * an export's time (a 1M-key snapshot spent ~4 us a change in bptree_get) */
    if (rev > x->held_at) return true;
    keyhist *kh = bptree_get(x->s->index, c->key, c->key_len);
    rev_entry *e = kh ? keyhist_find(kh, rev, c->sub_rev) : NULL;
    return e && keyhist_holds(kh, e, x->held_at);
}

static void fill_change(mv_change *out, int64_t rev, const change *c) {
    *out = (mv_change){.key = {c->key, c->key_len},
                       .mod_revision = rev,
                       .sub_revision = c->sub_rev,
                       .tombstone = c->kind == CHANGE_DELETE};
    if (out->tombstone) return;
    out->value = (mv_bytes){c->value, c->value_len};
    out->create_revision = c->create_revision;
    out->version = c->version;
    out->lease = c->lease;
}

/* Moves to the next write record, noting revisions and compaction marks on the way. */
static int next_record(mv_export *x) {
    for (;;) {
        int type;
        int64_t rev;
        int rc = log_copy_next(x->files, x->n_files, &x->cursor, &x->buf, &x->cap, &type, &rev, &x->len);
        if (rc <= 0) return rc;
        if (type == LOG_COMPACT && x->len == 8 && le_i64(x->buf) > x->compact_revision) {
            x->compact_revision = le_i64(x->buf);
            if (x->compact_revision > x->revision) x->revision = x->compact_revision;
        }
        if (type != LOG_PUT && type != LOG_DELETE && type != LOG_TXN) continue;
        if (rev > x->revision) x->revision = rev;
        x->record_rev = rev;
        change_iter_init(&x->changes, x->buf, x->len);
        x->in_record = true;
        return 1;
    }
}

int mvcc_export_next(mv_export *x, mv_change *out) {
    for (;;) {
        if (!x->in_record) {
            int rc = next_record(x);
            if (rc <= 0) return rc;
        }
        change c;
        int got = change_next(&x->changes, &c);
        if (got < 0) return -EIO;
        if (got == 0) {
            x->in_record = false;
            continue;
        }
        if (!change_held(x, x->record_rev, &c)) continue;
        fill_change(out, x->record_rev, &c);
        return 1;
    }
}

int64_t mvcc_export_revision(const mv_export *x) {
    return x->revision;
}

int64_t mvcc_export_compact_revision(const mv_export *x) {
    return x->compact_revision;
}

size_t mvcc_export_leases(const mv_export *x, const mv_lease_info **leases) {
    *leases = x->leases;
    return x->n_leases;
}

mv_bytes mvcc_export_auth_state(const mv_export *x) {
    return (mv_bytes){x->auth, x->auth_len};
}

void mvcc_export_end(mv_export *x) {
    if (!x) return;
    x->s->exports_open--;
    for (long i = 0; i < x->n_files; i++)
        sio_close(x->files[i].fd);
    free(x->files);
    free(x->leases);
    free(x->auth);
    free(x->buf);
    log_copy_cursor_free(&x->cursor);
    free(x);
}

/* ---------- building a store from changes ---------- */

#define BUILD_COMMIT_BYTES (8u << 20)

struct mv_builder {
    mvcc *s;
    int64_t compact_revision;
    bool mark_written, any_change;
    int64_t rev; /* the revision of the record being built */
    uint32_t next_sub;
    uint8_t *payload;
    size_t len, cap;
    int record_type;
    uint64_t uncommitted; /* bytes appended since the last commit */
    char error[256];
};

mv_builder *mvcc_build_begin(const char *dir, int64_t compact_revision, char *err, size_t errlen) {
    mvcc_options opt = {.fsync = true};
    mvcc *s = mvcc_open(dir, &opt, err, errlen);
    if (!s) return NULL;
    if (mvcc_revision(s) != 1 || mvcc_lease_count(s) != 0) {
        snprintf(err, errlen, "%s: the data dir already holds a store", dir);
        mvcc_close(s);
        return NULL;
    }
    mv_builder *b = xcalloc(1, sizeof *b);
    b->s = s;
    b->compact_revision = compact_revision;
    return b;
}

const char *mvcc_build_error(const mv_builder *b) {
    return b->error;
}

static int build_fail(mv_builder *b, const char *why, int64_t rev) {
    snprintf(b->error, sizeof b->error, "%s (at revision %lld)", why, (long long)rev);
    return -1;
}

/* Appends the record being built, committing now and then so memory stays bounded. */
static int flush_record(mv_builder *b) {
    if (b->len == 0) return 0;
    log_append(b->s->log, b->record_type, b->rev, b->payload, b->len);
    b->uncommitted += b->len;
    b->len = 0;
    if (b->uncommitted < BUILD_COMMIT_BYTES) return 0;
    b->uncommitted = 0;
    int rc = mvcc_commit(b->s);
    return rc < 0 ? build_fail(b, strerror(-rc), b->rev) : 0;
}

static void write_mark(mv_builder *b) {
    if (b->mark_written || b->compact_revision < 0) return;
    uint8_t payload[8];
    le_put(payload, (uint64_t)b->compact_revision, 8);
    log_append(b->s->log, LOG_COMPACT, b->compact_revision, payload, sizeof payload);
    b->mark_written = true;
}

int mvcc_build_lease(mv_builder *b, int64_t id, int64_t ttl) {
    if (b->any_change) return build_fail(b, "leases must come before changes", b->rev);
    if (id == 0 || mvcc_lease_exists(b->s, id)) return build_fail(b, "lease id 0 or given twice", 0);
    return mvcc_lease_grant(b->s, id, ttl) == MV_OK ? 0 : build_fail(b, "lease grant refused", 0);
}

int mvcc_build_auth_state(mv_builder *b, const uint8_t *blob, size_t len) {
    if (b->any_change) return build_fail(b, "the auth state must come before changes", b->rev);
    return mvcc_auth_save(b->s, blob, len) == MV_OK ? 0 : build_fail(b, "auth state refused", 0);
}

static int start_revision(mv_builder *b, int64_t rev) {
    if (flush_record(b) < 0) return -1;
    if (rev > b->compact_revision) write_mark(b);
    b->rev = rev;
    b->next_sub = 0;
    b->record_type = 0;
    return 0;
}

int mvcc_build_change(mv_builder *b, const mv_change *c) {
    bool same = b->any_change && c->mod_revision == b->rev;
    if (c->mod_revision < 2 || (b->any_change && c->mod_revision < b->rev) ||
        (same && c->sub_revision < b->next_sub))
        return build_fail(b, "changes out of revision order", c->mod_revision);
    if (c->key.len == 0) return build_fail(b, "a change with an empty key", c->mod_revision);
    if (!same && start_revision(b, c->mod_revision) < 0) return -1;
    b->any_change = true;
    if (c->sub_revision != b->next_sub) /* a gap (etcd compacted part of the revision): keep the subs */
        change_encode(&b->payload, &b->len, &b->cap,
                      &(change){.kind = CHANGE_SUBREV, .sub_rev = c->sub_revision});
    change ch = {.kind = c->tombstone ? CHANGE_DELETE : CHANGE_PUT,
                 .key = c->key.data,
                 .key_len = c->key.len,
                 .lease = c->lease,
                 .create_revision = c->create_revision,
                 .version = c->version,
                 .value = c->value.data,
                 .value_len = c->value.len};
    change_encode(&b->payload, &b->len, &b->cap, &ch);
    int type = c->tombstone ? LOG_DELETE : LOG_PUT;
    b->record_type = b->record_type == 0 || b->record_type == type ? type : LOG_TXN;
    b->next_sub = c->sub_revision + 1;
    return 0;
}

int mvcc_build_finish(mv_builder *b, char *err, size_t errlen) {
    int rc = flush_record(b);
    if (rc == 0) {
        write_mark(b);
        int crc = mvcc_commit(b->s);
        if (crc < 0) rc = build_fail(b, strerror(-crc), b->rev);
    }
    if (rc < 0) snprintf(err, errlen, "%s", b->error);
    mvcc_close(b->s);
    free(b->payload);
    free(b);
    return rc;
}
