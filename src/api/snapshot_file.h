/* snapshot_file.h: restoring a snapshot file saved by etcdctl (or any etcd client) into a new data dir:
 * from cetcd or from a real etcd (etcd's bbolt format, checked and imported), or in cetcd's own format
 * (storage's snapshot inside etcd's framing, what older cetcd versions streamed). */
#ifndef CETCD_SNAPSHOT_FILE_H
#define CETCD_SNAPSHOT_FILE_H

#include <stddef.h>

/* Restores file into dir (new or empty), telling the format from the file. 0, or -1 with err set and
 * nothing written. A bare storage snapshot (no trailer) is accepted too. */
int snapshot_file_restore(const char *file, const char *dir, char *err, size_t errlen);

/* `cetcd --restore FILE --data-dir DIR`: restores, prints one line, returns the exit code. */
int snapshot_restore_main(void);

#endif
