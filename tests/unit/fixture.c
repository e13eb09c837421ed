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
