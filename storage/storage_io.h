/* storage_io.h: the one seam through which storage/ makes every system call on its files and reads
 * the clock, as SQLite's VFS does. Tests install their own table to fail a call, to lose unsynced
 * writes in a simulated crash, or to run the clock by hand; the server uses the real calls.
 * See docs/architecture.md, "Storage". */
#ifndef CETCD_STORAGE_IO_H
#define CETCD_STORAGE_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Every member returns what the system call returns (-1 with errno set on failure), except map
 * (NULL on failure) and now_us. A NULL member means the real call. */
typedef struct storage_io {
    int (*open_at)(int dirfd, const char *name, int flags, mode_t mode); /* dirfd AT_FDCWD for paths */
    int (*close)(int fd);
    ssize_t (*read_at)(int fd, void *buf, size_t n, off_t offset);
    ssize_t (*write_at)(int fd, const void *buf, size_t n, off_t offset);
    int (*file_size)(int fd, uint64_t *size);
    int (*same_file)(int dirfd, const char *name, int fd); /* 1 if name is fd's file, 0 if not or gone */
    int (*truncate)(int fd, off_t length);
    int (*sync_data)(int fd); /* fdatasync of a file's contents */
    int (*sync_dir)(int fd);  /* fsync of a directory: makes creates, renames and unlinks durable */
    int (*rename_at)(int dirfd, const char *from, const char *to);
    int (*unlink_at)(int dirfd, const char *name);
    int (*mkdir_at)(int dirfd, const char *name, mode_t mode);
    void *(*map)(int fd, size_t length); /* a read-only shared map of a file's first length bytes */
    int (*unmap)(void *addr, size_t length);
    uint64_t (*now_us)(void);                   /* a monotonic clock in microseconds */
    int (*free_space)(int fd, uint64_t *bytes); /* bytes an unprivileged writer may still use on fd's fs */
    /* starts writing a file's range to disk without waiting: a hint that makes a later sync_data
     * short; nothing is durable until sync_data returns */
    int (*start_writeback)(int fd, uint64_t offset, uint64_t length);
    /* starts reading a file's range into the page cache without waiting: a hint (replay's read-ahead
     * thread calls it, log_open.c) */
    int (*read_ahead)(int fd, uint64_t offset, uint64_t length);
} storage_io;

/* Installs io for every later call (NULL restores the real calls). Not thread-safe: set it before
 * opening a store. The sync helper thread calls write_at, sync_data and close, and for a segment
 * roll open_at, sync_dir and rename_at (log_run_job), replay's read-ahead thread calls read_ahead
 * (log_open.c), and the loop's thread calls the rest. */
void storage_io_set(const storage_io *io);

int sio_open(int dirfd, const char *name, int flags, mode_t mode);
int sio_close(int fd);
ssize_t sio_read_at(int fd, void *buf, size_t n, off_t offset);
ssize_t sio_write_at(int fd, const void *buf, size_t n, off_t offset);
int sio_file_size(int fd, uint64_t *size);
int sio_same_file(int dirfd, const char *name, int fd);
int sio_truncate(int fd, off_t length);
int sio_sync_data(int fd);
int sio_sync_dir(int fd);
int sio_rename(int dirfd, const char *from, const char *to);
int sio_unlink(int dirfd, const char *name);
int sio_mkdir(int dirfd, const char *name, mode_t mode);
void *sio_map(int fd, size_t length);
int sio_unmap(void *addr, size_t length);
uint64_t sio_now_us(void);
int sio_free_space(int fd, uint64_t *bytes);
int sio_start_writeback(int fd, uint64_t offset, uint64_t length);
int sio_read_ahead(int fd, uint64_t offset, uint64_t length);

/* Helpers over the seam that retry EINTR and short transfers; 0 or -errno. */
int sio_read_all(int fd, void *buf, size_t n, uint64_t offset);
int sio_write_all(int fd, const void *buf, size_t n, uint64_t offset);
int sio_sync_data_err(int fd); /* sio_sync_data as 0 or -errno */

#endif
