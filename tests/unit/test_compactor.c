/* test_compactor.c: log compaction reclaims space without changing any answer, survives a crash
 * before or after its rename, and steps aside when revision compaction runs in the middle; the
 * logical hash and snapshots (same storage-wide machinery) are checked here too. */
#include "fixture.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void setup(void) {
    fixture_setup((mvcc_options){.fsync = true, .segment_bytes = 64 * 1024});
}

static void teardown(void) {
    fixture_teardown();
}

static void put(const char *k, const char *v) {
    mv_put_req r = {.key = B(k), .value = B(v)};
    mv_result res;
    mvcc_put(st, &r, &res);
    ck_assert_int_eq(res.err, MV_OK);
    mv_result_free(&res);
}

/* Every live key and value plus revisions, as one string. */
static char *dump(int64_t rev) {
    static char buf[1 << 16];
    mv_range_req r = {
        .key = {(const uint8_t *)"", 1}, .range_end = {(const uint8_t *)"", 1}, .revision = rev};
    mv_result res;
    mvcc_range(st, &r, &res);
    ck_assert_int_eq(res.err, MV_OK);
    size_t at = 0;
    for (size_t i = 0; i < res.resp.u.range.n_kvs; i++) {
        mv_kv *kv = &res.resp.u.range.kvs[i];
        at += (size_t)snprintf(buf + at, sizeof buf - at, "%.*s=%.*s@%ld/%ld/%ld ", (int)kv->key.len,
                               kv->key.data, (int)kv->value.len, kv->value.data, (long)kv->mod_revision,
                               (long)kv->create_revision, (long)kv->version);
    }
    mv_result_free(&res);
    return buf;
}

/* Many versions of a few keys: most of the log is history. */
static void churn(int rounds) {
    char k[32], v[300];
    for (int i = 0; i < rounds; i++) {
        snprintf(k, sizeof k, "key-%02d", i % 20);
        snprintf(v, sizeof v, "%0256d", i);
        put(k, v);
        if (i % 50 == 49) ck_assert_int_eq(mvcc_commit(st), 0);
    }
    ck_assert_int_eq(mvcc_commit(st), 0);
}

static int count_files(const char *suffix) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        if (len > sl && strcmp(e->d_name + len - sl, suffix) == 0) n++;
    }
    closedir(d);
    return n;
}

START_TEST(test_reclaims_space_keeps_answers) {
    churn(5000);
    int64_t hdr;
    ck_assert_int_eq(mvcc_compact(st, mvcc_revision(st), &hdr), MV_OK);
    char before[1 << 16];
    strcpy(before, dump(0));
    uint64_t size_before = mvcc_db_size(st);
    ck_assert(mvcc_index_compaction_pending(st)); /* the index is pruned in slices */
    while (mvcc_index_compaction_step(st, 1000) == 1)
        continue;
    ck_assert(!mvcc_index_compaction_pending(st));
    ck_assert(mvcc_log_compaction_wanted(st));
    mvcc_log_compaction_start(st, true);
    fx_run_log_compaction();
    ck_assert(!mvcc_log_compaction_running(st));
    ck_assert_msg(mvcc_db_size(st) * 4 < size_before, "db %lu -> %lu", (unsigned long)size_before,
                  (unsigned long)mvcc_db_size(st));
    ck_assert_str_eq(dump(0), before);
    put("after", "x");
    strcpy(before, dump(0));
    reopen();
    ck_assert_str_eq(dump(0), before);
}
END_TEST

START_TEST(test_history_above_compaction_survives) {
    churn(1000);
    int64_t hdr, keep = mvcc_revision(st) - 30;
    ck_assert_int_eq(mvcc_compact(st, keep, &hdr), MV_OK);
    char old[1 << 16];
    strcpy(old, dump(keep + 5));
    mvcc_log_compaction_start(st, true);
    fx_run_log_compaction();
    ck_assert_str_eq(dump(keep + 5), old);
    reopen();
    ck_assert_str_eq(dump(keep + 5), old);
}
END_TEST

START_TEST(test_crash_before_rename) {
    churn(1000);
    int64_t hdr;
    ck_assert_int_eq(mvcc_compact(st, mvcc_revision(st), &hdr), MV_OK);
    char before[1 << 16];
    strcpy(before, dump(0));
    mvcc_log_compaction_start(st, true);
    ck_assert_int_eq(mvcc_log_compaction_step(st, 0), 1); /* one slice: a rewrite file is open */
    ck_assert_int_eq(count_files(".rewrite"), 1);
    /* a crash now: the store is dropped without finishing; the next start removes the rewrite */
    mvcc_close(st);
    open_store();
    ck_assert_int_eq(count_files(".rewrite"), 0);
    ck_assert_str_eq(dump(0), before);
}
END_TEST

START_TEST(test_revision_compaction_restarts_run) {
    churn(1000);
    mvcc_log_compaction_start(st, true);
    ck_assert_int_eq(mvcc_log_compaction_step(st, 0), 1);
    put("during", "y");
    int64_t hdr;
    ck_assert_int_eq(mvcc_compact(st, mvcc_revision(st), &hdr), MV_OK);
    ck_assert(mvcc_log_compaction_running(st)); /* started over, not dropped: Defragment still gets done */
    ck_assert_int_eq(count_files(".rewrite"), 0);
    char before[1 << 16];
    strcpy(before, dump(0));
    fx_run_log_compaction();
    ck_assert_str_eq(dump(0), before);
    reopen();
    ck_assert_str_eq(dump(0), before);
}
END_TEST

START_TEST(test_hash_survives_log_compaction_and_restart) {
    churn(3000);
    int64_t hdr;
    ck_assert_int_eq(mvcc_compact(st, mvcc_revision(st) - 10, &hdr), MV_OK);
    uint32_t before = fx_hash(st, 0);
    mvcc_log_compaction_start(st, true);
    fx_run_log_compaction();
    ck_assert_uint_eq(fx_hash(st, 0), before);
    reopen();
    ck_assert_uint_eq(fx_hash(st, 0), before);
    put("one-more", "x");
    ck_assert_uint_ne(fx_hash(st, 0), before);
}
END_TEST

START_TEST(test_snapshot_restore) {
    churn(500);
    char snap[128], target[128], err[256];
    snprintf(snap, sizeof snap, "%s/snap.db", dir);
    snprintf(target, sizeof target, "%s/restored", dir);
    mv_snapshot *sn = mvcc_snapshot_begin(st, err, sizeof err);
    ck_assert_msg(sn != NULL, "%s", err);
    FILE *f = fopen(snap, "wb");
    uint8_t buf[7000];
    long n;
    uint64_t total = 0;
    while ((n = mvcc_snapshot_read(sn, buf, sizeof buf)) > 0) {
        fwrite(buf, 1, (size_t)n, f);
        total += (uint64_t)n;
    }
    fclose(f);
    ck_assert_int_eq(n, 0);
    ck_assert_uint_eq(total, mvcc_snapshot_size(sn));
    mvcc_snapshot_end(sn);
    char before[1 << 16];
    strcpy(before, dump(0));
    uint32_t hash = fx_hash(st, 0);
    ck_assert_int_eq(mvcc_restore(snap, target, err, sizeof err), 0);
    ck_assert_int_ne(mvcc_restore(snap, target, err, sizeof err), 0); /* not over a store */
    mvcc_options o = {.fsync = false};
    mvcc *copy = mvcc_open(target, &o, err, sizeof err);
    ck_assert_msg(copy != NULL, "%s", err);
    mvcc *orig = st;
    st = copy;
    ck_assert_str_eq(dump(0), before);
    ck_assert_uint_eq(fx_hash(st, 0), hash);
    mvcc_close(copy);
    st = orig;
    /* a damaged snapshot is refused */
    f = fopen(snap, "r+b");
    fseek(f, 100, SEEK_SET);
    fputc('!', f);
    fclose(f);
    snprintf(target, sizeof target, "%s/restored2", dir);
    ck_assert_int_ne(mvcc_restore(snap, target, err, sizeof err), 0);
    ck_assert_msg(strstr(err, "checksum") != NULL, "%s", err);
}
END_TEST

Suite *compactor_suite(void) {
    Suite *s = suite_create("log compaction");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_reclaims_space_keeps_answers);
    tcase_add_test(tc, test_history_above_compaction_survives);
    tcase_add_test(tc, test_crash_before_rename);
    tcase_add_test(tc, test_revision_compaction_restarts_run);
    tcase_add_test(tc, test_hash_survives_log_compaction_and_restart);
    tcase_add_test(tc, test_snapshot_restore);
    suite_add_tcase(s, tc);
    return s;
}
