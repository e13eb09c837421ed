/* test_log.c: unit tests of storage/log.c: records survive reopen with the same places, batches are
 * readable before they are written, torn tails are cut, other corruption refuses to open, and a failed
 * write or fsync stops all later commits. */
#include "log.h"
#include "storage_io.h"
#include <check.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REC_HDR 24
#define SEG_HDR 16

/* ---------- temp dirs and files ---------- */

typedef struct tdir {
    char root[64];
    char data[96];
} tdir;

static void tdir_make(tdir *t) {
    strcpy(t->root, "/tmp/cetcd-logtest-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t->root));
    snprintf(t->data, sizeof t->data, "%s/data", t->root); /* log_open must create it */
}

static void tdir_remove(tdir *t) {
    DIR *d = opendir(t->data);
    if (d) {
        struct dirent *e;
        char path[512];
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "%s/%s", t->data, e->d_name);
            unlink(path);
        }
        closedir(d);
        rmdir(t->data);
    }
    rmdir(t->root);
}

static void seg_path(const tdir *t, unsigned id, char *out, size_t n) {
    snprintf(out, n, "%s/%016u.log", t->data, id);
}

/* A crash loses the MANIFEST a clean close writes, with the final sizes: the tests of torn tails and
 * damaged records emulate it by removing the file (as a data dir from before MANIFEST). */
static void forget_manifest(const tdir *t) {
    char path[256];
    snprintf(path, sizeof path, "%s/MANIFEST", t->data);
    ck_assert_int_eq(unlink(path), 0);
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(*len + 1);
    ck_assert_uint_eq(fread(buf, 1, *len, f), *len);
    fclose(f);
    return buf;
}

static void flip_bit(const char *path, long offset) {
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    uint8_t b;
    ck_assert_int_eq(pread(fd, &b, 1, offset), 1);
    b ^= 0x10;
    ck_assert_int_eq(pwrite(fd, &b, 1, offset), 1);
    close(fd);
}

static void append_bytes(const char *path, const void *bytes, size_t n) {
    int fd = open(path, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, bytes, n), (ssize_t)n);
    close(fd);
}

/* ---------- records written and replayed ---------- */

typedef struct rec {
    int type;
    int64_t rev;
    uint8_t *data;
    size_t len;
    log_place place;
} rec;

typedef struct recs {
    rec *v;
    size_t n, cap;
    int refuse_at; /* replay returns non-zero at this record index; -1 never */
} recs;

static void recs_add(recs *r, int type, int64_t rev, const uint8_t *data, size_t len, log_place place) {
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->v = realloc(r->v, r->cap * sizeof *r->v);
    }
    rec *x = &r->v[r->n++];
    *x = (rec){.type = type, .rev = rev, .data = malloc(len ? len : 1), .len = len, .place = place};
    if (len) memcpy(x->data, data, len);
}

static void recs_free(recs *r) {
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].data);
    free(r->v);
    *r = (recs){.refuse_at = -1};
}

static int collect(void *ctx, int type, int64_t rev, const uint8_t *payload, size_t len, log_place where) {
    recs *r = ctx;
    if (r->refuse_at >= 0 && (size_t)r->refuse_at == r->n) return 1;
    recs_add(r, type, rev, payload, len, where);
    return 0;
}

static size_t payload_len(int i) {
    return (size_t)((i * 37) % 300);
}

static void make_payload(int i, uint8_t *buf) {
    for (size_t j = 0; j < payload_len(i); j++)
        buf[j] = (uint8_t)(i * 7 + (int)j);
}

/* Appends records first..first+n-1 to the batch, remembering each in `written`. */
static void append_n(wal *l, recs *written, int first, int n) {
    uint8_t buf[300];
    for (int i = first; i < first + n; i++) {
        make_payload(i, buf);
        int type = 1 + i % 7;
        log_place p = log_append(l, type, 1000 + i, buf, payload_len(i));
        ck_assert_uint_eq(p.length, payload_len(i));
        recs_add(written, type, 1000 + i, buf, payload_len(i), p);
    }
}

static void assert_same_records(const recs *got, const recs *want, size_t n) {
    ck_assert_uint_eq(got->n, n);
    for (size_t i = 0; i < n; i++) {
        const rec *g = &got->v[i], *w = &want->v[i];
        ck_assert_int_eq(g->type, w->type);
        ck_assert_int_eq(g->rev, w->rev);
        ck_assert_uint_eq(g->len, w->len);
        ck_assert_mem_eq(g->data, w->data, w->len);
        ck_assert_uint_eq(g->place.segment, w->place.segment);
        ck_assert_uint_eq(g->place.offset, w->place.offset);
        ck_assert_uint_eq(g->place.length, w->place.length);
    }
}

static void assert_readable(wal *l, const recs *want) {
    uint8_t buf[300];
    for (size_t i = 0; i < want->n; i++) {
        ck_assert_int_eq(log_read(l, want->v[i].place, buf), 0);
        ck_assert_mem_eq(buf, want->v[i].data, want->v[i].len);
    }
}

static wal *open_log(const tdir *t, uint64_t segment_bytes, recs *replayed) {
    log_options opt = {.fsync = true, .segment_bytes = segment_bytes};
    char err[256] = "";
    wal *l = log_open(t->data, &opt, collect, replayed, err, sizeof err);
    ck_assert_msg(l != NULL, "log_open failed: %s", err);
    return l;
}

/* Opening must fail with an error naming the file and offset; returns nothing, asserts all. */
static void assert_open_fails(const tdir *t, uint64_t segment_bytes, const char *file, long offset) {
    log_options opt = {.fsync = true, .segment_bytes = segment_bytes};
    char err[256] = "", want_off[64];
    recs r = {.refuse_at = -1};
    wal *l = log_open(t->data, &opt, collect, &r, err, sizeof err);
    ck_assert_ptr_null(l);
    ck_assert_msg(strstr(err, file) != NULL, "err '%s' does not name %s", err, file);
    snprintf(want_off, sizeof want_off, "offset %ld", offset);
    ck_assert_msg(strstr(err, want_off) != NULL, "err '%s' does not name %s", err, want_off);
    ck_assert_ptr_null(strchr(err, '\n'));
    recs_free(&r);
}

/* ---------- tests ---------- */

START_TEST(test_roundtrip_same_places) {
    tdir t;
    tdir_make(&t);
    recs written = {.refuse_at = -1}, replayed = {.refuse_at = -1};
    wal *l = open_log(&t, 0, &replayed);
    ck_assert_uint_eq(replayed.n, 0);
    ck_assert(!log_has_batch(l));
    append_n(l, &written, 0, 50);
    ck_assert(log_has_batch(l));
    ck_assert_int_eq(log_commit(l), 0);
    ck_assert(!log_has_batch(l));
    append_n(l, &written, 50, 50);
    ck_assert_int_eq(log_commit(l), 0);
    uint64_t total = log_total_bytes(l);
    log_close(l);

    char path[256];
    seg_path(&t, 1, path, sizeof path);
    ck_assert_int_eq(file_size(path), (long)total);
    l = open_log(&t, 0, &replayed);
    assert_same_records(&replayed, &written, 100);
    assert_readable(l, &written);
    ck_assert_uint_eq(log_total_bytes(l), total);
    log_close(l);
    recs_free(&written);
    recs_free(&replayed);
    tdir_remove(&t);
}
END_TEST

START_TEST(test_read_from_batch_and_disk) {
    tdir t;
    tdir_make(&t);
    recs written = {.refuse_at = -1}, replayed = {.refuse_at = -1};
    wal *l = open_log(&t, 0, &replayed);
    append_n(l, &written, 1, 10);
    assert_readable(l, &written); /* all still in the batch, no file yet */
    ck_assert_int_eq(log_commit(l), 0);
    append_n(l, &written, 11, 10);
    assert_readable(l, &written); /* half on disk, half in the batch */
    uint8_t buf[8];
    log_place bad = written.v[19].place;
    bad.length += 1000;
    ck_assert_int_lt(log_read(l, bad, buf), 0);
    bad.segment = 99;
    ck_assert_int_eq(log_read(l, bad, buf), -ENOENT);
    ck_assert_int_eq(log_commit(l), 0);
    assert_readable(l, &written);
    log_close(l);
    recs_free(&written);
    recs_free(&replayed);
    tdir_remove(&t);
}
END_TEST

START_TEST(test_segment_rollover) {
    tdir t;
    tdir_make(&t);
    recs written = {.refuse_at = -1}, replayed = {.refuse_at = -1};
    wal *l = open_log(&t, 1000, &replayed);
    for (int batch = 0; batch < 10; batch++) {
        append_n(l, &written, batch * 20, 20); /* ~3 KB per batch: each batch spans segments */
        assert_readable(l, &written);
        ck_assert_int_eq(log_commit(l), 0);
    }
    assert_readable(l, &written);
    uint64_t total = log_total_bytes(l);
    log_close(l);

    unsigned last = written.v[written.n - 1].place.segment;
    ck_assert_uint_gt(last, 20);
    long sum = 0;
    for (unsigned id = 1; id <= last; id++) {
        char path[256];
        seg_path(&t, id, path, sizeof path);
        long size = file_size(path);
        ck_assert_int_gt(size, SEG_HDR);
        ck_assert_int_le(size, 1000 + REC_HDR + 300); /* at most one record past the limit */
        sum += size;
    }
    ck_assert_int_eq(sum, (long)total);
    for (size_t i = 0; i < written.n; i++) /* no record straddles a segment boundary */
        ck_assert_uint_le(written.v[i].place.offset + written.v[i].place.length,
                          (uint64_t)(1000 + REC_HDR + 300));

    l = open_log(&t, 1000, &replayed);
    assert_same_records(&replayed, &written, 200);
    assert_readable(l, &written);
    log_close(l);
    recs_free(&written);
    recs_free(&replayed);
    tdir_remove(&t);
}
END_TEST

/* Replay's read-ahead thread: every segment after the first is advised once, whole; a failing hint
 * changes nothing. */
static int n_advised;
static uint64_t advised_bytes;
static bool advice_fails;

static int count_read_ahead(int fd, uint64_t offset, uint64_t length) {
    (void)fd;
    __atomic_add_fetch(&n_advised, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&advised_bytes, offset == 0 ? length : 0, __ATOMIC_SEQ_CST);
    if (advice_fails) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

START_TEST(test_replay_reads_ahead) {
    tdir t;
    tdir_make(&t);
    recs written = {.refuse_at = -1}, replayed = {.refuse_at = -1};
    wal *l = open_log(&t, 1000, &replayed);
    for (int batch = 0; batch < 10; batch++) {
        append_n(l, &written, batch * 20, 20);
        ck_assert_int_eq(log_commit(l), 0);
    }
    uint64_t total = log_total_bytes(l);
    unsigned segments = written.v[written.n - 1].place.segment;
    log_close(l);
    char first[256];
    seg_path(&t, 1, first, sizeof first);
    for (int fails = 0; fails < 2; fails++) {
        n_advised = 0, advised_bytes = 0, advice_fails = fails;
        storage_io_set(&(storage_io){.read_ahead = count_read_ahead});
        recs again = {.refuse_at = -1};
        l = open_log(&t, 1000, &again);
        storage_io_set(NULL);
        ck_assert_int_eq(n_advised, (int)segments - 1);
        ck_assert_uint_eq(advised_bytes, total - (uint64_t)file_size(first));
        assert_same_records(&again, &written, 200);
        log_close(l);
        recs_free(&again);
    }
    recs_free(&written);
    recs_free(&replayed);
    tdir_remove(&t);
}
END_TEST

START_TEST(test_record_larger_than_segment) {
    tdir t;
    tdir_make(&t);
    recs replayed = {.refuse_at = -1};
    wal *l = open_log(&t, 64, &replayed);
    size_t big = 100000;
    uint8_t *data = malloc(big), *back = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (uint8_t)(i * 13);
    log_place a = log_append(l, LOG_PUT, 1, data, big);
    log_place b = log_append(l, LOG_PUT, 2, data, 10);
    ck_assert_uint_eq(a.segment, 1);
    ck_assert_uint_eq(b.segment, 2);
    ck_assert_int_eq(log_commit(l), 0);
    log_close(l);
    l = open_log(&t, 64, &replayed);
    ck_assert_uint_eq(replayed.n, 2);
    ck_assert_mem_eq(replayed.v[0].data, data, big); /* checksummed by the streaming path */
    ck_assert_int_eq(log_read(l, a, back), 0);
    ck_assert_mem_eq(back, data, big);
    log_close(l);
    free(data);
    free(back);
    recs_free(&replayed);
    tdir_remove(&t);
}
END_TEST

START_TEST(test_fsync_count) {
    tdir t;
    tdir_make(&t);
    recs written = {.refuse_at = -1}, replayed = {.refuse_at = -1};
    wal *l = open_log(&t, 0, &replayed);
    ck_assert_int_eq(log_commit(l), 0);
    ck_assert_uint_eq(log_fsync_count(l), 0);
    append_n(l, &written, 0, 5);
    ck_assert_int_eq(log_commit(l), 0);
    ck_assert_uint_eq(log_fsync_count(l), 1);
    ck_assert_int_eq(log_commit(l), 0);
    ck_assert_uint_eq(log_fsync_count(l), 1);
    append_n(l, &written, 5, 5);
    ck_assert_int_eq(log_commit(l), 0);
    ck_assert_uint_eq(log_fsync_count(l), 2);
    log_close(l);

    log_options nosync = {.fsync = false};
    char err[256];
    l = log_open(t.data, &nosync, NULL, NULL, err, sizeof err);
    ck_assert_ptr_nonnull(l);
    append_n(l, &written, 10, 5);
    ck_assert_int_eq(log_commit(l), 0);
    ck_assert_uint_eq(log_fsync_count(l), 0);
    log_close(l);
    recs_free(&written);
    recs_free(&replayed);
    tdir_remove(&t);
}
END_TEST

/* Writes 10 records in one segment; returns the file's path and size. */
static long write_ten(const tdir *t, recs *written, char *path, size_t pathlen) {
    recs replayed = {.refuse_at = -1};
    wal *l = open_log(t, 0, &replayed);
    append_n(l, written, 1, 10);
    ck_assert_int_eq(log_commit(l), 0);
    log_close(l);
    recs_free(&replayed);
    seg_path(t, 1, path, pathlen);
    return file_size(path);
}

static void reopen_expect(const tdir *t, const recs *written, size_t n, long file_bytes, const char *path) {
    recs replayed = {.refuse_at = -1};
    wal *l = open_log(t, 0, &replayed);
    assert_same_records(&replayed, written, n);
    ck_assert_int_eq(file_size(path), file_bytes);
    ck_assert_uint_eq(log_total_bytes(l), (uint64_t)file_bytes);
    log_close(l);
    recs_free(&replayed);
}

START_TEST(test_torn_tail_mid_record) {
    tdir t;
    tdir_make(&t);
    recs written = {.refuse_at = -1};
    char path[256];
    write_ten(&t, &written, path, sizeof path);
    long last_start = (long)written.v[9].place.offset - REC_HDR;
    forget_manifest(&t);
    ck_assert_int_eq(truncate(path, last_start + REC_HDR + 3), 0); /* incomplete payload */
    reopen_expect(&t, &written, 9, last_start, path);
    forget_manifest(&t);
    ck_assert_int_eq(truncate(path, last_start - 5), 0); /* incomplete payload of record 8 */
    long prev_start = (long)written.v[8].place.offset - REC_HDR;
    reopen_expect(&t, &written, 8, prev_start, path);
    forget_manifest(&t);
    ck_assert_int_eq(truncate(path, prev_start + 10), 0); /* incomplete header */
    reopen_expect(&t, &written, 8, prev_start, path);

    /* the log goes on after the cut */
    recs replayed = {.refuse_at = -1};
    free(written.v[8].data);
    free(written.v[9].data);
    written.n = 8;
    recs more = {.refuse_at = -1};
    wal *l = open_log(&t, 0, &replayed);
    append_n(l, &more, 100, 3);
    ck_assert_int_eq(log_commit(l), 0);
    log_close(l);
    for (size_t i = 0; i < more.n; i++)
        recs_add(&written, more.v[i].type, more.v[i].rev, more.v[i].data, more.v[i].len, more.v[i].place);
    recs_free(&replayed);
    l = open_log(&t, 0, &replayed);
    assert_same_records(&replayed, &written, 11);
    log_close(l);
    recs_free(&more);
    recs_free(&replayed);
    recs_free(&written);
    tdir_remove(&t);
}
END_TEST

START_TEST(test_torn_tail_garbage) {
    tdir t;
    tdir_make(&t);
    recs written = {.refuse_at = -1};
    char path[256];
    long size = write_ten(&t, &written, path, sizeof path);
    uint8_t junk[5000];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 2654435761u >> 13);
    append_bytes(path, junk, sizeof junk);
    reopen_expect(&t, &written, 10, size, path);
    uint8_t zeros[4096] = {0}; /* a tail of zeros, as a file system may leave after a crash */
    append_bytes(path, zeros, sizeof zeros);
    reopen_expect(&t, &written, 10, size, path);
    recs_free(&written);
    tdir_remove(&t);
}
END_TEST

START_TEST(test_empty_or_torn_last_segment) {
    tdir t;
    tdir_make(&t);
    recs written = {.refuse_at = -1};
    char path[256], path2[256];
    long size = write_ten(&t, &written, path, sizeof path);
    seg_path(&t, 2, path2, sizeof path2);
    int fd = open(path2, O_CREAT | O_WRONLY, 0644); /* crash right after creating segment 2 */
    close(fd);
    reopen_expect(&t, &written, 10, size, path);
    append_bytes(path2, "CETCD", 5); /* crash inside its header */
    reopen_expect(&t, &written, 10, size, path);
    ck_assert_int_eq(file_size(path2), 0);

    recs replayed = {.refuse_at = -1}, more = {.refuse_at = -1};
    wal *l = open_log(&t, 0, &replayed);
    append_n(l, &more, 50, 2);
    ck_assert_uint_eq(more.v[0].place.segment, 2);
    ck_assert_uint_eq(more.v[0].place.offset, SEG_HDR + REC_HDR);
    ck_assert_int_eq(log_commit(l), 0);
    log_close(l);
    recs_free(&replayed);
    l = open_log(&t, 0, &replayed);
    ck_assert_uint_eq(replayed.n, 12);
    assert_readable(l, &more);
    log_close(l);
    recs_free(&more);
    recs_free(&replayed);
    recs_free(&written);
    tdir_remove(&t);
}
END_TEST

START_TEST(test_corruption_followed_by_valid_record_fails) {
    tdir t;
    tdir_make(&t);
    recs written = {.refuse_at = -1};
    char path[256];
    write_ten(&t, &written, path, sizeof path);
    long rec5 = (long)written.v[5].place.offset - REC_HDR;
    flip_bit(path, (long)written.v[5].place.offset + 2);
    size_t before_len, after_len;
    uint8_t *before = slurp(path, &before_len);
    assert_open_fails(&t, 0, "0000000000000001.log", rec5);
    uint8_t *after = slurp(path, &after_len);
    ck_assert_uint_eq(before_len, after_len);
    ck_assert_mem_eq(before, after, before_len);
    free(before);
    free(after);
    recs_free(&written);
    tdir_remove(&t);
}
END_TEST

START_TEST(test_corruption_in_earlier_segment_fails) {
    tdir t;
    tdir_make(&t);
    recs written = {.refuse_at = -1}, replayed = {.refuse_at = -1};
    wal *l = open_log(&t, 1000, &replayed);
    append_n(l, &written, 0, 40);
    ck_assert_int_eq(log_commit(l), 0);
    log_close(l);
    char path[256], path3[256];
    seg_path(&t, 2, path, sizeof path);
    seg_path(&t, 3, path3, sizeof path3);
    ck_assert_int_gt(file_size(path3), 0);
    long size = file_size(path);

    flip_bit(path, size - 1); /* last byte of segment 2's last record: nothing valid after it */
    size_t before_len, after_len;
    uint8_t *before = slurp(path, &before_len);
    size_t idx = 0;
    while (written.v[idx].place.segment != 2 ||
           written.v[idx].place.offset + written.v[idx].place.length < (uint64_t)size)
        idx++;
    assert_open_fails(&t, 1000, "0000000000000002.log", (long)written.v[idx].place.offset - REC_HDR);
    uint8_t *after = slurp(path, &after_len);
    ck_assert_uint_eq(before_len, after_len);
    ck_assert_mem_eq(before, after, before_len);
    flip_bit(path, size - 1);

    forget_manifest(&t);                           /* which would refuse it earlier, as truncated */
    ck_assert_int_eq(truncate(path, size - 3), 0); /* a torn tail is fatal in a non-last segment */
    assert_open_fails(&t, 1000, "0000000000000002.log", (long)written.v[idx].place.offset - REC_HDR);
    ck_assert_int_eq(file_size(path), size - 3);
    free(before);
    free(after);
    recs_free(&written);
    recs_free(&replayed);
    tdir_remove(&t);
}
END_TEST

static void open_fails_with(const tdir *t, const char *what) {
    log_options opt = {.fsync = true, .segment_bytes = 1000};
    char err[256] = "";
    recs r = {.refuse_at = -1};
    ck_assert_ptr_null(log_open(t->data, &opt, collect, &r, err, sizeof err));
    ck_assert_msg(strstr(err, what) != NULL, "err '%s' does not say '%s'", err, what);
    recs_free(&r);
}

static void copy_file(const char *from, const char *to) {
    size_t len;
    uint8_t *data = slurp(from, &len);
    FILE *f = fopen(to, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    free(data);
}

/* A data dir that lost a segment, or had one cut short, is refused, never started short or empty. */
START_TEST(test_manifest_refuses_damage) {
    tdir t;
    tdir_make(&t);
    recs written = {.refuse_at = -1}, replayed = {.refuse_at = -1};
    wal *l = open_log(&t, 1000, &replayed);
    append_n(l, &written, 0, 40);
    ck_assert_int_eq(log_commit(l), 0);
    log_close(l);
    char seg2[256], last[256], keep[300];
    seg_path(&t, 2, seg2, sizeof seg2);
    unsigned n = 1;
    do
        seg_path(&t, ++n, last, sizeof last);
    while (file_size(last) >= 0);
    seg_path(&t, --n, last, sizeof last);
    snprintf(keep, sizeof keep, "%s.keep", t.root);

    copy_file(seg2, keep);
    ck_assert_int_eq(unlink(seg2), 0); /* a gap in the middle */
    open_fails_with(&t, "0000000000000002.log is missing");
    copy_file(keep, seg2);
    copy_file(last, keep);
    ck_assert_int_eq(truncate(last, 16), 0); /* the last one emptied while stopped */
    open_fails_with(&t, "truncated");
    copy_file(keep, last);
    unlink(keep);

    l = open_log(&t, 1000, &replayed); /* whole again: opens with every record */
    assert_same_records(&replayed, &written, 40);
    log_close(l);
    recs_free(&written);
    recs_free(&replayed);
    tdir_remove(&t);
}
END_TEST

START_TEST(test_bad_magic_fails) {
    tdir t;
    tdir_make(&t);
    recs written = {.refuse_at = -1};
    char path[256];
    write_ten(&t, &written, path, sizeof path);
    flip_bit(path, 2);
    assert_open_fails(&t, 0, "0000000000000001.log", 0);
    recs_free(&written);
    tdir_remove(&t);
}
END_TEST

START_TEST(test_replay_refusal_fails_open) {
    tdir t;
    tdir_make(&t);
    recs written = {.refuse_at = -1};
    char path[256];
    long size = write_ten(&t, &written, path, sizeof path);
    recs replayed = {.refuse_at = 4};
    char err[256];
    log_options opt = {.fsync = true};
    ck_assert_ptr_null(log_open(t.data, &opt, collect, &replayed, err, sizeof err));
    ck_assert_uint_eq(replayed.n, 4);
    ck_assert_int_eq(file_size(path), size);
    recs_free(&replayed);
    recs_free(&written);
    tdir_remove(&t);
}
END_TEST

/* ---------- injected write and sync failures ---------- */

static int fake_writes;

static ssize_t write_half_then_enospc(int fd, const void *buf, size_t n, off_t off) {
    if (fake_writes++ == 0) return pwrite(fd, buf, n / 2, off);
    errno = ENOSPC;
    return -1;
}

static ssize_t write_in_dribbles(int fd, const void *buf, size_t n, off_t off) {
    if (fake_writes++ % 3 == 0) {
        errno = EINTR;
        return -1;
    }
    return pwrite(fd, buf, n < 7 ? n : 7, off);
}

static int sync_eio(int fd) {
    (void)fd;
    errno = EIO;
    return -1;
}

START_TEST(test_short_writes_are_continued) {
    tdir t;
    tdir_make(&t);
    recs written = {.refuse_at = -1}, replayed = {.refuse_at = -1};
    wal *l = open_log(&t, 0, &replayed);
    fake_writes = 0;
    storage_io_set(&(storage_io){.write_at = write_in_dribbles});
    append_n(l, &written, 0, 20);
    ck_assert_int_eq(log_commit(l), 0);
    ck_assert_int_gt(fake_writes, 100);
    storage_io_set(NULL);
    log_close(l);
    l = open_log(&t, 0, &replayed);
    assert_same_records(&replayed, &written, 20);
    log_close(l);
    recs_free(&written);
    recs_free(&replayed);
    tdir_remove(&t);
}
END_TEST

START_TEST(test_failed_write_stops_log) {
    tdir t;
    tdir_make(&t);
    recs written = {.refuse_at = -1}, replayed = {.refuse_at = -1};
    wal *l = open_log(&t, 0, &replayed);
    append_n(l, &written, 0, 10);
    ck_assert_int_eq(log_commit(l), 0);
    long good = (long)log_total_bytes(l);

    fake_writes = 0;
    storage_io_set(&(storage_io){.write_at = write_half_then_enospc});
    recs lost = {.refuse_at = -1};
    append_n(l, &lost, 10, 10);
    ck_assert_int_eq(log_commit(l), -ENOSPC);
    ck_assert_int_eq(fake_writes, 2);
    storage_io_set(NULL); /* even with a healthy disk again, the log stays failed */
    append_n(l, &lost, 20, 5);
    ck_assert_int_eq(log_commit(l), -ENOSPC);
    ck_assert_int_eq(log_commit(l), -ENOSPC);
    assert_readable(l, &lost); /* the unwritten batch is still readable */
    uint64_t syncs = log_fsync_count(l);
    ck_assert_uint_eq(syncs, 1);
    log_close(l);

    char path[256];
    seg_path(&t, 1, path, sizeof path);
    ck_assert_int_eq(file_size(path), good); /* the half batch that reached the file was cut again */
    l = open_log(&t, 0, &replayed);
    ck_assert_int_eq(file_size(path), good);
    assert_same_records(&replayed, &written, 10);
    log_close(l);
    recs_free(&lost);
    recs_free(&written);
    recs_free(&replayed);
    tdir_remove(&t);
}
END_TEST

START_TEST(test_failed_fsync_stops_log) {
    tdir t;
    tdir_make(&t);
    recs written = {.refuse_at = -1}, replayed = {.refuse_at = -1};
    wal *l = open_log(&t, 0, &replayed);
    append_n(l, &written, 0, 10);
    ck_assert_int_eq(log_commit(l), 0);
    storage_io_set(&(storage_io){.sync_data = sync_eio});
    recs unacked = {.refuse_at = -1};
    append_n(l, &unacked, 10, 3);
    ck_assert_int_eq(log_commit(l), -EIO);
    ck_assert_uint_eq(log_fsync_count(l), 2);
    storage_io_set(NULL);
    append_n(l, &unacked, 13, 3);
    ck_assert_int_eq(log_commit(l), -EIO);
    ck_assert_uint_eq(log_fsync_count(l), 2); /* never retried */
    log_close(l);

    /* The write itself succeeded, so the unacknowledged batch may survive; what was committed must. */
    l = open_log(&t, 0, &replayed);
    ck_assert_uint_ge(replayed.n, 10);
    ck_assert_uint_le(replayed.n, 13);
    assert_same_records(&(recs){.v = replayed.v, .n = 10}, &written, 10);
    log_close(l);
    recs_free(&unacked);
    recs_free(&written);
    recs_free(&replayed);
    tdir_remove(&t);
}
END_TEST

START_TEST(test_many_records_recover) {
    tdir t;
    tdir_make(&t);
    log_options opt = {.fsync = false, .segment_bytes = 4u << 20};
    char err[256];
    wal *l = log_open(t.data, &opt, NULL, NULL, err, sizeof err);
    ck_assert_ptr_nonnull(l);
    uint8_t val[40] = {0};
    for (int i = 0; i < 200000; i++) {
        memcpy(val, &i, sizeof i);
        log_append(l, LOG_PUT, i + 1, val, sizeof val);
        if (i % 1000 == 999) ck_assert_int_eq(log_commit(l), 0);
    }
    ck_assert_int_eq(log_commit(l), 0);
    log_close(l);
    recs replayed = {.refuse_at = -1};
    l = log_open(t.data, &opt, collect, &replayed, err, sizeof err);
    ck_assert_ptr_nonnull(l);
    ck_assert_uint_eq(replayed.n, 200000);
    ck_assert_int_eq(replayed.v[199999].rev, 200000);
    log_close(l);
    recs_free(&replayed);
    tdir_remove(&t);
}
END_TEST

Suite *log_suite(void) {
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_roundtrip_same_places);
    tcase_add_test(tc, test_read_from_batch_and_disk);
    tcase_add_test(tc, test_segment_rollover);
    tcase_add_test(tc, test_replay_reads_ahead);
    tcase_add_test(tc, test_record_larger_than_segment);
    tcase_add_test(tc, test_fsync_count);
    tcase_add_test(tc, test_torn_tail_mid_record);
    tcase_add_test(tc, test_torn_tail_garbage);
    tcase_add_test(tc, test_empty_or_torn_last_segment);
    tcase_add_test(tc, test_corruption_followed_by_valid_record_fails);
    tcase_add_test(tc, test_corruption_in_earlier_segment_fails);
    tcase_add_test(tc, test_bad_magic_fails);
    tcase_add_test(tc, test_replay_refusal_fails_open);
    tcase_add_test(tc, test_short_writes_are_continued);
    tcase_add_test(tc, test_failed_write_stops_log);
    tcase_add_test(tc, test_failed_fsync_stops_log);
    tcase_add_test(tc, test_many_records_recover);
    tcase_add_test(tc, test_manifest_refuses_damage);
    suite_add_tcase(s, tc);
    return s;
}
