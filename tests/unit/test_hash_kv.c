/* test_hash_kv.c: unit tests of storage/hash_kv.c: HashKV computed in slices, with writes and a
 * compaction landing between the slices, equals the hash computed at once afterwards, and a job
 * whose revision is compacted under it fails as a Range would. */
#include "fixture.h"
#include <check.h>

#include <stdio.h>

static void setup(void) {
    fixture_setup((mvcc_options){.fsync = false});
    char k[32], v[32];
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 1000; i++) {
            snprintf(k, sizeof k, "key/%04d", i * 7 % 1000);
            snprintf(v, sizeof v, "value %d.%d", i, round);
            fx_put(k, v, 0);
        }
}

static void teardown(void) {
    fixture_teardown();
}

/* One slice (a zero budget still hashes a batch of keys), then the writes of step i. */
static mv_err step_with_writes(mv_hash_job *j, int i, bool *done) {
    mv_err err = mvcc_hash_kv_step(st, j, 0, done);
    char k[32];
    snprintf(k, sizeof k, i % 2 ? "key/%04d" : "new/%04d", (i * 37) % 1000);
    fx_put(k, "later", 0);
    if (i % 5 == 0) fx_del(k);
    return err;
}

START_TEST(test_slices_equal_one_pass) {
    int64_t rev = mvcc_revision(st);
    mv_err err;
    mv_hash_job *j = mvcc_hash_kv_begin(st, rev, &err);
    ck_assert_ptr_nonnull(j);
    bool done = false;
    int steps = 0;
    while (!done)
        ck_assert_int_eq(step_with_writes(j, steps++, &done), MV_OK);
    ck_assert_int_gt(steps, 10); /* it really ran in slices */
    uint32_t sliced, whole;
    int64_t at, at2;
    mvcc_hash_kv_result(j, &sliced, &at, NULL);
    mvcc_hash_kv_free(j);
    ck_assert_int_eq(mvcc_hash_kv(st, rev, &whole, &at2), MV_OK);
    ck_assert_int_eq(at, rev);
    ck_assert_uint_eq(sliced, whole);
    ck_assert_uint_ne(whole, fx_hash(st, 0)); /* the later writes do change the current hash */
}
END_TEST

START_TEST(test_compaction_restarts_or_fails_the_walk) {
    int64_t rev = mvcc_revision(st);
    mv_err err;
    mv_hash_job *j = mvcc_hash_kv_begin(st, rev, &err);
    bool done = false;
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(step_with_writes(j, i, &done), MV_OK);
    int64_t header;
    ck_assert_int_eq(mvcc_compact(st, rev - 500, &header), MV_OK); /* below the hashed revision */
    int64_t compact_rev = 0;
    for (int i = 5; !done; i++)
        ck_assert_int_eq(step_with_writes(j, i, &done), MV_OK);
    uint32_t sliced, whole;
    int64_t at;
    mvcc_hash_kv_result(j, &sliced, &at, &compact_rev);
    mvcc_hash_kv_free(j);
    ck_assert_int_eq(compact_rev, rev - 500);
    ck_assert_int_eq(mvcc_hash_kv(st, rev, &whole, &at), MV_OK);
    ck_assert_uint_eq(sliced, whole);

    j = mvcc_hash_kv_begin(st, rev, &err);
    ck_assert_int_eq(mvcc_hash_kv_step(st, j, 0, &done), MV_OK);
    ck_assert_int_eq(mvcc_compact(st, rev + 3, &header), MV_OK); /* past it */
    ck_assert_int_eq(mvcc_hash_kv_step(st, j, 0, &done), MV_ERR_COMPACTED);
    mvcc_hash_kv_free(j);
    ck_assert_ptr_null(mvcc_hash_kv_begin(st, rev, &err));
    ck_assert_int_eq(err, MV_ERR_COMPACTED);
}
END_TEST

Suite *hash_kv_suite(void) {
    Suite *s = suite_create("hash_kv");
    TCase *tc = tcase_create("slices");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_slices_equal_one_pass);
    tcase_add_test(tc, test_compaction_restarts_or_fails_the_walk);
    suite_add_tcase(s, tc);
    return s;
}
