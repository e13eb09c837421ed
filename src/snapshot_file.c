/* snapshot_file.c: restore of a saved snapshot: what svc_maint.c streamed is storage's snapshot, zero
 * padding to a multiple of 512 and a sha256 of all that; both are checked and removed here, and the
 * storage snapshot goes to mvcc_restore through a memfd, so no temporary file is left behind. */
#include "snapshot_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "mvcc.h"
#include "sha256.h"

#define SNAP_MAGIC "CETCDSNP"
#define HEAD_BYTES 16u  /* magic, version, file count */
#define ENTRY_BYTES 16u /* segment id, size */
#define PAD 512

static uint64_t get_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint8_t *read_file(const char *path, size_t *size, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return NULL;
    }
    uint8_t *d = malloc(st.st_size ? (size_t)st.st_size : 1);
    size_t got = 0;
    while (d && got < (size_t)st.st_size) {
        ssize_t n = read(fd, d + got, (size_t)st.st_size - got);
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    if (!d || got != (size_t)st.st_size) {
        snprintf(err, errlen, "%s: cannot read the whole file", path);
        free(d);
        return NULL;
    }
    *size = got;
    return d;
}

/* The storage snapshot's length from its header, or 0 if the header is not one of ours. */
static uint64_t storage_snapshot_len(const uint8_t *d, size_t size) {
    if (size < HEAD_BYTES + 8 || memcmp(d, SNAP_MAGIC, 8) != 0) return 0;
    uint64_t n = get_le(d + 12, 4), len = HEAD_BYTES + n * ENTRY_BYTES + 8;
    if (n > size / ENTRY_BYTES || len > size) return 0;
    for (uint64_t i = 0; i < n; i++)
        len += get_le(d + HEAD_BYTES + i * ENTRY_BYTES + 8, 8);
    return len;
}

/* Verifies etcd's framing; *len gets the storage snapshot's length. NULL or the reason it is bad. */
static const char *unframe(const uint8_t *d, size_t size, uint64_t *len) {
    uint64_t inner = storage_snapshot_len(d, size);
    if (inner == 0) return "not a cetcd snapshot (etcd's bbolt snapshots cannot be restored into cetcd)";
    *len = inner;
    if (inner == size) return NULL; /* bare storage snapshot */
    if (size % PAD != SHA256_DIGEST_LEN || inner > size - SHA256_DIGEST_LEN) return "snapshot has a bad size";
    uint8_t digest[SHA256_DIGEST_LEN];
    sha256(d, size - SHA256_DIGEST_LEN, digest);
    if (memcmp(digest, d + size - SHA256_DIGEST_LEN, SHA256_DIGEST_LEN) != 0)
        return "sha256 checksum mismatch";
    for (size_t i = inner; i < size - SHA256_DIGEST_LEN; i++)
        if (d[i] != 0) return "snapshot has trailing bytes";
    return NULL;
}

static int restore_bytes(const uint8_t *d, uint64_t len, const char *dir, char *err, size_t errlen) {
    int fd = memfd_create("cetcd-restore", MFD_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "memfd_create: %s", strerror(errno));
        return -1;
    }
    for (uint64_t off = 0; off < len;) {
        ssize_t n = write(fd, d + off, len - off);
        if (n <= 0) {
            snprintf(err, errlen, "memfd write: %s", strerror(errno));
            close(fd);
            return -1;
        }
        off += (uint64_t)n;
    }
    char path[64], why[512] = "";
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int rc = mvcc_restore(path, dir, why, sizeof why);
    close(fd);
    if (rc != 0) { /* storage names the memfd; name the data dir and the reason only */
        const char *tail = strstr(why, dir);
        tail = tail && strncmp(tail + strlen(dir), ": ", 2) == 0 ? tail + strlen(dir) + 2 : why;
        snprintf(err, errlen, "restore into %s: %s", dir, tail);
    }
    return rc;
}

int snapshot_file_restore(const char *file, const char *dir, char *err, size_t errlen) {
    size_t size;
    uint8_t *d = read_file(file, &size, err, errlen);
    if (!d) return -1;
    uint64_t len = 0;
    const char *why = unframe(d, size, &len);
    int rc = -1;
    if (why)
        snprintf(err, errlen, "restore %s: %s", file, why);
    else
        rc = restore_bytes(d, len, dir, err, errlen);
    free(d);
    return rc;
}

int snapshot_restore_main(void) {
    char err[512] = "";
    if (snapshot_file_restore(g_config.restore_file, g_config.data_dir, err, sizeof err) != 0) {
        fprintf(stderr, "cetcd: %s\n", err);
        return 2;
    }
    printf("restored snapshot %s into %s\n", g_config.restore_file, g_config.data_dir);
    return 0;
}
