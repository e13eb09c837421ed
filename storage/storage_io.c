/* storage_io.c: the real system calls behind storage's I/O seam, and the table that tests replace.
 * Each wrapper is one indirect call, so the seam costs nothing worth measuring. */
#include "storage_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

static int real_open(int dirfd, const char *name, int flags, mode_t mode) {
    return openat(dirfd, name, flags, mode);
}

static int real_file_size(int fd, uint64_t *size) {
    struct stat st;
    if (fstat(fd, &st) < 0) return -1;
    *size = (uint64_t)st.st_size;
    return 0;
}

static int real_same_file(int dirfd, const char *name, int fd) {
    struct stat by_name, by_fd;
    if (fstatat(dirfd, name, &by_name, 0) < 0) return errno == ENOENT ? 0 : -1;
    if (fstat(fd, &by_fd) < 0) return -1;
    return by_name.st_dev == by_fd.st_dev && by_name.st_ino == by_fd.st_ino;
}

static int real_rename(int dirfd, const char *from, const char *to) {
    return renameat(dirfd, from, dirfd, to);
}

static int real_unlink(int dirfd, const char *name) {
    return unlinkat(dirfd, name, 0);
}

static void *real_map(int fd, size_t length) {
    void *p = mmap(NULL, length, PROT_READ, MAP_SHARED, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

static uint64_t real_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int real_free_space(int fd, uint64_t *bytes) {
    struct statvfs st;
    if (fstatvfs(fd, &st) < 0) return -1;
    *bytes = (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
    return 0;
}

static int real_start_writeback(int fd, uint64_t offset, uint64_t length) {
    return sync_file_range(fd, (off_t)offset, (off_t)length, SYNC_FILE_RANGE_WRITE);
}

static int real_read_ahead(int fd, uint64_t offset, uint64_t length) {
    int rc = posix_fadvise(fd, (off_t)offset, (off_t)length, POSIX_FADV_WILLNEED);
    if (rc == 0) return 0;
    errno = rc; /* posix_fadvise returns its error instead of setting errno */
    return -1;
}

static const storage_io real_io = {
    .open_at = real_open,
    .close = close,
    .read_at = pread,
    .write_at = pwrite,
    .file_size = real_file_size,
    .same_file = real_same_file,
    .truncate = ftruncate,
    .sync_data = fdatasync,
    .sync_dir = fsync,
    .rename_at = real_rename,
    .unlink_at = real_unlink,
    .mkdir_at = mkdirat,
    .map = real_map,
    .unmap = munmap,
    .now_us = real_now_us,
    .free_space = real_free_space,
    .start_writeback = real_start_writeback,
    .read_ahead = real_read_ahead,
};

static storage_io io = real_io;

#define PICK(member) io.member = custom && custom->member ? custom->member : real_io.member

void storage_io_set(const storage_io *custom) {
    PICK(open_at);
    PICK(close);
    PICK(read_at);
    PICK(write_at);
    PICK(file_size);
    PICK(same_file);
    PICK(truncate);
    PICK(sync_data);
    PICK(sync_dir);
    PICK(rename_at);
    PICK(unlink_at);
    PICK(mkdir_at);
    PICK(map);
    PICK(unmap);
    PICK(now_us);
    PICK(free_space);
    PICK(start_writeback);
    PICK(read_ahead);
}

int sio_open(int dirfd, const char *name, int flags, mode_t mode) {
    return io.open_at(dirfd, name, flags | O_CLOEXEC, mode);
}
int sio_close(int fd) {
    return io.close(fd);
}
ssize_t sio_read_at(int fd, void *buf, size_t n, off_t offset) {
    return io.read_at(fd, buf, n, offset);
}
ssize_t sio_write_at(int fd, const void *buf, size_t n, off_t offset) {
    return io.write_at(fd, buf, n, offset);
}
int sio_file_size(int fd, uint64_t *size) {
    return io.file_size(fd, size);
}
int sio_same_file(int dirfd, const char *name, int fd) {
    return io.same_file(dirfd, name, fd);
}
int sio_truncate(int fd, off_t length) {
    return io.truncate(fd, length);
}
int sio_sync_data(int fd) {
    int rc;
    do
        rc = io.sync_data(fd);
    while (rc < 0 && errno == EINTR);
    return rc;
}
int sio_sync_data_err(int fd) {
    return sio_sync_data(fd) < 0 ? (errno ? -errno : -EIO) : 0;
}
int sio_sync_dir(int fd) {
    int rc;
    do
        rc = io.sync_dir(fd);
    while (rc < 0 && errno == EINTR);
    return rc;
}
int sio_rename(int dirfd, const char *from, const char *to) {
    return io.rename_at(dirfd, from, to);
}
int sio_unlink(int dirfd, const char *name) {
    return io.unlink_at(dirfd, name);
}
int sio_mkdir(int dirfd, const char *name, mode_t mode) {
    return io.mkdir_at(dirfd, name, mode);
}
void *sio_map(int fd, size_t length) {
    return io.map(fd, length);
}
int sio_unmap(void *addr, size_t length) {
    return io.unmap(addr, length);
}
uint64_t sio_now_us(void) {
    return io.now_us();
}
int sio_free_space(int fd, uint64_t *bytes) {
    return io.free_space(fd, bytes);
}
int sio_start_writeback(int fd, uint64_t offset, uint64_t length) {
    return io.start_writeback(fd, offset, length);
}
int sio_read_ahead(int fd, uint64_t offset, uint64_t length) {
    return io.read_ahead(fd, offset, length);
}

int sio_read_all(int fd, void *buf, size_t n, uint64_t offset) {
    uint8_t *dst = buf;
    while (n > 0) {
        ssize_t got = io.read_at(fd, dst, n, (off_t)offset);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return errno ? -errno : -EIO;
        if (got == 0) return -EIO;
        dst += got;
        offset += (uint64_t)got;
        n -= (size_t)got;
    }
    return 0;
}

int sio_write_all(int fd, const void *buf, size_t n, uint64_t offset) {
    const uint8_t *src = buf;
    while (n > 0) {
        ssize_t put = io.write_at(fd, src, n, (off_t)offset);
        if (put < 0 && errno == EINTR) continue;
        if (put < 0) return errno ? -errno : -EIO;
        if (put == 0) return -EIO;
        src += put;
        offset += (uint64_t)put;
        n -= (size_t)put;
    }
    return 0;
}
