/* snapshot.c: Snapshot's byte stream of the committed segments (cetcd's own format), and restoring
 * such a stream into a new data dir (HashKV is in hash_kv.c). The stream is framed
 * and checksummed so a damaged or foreign file is refused before anything is written. */
#include "alloc.h"
#include "le.h"
#include "mvcc_internal.h"
#include "storage_io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define SNAP_MAGIC "CETCDSNP"
#define SNAP_VERSION 1u
#define SNAP_HEAD_BYTES 16u
#define SNAP_ENTRY_BYTES 16u

/* --- Snapshot --- */

struct mv_snapshot {
    log_file_copy *files;
    long n_files;
    uint8_t *head; /* header and segment table */
    size_t head_len;
    uint64_t size, pos;
    XXH3_state_t *sum;
    uint8_t trailer[8];
};

static void build_head(mv_snapshot *sn) {
    sn->head_len = SNAP_HEAD_BYTES + (size_t)sn->n_files * SNAP_ENTRY_BYTES;
    sn->head = xcalloc(1, sn->head_len);
    memcpy(sn->head, SNAP_MAGIC, 8);
    le_put(sn->head + 8, SNAP_VERSION, 4);
    le_put(sn->head + 12, (uint64_t)sn->n_files, 4);
    sn->size = sn->head_len + 8;
    for (long i = 0; i < sn->n_files; i++) {
        uint8_t *e = sn->head + SNAP_HEAD_BYTES + i * SNAP_ENTRY_BYTES;
        le_put(e, sn->files[i].id, 4);
        le_put(e + 8, sn->files[i].size, 8);
        sn->size += sn->files[i].size;
    }
}

mv_snapshot *mvcc_snapshot_begin(mvcc *s, char *err, size_t errlen) {
    mv_snapshot *sn = xcalloc(1, sizeof *sn);
    sn->n_files = log_copy_segments(s->log, &sn->files);
    if (sn->n_files < 0) {
        snprintf(err, errlen, "snapshot: %s", strerror((int)-sn->n_files));
        free(sn);
        return NULL;
    }
    build_head(sn);
    sn->sum = XXH3_createState();
    if (!sn->sum) out_of_memory();
    XXH3_64bits_reset(sn->sum);
    return sn;
}

uint64_t mvcc_snapshot_size(const mv_snapshot *sn) {
    return sn->size;
}

/* Where byte pos of the stream comes from: the head, a segment (fd, offset), or the trailer. */
static long read_part(mv_snapshot *sn, uint8_t *buf, size_t n) {
    uint64_t at = sn->pos;
    if (at < sn->head_len) {
        size_t take = sn->head_len - (size_t)at < n ? sn->head_len - (size_t)at : n;
        memcpy(buf, sn->head + at, take);
        return (long)take;
    }
    at -= sn->head_len;
    for (long i = 0; i < sn->n_files; i++) {
        if (at >= sn->files[i].size) {
            at -= sn->files[i].size;
            continue;
        }
        size_t take = sn->files[i].size - at < n ? (size_t)(sn->files[i].size - at) : n;
        ssize_t got = sio_read_at(sn->files[i].fd, buf, take, (off_t)at);
        if (got <= 0) return got < 0 ? -errno : -EIO;
        return got;
    }
    if (at == 0) le_put(sn->trailer, XXH3_64bits_digest(sn->sum), 8);
    size_t take = 8 - (size_t)at < n ? 8 - (size_t)at : n;
    memcpy(buf, sn->trailer + at, take);
    return (long)take;
}

long mvcc_snapshot_read(mv_snapshot *sn, uint8_t *buf, size_t n) {
    size_t done = 0;
    while (done < n && sn->pos < sn->size) {
        bool in_body = sn->pos < sn->size - 8;
        long got = read_part(sn, buf + done, n - done);
        if (got < 0) return got;
        if (in_body) XXH3_64bits_update(sn->sum, buf + done, (size_t)got);
        done += (size_t)got;
        sn->pos += (uint64_t)got;
    }
    return (long)done;
}

void mvcc_snapshot_end(mv_snapshot *sn) {
    if (!sn) return;
    for (long i = 0; i < sn->n_files; i++)
        sio_close(sn->files[i].fd);
    free(sn->files);
    free(sn->head);
    XXH3_freeState(sn->sum);
    free(sn);
}

/* --- restore --- */

uint8_t *mvcc_read_file(const char *path, uint64_t *size, char *err, size_t errlen) {
    int fd = sio_open(AT_FDCWD, path, O_RDONLY, 0);
    uint64_t n = 0;
    if (fd < 0 || sio_file_size(fd, &n) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0) sio_close(fd);
        return NULL;
    }
    uint8_t *data = xmalloc(n ? (size_t)n : 1);
    int rc = sio_read_all(fd, data, (size_t)n, 0);
    sio_close(fd);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        free(data);
        return NULL;
    }
    *size = n;
    return data;
}

uint64_t mvcc_snapshot_length(const uint8_t *d, uint64_t size) {
    if (size < SNAP_HEAD_BYTES + 8 || memcmp(d, SNAP_MAGIC, 8) != 0) return 0;
    uint64_t n = le_get(d + 12, 4), len = SNAP_HEAD_BYTES + n * SNAP_ENTRY_BYTES + 8;
    if (n > size / SNAP_ENTRY_BYTES || len > size) return 0;
    for (uint64_t i = 0; i < n; i++)
        len += le_get(d + SNAP_HEAD_BYTES + i * SNAP_ENTRY_BYTES + 8, 8);
    return len;
}

static const char *check_snapshot(const uint8_t *d, uint64_t size) {
    if (size < SNAP_HEAD_BYTES + 8 || memcmp(d, SNAP_MAGIC, 8) != 0) return "not a cetcd snapshot";
    if (le_get(d + 8, 4) != SNAP_VERSION) return "unsupported snapshot version";
    if (mvcc_snapshot_length(d, size) != size) return "snapshot is truncated or has trailing bytes";
    if (XXH3_64bits(d, size - 8) != le_get(d + size - 8, 8)) return "snapshot checksum mismatch";
    return NULL;
}

/* A restore goes only into a new or empty directory, never over a store. */
static bool dir_is_empty_or_missing(const char *dir) {
    if (sio_mkdir(AT_FDCWD, dir, 0755) == 0) return true;
    if (errno != EEXIST) return false;
    DIR *d = opendir(dir);
    if (!d) return false;
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

/* Makes the installed segments' directory entries durable. */
static int sync_dir_path(const char *dir) {
    int fd = sio_open(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0) return -1;
    int rc = sio_sync_dir(fd);
    sio_close(fd);
    return rc;
}

int mvcc_restore_bytes(const uint8_t *d, uint64_t size, const char *dir, char *err, size_t errlen) {
    const char *why = check_snapshot(d, size);
    if (!why && !dir_is_empty_or_missing(dir)) why = "data dir already holds a store";
    uint64_t n = why ? 0 : le_get(d + 12, 4), at = SNAP_HEAD_BYTES + n * SNAP_ENTRY_BYTES;
    for (uint64_t i = 0; i < n && !why; i++) {
        const uint8_t *e = d + SNAP_HEAD_BYTES + i * SNAP_ENTRY_BYTES;
        uint64_t seg_size = le_get(e + 8, 8);
        int rc = log_install_segment(dir, (uint32_t)le_get(e, 4), d + at, seg_size);
        if (rc < 0) why = strerror(-rc);
        at += seg_size;
    }
    if (!why && sync_dir_path(dir) < 0) why = strerror(errno);
    if (why) {
        snprintf(err, errlen, "restore into %s: %s", dir, why);
        return -1;
    }
    return 0;
}

int mvcc_restore(const char *snapshot_file, const char *dir, char *err, size_t errlen) {
    uint64_t size;
    uint8_t *d = mvcc_read_file(snapshot_file, &size, err, errlen);
    if (!d) return -1;
    int rc = mvcc_restore_bytes(d, size, dir, err, errlen);
    free(d);
    return rc;
}
