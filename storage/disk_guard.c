/* disk_guard.c: refuses writes before the data dir's file system is full, so that a write is answered
 * "database space exceeded" (and NOSPACE raised) while every acknowledged one is safe, instead of a
 * failed log write stopping the server. The free space is read now and then (mvcc_check_disk); what
 * the log grew since is subtracted, so a burst between two reads is counted too. */
#include "mvcc_internal.h"

int mvcc_check_disk(mvcc *s, uint64_t *free_bytes) {
    uint64_t bytes;
    int rc = log_free_space(s->log, &bytes);
    if (rc < 0) return rc;
    s->disk.known = true;
    s->disk.free_at_check = bytes;
    s->disk.log_bytes_at_check = log_total_bytes(s->log);
    if (free_bytes) *free_bytes = bytes;
    return 0;
}

/* The free space now: as read, less what the log grew since. */
static uint64_t free_now(const mvcc *s) {
    uint64_t total = log_total_bytes(s->log);
    uint64_t grown = total > s->disk.log_bytes_at_check ? total - s->disk.log_bytes_at_check : 0;
    return s->disk.free_at_check > grown ? s->disk.free_at_check - grown : 0;
}

bool disk_too_low(const mvcc *s, size_t incoming) {
    if (!s->disk.known || s->opt.disk_reserve_bytes == 0) return false;
    return (uint64_t)incoming + s->opt.disk_reserve_bytes > free_now(s);
}

bool mvcc_disk_low(const mvcc *s) {
    return disk_too_low(s, 0);
}
