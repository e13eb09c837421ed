/* mvcc_history.c: the events of one revision, read back from its log record, for watch replay and
 * live delivery alike. Puts carry all their fields in the record; prev_kv is the key at revision-1,
 * as etcd's watch server fetches it. */
#include "le.h"
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

/* Decodes one change into ev; returns bytes used, 0 if malformed. */
static size_t decode_change(const uint8_t *p, size_t left, int64_t rev, mv_event *ev) {
    if (left < 5) return 0;
    size_t used = 5 + (size_t)le_u32(p + 1);
    if (used > left) return 0;
    memset(ev, 0, sizeof *ev);
    ev->kv.key = (mv_bytes){p + 5, used - 5};
    ev->kv.mod_revision = rev;
    if (p[0] == CHANGE_DELETE) {
        ev->type = MV_EVENT_DELETE;
        return used;
    }
    if (p[0] != CHANGE_PUT || used + 28 > left) return 0;
    ev->type = MV_EVENT_PUT;
    ev->kv.lease = le_i64(p + used);
    ev->kv.create_revision = le_i64(p + used + 8);
    ev->kv.version = le_i64(p + used + 16);
    size_t vlen = le_u32(p + used + 24);
    used += 28;
    if (used + vlen > left) return 0;
    ev->kv.value = (mv_bytes){p + used, vlen};
    return used + vlen;
}

static const uint8_t *record_payload(mvcc *s, int64_t rev, size_t *len, mv_arena *a) {
    if (rev < s->rev_base || (size_t)(rev - s->rev_base) >= s->n_rev_places) return NULL;
    log_place where = s->rev_places[rev - s->rev_base];
    if (where.length == 0) return NULL;
    uint8_t *buf = arena_alloc(a, where.length);
    if (log_read(s->log, where, buf) != 0) return NULL;
    *len = where.length;
    return buf;
}

mv_err mvcc_events_at(mvcc *s, int64_t rev, bool with_prev_kv, mv_arena *a, mv_event_fn fn, void *ctx) {
    if (rev > s->revision) return MV_ERR_FUTURE_REV;
    if (rev < s->compact_revision) return MV_ERR_COMPACTED;
    size_t len = 0, at = 0;
    const uint8_t *payload = record_payload(s, rev, &len, a);
    if (!payload) return MV_OK; /* nothing left of this revision (compacted away) */
    while (at < len) {
        mv_event ev;
        size_t used = decode_change(payload + at, len - at, rev, &ev);
        if (!used) return MV_ERR_IO;
        at += used;
        if (with_prev_kv) ev.prev_kv = prev_of(s, ev.kv.key, rev, a);
        if (!fn(ctx, &ev)) break;
    }
    return MV_OK;
}
