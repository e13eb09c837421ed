/* test_mvcc.c: unit tests of the MVCC store against etcd's documented semantics: revisions,
 * versions and generations, range options, txn branches and sub-revisions, compaction, and that a
 * reopened store (recovered from its log) answers exactly as before. */
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

static int64_t put(const char *k, const char *v) {
    mv_put_req r = {.key = B(k), .value = B(v)};
    mv_result res;
    mvcc_put(st, &r, &res);
    ck_assert_int_eq(res.err, MV_OK);
    int64_t rev = res.header_revision;
    mv_result_free(&res);
    return rev;
}

static int64_t del(const char *k, const char *end) {
    mv_delete_req r = {.key = B(k), .range_end = B(end)};
    mv_result res;
    mvcc_delete(st, &r, &res);
    ck_assert_int_eq(res.err, MV_OK);
    int64_t n = res.resp.u.del.deleted;
    mv_result_free(&res);
    return n;
}

/* Range helper: returns "k=v@mod/create/ver ..." plus count and more, for one-line assertions. */
static char *show(const mv_range_req *r, mv_err *err) {
    static char buf[4096];
    mv_result res;
    mvcc_range(st, r, &res);
    *err = res.err;
    buf[0] = 0;
    if (res.err == MV_OK) {
        mv_range_resp *rr = &res.resp.u.range;
        for (size_t i = 0; i < rr->n_kvs; i++) {
            mv_kv *kv = &rr->kvs[i];
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%.*s=%.*s@%ld/%ld/%ld ", (int)kv->key.len,
                     kv->key.data, (int)kv->value.len, kv->value.data, (long)kv->mod_revision,
                     (long)kv->create_revision, (long)kv->version);
        }
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "count=%ld more=%d", (long)rr->count, rr->more);
    }
    mv_result_free(&res);
    return buf;
}

static char *get_all(void) {
    mv_range_req r = {.key = B("\0"), .range_end = B("\0")};
    r.key.len = 1;
    r.range_end.len = 1;
    mv_err err;
    return show(&r, &err);
}

START_TEST(test_revisions_and_versions) {
    ck_assert_int_eq(mvcc_revision(st), 1);
    ck_assert_int_eq(put("a", "1"), 2);
    ck_assert_int_eq(put("a", "2"), 3);
    ck_assert_int_eq(put("b", "x"), 4);
    ck_assert_str_eq(get_all(), "a=2@3/2/2 b=x@4/4/1 count=2 more=0");
    ck_assert_int_eq(del("a", ""), 1);
    ck_assert_int_eq(mvcc_revision(st), 5);
    ck_assert_int_eq(del("a", ""), 0); /* deleting nothing makes no revision */
    ck_assert_int_eq(mvcc_revision(st), 5);
    ck_assert_int_eq(put("a", "3"), 6); /* a new generation starts at version 1 */
    ck_assert_str_eq(get_all(), "a=3@6/6/1 b=x@4/4/1 count=2 more=0");
}
END_TEST

START_TEST(test_history_reads) {
    put("k", "v1"); /* 2 */
    put("k", "v2"); /* 3 */
    del("k", "");   /* 4 */
    mv_range_req r = {.key = B("k"), .revision = 2};
    mv_err err;
    ck_assert_str_eq(show(&r, &err), "k=v1@2/2/1 count=1 more=0");
    r.revision = 3;
    ck_assert_str_eq(show(&r, &err), "k=v2@3/2/2 count=1 more=0");
    r.revision = 4;
    ck_assert_str_eq(show(&r, &err), "count=0 more=0");
    r.revision = 5;
    show(&r, &err);
    ck_assert_int_eq(err, MV_ERR_FUTURE_REV);
}
END_TEST

START_TEST(test_range_options) {
    put("a", "3");
    put("b", "1");
    put("c", "2");
    put("b", "4");
    put("d", "0");
    mv_range_req r = {.key = B("a"), .range_end = B("d"), .limit = 2};
    mv_err err;
    ck_assert_str_eq(show(&r, &err), "a=3@2/2/1 b=4@5/3/2 count=3 more=1");
    r.limit = 0;
    r.sort_order = MV_SORT_DESCEND;
    r.sort_target = MV_SORT_VALUE;
    ck_assert_str_eq(show(&r, &err), "b=4@5/3/2 a=3@2/2/1 c=2@4/4/1 count=3 more=0");
    r.sort_order = MV_SORT_NONE; /* a non-key target with no order sorts ascending */
    r.sort_target = MV_SORT_MOD;
    ck_assert_str_eq(show(&r, &err), "a=3@2/2/1 c=2@4/4/1 b=4@5/3/2 count=3 more=0");
    mv_range_req f = {.key = B("a"), .range_end = B("e"), .min_mod_revision = 4, .max_create_revision = 4};
    ck_assert_str_eq(show(&f, &err), "b=4@5/3/2 c=2@4/4/1 count=4 more=0");
    mv_range_req c = {.key = B("a"), .range_end = B("e"), .count_only = true, .limit = 1};
    ck_assert_str_eq(show(&c, &err), "count=4 more=0");
    mv_range_req k = {.key = B("b"), .range_end = B("c"), .keys_only = true};
    ck_assert_str_eq(show(&k, &err), "b=@5/3/2 count=1 more=0");
    mv_range_req from = {.key = B("c"), .range_end = {(const uint8_t *)"", 1}};
    ck_assert_str_eq(show(&from, &err), "c=2@4/4/1 d=0@6/6/1 count=2 more=0");
}
END_TEST

static mv_result run_txn(mv_txn_req *t) {
    mv_result res;
    mvcc_txn(st, t, &res);
    return res;
}

START_TEST(test_txn_one_revision) {
    put("x", "1"); /* 2 */
    mv_compare cmp = {.result = MV_CMP_EQUAL, .target = MV_CMP_VALUE, .key = B("x"), .value = B("1")};
    mv_op ops[3] = {
        {.type = MV_OP_PUT, .u.put = {.key = B("y"), .value = B("2")}},
        {.type = MV_OP_DELETE, .u.del = {.key = B("x"), .prev_kv = true}},
        {.type = MV_OP_RANGE, .u.range = {.key = B("y")}},
    };
    mv_txn_req t = {.compare = &cmp, .n_compare = 1, .success = ops, .n_success = 3};
    mv_result res = run_txn(&t);
    ck_assert_int_eq(res.err, MV_OK);
    ck_assert(res.resp.u.txn->succeeded);
    ck_assert_int_eq(res.header_revision, 3);
    mv_op_resp *r = res.resp.u.txn->responses;
    ck_assert_int_eq(r[1].u.del.deleted, 1);
    ck_assert_int_eq(r[1].u.del.n_prev_kvs, 1);
    ck_assert_int_eq(r[1].u.del.prev_kvs[0].value.len, 1);
    ck_assert_int_eq(r[2].u.range.n_kvs, 1); /* a range in the txn sees the txn's own put */
    ck_assert_int_eq(r[2].u.range.kvs[0].mod_revision, 3);
    ck_assert_int_eq(r[2].header_revision, 3);
    mv_result_free(&res);
    /* the compare now fails: the failure branch is empty, so no revision is made */
    res = run_txn(&t);
    ck_assert(!res.resp.u.txn->succeeded);
    ck_assert_int_eq(res.header_revision, 3);
    mv_result_free(&res);
    ck_assert_int_eq(mvcc_revision(st), 3);
}
END_TEST

START_TEST(test_txn_compare_missing_and_range) {
    put("p/1", "a");
    put("p/2", "b");
    mv_compare missing = {.result = MV_CMP_EQUAL, .target = MV_CMP_CREATE, .key = B("nope"), .number = 0};
    mv_txn_req t = {.compare = &missing, .n_compare = 1};
    mv_result res = run_txn(&t);
    ck_assert(res.resp.u.txn->succeeded);
    mv_result_free(&res);
    mv_compare value_missing = {.result = MV_CMP_NOT_EQUAL, .target = MV_CMP_VALUE, .key = B("nope")};
    t.compare = &value_missing;
    res = run_txn(&t);
    ck_assert(!res.resp.u.txn->succeeded); /* VALUE on a missing key always fails */
    mv_result_free(&res);
    mv_compare all = {
        .result = MV_CMP_GREATER, .target = MV_CMP_MOD, .key = B("p/"), .range_end = B("p0"), .number = 2};
    t.compare = &all;
    res = run_txn(&t);
    ck_assert(!res.resp.u.txn->succeeded); /* p/1 has mod 2, not > 2 */
    mv_result_free(&res);
}
END_TEST

START_TEST(test_txn_check_errors) {
    mv_op op = {.type = MV_OP_PUT, .u.put = {.key = B("z"), .ignore_value = true}};
    mv_txn_req t = {.success = &op, .n_success = 1};
    mv_result res = run_txn(&t);
    ck_assert_int_eq(res.err, MV_ERR_KEY_NOT_FOUND);
    mv_result_free(&res);
    op.u.put = (mv_put_req){.key = B("z"), .lease = 7};
    res = run_txn(&t);
    ck_assert_int_eq(res.err, MV_ERR_LEASE_NOT_FOUND);
    mv_result_free(&res);
    op = (mv_op){.type = MV_OP_RANGE, .u.range = {.key = B("z"), .revision = 99}};
    res = run_txn(&t);
    ck_assert_int_eq(res.err, MV_ERR_FUTURE_REV);
    mv_result_free(&res);
    ck_assert_int_eq(mvcc_revision(st), 1);
}
END_TEST

START_TEST(test_ignore_value_keeps_value) {
    put("iv", "keep");
    mv_put_req r = {.key = B("iv"), .ignore_value = true, .prev_kv = true};
    mv_result res;
    mvcc_put(st, &r, &res);
    ck_assert_int_eq(res.err, MV_OK);
    ck_assert_ptr_nonnull(res.resp.u.put.prev_kv);
    mv_result_free(&res);
    mv_range_req g = {.key = B("iv")};
    mv_err err;
    ck_assert_str_eq(show(&g, &err), "iv=keep@3/2/2 count=1 more=0");
}
END_TEST

START_TEST(test_nested_txn) {
    put("n", "1");
    mv_op inner_ops[1] = {{.type = MV_OP_PUT, .u.put = {.key = B("m"), .value = B("v")}}};
    mv_compare inner_cmp = {.result = MV_CMP_EQUAL, .target = MV_CMP_VERSION, .key = B("n"), .number = 1};
    mv_txn_req inner = {.compare = &inner_cmp, .n_compare = 1, .success = inner_ops, .n_success = 1};
    mv_op outer_ops[2] = {{.type = MV_OP_PUT, .u.put = {.key = B("n"), .value = B("2")}},
                          {.type = MV_OP_TXN, .u.txn = &inner}};
    mv_txn_req outer = {.success = outer_ops, .n_success = 2};
    mv_result res = run_txn(&outer);
    ck_assert_int_eq(res.err, MV_OK);
    /* the inner compare was decided before the outer put: version was 1 */
    ck_assert(res.resp.u.txn->responses[1].u.txn->succeeded);
    mv_result_free(&res);
    ck_assert_str_eq(get_all(), "m=v@3/3/1 n=2@3/2/2 count=2 more=0");
}
END_TEST

START_TEST(test_compaction) {
    put("c", "1"); /* 2 */
    put("c", "2"); /* 3 */
    put("d", "1"); /* 4 */
    del("d", "");  /* 5 */
    put("e", "1"); /* 6 */
    int64_t hdr;
    ck_assert_int_eq(mvcc_compact(st, 5, &hdr), MV_OK);
    ck_assert_int_eq(hdr, 6);
    ck_assert_int_eq(mvcc_compact(st, 5, &hdr), MV_ERR_COMPACTED);
    ck_assert_int_eq(mvcc_compact(st, 9, &hdr), MV_ERR_FUTURE_REV);
    mv_range_req r = {.key = B("c"), .revision = 4};
    mv_err err;
    show(&r, &err);
    ck_assert_int_eq(err, MV_ERR_COMPACTED);
    r.revision = 5;
    ck_assert_str_eq(show(&r, &err), "c=2@3/2/2 count=1 more=0");
    reopen();
    r.revision = 4;
    show(&r, &err);
    ck_assert_int_eq(err, MV_ERR_COMPACTED); /* compaction is persisted */
    ck_assert_int_eq(mvcc_compact_revision(st), 5);
    ck_assert_str_eq(get_all(), "c=2@3/2/2 e=1@6/6/1 count=2 more=0");
}
END_TEST

START_TEST(test_recovery_same_answers) {
    for (int i = 0; i < 200; i++) {
        char k[16], v[16];
        snprintf(k, sizeof k, "key%03d", i % 37);
        snprintf(v, sizeof v, "val%d", i);
        put(k, v);
        if (i % 11 == 0) del(k, "");
    }
    char before[4096];
    strcpy(before, get_all());
    int64_t rev = mvcc_revision(st);
    reopen();
    ck_assert_int_eq(mvcc_revision(st), rev);
    ck_assert_str_eq(get_all(), before);
    ck_assert_int_eq(put("after", "x"), rev + 1);
}
END_TEST

START_TEST(test_second_opener_refused) {
    char err[256] = "";
    mvcc_options o = {.fsync = false};
    ck_assert_ptr_null(mvcc_open(dir, &o, err, sizeof err));
    ck_assert_msg(strstr(err, "in use by another process") != NULL, "err: %s", err);
}
END_TEST

Suite *mvcc_suite(void) {
    Suite *s = suite_create("mvcc");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_revisions_and_versions);
    tcase_add_test(tc, test_history_reads);
    tcase_add_test(tc, test_range_options);
    tcase_add_test(tc, test_txn_one_revision);
    tcase_add_test(tc, test_txn_compare_missing_and_range);
    tcase_add_test(tc, test_txn_check_errors);
    tcase_add_test(tc, test_ignore_value_keeps_value);
    tcase_add_test(tc, test_nested_txn);
    tcase_add_test(tc, test_compaction);
    tcase_add_test(tc, test_recovery_same_answers);
    tcase_add_test(tc, test_second_opener_refused);
    suite_add_tcase(s, tc);
    return s;
}
