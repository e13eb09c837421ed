/* test_auth_perm.c: unit tests of etcd's permission logic as src/rpc/auth_perm.c and auth_gate.c keep
 * it: single keys, prefixes, open ends, unions without a gap, degenerate ranges, the ranges a grant may
 * name; then the model's checks (disabled, no user, root, read versus write) and simple tokens. */
#include "auth_gate.h"
#include "auth_perm.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* errors.c's rpc_fail calls the transport, which no unit test links: a stand-in, never called here. */
void rpc_finish(rpc_call *call, int grpc_code, const char *message) {
    (void)call, (void)grpc_code, (void)message;
    ck_abort_msg("rpc_finish called");
}

#define S(x) (const uint8_t *)(x), strlen(x)
#define NUL0 (const uint8_t *)"\0", 1 /* range_end "\0": every key from key on */

static bool allows(const auth_perm_set *s, const char *key, const char *end) {
    return auth_perm_set_allows(s, S(key), S(end));
}

START_TEST(test_single_key) {
    auth_perm_set s = {0};
    auth_perm_set_add(&s, S("/k"), NULL, 0);
    ck_assert(allows(&s, "/k", ""));
    ck_assert(!allows(&s, "/j", ""));
    ck_assert(!allows(&s, "/k0", ""));
    ck_assert(!auth_perm_set_allows(&s, (const uint8_t *)"/k\0", 3, NULL, 0)); /* the next key */
    ck_assert(auth_perm_set_allows(&s, S("/k"), (const uint8_t *)"/k\0", 3));  /* [/k, /k\0) is /k */
    ck_assert(!allows(&s, "/k", "/l"));
    auth_perm_set_free(&s);
}
END_TEST

START_TEST(test_prefix) {
    auth_perm_set s = {0};
    auth_perm_set_add(&s, S("/a/"), S("/a0"));
    ck_assert(allows(&s, "/a/x", ""));
    ck_assert(allows(&s, "/a/", ""));
    ck_assert(!allows(&s, "/a", ""));
    ck_assert(!allows(&s, "/b/x", ""));
    ck_assert(allows(&s, "/a/", "/a0"));
    ck_assert(allows(&s, "/a/b", "/a/c"));
    ck_assert(!allows(&s, "/a/", "/a1"));
    ck_assert(!allows(&s, "/", "/a0"));
    ck_assert(!auth_perm_set_allows(&s, S("/a/"), NUL0)); /* from /a/ on reaches past /a0 */
    auth_perm_set_free(&s);
}
END_TEST

START_TEST(test_open_end) {
    auth_perm_set s = {0};
    auth_perm_set_add(&s, S("/m"), NUL0);
    ck_assert(auth_perm_set_allows(&s, S("/m"), NUL0));
    ck_assert(auth_perm_set_allows(&s, S("/z"), NUL0));
    ck_assert(allows(&s, "/zzz", ""));
    ck_assert(allows(&s, "\xff\xff", ""));
    ck_assert(!allows(&s, "/l", ""));
    ck_assert(!auth_perm_set_allows(&s, S("/l"), NUL0));
    ck_assert(allows(&s, "/m", "/n"));
    auth_perm_set_free(&s);

    auth_perm_set all = {0}; /* etcdctl's grant-permission "" --from-key: "\0" to the end */
    auth_perm_set_add(&all, NUL0, NUL0);
    ck_assert(auth_perm_set_allows(&all, NUL0, NUL0)); /* get "" --prefix */
    ck_assert(allows(&all, "a", ""));
    auth_perm_set_free(&all);
}
END_TEST

START_TEST(test_union) {
    auth_perm_set s = {0};
    auth_perm_set_add(&s, S("c"), S("e")); /* out of order on purpose */
    auth_perm_set_add(&s, S("a"), S("c"));
    auth_perm_set_add(&s, S("g"), S("h"));
    ck_assert(allows(&s, "a", "e")); /* [a,c) and [c,e) join */
    ck_assert(allows(&s, "b", "d"));
    ck_assert(!allows(&s, "a", "f"));
    ck_assert(!allows(&s, "a", "h")); /* the gap [e,g) */
    ck_assert(allows(&s, "g", "h"));
    ck_assert(!allows(&s, "f", ""));
    auth_perm_set_free(&s);

    auth_perm_set t = {0};
    auth_perm_set_add(&t, S("a"), S("d"));
    auth_perm_set_add(&t, S("b"), S("c")); /* inside the first */
    auth_perm_set_add(&t, S("a"), NULL, 0);
    ck_assert(allows(&t, "a", "d"));
    auth_perm_set_free(&t);

    auth_perm_set u = {0}; /* a single key, then the range from the key after it */
    auth_perm_set_add(&u, S("a"), NULL, 0);
    auth_perm_set_add(&u, (const uint8_t *)"a\0", 2, S("b"));
    ck_assert(allows(&u, "a", "b"));
    auth_perm_set_free(&u);
}
END_TEST

START_TEST(test_degenerate_query) {
    auth_perm_set s = {0};
    auth_perm_set_add(&s, S("a"), S("z"));
    ck_assert(allows(&s, "c", "a")); /* as etcd's interval tree: the start key is covered */
    auth_perm_set_free(&s);
    auth_perm_set t = {0};
    auth_perm_set_add(&t, S("d"), S("z"));
    ck_assert(!allows(&t, "c", "a"));
    auth_perm_set_free(&t);
}
END_TEST

START_TEST(test_long_and_binary_keys) {
    char key[600];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = 0;
    auth_perm_set s = {0};
    auth_perm_set_add(&s, S(key), NULL, 0);
    auth_perm_set_add(&s, (const uint8_t *)"\x00\xff", 2, (const uint8_t *)"\x01", 1);
    ck_assert(allows(&s, key, ""));
    key[10] = 'j';
    ck_assert(!allows(&s, key, ""));
    ck_assert(auth_perm_set_allows(&s, (const uint8_t *)"\x00\xff\xff", 3, NULL, 0));
    ck_assert(!auth_perm_set_allows(&s, (const uint8_t *)"\x00\xfe", 2, NULL, 0));
    auth_perm_set_free(&s);
}
END_TEST

START_TEST(test_valid_range) {
    ck_assert(!auth_perm_valid_range(NULL, 0, NULL, 0));
    ck_assert(auth_perm_valid_range(S("a"), NULL, 0));
    ck_assert(auth_perm_valid_range(S("a"), S("b")));
    ck_assert(!auth_perm_valid_range(S("b"), S("b")));
    ck_assert(!auth_perm_valid_range(S("b"), S("a")));
    ck_assert(auth_perm_valid_range(S("b"), NUL0));
    ck_assert(auth_perm_valid_range(NUL0, NUL0));
}
END_TEST

/* ---------- the model's checks (auth_gate.c) ---------- */

static void grant(auth_role *r, int type, const char *key, const char *end) {
    r->perms = realloc(r->perms, (r->n_perms + 1) * sizeof *r->perms);
    auth_perm *p = &r->perms[r->n_perms++];
    *p = (auth_perm){.type = type, .key = (uint8_t *)strdup(key), .key_len = strlen(key)};
    if (*end) p->range_end = (uint8_t *)strdup(end), p->end_len = strlen(end);
}

static void give_role(auth_user *u, const char *role) {
    u->roles = realloc(u->roles, (u->n_roles + 1) * sizeof *u->roles);
    u->roles[u->n_roles++] = strdup(role);
}

static mv_bytes B(const char *s) {
    return (mv_bytes){(const uint8_t *)s, strlen(s)};
}

static void build_model(void) {
    auth_model_clear();
    g_auth.revision = 1;
    grant(auth_add_role("ro"), AUTH_READ, "/a/", "/a0");
    grant(auth_add_role("wo"), AUTH_WRITE, "/w", "");
    give_role(auth_add_user("root"), "root");
    give_role(auth_add_user("alice"), "ro");
    auth_user *bob = auth_add_user("bob");
    give_role(bob, "wo");
    give_role(bob, "gone"); /* a role that does not exist grants nothing */
    auth_refresh();
}

START_TEST(test_model_checks) {
    build_model();
    auth_who alice = {"alice", 1}, bob = {"bob", 1}, root = {"root", 1}, nobody = {NULL, 0},
             ghost = {"ghost", 1};
    ck_assert_int_eq(auth_may_write(&nobody, B("/x"), B("")), AUTH_OK); /* disabled: anything goes */
    ck_assert_int_eq(auth_may_admin(&nobody), AUTH_OK);
    g_auth.enabled = true;
    ck_assert_int_eq(auth_may_read(&nobody, B("/a/x"), B("")), ETCD_ERR_USER_EMPTY);
    ck_assert_int_eq(auth_may_admin(&nobody), ETCD_ERR_USER_EMPTY);
    ck_assert_int_eq(auth_may_read(&ghost, B("/a/x"), B("")), ETCD_ERR_PERMISSION_DENIED);
    ck_assert_int_eq(auth_may_admin(&ghost), ETCD_ERR_USER_NOT_FOUND);
    ck_assert_int_eq(auth_may_read(&alice, B("/a/x"), B("")), AUTH_OK);
    ck_assert_int_eq(auth_may_write(&alice, B("/a/x"), B("")), ETCD_ERR_PERMISSION_DENIED);
    ck_assert_int_eq(auth_may_read(&bob, B("/w"), B("")), ETCD_ERR_PERMISSION_DENIED);
    ck_assert_int_eq(auth_may_write(&bob, B("/w"), B("")), AUTH_OK);
    ck_assert_int_eq(auth_may_write(&root, B("\xff"), (mv_bytes){(const uint8_t *)"", 1}), AUTH_OK);
    ck_assert_int_eq(auth_may_admin(&root), AUTH_OK);
    ck_assert_int_eq(auth_may_admin(&alice), ETCD_ERR_PERMISSION_DENIED);
    auth_who stale = {"alice", 1};
    g_auth.revision = 2;
    ck_assert_int_eq(auth_may_read(&stale, B("/a/x"), B("")), ETCD_ERR_AUTH_OLD_REVISION);
    auth_model_clear();
}
END_TEST

START_TEST(test_tokens) {
    build_model();
    g_auth.enabled = true;
    char *t1 = strdup(auth_token_assign("alice"));
    char *t2 = strdup(auth_token_assign("bob"));
    ck_assert_int_eq(strlen(t1) > 17, 1);
    ck_assert_str_ne(t1, t2);
    rpc_caller c = {t1, NULL};
    auth_who who;
    ck_assert_int_eq(auth_resolve(&c, &who), AUTH_OK);
    ck_assert_str_eq(who.user, "alice");
    ck_assert_int_eq(who.revision, g_auth.revision);
    rpc_caller bogus = {"abcdefghijklmnop.1", NULL};
    ck_assert_int_eq(auth_resolve(&bogus, &who), ETCD_ERR_INVALID_AUTH_TOKEN);
    rpc_caller cert = {NULL, "bob"}; /* the TLS hook: the certificate's CN is the user */
    ck_assert_int_eq(auth_resolve(&cert, &who), AUTH_OK);
    ck_assert_str_eq(who.user, "bob");
    auth_tokens_drop_user("alice");
    ck_assert_int_eq(auth_resolve(&c, &who), ETCD_ERR_INVALID_AUTH_TOKEN);
    ck_assert_int_eq(auth_token_count(), 1);
    for (int i = 0; i < 500; i++) /* the table grows */
        auth_token_assign("carol");
    rpc_caller c2 = {t2, NULL};
    ck_assert_int_eq(auth_resolve(&c2, &who), AUTH_OK);
    ck_assert_str_eq(who.user, "bob");
    auth_tokens_clear();
    ck_assert_int_eq(auth_token_count(), 0);
    ck_assert_int_eq(auth_resolve(&c2, &who), ETCD_ERR_INVALID_AUTH_TOKEN);
    free(t1);
    free(t2);
    auth_model_clear();
}
END_TEST

Suite *auth_perm_suite(void) {
    Suite *s = suite_create("auth_perm");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_single_key);
    tcase_add_test(tc, test_prefix);
    tcase_add_test(tc, test_open_end);
    tcase_add_test(tc, test_union);
    tcase_add_test(tc, test_degenerate_query);
    tcase_add_test(tc, test_long_and_binary_keys);
    tcase_add_test(tc, test_valid_range);
    tcase_add_test(tc, test_model_checks);
    tcase_add_test(tc, test_tokens);
    suite_add_tcase(s, tc);
    return s;
}
