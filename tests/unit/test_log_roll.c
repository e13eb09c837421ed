/* test_log_roll.c: a segment roll rides in the sync thread's job (issue 16, item 5): the loop's side
 * of a batch that crosses segments makes no file system call but the still-named check; the job
 * creates each new file (directory entry and MANIFEST durable first); a failure or a crash at any
 * call of the job loses nothing committed before and leaves a data dir that opens. crashfs.c is
 * built into this binary by test_lifecycle.c. */
#include "crashfs.h"
#include "log.h"
#include "storage_io.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEG_BYTES 1000
#define PAYLOAD 200 /* four records fill a segment: a fifth rolls */
#define ACKED 6     /* records committed before the roll: segment 1 full, segment 2 begun */
#define ROLLING 9   /* the batch under test: the rest of segment 2, all of 3, the start of 4 */

/* ---------- a data dir and its records ---------- */

static char root[64], data[96];

static void make_dir(void) {
    strcpy(root, "/tmp/cetcd-rolltest-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
    snprintf(data, sizeof data, "%s/data", root);
    ck_assert_int_eq(mkdir(data, 0755), 0);
}

static void remove_dir(void) {
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    ck_assert_int_eq(system(cmd), 0);
}

static bool seg_exists(unsigned id) {
    char path[160];
    snprintf(path, sizeof path, "%s/%016u.log", data, id);
    return access(path, F_OK) == 0;
}

static void payload(int i, uint8_t *buf) {
    for (int j = 0; j < PAYLOAD; j++)
        buf[j] = (uint8_t)(i * 31 + j);
}

static log_place places[ACKED + ROLLING];

static void append(wal *l, int first, int n) {
    uint8_t buf[PAYLOAD];
    for (int i = first; i < first + n; i++) {
        payload(i, buf);
        places[i] = log_append(l, LOG_PUT, 100 + i, buf, PAYLOAD);
    }
}

static void assert_readable(wal *l, int first, int n) {
    uint8_t got[PAYLOAD], want[PAYLOAD];
    for (int i = first; i < first + n; i++) {
        payload(i, want);
        ck_assert_int_eq(log_read(l, places[i], got), 0);
        ck_assert_mem_eq(got, want, PAYLOAD);
    }
}

typedef struct replayed {
    int n;
    bool bad; /* a record out of order, or not one of ours */
} replayed;

static int collect(void *ctx, int type, int64_t rev, const uint8_t *p, size_t len, log_place where) {
    replayed *r = ctx;
    uint8_t want[PAYLOAD];
    payload(r->n, want);
    if (type != LOG_PUT || rev != 100 + r->n || len != PAYLOAD || memcmp(p, want, PAYLOAD) != 0 ||
        where.segment != places[r->n].segment || where.offset != places[r->n].offset)
        r->bad = true;
    r->n++;
    return 0;
}

static wal *open_log(replayed *r, char *err, size_t errlen) {
    log_options opt = {.fsync = true, .segment_bytes = SEG_BYTES};
    if (r) *r = (replayed){0};
    return log_open(data, &opt, r ? collect : NULL, r, err, errlen);
}

/* The data dir opens and holds every committed record, then a prefix of the rolling batch. */
static int reopen_check(int at_least, const char *when) {
    char err[256] = "";
    replayed r;
    wal *l = open_log(&r, err, sizeof err);
    ck_assert_msg(l != NULL, "%s: the data dir does not open: %s", when, err);
    ck_assert_msg(!r.bad, "%s: a replayed record is not the one appended there", when);
    ck_assert_msg(r.n >= at_least && r.n <= ACKED + ROLLING, "%s: %d records replayed, %d committed", when,
                  r.n, at_least);
    log_close(l);
    return r.n;
}

/* A log holding ACKED committed records, and the rolling batch appended after them. */
static wal *log_before_roll(void) {
    char err[256];
    wal *l = open_log(NULL, err, sizeof err);
    ck_assert_msg(l != NULL, "%s", err);
    append(l, 0, ACKED);
    ck_assert_int_eq(log_commit(l), 0);
    append(l, ACKED, ROLLING);
    ck_assert_uint_eq(places[ACKED + ROLLING - 1].segment, 4);
    return l;
}

/* ---------- the loop's side makes no system call ---------- */

static int loop_calls; /* calls other than same_file (a stat) */

static int count_open(int dirfd, const char *name, int flags, mode_t mode) {
    loop_calls++;
    return openat(dirfd, name, flags, mode);
}
static ssize_t count_write(int fd, const void *buf, size_t n, off_t off) {
    loop_calls++;
    return pwrite(fd, buf, n, off);
}
static int count_sync(int fd) {
    loop_calls++;
    return fdatasync(fd);
}
static int count_sync_dir(int fd) {
    loop_calls++;
    return fsync(fd);
}
static int count_rename(int dirfd, const char *from, const char *to) {
    loop_calls++;
    return renameat(dirfd, from, dirfd, to);
}
static int count_truncate(int fd, off_t len) {
    loop_calls++;
    return ftruncate(fd, len);
}
static int count_close(int fd) {
    loop_calls++;
    return close(fd);
}
static const storage_io counting_io = {.open_at = count_open,
                                       .write_at = count_write,
                                       .sync_data = count_sync,
                                       .sync_dir = count_sync_dir,
                                       .rename_at = count_rename,
                                       .truncate = count_truncate,
                                       .close = count_close};

START_TEST(test_roll_rides_in_the_job) {
    make_dir();
    wal *l = log_before_roll();
    uint64_t syncs = log_fsync_count(l), mark = log_appended_mark(l);
    log_job *job;
    storage_io_set(&counting_io);
    loop_calls = 0;
    ck_assert_int_eq(log_write_batch(l, &job), 0);
    ck_assert_int_eq(loop_calls, 0);
    storage_io_set(NULL);
    ck_assert_ptr_nonnull(job); /* before: committed at once on the loop */
    ck_assert(!seg_exists(3) && !seg_exists(4));
    ck_assert(!log_is_durable(l, mark));
    assert_readable(l, 0, ACKED + ROLLING); /* the old segment's tail and the new ones from memory */
    ck_assert_uint_eq(log_segment_count(l), 2);

    ck_assert_int_eq(log_run_job(job), 0); /* the sync thread's part */
    ck_assert(seg_exists(3) && seg_exists(4));
    storage_io_set(&counting_io);
    loop_calls = 0;
    log_sync_finished(l, 0);
    ck_assert_int_eq(loop_calls, 0);
    storage_io_set(NULL);
    ck_assert(log_is_durable(l, mark));
    ck_assert_uint_eq(log_fsync_count(l), syncs + 3); /* one per segment, each before the next is made */
    ck_assert_uint_eq(log_segment_count(l), 4);
    assert_readable(l, 0, ACKED + ROLLING);
    log_close(l);
    ck_assert_int_eq(reopen_check(ACKED + ROLLING, "after the roll"), ACKED + ROLLING);
    remove_dir();
}
END_TEST

/* With fsync off a batch is written at once, on the loop, unless it rolls: the new file's creation,
 * directory sync and MANIFEST still go to the thread. */
START_TEST(test_roll_without_fsync_rides_in_the_job) {
    make_dir();
    log_options opt = {.fsync = false, .segment_bytes = SEG_BYTES};
    char err[256];
    wal *l = log_open(data, &opt, NULL, NULL, err, sizeof err);
    ck_assert_msg(l != NULL, "%s", err);
    log_job *job;
    append(l, 0, ACKED);
    ck_assert_int_eq(log_write_batch(l, &job), 0); /* segments 1 and 2 are new: a job */
    ck_assert_ptr_nonnull(job);
    ck_assert_int_eq(log_run_job(job), 0);
    log_sync_finished(l, 0);
    append(l, ACKED, 2); /* the rest of segment 2: written at once */
    ck_assert_int_eq(log_write_batch(l, &job), 0);
    ck_assert_ptr_null(job);
    ck_assert(log_is_durable(l, log_appended_mark(l)));
    append(l, ACKED + 2, ROLLING - 2); /* segments 3 and 4 */
    storage_io_set(&counting_io);
    loop_calls = 0;
    ck_assert_int_eq(log_write_batch(l, &job), 0);
    ck_assert_int_eq(loop_calls, 0);
    storage_io_set(NULL);
    ck_assert_ptr_nonnull(job);
    ck_assert(!seg_exists(3));
    ck_assert_int_eq(log_run_job(job), 0);
    log_sync_finished(l, 0);
    ck_assert(log_is_durable(l, log_appended_mark(l)));
    ck_assert_uint_eq(log_fsync_count(l), 0);
    log_close(l);
    ck_assert_int_eq(reopen_check(ACKED + ROLLING, "fsync off"), ACKED + ROLLING);
    remove_dir();
}
END_TEST

/* MANIFEST names each new segment before its first byte goes in, and the segments before it at their
 * final sizes: after a write into segment 4 failed, the data dir as the job left it refuses to open
 * without segment 4 (empty, but listed) or with segment 3 cut short; whole, it opens. */
static int writes_seen;
static ssize_t fifth_write_fails(int fd, const void *buf, size_t n, off_t off) {
    if (++writes_seen == 5) { /* 2's tail, MANIFEST naming 3, 3, MANIFEST naming 4, then 4 */
        errno = EIO;
        return -1;
    }
    return pwrite(fd, buf, n, off);
}

static void assert_refused(const char *file, const char *why) {
    char err[256] = "";
    ck_assert_ptr_null(open_log(NULL, err, sizeof err));
    ck_assert_msg(strstr(err, file) && strstr(err, why), "%s", err);
}

START_TEST(test_new_segment_is_in_manifest_first) {
    make_dir();
    wal *l = log_before_roll();
    log_job *job;
    ck_assert_int_eq(log_write_batch(l, &job), 0);
    writes_seen = 0;
    storage_io_set(&(storage_io){.write_at = fifth_write_fails});
    int rc = log_run_job(job);
    storage_io_set(NULL);
    ck_assert_int_eq(rc, -EIO);
    log_sync_finished(l, rc);
    ck_assert_int_eq(log_commit(l), -EIO); /* failed for good */
    assert_readable(l, 0, ACKED + ROLLING);
    log_close(l);

    char seg3[160], seg4[160], away[160];
    snprintf(seg3, sizeof seg3, "%s/%016u.log", data, 3u);
    snprintf(seg4, sizeof seg4, "%s/%016u.log", data, 4u);
    snprintf(away, sizeof away, "%s/away", root);
    ck_assert_int_eq(rename(seg4, away), 0);
    assert_refused("0000000000000004.log", "is missing");
    ck_assert_int_eq(rename(away, seg4), 0);
    ck_assert_int_eq(truncate(seg3, 600), 0);
    assert_refused("0000000000000003.log", "truncated");
    remove_dir();

    make_dir(); /* again, whole this time */
    l = log_before_roll();
    ck_assert_int_eq(log_write_batch(l, &job), 0);
    writes_seen = 0;
    storage_io_set(&(storage_io){.write_at = fifth_write_fails});
    rc = log_run_job(job);
    storage_io_set(NULL);
    log_sync_finished(l, rc);
    log_close(l);
    ck_assert_int_eq(reopen_check(ACKED, "after a failed write into segment 4"), ACKED + 2 + 4);
    remove_dir();
}
END_TEST

/* ---------- a failure at each call of the job ---------- */

static int fail_at, calls_seen;

static bool fails_now(void) {
    if (++calls_seen != fail_at) return false;
    errno = EIO;
    return true;
}
static int fail_open(int dirfd, const char *name, int flags, mode_t mode) {
    return (flags & O_CREAT) && fails_now() ? -1 : openat(dirfd, name, flags, mode);
}
static ssize_t fail_write(int fd, const void *buf, size_t n, off_t off) {
    return fails_now() ? -1 : pwrite(fd, buf, n, off);
}
static int fail_sync(int fd) {
    return fails_now() ? -1 : fdatasync(fd);
}
static int fail_sync_dir(int fd) {
    return fails_now() ? -1 : fsync(fd);
}
static int fail_rename(int dirfd, const char *from, const char *to) {
    return fails_now() ? -1 : renameat(dirfd, from, dirfd, to);
}
static const storage_io failing_io = {.open_at = fail_open,
                                      .write_at = fail_write,
                                      .sync_data = fail_sync,
                                      .sync_dir = fail_sync_dir,
                                      .rename_at = fail_rename};

START_TEST(test_failure_at_each_call_of_a_roll) {
    int n;
    for (n = 1;; n++) {
        make_dir();
        wal *l = log_before_roll();
        log_job *job;
        ck_assert_int_eq(log_write_batch(l, &job), 0);
        fail_at = n;
        calls_seen = 0;
        storage_io_set(&failing_io);
        int rc = log_run_job(job);
        storage_io_set(NULL);
        log_sync_finished(l, rc);
        bool failed = calls_seen >= n;
        char when[64];
        snprintf(when, sizeof when, "failure at call %d of the roll", n);
        if (failed) {
            ck_assert_msg(rc == -EIO, "%s: the job returned %d", when, rc);
            ck_assert_int_eq(log_commit(l), -EIO);
            assert_readable(l, 0, ACKED + ROLLING);
        } else {
            ck_assert_int_eq(rc, 0);
        }
        log_close(l);
        reopen_check(failed ? ACKED : ACKED + ROLLING, when);
        remove_dir();
        if (!failed) break;
    }
    /* 3 writes and 3 syncs, and per new segment: create, directory sync, MANIFEST's 5 calls */
    ck_assert_int_eq(n - 1, 3 * 2 + 2 * 7);
}
END_TEST

/* ---------- a power loss at each call of the job ---------- */

static uint64_t rng_state;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Runs the roll with a crash armed at its nth call (before or after it): true if it crashed. */
static bool crash_in_roll(int nth, bool after, uint64_t seed) {
    make_dir();
    crashfs_install(data);
    wal *l = log_before_roll();
    log_job *job;
    ck_assert_int_eq(log_write_batch(l, &job), 0);
    crashfs_arm((uint64_t)nth, false, after);
    int rc = log_run_job(job);
    log_sync_finished(l, rc);
    bool crashed = crashfs_crashed();
    ck_assert(crashed || rc == 0);
    if (!crashed) crashfs_crash_now(); /* the roll done: everything of it must survive */
    log_close(l);
    rng_state = seed;
    char why[256], when[96];
    ck_assert_msg(crashfs_recover(rng, why, sizeof why) == 0, "%s", why);
    snprintf(when, sizeof when, "crash %s call %d of the roll (seed %llu)", after ? "after" : "before", nth,
             (unsigned long long)seed);
    reopen_check(rc == 0 ? ACKED + ROLLING : ACKED, when);
    crashfs_uninstall();
    remove_dir();
    return crashed;
}

START_TEST(test_crash_at_each_call_of_a_roll) {
    int n = 1;
    for (;; n++) {
        bool crashed = false;
        for (uint64_t seed = 1; seed <= 4; seed++)
            for (int after = 0; after < 2; after++)
                crashed |= crash_in_roll(n, after, seed * 0x9E3779B97F4A7C15ull);
        if (!crashed) break;
    }
    ck_assert_int_ge(n - 1, 20); /* every call of the roll had its crash */
}
END_TEST

/* ---------- log compaction waits while a job writes MANIFEST ---------- */

START_TEST(test_side_sync_result_waits_for_the_roll) {
    make_dir();
    wal *l = log_before_roll();
    char path[160];
    snprintf(path, sizeof path, "%s/side", root);
    int fd = open(path, O_CREAT | O_RDWR, 0644);
    ck_assert_int_ge(fd, 0);
    log_request_side_sync(l, fd);
    log_job *job;
    ck_assert_int_eq(log_write_batch(l, &job), 0);
    ck_assert_int_eq(log_run_job(job), 0);
    int rc = 1;
    ck_assert(!log_side_sync_result(l, &rc)); /* the job is not finished */
    log_sync_finished(l, 0);
    ck_assert(log_side_sync_result(l, &rc) && rc == 0);
    append(l, ACKED + ROLLING - 4, 4); /* rolls to segment 5 */
    ck_assert_int_eq(log_write_batch(l, &job), 0);
    ck_assert(!log_side_sync_result(l, &rc)); /* MANIFEST is the job's until it finishes */
    ck_assert_int_eq(log_run_job(job), 0);
    log_sync_finished(l, 0);
    ck_assert(log_side_sync_result(l, &rc) && rc == 0);
    log_close(l);
    close(fd);
    remove_dir();
}
END_TEST

Suite *log_roll_suite(void) {
    Suite *s = suite_create("log_roll");
    TCase *tc = tcase_create("log_roll");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_roll_rides_in_the_job);
    tcase_add_test(tc, test_roll_without_fsync_rides_in_the_job);
    tcase_add_test(tc, test_new_segment_is_in_manifest_first);
    tcase_add_test(tc, test_failure_at_each_call_of_a_roll);
    tcase_add_test(tc, test_crash_at_each_call_of_a_roll);
    tcase_add_test(tc, test_side_sync_result_waits_for_the_roll);
    suite_add_tcase(s, tc);
    return s;
}
