/* mvcc_history.c: the events of one revision, read back from its log record, for watch replay and
 * live delivery alike. Puts carry all their fields in the record; prev_kv is the key at revision-1,
 * as etcd's watch server fetches it. */
#include "mvcc_internal.h"

#include <string.h>

static mv_kv *prev_of(mvcc *s, mv_bytes key, int64_t rev, mv_arena *a) {
    if (rev - 1 < s->compact_revision) return NULL;
    keyhist *kh = bptree_get(s->index, key.data, key.len);
    rev_entry *e = kh ? keyhist_at(kh, rev - 1) : NULL;
    if (!e) return NULL;
    mv_kv *kv = arena_alloc(a, sizeof *kv);
    fill_kv(s, kv, key, e, true, a);
    return kv;
}

static void event_of(const change *c, int64_t rev, mv_event *ev) {
    memset(ev, 0, sizeof *ev);
    ev->kv.key = (mv_bytes){c->key, c->key_len};
    ev->kv.mod_revision = rev;
    if (c->kind == CHANGE_DELETE) {
        ev->type = MV_EVENT_DELETE;
        return;
    }
    ev->type = MV_EVENT_PUT;
    ev->kv.lease = c->lease;
    ev->kv.create_revision = c->create_revision;
    ev->kv.version = c->version;
    ev->kv.value = (mv_bytes){c->value, c->value_len};
}

/* The payload of rev's record; NULL with *err MV_OK if nothing is left of it (compacted away). */
static const uint8_t *record_payload(mvcc *s, int64_t rev, size_t *len, mv_arena *a, mv_err *err) {
    log_place where = revision_place(s, rev);
    *err = MV_OK;
    if (where.length == 0) return NULL;
    uint8_t *buf = arena_alloc_raw(a, where.length);
    if (log_read(s->log, where, buf) != 0) {
        *err = MV_ERR_IO; /* never a silent gap in a watch */
        return NULL;
    }
    *len = where.length;
    return buf;
}

mv_err mvcc_events_at(mvcc *s, int64_t rev, bool with_prev_kv, mv_arena *a, mv_event_fn fn, void *ctx) {
    if (rev > s->revision) return MV_ERR_FUTURE_REV;
    if (rev < s->compact_revision) return MV_ERR_COMPACTED;
    size_t len = 0;
    mv_err err;
    const uint8_t *payload = record_payload(s, rev, &len, a, &err);
    if (!payload) return err;
    change_iter it;
    change c;
    int got;
    change_iter_init(&it, payload, len);
    while ((got = change_next(&it, &c)) == 1) {
        mv_event ev;
        event_of(&c, rev, &ev);
        if (with_prev_kv) ev.prev_kv = prev_of(s, ev.kv.key, rev, a);
        if (!fn(ctx, &ev)) return MV_OK;
    }
    return got < 0 ? MV_ERR_IO : MV_OK;
}
