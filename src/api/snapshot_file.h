/* snapshot_file.h: restoring a snapshot file saved by etcdctl (or any etcd client) from cetcd: checks
 * and strips etcd's framing (padding and sha256 trailer) before storage's mvcc_restore. */
#ifndef CETCD_SNAPSHOT_FILE_H
#define CETCD_SNAPSHOT_FILE_H

#include <stddef.h>

/* Restores file into dir (new or empty). 0, or -1 with err set. A bare storage snapshot (no trailer)
 * is accepted too. */
int snapshot_file_restore(const char *file, const char *dir, char *err, size_t errlen);

/* `cetcd --restore FILE --data-dir DIR`: restores, prints one line, returns the exit code. */
int snapshot_restore_main(void);

#endif
