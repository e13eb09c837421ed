/* test_export.c: a store exported as a stream of changes and built again from it answers the same:
 * every revision held, the compaction revision, HashKV and the leases with their keys. This is the
 * path an etcd-format snapshot takes out of cetcd and back in. */
#include "fixture.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char built[96];

static void setup(void) {
    fixture_setup((mvcc_options){.fsync = true, .segment_bytes = 8192});
    snprintf(built, sizeof built, "%s-built", dir);
}

static void teardown(void) {
    fixture_teardown();
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", built);
    ck_assert_int_eq(system(cmd), 0);
}

/* History with every kind of change: overwrites, deletes, a txn, leases, one revoked. */
static void make_history(void) {
    ck_assert_int_eq(mvcc_lease_grant(st, 7, 30), MV_OK);
    ck_assert_int_eq(mvcc_lease_grant(st, 8, 60), MV_OK);
    char k[16], v[32];
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof k, "k%02d", i % 23);
        snprintf(v, sizeof v, "v%d", i);
        fx_put(k, v, i % 17 == 0 ? 7 : 0);
        if (i % 13 == 0) fx_del(k);
    }
    mv_op ops[3] = {{.type = MV_OP_PUT, .u.put = {.key = B("t1"), .value = B("a")}},
                    {.type = MV_OP_DELETE, .u.del = {.key = B("k01")}},
                    {.type = MV_OP_PUT, .u.put = {.key = B("t2"), .value = B("b"), .lease = 8}}};
    mv_txn_req txn = {.success = ops, .n_success = 3};
    mv_result res;
    mvcc_txn(st, &txn, &res);
    ck_assert_int_eq(res.err, MV_OK);
    mv_result_free(&res);
    mvcc_lease_revoke(st, 7, false, &res);
    mv_result_free(&res);
    fx_put("t1", "again", 0); /* a later overwrite, so a compaction drops part of the txn */
    int64_t hdr;
    ck_assert_int_eq(mvcc_compact(st, mvcc_revision(st) - 60, &hdr), MV_OK);
    ck_assert_int_eq(mvcc_commit(st), 0);
}

static void export_into(const char *to) {
    char err[256];
    mv_export *x = mvcc_export_begin(st, err, sizeof err);
    ck_assert_msg(x != NULL, "%s", err);
    mv_change c;
    int rc;
    while ((rc = mvcc_export_next(x, &c)) == 1) /* a first pass finds the revisions */
        continue;
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(mvcc_export_revision(x), mvcc_revision(st));
    ck_assert_int_eq(mvcc_export_compact_revision(x), mvcc_compact_revision(st));
    mv_builder *b = mvcc_build_begin(to, mvcc_export_compact_revision(x), err, sizeof err);
    ck_assert_msg(b != NULL, "%s", err);
    const mv_lease_info *leases;
    size_t n = mvcc_export_leases(x, &leases);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(mvcc_build_lease(b, leases[i].id, leases[i].ttl), 0);
    mv_bytes auth = mvcc_export_auth_state(x);
    if (auth.len) ck_assert_int_eq(mvcc_build_auth_state(b, auth.data, auth.len), 0);
    mvcc_export_rewind(x);
    while ((rc = mvcc_export_next(x, &c)) == 1)
        ck_assert_msg(mvcc_build_change(b, &c) == 0, "%s", mvcc_build_error(b));
    ck_assert_int_eq(rc, 0);
    mvcc_export_end(x);
    ck_assert_msg(mvcc_build_finish(b, err, sizeof err) == 0, "%s", err);
}

START_TEST(test_export_and_build_round_trip) {
    make_history();
    export_into(built);
    char err[256];
    mvcc_options o = {.fsync = true};
    mvcc *copy = mvcc_open(built, &o, err, sizeof err);
    ck_assert_msg(copy != NULL, "%s", err);
    ck_assert_int_eq(mvcc_revision(copy), mvcc_revision(st));
    ck_assert_int_eq(mvcc_compact_revision(copy), mvcc_compact_revision(st));
    for (int64_t rev = mvcc_compact_revision(st); rev <= mvcc_revision(st); rev += 7)
        ck_assert_uint_eq(fx_hash(copy, rev), fx_hash(st, rev));
    ck_assert_uint_eq(fx_hash(copy, 0), fx_hash(st, 0));
    ck_assert_uint_eq(mvcc_lease_count(copy), 1);
    ck_assert_int_eq(mvcc_lease_ttl(copy, 8), 60);
    mv_arena *a = mv_arena_new();
    mv_bytes *keys;
    ck_assert_uint_eq(mvcc_lease_keys(copy, 8, a, &keys), 1);
    ck_assert_int_eq(memcmp(keys[0].data, "t2", 2), 0);
    mv_arena_free(a);
    mvcc_close(copy);
}
END_TEST

/* A Compact while an export is open: the export still reads the history it began with. */
START_TEST(test_compact_waits_for_export) {
    make_history();
    char err[256];
    mv_export *x = mvcc_export_begin(st, err, sizeof err);
    ck_assert_ptr_nonnull(x);
    uint64_t before = 0, after = 0;
    mv_change c;
    while (mvcc_export_next(x, &c) == 1)
        before++;
    int64_t hdr;
    ck_assert_int_eq(mvcc_compact(st, mvcc_revision(st), &hdr), MV_OK);
    mvcc_export_rewind(x);
    while (mvcc_export_next(x, &c) == 1)
        after++;
    ck_assert_uint_eq(after, before);
    mvcc_export_end(x);
    mv_range_req r = {.key = B("k05"), .revision = mvcc_revision(st) - 5};
    mv_result res;
    mvcc_range(st, &r, &res);
    ck_assert_int_eq(res.err, MV_ERR_COMPACTED);
    mv_result_free(&res);
}
END_TEST

START_TEST(test_build_refuses_disorder) {
    char err[256];
    mv_builder *b = mvcc_build_begin(built, -1, err, sizeof err);
    ck_assert_ptr_nonnull(b);
    mv_change c = {.key = B("a"), .value = B("1"), .mod_revision = 5, .create_revision = 5, .version = 1};
    ck_assert_int_eq(mvcc_build_change(b, &c), 0);
    c.mod_revision = 4;
    ck_assert_int_eq(mvcc_build_change(b, &c), -1);
    ck_assert_ptr_nonnull(strstr(mvcc_build_error(b), "order"));
    c.mod_revision = 5;
    c.sub_revision = 1;
    c.key = B("");
    ck_assert_int_eq(mvcc_build_change(b, &c), -1);
    ck_assert_ptr_nonnull(strstr(mvcc_build_error(b), "empty key"));
    ck_assert_int_eq(mvcc_build_finish(b, err, sizeof err), 0);
}
END_TEST

static bool state_is(mvcc *s, enum mv_state_kind kind, const char *want) {
    mv_bytes b = mvcc_state(s, kind);
    return b.len == strlen(want) && memcmp(b.data, want, b.len) == 0;
}

static bool auth_is(mvcc *s, const char *want) {
    return state_is(s, MV_STATE_AUTH, want);
}

/* The member's state blobs: the last save of each kind counts, across log compaction (which keeps
 * only it), restarts and, for the auth state alone, an export into a new store. */
START_TEST(test_auth_state_kept) {
    char old[600];
    memset(old, 'o', sizeof old - 1);
    old[sizeof old - 1] = 0;
    for (int i = 0; i < 200; i++) {
        ck_assert_int_eq(mvcc_auth_save(st, (const uint8_t *)old, strlen(old)), MV_OK);
        ck_assert_int_eq(mvcc_state_save(st, MV_STATE_ALARMS, (const uint8_t *)old, 300), MV_OK);
    }
    ck_assert_int_eq(mvcc_auth_save(st, (const uint8_t *)"users:root", 10), MV_OK);
    ck_assert_int_eq(mvcc_state_save(st, MV_STATE_ALARMS, (const uint8_t *)"nospace", 7), MV_OK);
    fx_put("k", "v", 0);
    uint64_t before = mvcc_db_size(st);
    fx_defragment();
    ck_assert_msg(mvcc_db_size(st) < 1024, "%lu -> %lu bytes", (unsigned long)before,
                  (unsigned long)mvcc_db_size(st));
    ck_assert(auth_is(st, "users:root"));
    ck_assert(state_is(st, MV_STATE_ALARMS, "nospace"));
    reopen();
    ck_assert(auth_is(st, "users:root"));
    ck_assert(state_is(st, MV_STATE_ALARMS, "nospace"));
    ck_assert_int_eq(mvcc_state_save(st, MV_STATE_ALARMS, (const uint8_t *)"none", 4), MV_OK);
    fx_defragment();
    reopen();
    ck_assert(state_is(st, MV_STATE_ALARMS, "none"));
    export_into(built);
    char err[256];
    mvcc_options o = {.fsync = true};
    mvcc *copy = mvcc_open(built, &o, err, sizeof err);
    ck_assert_msg(copy != NULL, "%s", err);
    ck_assert(auth_is(copy, "users:root"));
    ck_assert_uint_eq(mvcc_state(copy, MV_STATE_ALARMS).len, 0); /* an alarm is this member's */
    mvcc_close(copy);
}
END_TEST

Suite *export_suite(void) {
    Suite *s = suite_create("export");
    TCase *tc = tcase_create("round trip");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_export_and_build_round_trip);
    tcase_add_test(tc, test_compact_waits_for_export);
    tcase_add_test(tc, test_build_refuses_disorder);
    tcase_add_test(tc, test_auth_state_kept);
    suite_add_tcase(s, tc);
    return s;
}
