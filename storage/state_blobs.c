/* auth_state.c: the auth state (users, roles, enabled, auth revision) as one opaque blob that src/
 * encodes; storage only keeps it durable: each save is a log record, replay keeps the last one, log
 * compaction copies forward only the current one, and exports and builds carry it. */
#include "alloc.h"
#include "mvcc_internal.h"

#include <stdlib.h>
#include <string.h>

static void keep_blob(mvcc *s, const uint8_t *blob, size_t len, log_place where) {
    if (s->auth.len) s->live_bytes -= 24u + s->auth.len;
    free(s->auth.blob);
    s->auth.blob = len ? xmalloc(len) : NULL;
    if (len) memcpy(s->auth.blob, blob, len);
    s->auth.len = len;
    s->auth.place = where;
    if (len) s->live_bytes += 24u + len;
}

mv_err mvcc_auth_save(mvcc *s, const uint8_t *blob, size_t len) {
    if (over_quota(s, len)) return MV_ERR_NO_SPACE;
    log_place where = log_append(s->log, LOG_AUTH, s->revision, blob, len);
    keep_blob(s, blob, len, where);
    return MV_OK;
}

mv_bytes mvcc_auth_state(const mvcc *s) {
    return (mv_bytes){s->auth.blob, s->auth.len};
}

int replay_auth_record(mvcc *s, const uint8_t *payload, size_t len, log_place where) {
    keep_blob(s, payload, len, where);
    return 0;
}

bool auth_record_is_live(const mvcc *s, log_place where) {
    return s->auth.len && s->auth.place.segment == where.segment && s->auth.place.offset == where.offset;
}

void auth_record_moved(mvcc *s, log_place from, log_place to) {
    if (auth_record_is_live(s, from)) s->auth.place = to;
}

void auth_state_free(mvcc *s) {
    free(s->auth.blob);
    s->auth = (struct auth_blob){0};
}
