/* test_disk_guard.c: unit tests of storage/disk_guard.c: once the data dir's file system has less
 * free than the reserve, writes are refused as over the quota (and nothing of them is applied), the
 * growth of the log since the last reading counts, and deletes that free nothing are refused too. */
#include "fixture.h"
#include "storage_io.h"
#include <check.h>

#include <string.h>

static uint64_t fake_free; /* what the file system "has" */
static int fake_reads;

static int fake_free_space(int fd, uint64_t *bytes) {
    (void)fd;
    fake_reads++;
    *bytes = fake_free;
    return 0;
}

static void setup(void) {
    fake_free = 1 << 20;
    fake_reads = 0;
    storage_io_set(&(storage_io){.free_space = fake_free_space});
    fixture_setup((mvcc_options){.fsync = false, .disk_reserve_bytes = 64 << 10});
}

static void teardown(void) {
    fixture_teardown();
    storage_io_set(NULL);
}

static mv_err put_value(const char *key, size_t len) {
    static char value[512 << 10];
    memset(value, 'v', len);
    mv_result r;
    mvcc_put(st, &(mv_put_req){.key = B(key), .value = {(const uint8_t *)value, len}}, &r);
    mv_err err = r.err;
    mv_result_free(&r);
    return err;
}

START_TEST(test_refused_under_the_reserve) {
    ck_assert_int_eq(fake_reads, 1); /* read at open */
    ck_assert(!mvcc_disk_low(st));
    ck_assert_int_eq(put_value("a", 100 << 10), MV_OK);
    ck_assert_int_eq(put_value("b", 200 << 10), MV_OK);
    ck_assert_int_eq(put_value("c", 200 << 10), MV_OK);
    ck_assert_int_eq(put_value("d", 200 << 10), MV_OK);
    int64_t rev = mvcc_revision(st);
    /* 1024 KiB free when read, the log grew by 700 since: 324 left, of which 64 are kept back */
    ck_assert_int_eq(put_value("e", 300 << 10), MV_ERR_NO_SPACE);
    ck_assert_int_eq(mvcc_revision(st), rev); /* nothing of it applied */
    ck_assert_int_eq(put_value("e", 250 << 10), MV_OK);
    ck_assert_int_eq(put_value("f", 20 << 10), MV_ERR_NO_SPACE);
    ck_assert(!mvcc_disk_low(st)); /* about 74 KiB are left */
    ck_assert_int_eq(put_value("g", 8 << 10), MV_OK);
    ck_assert_int_eq(fake_reads, 1); /* the growth was counted, not read again */
    /* something else filled the file system: seen at the next reading */
    fake_free = 32 << 10;
    ck_assert_int_eq(mvcc_check_disk(st, NULL), 0);
    ck_assert(mvcc_disk_low(st));
    ck_assert_int_eq(put_value("h", 1), MV_ERR_NO_SPACE);
    /* space freed elsewhere on the file system: seen at the next reading */
    fake_free = 10 << 20;
    uint64_t seen = 0;
    ck_assert_int_eq(mvcc_check_disk(st, &seen), 0);
    ck_assert_uint_eq(seen, 10 << 20);
    ck_assert(!mvcc_disk_low(st));
    ck_assert_int_eq(put_value("f", 100 << 10), MV_OK);
}
END_TEST

/* A reserve of 0 turns the check off, whatever the file system says. */
START_TEST(test_zero_reserve_checks_nothing) {
    fixture_teardown();
    fake_free = 0;
    fixture_setup((mvcc_options){.fsync = false});
    ck_assert_int_eq(put_value("a", 100 << 10), MV_OK);
    ck_assert(!mvcc_disk_low(st));
}
END_TEST

Suite *disk_guard_suite(void) {
    Suite *s = suite_create("disk_guard");
    TCase *tc = tcase_create("reserve");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_refused_under_the_reserve);
    tcase_add_test(tc, test_zero_reserve_checks_nothing);
    suite_add_tcase(s, tc);
    return s;
}
