/* state_blobs.c: the member's small state kept beside the keys (the auth state, the alarms, the
 * downgrade job), each as one opaque blob that src/ encodes; storage only keeps it durable: each save
 * is a log record, replay keeps the last one of each kind, log compaction copies forward only the
 * current one, and exports and builds carry the auth state. */
#include "alloc.h"
#include "mvcc_internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static const int record_type[MV_STATE_KINDS] = {
    [MV_STATE_AUTH] = LOG_AUTH, [MV_STATE_ALARMS] = LOG_ALARMS, [MV_STATE_DOWNGRADE] = LOG_DOWNGRADE};

int state_kind_of_record(int type) {
    for (int k = 0; k < MV_STATE_KINDS; k++)
        if (record_type[k] == type) return k;
    return -1;
}

static void keep_blob(mvcc *s, int kind, const uint8_t *blob, size_t len, log_place where) {
    assert(kind >= 0 && kind < MV_STATE_KINDS);
    struct state_blob *b = &s->state[kind];
    if (b->len) s->live_bytes -= 24u + b->len;
    free(b->blob);
    b->blob = len ? xmalloc(len) : NULL;
    if (len) memcpy(b->blob, blob, len);
    b->len = len;
    b->place = where;
    if (len) s->live_bytes += 24u + len;
}

mv_err mvcc_state_save(mvcc *s, enum mv_state_kind kind, const uint8_t *blob, size_t len) {
    assert(len > 0);
    /* the alarms are how NOSPACE itself is kept: the quota never refuses them; nor a downgrade job,
     * which etcd's quota does not guard either */
    if (kind == MV_STATE_AUTH && over_quota(s, len)) return MV_ERR_NO_SPACE;
    log_place where = log_append(s->log, record_type[kind], s->revision, blob, len);
    keep_blob(s, kind, blob, len, where);
    return MV_OK;
}

mv_bytes mvcc_state(const mvcc *s, enum mv_state_kind kind) {
    assert(kind < MV_STATE_KINDS);
    return (mv_bytes){s->state[kind].blob, s->state[kind].len};
}

mv_err mvcc_auth_save(mvcc *s, const uint8_t *blob, size_t len) {
    return mvcc_state_save(s, MV_STATE_AUTH, blob, len);
}

mv_bytes mvcc_auth_state(const mvcc *s) {
    return mvcc_state(s, MV_STATE_AUTH);
}

int replay_state_record(mvcc *s, int type, const uint8_t *payload, size_t len, log_place where) {
    keep_blob(s, state_kind_of_record(type), payload, len, where);
    return 0;
}

bool state_record_is_live(const mvcc *s, int type, log_place where) {
    int kind = state_kind_of_record(type);
    assert(kind >= 0);
    const struct state_blob *b = &s->state[kind];
    return b->len && b->place.segment == where.segment && b->place.offset == where.offset;
}

void state_record_moved(mvcc *s, int type, log_place from, log_place to) {
    if (state_record_is_live(s, type, from)) s->state[state_kind_of_record(type)].place = to;
}

void state_blobs_free(mvcc *s) {
    for (int k = 0; k < MV_STATE_KINDS; k++) {
        free(s->state[k].blob);
        s->state[k] = (struct state_blob){0};
    }
}
