/* crashfs.h: a storage_io (storage_io.h) that passes every call to the real file system and keeps
 * what a power loss would leave of one watched directory: per file the bytes made durable by
 * sync_data, per directory the entries (creates, renames, unlinks) made durable by sync_dir. Its
 * clock is virtual (100 us a call), so that runs replay exactly. */
#ifndef CETCD_TEST_CRASHFS_H
#define CETCD_TEST_CRASHFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Watches dir (which must exist; whatever it holds counts as durable) and installs the seam. */
void crashfs_install(const char *dir);
/* Restores the real calls and forgets the state. */
void crashfs_uninstall(void);

/* Arms a crash at the nth next call that changes the file system (dir_ops_only: the nth next
 * create, rename, unlink, mkdir or directory sync). after: the call is made, then the crash. */
void crashfs_arm(uint64_t nth, bool dir_ops_only, bool after);
void crashfs_disarm(void);
/* A power loss between two calls. */
void crashfs_crash_now(void);
/* Once crashed, every call that would change the file system fails with EIO; reads, maps and
 * closes still work, so the store can be freed (storage aborts when it cannot read a value back). */
bool crashfs_crashed(void);

/* After a crash (and once the store is closed): rolls the watched directory back to its durable
 * state: the entries of the last sync_dir plus, as rng picks, none, some or all of the changes made
 * since, in order (a journal commits in order); each file its synced bytes plus, as rng picks, a
 * prefix of its unsynced tail (a torn write). Then watches it again with everything durable.
 * 0, or -1 with why set (the store bypassed the seam). */
int crashfs_recover(uint64_t (*rng)(void), char *why, size_t whylen);
/* Checks that the directory holds exactly the files and sizes that crashfs saw made through the
 * seam. 0, or -1 with why set. */
int crashfs_verify(char *why, size_t whylen);

typedef struct crashfs_stats {
    uint64_t mutations, dir_ops, data_syncs, dir_syncs, renames;
    uint64_t crashes, crashes_at_dir_ops; /* crashes_at_dir_ops: just before or after a directory operation */
    long open_fds; /* descriptors opened through the seam and not yet closed through it */
} crashfs_stats;
crashfs_stats crashfs_get_stats(void);

/* What the watched directory takes: its files, their bytes, and the process's descriptors on them
 * (from /proc/self/fd, so descriptors made with dup count too). */
typedef struct crashfs_usage {
    long files, fds;
    uint64_t bytes;
} crashfs_usage;
crashfs_usage crashfs_get_usage(void);

#endif
