/* crashfs.c: the simulated power loss of crashfs.h. Every call goes to the real file system; for
 * the watched directory it also keeps each file's durable content (copied at each sync_data) and
 * the durable entry list (copied at each sync_dir), and a crash rewrites the directory from those,
 * so a file whose unlink was not yet durable comes back without having been kept aside. */
#include "crashfs.h"
#include "storage_io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One file (inode) of the watched directory. */
typedef struct cfile {
    dev_t dev;
    ino_t ino;           /* 0 once the inode is gone and may be reused */
    uint8_t *image;      /* the durable content */
    uint64_t image_len;  /* its length */
    uint64_t size;       /* the current size, as the calls through the seam made it */
    uint64_t dirty_from; /* lowest offset changed since the last sync, UINT64_MAX if none */
} cfile;

typedef struct entry {
    char name[NAME_MAX + 1];
    cfile *f;
    bool with_next; /* in the journal: one rename, the removal of its old name */
} entry;

typedef struct dirstate {
    entry *v;
    size_t n, cap;
} dirstate;

static struct {
    bool on;
    char dir[PATH_MAX];
    dev_t dev;
    ino_t ino;
    dirstate now, durable;
    dirstate journal; /* changes since the last directory sync, in order; an entry without file: removed */
    cfile **files;
    size_t n_files, cap_files;
    bool crashed, armed, arm_dir_ops, arm_after;
    uint64_t arm_at;
    char bypass[256]; /* the first sign of a change made outside the seam */
    crashfs_stats st;
} fs;

static uint8_t fd_open[1 << 16]; /* descriptors opened through the seam */

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) abort();
    return p;
}

/* ---------- directory states ---------- */

static entry *dir_find(dirstate *d, const char *name) {
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->v[i].name, name) == 0) return &d->v[i];
    return NULL;
}

static const char *name_of(const dirstate *d, const cfile *f) {
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i].f == f) return d->v[i].name;
    return NULL;
}

static void dir_set(dirstate *d, const char *name, cfile *f) {
    entry *e = dir_find(d, name);
    if (!e) {
        if (d->n == d->cap) {
            d->cap = d->cap ? 2 * d->cap : 32;
            d->v = xrealloc(d->v, d->cap * sizeof *d->v);
        }
        e = &d->v[d->n++];
        snprintf(e->name, sizeof e->name, "%s", name);
    }
    e->f = f;
}

static void dir_remove(dirstate *d, const char *name) {
    entry *e = dir_find(d, name);
    if (e) *e = d->v[--d->n];
}

static void dir_append(dirstate *d, const char *name, cfile *f) {
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 32;
        d->v = xrealloc(d->v, d->cap * sizeof *d->v);
    }
    entry *e = &d->v[d->n++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->f = f;
    e->with_next = false;
}

/* A change of the watched directory (f NULL: name removed), durable at the next directory sync. */
static void dir_change(const char *name, cfile *f) {
    if (f)
        dir_set(&fs.now, name, f);
    else
        dir_remove(&fs.now, name);
    dir_append(&fs.journal, name, f);
}

/* A rename within the watched directory reaches the journal whole. */
static void dir_rename(const char *from, const char *to, cfile *f) {
    dir_change(from, NULL);
    fs.journal.v[fs.journal.n - 1].with_next = true;
    dir_change(to, f);
}

static void note_bypass(const char *fmt, ...) {
    if (fs.bypass[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fs.bypass, sizeof fs.bypass, fmt, ap);
    va_end(ap);
}

/* ---------- files ---------- */

static void forget_inode(const struct stat *st) {
    for (size_t i = 0; i < fs.n_files; i++)
        if (fs.files[i]->ino == st->st_ino && fs.files[i]->dev == st->st_dev) fs.files[i]->ino = 0;
}

static cfile *file_new(const struct stat *st) {
    forget_inode(st);
    if (fs.n_files == fs.cap_files) {
        fs.cap_files = fs.cap_files ? 2 * fs.cap_files : 32;
        fs.files = xrealloc(fs.files, fs.cap_files * sizeof *fs.files);
    }
    cfile *f = calloc(1, sizeof *f);
    if (!f) abort();
    *f = (cfile){.dev = st->st_dev, .ino = st->st_ino, .size = (uint64_t)st->st_size, .dirty_from = 0};
    fs.files[fs.n_files++] = f;
    return f;
}

static cfile *file_of_fd(int fd) {
    struct stat st;
    if (!fs.on || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) return NULL;
    for (size_t i = 0; i < fs.n_files; i++)
        if (fs.files[i]->ino == st.st_ino && fs.files[i]->dev == st.st_dev) return fs.files[i];
    return NULL;
}

/* Files no entry names, now or durably, no longer matter to a crash. An inode with no name now is
 * freed once closed, and its number may come back for any new file: it is no longer looked up. */
static void forget_unnamed(void) {
    for (size_t i = 0; i < fs.n_files;) {
        cfile *f = fs.files[i];
        if (!name_of(&fs.now, f)) f->ino = 0;
        if (name_of(&fs.now, f) || name_of(&fs.durable, f) || name_of(&fs.journal, f)) {
            i++;
            continue;
        }
        free(f->image);
        free(f);
        fs.files[i] = fs.files[--fs.n_files];
    }
}

static void mark_dirty(cfile *f, uint64_t from, uint64_t new_size) {
    if (from < f->dirty_from) f->dirty_from = from;
    f->size = new_size;
}

static int pread_all(int fd, uint8_t *dst, uint64_t n, uint64_t off) {
    while (n > 0) {
        ssize_t got = pread(fd, dst, n, (off_t)off);
        if (got <= 0) return -1;
        dst += got;
        off += (uint64_t)got;
        n -= (uint64_t)got;
    }
    return 0;
}

/* Reads n bytes at off of the file open as fd (through /proc if fd is write-only). */
static int read_file_at(int fd, uint8_t *dst, uint64_t n, uint64_t off) {
    if (pread_all(fd, dst, n, off) == 0) return 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int rfd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = rfd < 0 ? -1 : pread_all(rfd, dst, n, off);
    if (rfd >= 0) close(rfd);
    return rc;
}

/* sync_data: the file's content as it is now becomes its durable content. */
static void capture(cfile *f, int fd) {
    struct stat st;
    if (fstat(fd, &st) < 0) return;
    uint64_t size = (uint64_t)st.st_size;
    uint64_t from = f->dirty_from < f->image_len ? f->dirty_from : f->image_len;
    if (from > size) from = size;
    f->image = xrealloc(f->image, size);
    if (read_file_at(fd, f->image + from, size - from, from) < 0) abort();
    if (size != f->size)
        note_bypass("%s has %lu bytes at a sync, the seam's calls made %lu",
                    name_of(&fs.now, f) ? name_of(&fs.now, f) : "an unlinked file", (unsigned long)size,
                    (unsigned long)f->size);
    f->image_len = size;
    f->dirty_from = UINT64_MAX;
}

/* Is (dirfd, name) an entry of the watched directory? *base gets its last component. */
static bool in_watched(int dirfd, const char *name, const char **base) {
    const char *slash = strrchr(name, '/');
    struct stat st;
    int rc;
    *base = slash ? slash + 1 : name;
    if (!fs.on || !**base) return false;
    if (slash) {
        char parent[PATH_MAX];
        size_t n = slash == name ? 1 : (size_t)(slash - name);
        if (n >= sizeof parent) return false;
        memcpy(parent, name, n);
        parent[n] = 0;
        rc = fstatat(dirfd, parent, &st, 0);
    } else {
        rc = dirfd == AT_FDCWD ? stat(".", &st) : fstat(dirfd, &st);
    }
    return rc == 0 && st.st_dev == fs.dev && st.st_ino == fs.ino;
}

static bool is_watched_dir(int fd) {
    struct stat st;
    return fs.on && fstat(fd, &st) == 0 && st.st_dev == fs.dev && st.st_ino == fs.ino;
}

/* ---------- crash points ---------- */

static void crash(bool at_dir_op) {
    fs.crashed = true;
    fs.armed = false;
    fs.st.crashes++;
    if (at_dir_op) fs.st.crashes_at_dir_ops++;
}

/* Every call that would change the file system passes here first. -1 (EIO): it must not happen.
 * *crash_after: make it, then crash. */
static int gate(bool dir_op, bool *crash_after) {
    *crash_after = false;
    if (fs.crashed) {
        errno = EIO;
        return -1;
    }
    fs.st.mutations++;
    if (dir_op) fs.st.dir_ops++;
    uint64_t count = fs.arm_dir_ops ? fs.st.dir_ops : fs.st.mutations;
    if (!fs.armed || (fs.arm_dir_ops && !dir_op) || count < fs.arm_at) return 0;
    if (fs.arm_after) {
        *crash_after = true;
        return 0;
    }
    crash(dir_op);
    errno = EIO;
    return -1;
}

static void after_call(bool crash_after, bool dir_op) {
    if (crash_after) crash(dir_op);
}

void crashfs_arm(uint64_t nth, bool dir_ops_only, bool after) {
    fs.armed = true;
    fs.arm_dir_ops = dir_ops_only;
    fs.arm_after = after;
    fs.arm_at = (dir_ops_only ? fs.st.dir_ops : fs.st.mutations) + (nth ? nth : 1);
}

void crashfs_disarm(void) {
    fs.armed = false;
}

void crashfs_crash_now(void) {
    if (!fs.crashed) crash(false);
}

bool crashfs_crashed(void) {
    return fs.crashed;
}

/* ---------- the seam ---------- */

static void note_opened(int fd, const char *base, bool created, bool truncated) {
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) return;
    cfile *f = created ? NULL : file_of_fd(fd);
    if (!f) {
        if (!created) note_bypass("%s appeared outside the seam", base);
        f = file_new(&st);
        f->dirty_from = created ? UINT64_MAX : 0;
        dir_change(base, f);
    }
    if (truncated) mark_dirty(f, 0, 0);
}

static int cfs_open(int dirfd, const char *name, int flags, mode_t mode) {
    const char *base;
    bool watched = in_watched(dirfd, name, &base), after = false;
    struct stat st;
    bool existed = fstatat(dirfd, name, &st, 0) == 0;
    bool creates = (flags & O_CREAT) && !existed;
    if ((flags & (O_CREAT | O_TRUNC)) && gate(creates, &after) < 0) return -1;
    int fd = openat(dirfd, name, flags, mode);
    if (fd >= 0 && (size_t)fd < sizeof fd_open && !fd_open[fd]) {
        fd_open[fd] = 1;
        fs.st.open_fds++;
    }
    if (fd >= 0 && watched) note_opened(fd, base, creates, existed && (flags & O_TRUNC));
    if (fd >= 0 && !watched && fstat(fd, &st) == 0) forget_inode(&st); /* a number reused outside */
    after_call(after, creates);
    return fd;
}

static int cfs_close(int fd) {
    if (fd >= 0 && (size_t)fd < sizeof fd_open && fd_open[fd]) {
        fd_open[fd] = 0;
        fs.st.open_fds--;
    }
    return close(fd);
}

static ssize_t cfs_write(int fd, const void *buf, size_t n, off_t off) {
    bool after;
    if (gate(false, &after) < 0) return -1;
    ssize_t put = pwrite(fd, buf, n, off);
    cfile *f = put > 0 ? file_of_fd(fd) : NULL;
    if (f)
        mark_dirty(f, (uint64_t)off,
                   f->size > (uint64_t)off + (uint64_t)put ? f->size : (uint64_t)off + (uint64_t)put);
    after_call(after, false);
    return put;
}

static int cfs_truncate(int fd, off_t length) {
    bool after;
    if (gate(false, &after) < 0) return -1;
    int rc = ftruncate(fd, length);
    cfile *f = rc == 0 ? file_of_fd(fd) : NULL;
    if (f) mark_dirty(f, (uint64_t)length, (uint64_t)length);
    after_call(after, false);
    return rc;
}

/* The real fsync is skipped: durability is what crashfs keeps, and the real disk never crashes
 * under the test (and thousands of real syncs would cost seconds). */
static int cfs_sync(int fd, bool dir_op) {
    bool after;
    if (gate(dir_op, &after) < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) < 0) return -1;
    cfile *f = file_of_fd(fd);
    if (f) capture(f, fd);
    if (is_watched_dir(fd)) {
        fs.durable.n = fs.journal.n = 0;
        for (size_t i = 0; i < fs.now.n; i++)
            dir_set(&fs.durable, fs.now.v[i].name, fs.now.v[i].f);
        forget_unnamed();
    }
    after_call(after, dir_op);
    return 0;
}

static int cfs_sync_data(int fd) {
    fs.st.data_syncs++;
    return cfs_sync(fd, false);
}

static int cfs_sync_dir(int fd) {
    fs.st.dir_syncs++;
    return cfs_sync(fd, true);
}

static int cfs_rename(int dirfd, const char *from, const char *to) {
    bool after;
    if (gate(true, &after) < 0) return -1;
    fs.st.renames++;
    const char *fb, *tb;
    bool wf = in_watched(dirfd, from, &fb), wt = in_watched(dirfd, to, &tb);
    int rc = renameat(dirfd, from, dirfd, to);
    if (rc == 0 && (wf || wt)) {
        entry *e = wf ? dir_find(&fs.now, fb) : NULL;
        cfile *f = e ? e->f : NULL;
        if (wf && !f) note_bypass("%s was renamed, but appeared outside the seam", fb);
        if (wt && !f) {
            struct stat st;
            if (fstatat(dirfd, to, &st, 0) == 0) f = file_new(&st);
        }
        if (wf && wt && f)
            dir_rename(fb, tb, f);
        else if (wf)
            dir_change(fb, NULL);
        else if (f)
            dir_change(tb, f);
        forget_unnamed();
    }
    after_call(after, true);
    return rc;
}

static int cfs_unlink(int dirfd, const char *name) {
    bool after;
    if (gate(true, &after) < 0) return -1;
    const char *base;
    bool watched = in_watched(dirfd, name, &base);
    int rc = unlinkat(dirfd, name, 0);
    if (rc == 0 && watched) {
        dir_change(base, NULL);
        forget_unnamed();
    }
    after_call(after, true);
    return rc;
}

static int cfs_mkdir(int dirfd, const char *name, mode_t mode) {
    bool after;
    if (gate(true, &after) < 0) return -1;
    int rc = mkdirat(dirfd, name, mode);
    after_call(after, true);
    return rc;
}

/* A virtual clock, so that a run (log compaction's time budget) replays the same for a seed. */
static uint64_t cfs_now_us(void) {
    static uint64_t now;
    return now += 100;
}

static const storage_io crashfs_io = {
    .open_at = cfs_open,
    .close = cfs_close,
    .write_at = cfs_write,
    .truncate = cfs_truncate,
    .sync_data = cfs_sync_data,
    .sync_dir = cfs_sync_dir,
    .rename_at = cfs_rename,
    .unlink_at = cfs_unlink,
    .mkdir_at = cfs_mkdir,
    .now_us = cfs_now_us,
};

/* ---------- attaching, verifying, recovering ---------- */

static void forget_all(void) {
    for (size_t i = 0; i < fs.n_files; i++) {
        free(fs.files[i]->image);
        free(fs.files[i]);
    }
    free(fs.files);
    free(fs.now.v);
    free(fs.durable.v);
    free(fs.journal.v);
    fs.files = NULL;
    fs.n_files = fs.cap_files = 0;
    fs.now = fs.durable = fs.journal = (dirstate){0};
}

/* Everything the directory holds now counts as durable. */
static void attach(void) {
    struct stat st;
    DIR *d = opendir(fs.dir);
    if (!d || stat(fs.dir, &st) < 0) abort();
    fs.dev = st.st_dev;
    fs.ino = st.st_ino;
    fs.on = true;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
            cfile *f = file_new(&st);
            capture(f, fd);
            dir_set(&fs.now, e->d_name, f);
            dir_set(&fs.durable, e->d_name, f);
        }
        if (fd >= 0) close(fd);
    }
    closedir(d);
}

void crashfs_install(const char *dir) {
    forget_all();
    memset(&fs, 0, sizeof fs);
    memset(fd_open, 0, sizeof fd_open);
    snprintf(fs.dir, sizeof fs.dir, "%s", dir);
    attach();
    storage_io_set(&crashfs_io);
}

void crashfs_uninstall(void) {
    storage_io_set(NULL);
    forget_all();
    fs.on = false;
}

int crashfs_verify(char *why, size_t whylen) {
    if (fs.bypass[0]) {
        snprintf(why, whylen, "storage bypassed the I/O seam: %s", fs.bypass);
        return -1;
    }
    DIR *d = opendir(fs.dir);
    if (!d) abort();
    size_t seen = 0;
    struct dirent *e;
    struct stat st;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        entry *known = dir_find(&fs.now, e->d_name);
        if (fstatat(dirfd(d), e->d_name, &st, 0) < 0) continue;
        if (!known || known->f->size != (uint64_t)st.st_size) {
            snprintf(why, whylen, "storage bypassed the I/O seam: %s has %ld bytes, the seam saw %ld",
                     e->d_name, (long)st.st_size, known ? (long)known->f->size : -1L);
            closedir(d);
            return -1;
        }
        seen++;
    }
    closedir(d);
    if (seen != fs.now.n) {
        snprintf(why, whylen, "storage bypassed the I/O seam: a file the seam made is gone");
        return -1;
    }
    return 0;
}

/* The content a durable entry comes back with: its durable bytes and maybe a torn unsynced tail. */
static uint8_t *content_after_crash(const entry *e, uint64_t *len, uint64_t (*rng)(void)) {
    cfile *f = e->f;
    uint64_t keep = 0;
    const char *current = name_of(&fs.now, f);
    if (current && f->ino && f->size > f->image_len && rng() % 2) keep = rng() % (f->size - f->image_len + 1);
    uint8_t *data = xrealloc(NULL, f->image_len + keep);
    if (f->image_len) memcpy(data, f->image, f->image_len);
    if (keep) {
        char path[PATH_MAX + NAME_MAX + 2];
        snprintf(path, sizeof path, "%s/%s", fs.dir, current);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || pread(fd, data + f->image_len, keep, (off_t)f->image_len) != (ssize_t)keep) keep = 0;
        if (fd >= 0) close(fd);
    }
    *len = f->image_len + keep;
    return data;
}

static void write_whole(const char *name, const uint8_t *data, uint64_t len) {
    char path[PATH_MAX + NAME_MAX + 2];
    snprintf(path, sizeof path, "%s/%s", fs.dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len)) abort();
    close(fd);
}

static void empty_dir(void) {
    DIR *d = opendir(fs.dir);
    if (!d) abort();
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

int crashfs_recover(uint64_t (*rng)(void), char *why, size_t whylen) {
    if (crashfs_verify(why, whylen) < 0) return -1;
    /* a file system journal commits in order, so the first few changes since the sync may have made it */
    size_t kept = rng() % (fs.journal.n + 1);
    if (kept > 0 && fs.journal.v[kept - 1].with_next) kept++;
    for (size_t i = 0; i < kept; i++) {
        const entry *e = &fs.journal.v[i];
        if (e->f)
            dir_set(&fs.durable, e->name, e->f);
        else
            dir_remove(&fs.durable, e->name);
    }
    size_t n = fs.durable.n;
    uint8_t **data = xrealloc(NULL, n * sizeof *data);
    uint64_t *len = xrealloc(NULL, n * sizeof *len);
    for (size_t i = 0; i < n; i++)
        data[i] = content_after_crash(&fs.durable.v[i], &len[i], rng);
    empty_dir();
    for (size_t i = 0; i < n; i++) {
        write_whole(fs.durable.v[i].name, data[i], len[i]);
        free(data[i]);
    }
    free(data);
    free(len);
    forget_all();
    fs.crashed = fs.armed = false;
    attach();
    return 0;
}

crashfs_stats crashfs_get_stats(void) {
    return fs.st;
}

static long fds_into(const char *dir) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    char target[PATH_MAX];
    size_t len = strlen(dir);
    long n = 0;
    while (d && (e = readdir(d)) != NULL) {
        ssize_t got = readlinkat(dirfd(d), e->d_name, target, sizeof target - 1);
        if (got <= 0) continue;
        target[got] = 0;
        if (strncmp(target, dir, len) == 0 && (target[len] == '/' || target[len] == 0)) n++;
    }
    if (d) closedir(d);
    return n;
}

crashfs_usage crashfs_get_usage(void) {
    crashfs_usage use = {0};
    char real[PATH_MAX];
    DIR *d = opendir(fs.dir);
    struct dirent *e;
    struct stat st;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        use.files++;
        if (fstatat(dirfd(d), e->d_name, &st, 0) == 0) use.bytes += (uint64_t)st.st_size;
    }
    if (d) closedir(d);
    use.fds = realpath(fs.dir, real) ? fds_into(real) : -1;
    return use;
}
