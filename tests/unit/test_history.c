/* test_history.c: leases (grant, attach, revoke deleting keys in one revision, persistence) and
 * the per-revision events watch is built on (order, prev_kv, compaction limits, after restart). */
#include "fixture.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void setup(void) {
    fixture_setup((mvcc_options){.fsync = false});
}

static void teardown(void) {
    fixture_teardown();
}

static mv_err put_lease(const char *k, const char *v, int64_t lease) {
    mv_put_req r = {.key = B(k), .value = B(v), .lease = lease};
    mv_result res;
    mvcc_put(st, &r, &res);
    mv_err err = res.err;
    mv_result_free(&res);
    return err;
}

static bool show_event(void *ctx, const mv_event *ev) {
    char *out = ctx;
    size_t at = strlen(out);
    snprintf(out + at, 512 - at, "%s %.*s=%.*s@%ld/%ld/%ld", ev->type == MV_EVENT_PUT ? "PUT" : "DEL",
             (int)ev->kv.key.len, ev->kv.key.data, (int)ev->kv.value.len, ev->kv.value.data,
             (long)ev->kv.mod_revision, (long)ev->kv.create_revision, (long)ev->kv.version);
    at = strlen(out);
    if (ev->prev_kv)
        snprintf(out + at, 512 - at, " prev=%.*s;", (int)ev->prev_kv->value.len, ev->prev_kv->value.data);
    else
        snprintf(out + at, 512 - at, ";");
    return true;
}

static char *events(int64_t rev, mv_err *err) {
    static char out[512];
    out[0] = 0;
    mv_arena *a = mv_arena_new();
    *err = mvcc_events_at(st, rev, true, a, show_event, out);
    mv_arena_free(a);
    return out;
}

START_TEST(test_events_of_a_txn) {
    put_lease("a", "1", 0); /* 2 */
    mv_op ops[2] = {{.type = MV_OP_PUT, .u.put = {.key = B("a"), .value = B("2")}},
                    {.type = MV_OP_PUT, .u.put = {.key = B("b"), .value = B("x")}}};
    mv_txn_req t = {.success = ops, .n_success = 2};
    mv_result res;
    mvcc_txn(st, &t, &res);
    mv_result_free(&res);
    mv_delete_req d = {.key = B("a"), .range_end = B("c")};
    mvcc_delete(st, &d, &res); /* 4 */
    mv_result_free(&res);
    mv_err err;
    ck_assert_str_eq(events(3, &err), "PUT a=2@3/2/2 prev=1;PUT b=x@3/3/1;");
    ck_assert_str_eq(events(4, &err), "DEL a=@4/0/0 prev=2;DEL b=@4/0/0 prev=x;");
    events(5, &err);
    ck_assert_int_eq(err, MV_ERR_FUTURE_REV);
    reopen();
    ck_assert_str_eq(events(3, &err), "PUT a=2@3/2/2 prev=1;PUT b=x@3/3/1;");
    int64_t hdr;
    ck_assert_int_eq(mvcc_compact(st, 4, &hdr), MV_OK);
    events(3, &err);
    ck_assert_int_eq(err, MV_ERR_COMPACTED);
}
END_TEST

static int64_t hook_rev;
static void hook(void *ctx, int64_t rev) {
    (void)ctx;
    hook_rev = rev;
}

START_TEST(test_revision_hook) {
    mvcc_on_revision(st, hook, NULL);
    put_lease("h", "1", 0);
    ck_assert_int_eq(hook_rev, 2);
}
END_TEST

START_TEST(test_lease_lifecycle) {
    ck_assert_int_eq(put_lease("k1", "v", 7), MV_ERR_LEASE_NOT_FOUND);
    ck_assert_int_eq(mvcc_lease_grant(st, 7, 30), MV_OK);
    ck_assert_int_eq(mvcc_lease_grant(st, 7, 30), MV_ERR_LEASE_EXISTS);
    ck_assert_int_eq(put_lease("k1", "v", 7), MV_OK);
    ck_assert_int_eq(put_lease("k2", "v", 7), MV_OK);
    ck_assert_int_eq(put_lease("k3", "v", 7), MV_OK);
    ck_assert_int_eq(put_lease("k3", "w", 0), MV_OK); /* moved off the lease */
    reopen();
    ck_assert(mvcc_lease_exists(st, 7));
    ck_assert_int_eq(mvcc_lease_ttl(st, 7), 30);
    mv_arena *a = mv_arena_new();
    mv_bytes *keys;
    ck_assert_int_eq(mvcc_lease_keys(st, 7, a, &keys), 2);
    mv_arena_free(a);
    int64_t before = mvcc_revision(st);
    mv_result res;
    mvcc_lease_revoke(st, 7, true, &res);
    ck_assert_int_eq(res.err, MV_OK);
    ck_assert_int_eq(res.resp.u.del.deleted, 2);
    ck_assert_int_eq(res.header_revision, before + 1); /* both keys in one revision */
    mv_result_free(&res);
    reopen();
    ck_assert(!mvcc_lease_exists(st, 7));
    mv_err err;
    ck_assert_str_eq(events(before + 1, &err), "DEL k1=@6/0/0 prev=v;DEL k2=@6/0/0 prev=v;");
    mvcc_lease_revoke(st, 7, false, &res);
    ck_assert_int_eq(res.err, MV_ERR_LEASE_NOT_FOUND);
    mv_result_free(&res);
}
END_TEST

START_TEST(test_two_step_commit) {
    char err[256], sub[96];
    snprintf(sub, sizeof sub, "%s/synced", dir);
    mvcc_options o = {.fsync = true};
    mvcc *s = mvcc_open(sub, &o, err, sizeof err);
    ck_assert_msg(s != NULL, "%s", err);
    mv_put_req r = {.key = B("a"), .value = B("1")};
    mv_result res;
    mvcc_put(s, &r, &res);
    mv_result_free(&res);
    struct log_job *job = NULL;
    ck_assert_int_eq(mvcc_write_batch(s, &job), 0);
    ck_assert_ptr_nonnull(job);
    ck_assert(!mvcc_has_batch(s));
    mv_range_req rr = {.key = B("a")}; /* the batch in flight is read from memory */
    mvcc_range(s, &rr, &res);
    ck_assert_uint_eq(res.resp.u.range.n_kvs, 1);
    ck_assert_int_eq(res.resp.u.range.kvs[0].value.data[0], '1');
    mv_result_free(&res);
    ck_assert_int_eq(mvcc_run_job(job), 0);
    mvcc_sync_finished(s, 0);
    ck_assert_uint_eq(mvcc_fsync_count(s), 1);
    ck_assert_int_eq(mvcc_write_batch(s, &job), 0); /* nothing new: nothing to sync */
    ck_assert_ptr_null(job);
    mvcc_put(s, &r, &res);
    mv_result_free(&res);
    ck_assert_int_eq(mvcc_write_batch(s, &job), 0);
    mvcc_sync_finished(s, -5); /* a failed job stops every later commit */
    mvcc_put(s, &r, &res);
    mv_result_free(&res);
    ck_assert_int_ne(mvcc_write_batch(s, &job), 0);
    ck_assert_int_ne(mvcc_commit(s), 0);
    mvcc_close(s);
    s = mvcc_open(sub, &o, err, sizeof err);
    ck_assert_msg(s != NULL, "%s", err);
    ck_assert_int_eq(mvcc_revision(s), 2); /* the synced write survived, the refused one did not */
    mvcc_close(s);
}
END_TEST

Suite *history_suite(void) {
    Suite *s = suite_create("leases and history");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_events_of_a_txn);
    tcase_add_test(tc, test_revision_hook);
    tcase_add_test(tc, test_lease_lifecycle);
    tcase_add_test(tc, test_two_step_commit);
    suite_add_tcase(s, tc);
    return s;
}
