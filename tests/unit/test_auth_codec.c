/* test_auth_codec.c: unit tests of src/api/auth_codec.c: the auth model survives its blob (users with
 * and without password, roles, permissions, enabled, revision), a cut or foreign blob is refused,
 * and the blob goes to etcd's auth buckets and back unchanged (for etcd-format snapshots). */
#include "auth_codec.h"
#include "auth_gate.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* errors.c's rpc_fail calls the transport, which no unit test links: a stand-in, never called here. */
void rpc_finish(rpc_call *call, int grpc_code, const char *message) {
    (void)call, (void)grpc_code, (void)message;
    ck_abort_msg("rpc_finish called");
}

static void build_model(void) {
    auth_model_clear();
    g_auth.enabled = true;
    g_auth.revision = 42;
    auth_user *root = auth_add_user("root");
    root->password = (uint8_t *)strdup("$2b$04$abcdefghijklmnopqrstuv0123456789012345678901234567890");
    root->password_len = strlen((char *)root->password);
    root->roles = malloc(sizeof *root->roles);
    root->roles[0] = strdup("root");
    root->n_roles = 1;
    auth_add_user("cert")->no_password = true;
    auth_role *ro = auth_add_role("ro");
    ro->perms = calloc(2, sizeof *ro->perms);
    ro->perms[0] = (auth_perm){AUTH_READ, (uint8_t *)strdup("/a/"), (uint8_t *)strdup("/a0"), 3, 3};
    ro->perms[1] = (auth_perm){AUTH_READWRITE, (uint8_t *)strdup("/k"), NULL, 2, 0};
    ro->n_perms = 2;
    auth_add_role("empty");
    auth_refresh();
}

static void check_model(void) {
    ck_assert(g_auth.enabled);
    ck_assert_int_eq(g_auth.revision, 42);
    ck_assert_int_eq(g_auth.n_users, 2);
    ck_assert_int_eq(g_auth.n_roles, 2);
    const auth_user *root = auth_user_find("root");
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(root->password_len,
                     strlen("$2b$04$abcdefghijklmnopqrstuv0123456789012345678901234567890"));
    ck_assert(auth_user_has_role(root, "root"));
    ck_assert(auth_user_find("cert")->no_password);
    const auth_role *ro = auth_role_find("ro");
    ck_assert_int_eq(ro->n_perms, 2);
    ck_assert_int_eq(ro->perms[1].type, AUTH_READWRITE);
    ck_assert_int_eq(ro->perms[1].end_len, 0);
    ck_assert_int_eq(memcmp(ro->perms[0].range_end, "/a0", 3), 0);
    ck_assert_int_eq(auth_role_find("empty")->n_perms, 0);
}

START_TEST(test_round_trip) {
    build_model();
    size_t len;
    uint8_t *blob = auth_encode(&len);
    char why[200];
    ck_assert(auth_decode(blob, len, why, sizeof why));
    check_model();
    size_t len2;
    uint8_t *again = auth_encode(&len2);
    ck_assert_int_eq(len, len2);
    ck_assert_int_eq(memcmp(blob, again, len), 0);
    free(again);
    ck_assert(!auth_decode(blob, len - 3, why, sizeof why)); /* cut short: refused, nothing kept */
    ck_assert_int_eq(g_auth.n_users, 0);
    ck_assert(!auth_decode((const uint8_t *)"not a blob at all, not at all", 29, why, sizeof why));
    free(blob);
    auth_model_clear();
}
END_TEST

typedef struct bucket_log {
    char buckets[16][16];
    mv_bytes users[8], roles[8];
    size_t n, n_users, n_roles;
    uint8_t enabled;
    uint64_t revision;
} bucket_log;

static int collect(void *ctx, const char *bucket, const uint8_t *key, size_t klen, const uint8_t *v,
                   size_t vlen) {
    bucket_log *l = ctx;
    strcpy(l->buckets[l->n++], bucket);
    if (strcmp(bucket, "auth") == 0 && klen == 11) l->enabled = v[0];
    if (strcmp(bucket, "auth") == 0 && klen == 12)
        for (size_t i = 0; i < 8; i++)
            l->revision = l->revision << 8 | v[i];
    if (strcmp(bucket, "authUsers") == 0) l->users[l->n_users++] = (mv_bytes){v, vlen};
    if (strcmp(bucket, "authRoles") == 0) l->roles[l->n_roles++] = (mv_bytes){v, vlen};
    (void)key;
    ck_assert_uint_eq(vlen > 0 || strcmp(bucket, "auth") != 0, 1);
    return 0;
}

START_TEST(test_etcd_buckets) {
    build_model();
    size_t len;
    uint8_t *blob = auth_encode(&len);
    bucket_log l = {0};
    ck_assert_int_eq(auth_blob_to_buckets(blob, len, collect, &l), 0);
    ck_assert_int_eq(l.n, 6); /* authEnabled, authRevision, 2 users, 2 roles */
    ck_assert_int_eq(l.enabled, 1);
    ck_assert_int_eq(l.revision, 42);
    ck_assert_int_eq(l.n_users, 2);
    ck_assert_int_eq(l.n_roles, 2);
    char why[200];
    size_t len2;
    uint8_t *back = auth_blob_from_buckets(l.enabled, l.revision, l.users, l.n_users, l.roles, l.n_roles,
                                           &len2, why, sizeof why);
    ck_assert_ptr_nonnull(back);
    ck_assert_int_eq(len, len2);
    ck_assert_int_eq(memcmp(blob, back, len), 0);
    auth_model_clear();
    ck_assert(auth_decode(back, len2, why, sizeof why));
    check_model();
    mv_bytes junk = {(const uint8_t *)"\xff\xff\xff", 3};
    ck_assert_ptr_null(auth_blob_from_buckets(true, 1, &junk, 1, NULL, 0, &len2, why, sizeof why));
    bucket_log fresh = {0};
    ck_assert_int_eq(auth_blob_to_buckets(NULL, 0, collect, &fresh), 0);
    ck_assert_int_eq(fresh.n, 1);
    ck_assert_int_eq(fresh.revision, 1);
    free(back);
    free(blob);
    auth_model_clear();
}
END_TEST

Suite *auth_codec_suite(void) {
    Suite *s = suite_create("auth_codec");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_etcd_buckets);
    suite_add_tcase(s, tc);
    return s;
}
