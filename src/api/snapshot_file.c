/* snapshot_file.c: `cetcd --restore FILE`: a snapshot saved by etcdctl, from cetcd or from a real etcd,
 * into a new data dir. The format is told from the file: etcd's (a bbolt database and a sha256 of it,
 * what cetcd's Snapshot streams) or cetcd's own (storage's snapshot, zero padding to 512 and a sha256,
 * what older cetcd versions streamed). Everything is checked before anything is written, and an etcd
 * snapshot is built in a temporary dir beside the data dir and renamed into place only when done. */
#include "snapshot_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "mvcc.h"
#include "sha256.h"
#include "snapshot_etcd.h"

#define PAD 512

/* cetcd's own format: verifies etcd's framing around storage's snapshot; *len gets its length. */
static const char *unframe_native(const uint8_t *d, uint64_t size, uint64_t inner) {
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

static bool dir_missing_or_empty(const char *dir) {
    DIR *dh = opendir(dir);
    if (!dh) return errno == ENOENT;
    struct dirent *de;
    bool empty = true;
    while (empty && (de = readdir(dh)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) empty = false;
    closedir(dh);
    return empty;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void sync_parent(const char *dir) {
    char *copy = xstrdup(dir);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

/* etcd's format: the bbolt database, then a sha256 of it (etcdctl's check: size % 512 == 32). */
static int restore_etcd(const uint8_t *d, uint64_t size, const char *file, const char *dir, char *err,
                        size_t errlen) {
    if (size % PAD != SHA256_DIGEST_LEN) {
        if (etcd_db_detect(d, size))
            snprintf(
                err, errlen,
                "restore %s: an etcd database without its sha256 trailer (size %% 512 != 32): a truncated "
                "snapshot, or a copied db file, which etcdctl snapshot restore refuses too",
                file);
        else
            snprintf(err, errlen,
                     "restore %s: not a snapshot (neither etcd's bbolt format nor cetcd's), or truncated",
                     file);
        return -1;
    }
    uint64_t db_size = size - SHA256_DIGEST_LEN;
    uint8_t digest[SHA256_DIGEST_LEN];
    sha256(d, db_size, digest);
    if (memcmp(digest, d + db_size, SHA256_DIGEST_LEN) != 0) {
        snprintf(err, errlen, "restore %s: sha256 checksum mismatch (the file is damaged or truncated)",
                 file);
        return -1;
    }
    if (!etcd_db_detect(d, db_size)) {
        snprintf(err, errlen, "restore %s: not a snapshot (neither etcd's bbolt format nor cetcd's)", file);
        return -1;
    }
    if (!dir_missing_or_empty(dir)) {
        snprintf(err, errlen, "restore %s: data dir %s already holds a store", file, dir);
        return -1;
    }
    size_t tlen = strlen(dir) + 32;
    char *tmp = xmalloc(tlen);
    snprintf(tmp, tlen, "%s.restore-XXXXXX", dir);
    if (!mkdtemp(tmp)) {
        snprintf(err, errlen, "restore %s: cannot make a temporary dir beside %s: %s", file, dir,
                 strerror(errno));
        free(tmp);
        return -1;
    }
    char why[512] = "";
    int rc = etcd_db_import(d, db_size, tmp, why, sizeof why);
    if (rc < 0)
        snprintf(err, errlen, "restore %s: %s", file, why);
    else if (rename(tmp, dir) != 0) {
        snprintf(err, errlen, "restore %s: rename %s to %s: %s", file, tmp, dir, strerror(errno));
        rc = -1;
    }
    if (rc < 0)
        nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    else
        sync_parent(dir);
    free(tmp);
    return rc;
}

int snapshot_file_restore(const char *file, const char *dir, char *err, size_t errlen) {
    int fd = open(file, O_RDONLY);
    if (fd < 0) {
        snprintf(err, errlen, "restore %s: %s", file, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size == 0) {
        snprintf(err, errlen, "restore %s: %s", file, sb.st_size == 0 ? "empty file" : strerror(errno));
        close(fd);
        return -1;
    }
    uint64_t size = (uint64_t)sb.st_size;
    const uint8_t *d = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (d == MAP_FAILED) {
        snprintf(err, errlen, "restore %s: mmap: %s", file, strerror(errno));
        return -1;
    }
    madvise((void *)d, size, MADV_SEQUENTIAL);
    int rc;
    uint64_t inner = mvcc_snapshot_length(d, size);
    if (inner == 0)
        rc = restore_etcd(d, size, file, dir, err, errlen);
    else {
        const char *why = unframe_native(d, size, inner);
        if (why) snprintf(err, errlen, "restore %s: %s", file, why);
        rc = why ? -1 : mvcc_restore_bytes(d, inner, dir, err, errlen);
    }
    munmap((void *)d, size);
    return rc;
}

int snapshot_restore_main(void) {
    char err[768] = "";
    if (snapshot_file_restore(g_config.restore_file, g_config.data_dir, err, sizeof err) != 0) {
        fprintf(stderr, "cetcd: %s\n", err);
        return 2;
    }
    printf("restored snapshot %s into %s\n", g_config.restore_file, g_config.data_dir);
    return 0;
}
