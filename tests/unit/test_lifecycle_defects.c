/* test_lifecycle_defects.c: one regression test for each storage defect found when log compaction
 * meets revision compaction, restarts and lease churn (the revision going back, a watch gap during
 * an aborted run, HashKV renumbering, lease records never reclaimed, emptied segments kept open). */
#include "fixture.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void setup(void) {
    fixture_setup((mvcc_options){.fsync = true, .segment_bytes = 4096});
}

static void setup_large_segments(void) {
    fixture_setup((mvcc_options){.fsync = true, .segment_bytes = 1 << 20});
}

static void teardown(void) {
    fixture_teardown();
}

static void compact(int64_t rev) {
    int64_t hdr;
    ck_assert_int_eq(mvcc_compact(st, rev, &hdr), MV_OK);
}

static int count_in_dir(const char *path, const char *suffix) {
    DIR *d = opendir(path);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        if (len > sl && strcmp(e->d_name + len - sl, suffix) == 0) n++;
    }
    closedir(d);
    return n;
}

static int open_fds(void) {
    return count_in_dir("/proc/self/fd", "");
}

/* 1: put a 1; put b 2; del b; compact 4; defrag; restart: the revision stayed at 4, and reads and
 * writes work (before the fix: revision 2, every call "required revision has been compacted"). */
START_TEST(test_revision_never_below_compaction_after_restart) {
    fx_put("a", "1", 0);
    fx_put("b", "2", 0);
    fx_del("b");
    ck_assert_int_eq(mvcc_revision(st), 4);
    compact(4);
    fx_defragment();
    reopen();
    ck_assert_int_eq(mvcc_revision(st), 4);
    ck_assert_int_eq(mvcc_compact_revision(st), 4);
    mv_range_req rr = {.key = B("a")};
    mv_result res;
    mvcc_range(st, &rr, &res);
    ck_assert_int_eq(res.err, MV_OK);
    ck_assert_uint_eq(res.resp.u.range.n_kvs, 1);
    mv_result_free(&res);
    ck_assert_int_eq(fx_put("d", "4", 0), 5);
}
END_TEST

typedef struct event_log {
    char text[1 << 16];
    size_t at;
} event_log;

static bool note_event(void *ctx, const mv_event *ev) {
    event_log *el = ctx;
    el->at += (size_t)snprintf(el->text + el->at, sizeof el->text - el->at, "%d:%.*s=%.*s@%ld ", ev->type,
                               (int)ev->kv.key.len, ev->kv.key.data, (int)ev->kv.value.len, ev->kv.value.data,
                               (long)ev->kv.mod_revision);
    return true;
}

static void events_from(int64_t from, event_log *out) {
    out->at = 0;
    out->text[0] = 0;
    for (int64_t rev = from; rev <= mvcc_revision(st); rev++) {
        mv_arena *a = mv_arena_new();
        ck_assert_int_eq(mvcc_events_at(st, rev, false, a, note_event, out), MV_OK);
        mv_arena_free(a);
    }
}

/* 2: a run that scanned part of the log and was then cut short by Compact must leave the watch
 * history readable: new places are published only when a rewrite is switched in. */
START_TEST(test_watch_history_intact_when_run_restarts) {
    char k[16], v[64];
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "k%d", i % 7);
        snprintf(v, sizeof v, "value-%d", i);
        fx_put(k, v, 0);
    }
    compact(10);
    event_log before, after;
    events_from(11, &before);
    ck_assert_int_eq(mvcc_commit(st), 0);
    mvcc_log_compaction_start(st, true);
    ck_assert_int_eq(mvcc_log_compaction_step(st, 0), 1); /* slices that scan revisions still held */
    ck_assert_int_eq(mvcc_log_compaction_step(st, 0), 1);
    compact(11); /* cuts the run short */
    events_from(11, &after);
    ck_assert_str_eq(after.text, before.text);
    int64_t from = 11;
    fx_defragment();
    events_from(from, &after);
    ck_assert_str_eq(after.text, before.text);
}
END_TEST

/* 3: when log compaction drops the first change of a multi-op revision, the ones kept keep their
 * sub-revision, so HashKV is equal across log compaction and restart. */
START_TEST(test_hash_stable_when_part_of_a_txn_is_dropped) {
    mv_op ops[2] = {{.type = MV_OP_PUT, .u.put = {.key = B("x"), .value = B("1")}},
                    {.type = MV_OP_PUT, .u.put = {.key = B("y"), .value = B("2")}}};
    mv_txn_req txn = {.success = ops, .n_success = 2};
    mv_result res;
    mvcc_txn(st, &txn, &res);
    ck_assert_int_eq(res.err, MV_OK);
    mv_result_free(&res);
    fx_put("x", "3", 0);
    compact(mvcc_revision(st));
    uint32_t before = fx_hash(st, 0);
    fx_defragment();
    ck_assert_uint_eq(fx_hash(st, 0), before);
    reopen();
    ck_assert_uint_eq(fx_hash(st, 0), before);
}
END_TEST

/* 4: lease grants and revokes are reclaimed: 5000 lease lives leave a log of a few KiB after
 * Compact and Defragment, and log compaction is no longer wanted. */
START_TEST(test_lease_records_reclaimed) {
    for (int64_t id = 1; id <= 5000; id++) {
        ck_assert_int_eq(mvcc_lease_grant(st, id, 60), MV_OK);
        if (id % 10 == 0) fx_put("leased", "v", id);
        mv_result res;
        mvcc_lease_revoke(st, id, false, &res);
        ck_assert_int_eq(res.err, MV_OK);
        mv_result_free(&res);
        if (id % 100 == 0) ck_assert_int_eq(mvcc_commit(st), 0);
    }
    ck_assert_int_eq(mvcc_lease_grant(st, 9999, 60), MV_OK); /* one lease still granted */
    fx_put("kept", "v", 9999);
    uint64_t before = mvcc_db_size(st);
    compact(mvcc_revision(st));
    fx_defragment();
    ck_assert_msg(mvcc_db_size(st) < 4096, "db %lu -> %lu bytes", (unsigned long)before,
                  (unsigned long)mvcc_db_size(st));
    ck_assert(!mvcc_log_compaction_wanted(st));
    reopen();
    ck_assert_uint_eq(mvcc_lease_count(st), 1);
    ck_assert(mvcc_lease_exists(st, 9999));
    mv_arena *a = mv_arena_new();
    mv_bytes *keys;
    ck_assert_uint_eq(mvcc_lease_keys(st, 9999, a, &keys), 1);
    mv_arena_free(a);
}
END_TEST

/* 5: emptied segments are unlinked and their descriptors closed; small ones are merged. */
START_TEST(test_emptied_segments_unlinked) {
    char v[512];
    memset(v, 'v', sizeof v - 1);
    v[sizeof v - 1] = 0;
    fx_put("stays", "1", 0);
    for (int i = 0; i < 400; i++)
        fx_put("churn", v, 0);
    ck_assert_int_eq(mvcc_commit(st), 0);
    int files_before = count_in_dir(dir, ".log"), fds_before = open_fds();
    ck_assert_int_gt(files_before, 40);
    compact(mvcc_revision(st));
    fx_defragment();
    int files_after = count_in_dir(dir, ".log");
    ck_assert_msg(files_after <= 3, "%d segment files before, %d after", files_before, files_after);
    ck_assert_int_le(open_fds(), fds_before - (files_before - files_after));
    reopen();
    ck_assert_int_le(count_in_dir(dir, ".log"), 3);
    ck_assert_int_eq(fx_put("after", "x", 0), mvcc_revision(st));
}
END_TEST

Suite *lifecycle_defects_suite(void) {
    Suite *s = suite_create("lifecycle_defects");
    TCase *tc = tcase_create("defects");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_revision_never_below_compaction_after_restart);
    tcase_add_test(tc, test_hash_stable_when_part_of_a_txn_is_dropped);
    tcase_add_test(tc, test_lease_records_reclaimed);
    tcase_add_test(tc, test_emptied_segments_unlinked);
    suite_add_tcase(s, tc);
    TCase *one_segment = tcase_create("one large segment"); /* so that a slice stops inside it */
    tcase_add_checked_fixture(one_segment, setup_large_segments, teardown);
    tcase_add_test(one_segment, test_watch_history_intact_when_run_restarts);
    suite_add_tcase(s, one_segment);
    return s;
}
