/* fixture.c: the shared store fixture of fixture.h, so every storage suite sets up, reopens and
 * cleans up a store the same way. */
#include "fixture.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char dir[64];
mvcc *st;
static mvcc_options fixture_opt;

mv_bytes B(const char *s) {
    return (mv_bytes){(const uint8_t *)s, strlen(s)};
}

void open_store(void) {
    char err[256];
    st = mvcc_open(dir, &fixture_opt, err, sizeof err);
    ck_assert_msg(st != NULL, "open: %s", err);
}

void fixture_setup(mvcc_options opt) {
    fixture_opt = opt;
    strcpy(dir, "/tmp/cetcd-unit-XXXXXX");
    ck_assert(mkdtemp(dir) != NULL);
    open_store();
}

void reopen(void) {
    ck_assert_int_eq(mvcc_commit(st), 0);
    mvcc_close(st);
    open_store();
}

void fixture_teardown(void) {
    mvcc_close(st);
    st = NULL;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

int64_t fx_put(const char *k, const char *v, int64_t lease) {
    mv_put_req r = {.key = B(k), .value = B(v), .lease = lease};
    mv_result res;
    mvcc_put(st, &r, &res);
    ck_assert_int_eq(res.err, MV_OK);
    mv_result_free(&res);
    return mvcc_revision(st);
}

void fx_del(const char *k) {
    mv_delete_req r = {.key = B(k)};
    mv_result res;
    mvcc_delete(st, &r, &res);
    ck_assert_int_eq(res.err, MV_OK);
    mv_result_free(&res);
}

void fx_run_log_compaction(void) {
    int rc;
    while ((rc = mvcc_log_compaction_step(st, 1000)) == 1)
        ck_assert_int_eq(mvcc_commit(st), 0);
    ck_assert_int_eq(rc, 0);
}

void fx_defragment(void) {
    ck_assert_int_eq(mvcc_commit(st), 0); /* the writes before it were acknowledged, so durable */
    mvcc_log_compaction_start(st, true);
    fx_run_log_compaction();
}

uint32_t fx_hash(mvcc *s, int64_t rev) {
    uint32_t h;
    int64_t at;
    ck_assert_int_eq(mvcc_hash_kv(s, rev, &h, &at), MV_OK);
    return h;
}
