/* snapshot_file.c: restore of a saved snapshot: what svc_maint.c streamed is storage's snapshot, zero
 * padding to a multiple of 512 and a sha256 of all that; both are checked and removed here, and the
 * storage snapshot inside is restored by storage (mvcc_restore_bytes). */
#include "snapshot_file.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "mvcc.h"
#include "sha256.h"

#define PAD 512

/* Verifies etcd's framing; *len gets the storage snapshot's length. NULL or the reason it is bad. */
static const char *unframe(const uint8_t *d, uint64_t size, uint64_t *len) {
    uint64_t inner = mvcc_snapshot_length(d, size);
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

int snapshot_file_restore(const char *file, const char *dir, char *err, size_t errlen) {
    uint64_t size;
    uint8_t *d = mvcc_read_file(file, &size, err, errlen);
    if (!d) return -1;
    uint64_t len = 0;
    const char *why = unframe(d, size, &len);
    int rc = -1;
    if (why)
        snprintf(err, errlen, "restore %s: %s", file, why);
    else
        rc = mvcc_restore_bytes(d, len, dir, err, errlen);
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
