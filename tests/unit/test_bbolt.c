/* test_bbolt.c: a store written as etcd's bbolt snapshot (snapshot_etcd.c over bbolt_write.c) and read
 * back (bbolt_read.c) into a new store answers the same at every revision, with the compaction
 * revision and the leases; the trees are deep enough for branch levels and overflow pages; and a
 * damaged file never crashes the reader, only makes it refuse. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.pb-c.h"
#include "auth_codec.h"
#include "bbolt_read.h"
#include "bbolt_write.h"
#include "mvcc.h"
#include "snapshot_etcd.h"

static char base[64];
static int dirs;

static void setup(void) {
    snprintf(base, sizeof base, "/tmp/cetcd-bbolt.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(base));
    dirs = 0;
}

static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *new_dir(char *out, size_t n) {
    snprintf(out, n, "%s/d%d", base, dirs++);
    return out;
}

static mvcc *open_at(const char *d) {
    char err[256];
    mvcc_options o = {.fsync = false};
    mvcc *s = mvcc_open(d, &o, err, sizeof err);
    ck_assert_msg(s != NULL, "%s", err);
    return s;
}

static mv_bytes S(const char *s) {
    return (mv_bytes){(const uint8_t *)s, strlen(s)};
}

static void put(mvcc *s, const char *k, const char *v, int64_t lease) {
    mv_put_req r = {.key = S(k), .value = S(v), .lease = lease};
    mv_result res;
    mvcc_put(s, &r, &res);
    ck_assert_int_eq(res.err, MV_OK);
    mv_result_free(&res);
}

/* n rounds of history: puts (some leased), overwrites, deletes, a txn every 50, a big value. */
static int64_t fill(mvcc *s, int n, int leases) {
    for (int i = 1; i <= leases; i++)
        ck_assert_int_eq(mvcc_lease_grant(s, i * 1000 + 7, 60 + i), MV_OK);
    char k[32], v[64];
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "key/%06d", (i * 7919) % (n / 2 + 1));
        snprintf(v, sizeof v, "value-%d", i);
        put(s, k, v, leases && i % 11 == 0 ? (i % leases + 1) * 1000 + 7 : 0);
        if (i % 97 == 0) {
            mv_delete_req d = {.key = S(k)};
            mv_result res;
            mvcc_delete(s, &d, &res);
            mv_result_free(&res);
        }
        if (i % 50 == 0) {
            mv_op ops[3] = {{.type = MV_OP_PUT, .u.put = {.key = S("txn/a"), .value = S(v)}},
                            {.type = MV_OP_PUT, .u.put = {.key = S("txn/b"), .value = S(v)}},
                            {.type = MV_OP_DELETE, .u.del = {.key = S("txn/a")}}};
            mv_txn_req txn = {.success = ops, .n_success = 3};
            mv_result res;
            mvcc_txn(s, &txn, &res);
            mv_result_free(&res);
        }
    }
    static char big[50000];
    memset(big, 'b', sizeof big - 1);
    put(s, "big", big, 0);
    int64_t hdr;
    int64_t compact = mvcc_revision(s) - n / 3;
    ck_assert_int_eq(mvcc_compact(s, compact, &hdr), MV_OK);
    for (int i = 0; i < 20; i++)
        put(s, "after", "x", 0);
    ck_assert_int_eq(mvcc_commit(s), 0);
    return compact;
}

/* An auth state with auth on, a user and a role, saved as the auth service saves it. */
static void save_auth(mvcc *s) {
    Authpb__User u = AUTHPB__USER__INIT;
    char *roles[] = {"root"};
    u.name = (ProtobufCBinaryData){4, (uint8_t *)"root"};
    u.password = (ProtobufCBinaryData){5, (uint8_t *)"$2a$x"};
    u.n_roles = 1;
    u.roles = roles;
    Authpb__Role r = AUTHPB__ROLE__INIT;
    r.name = (ProtobufCBinaryData){4, (uint8_t *)"root"};
    uint8_t ub[64], rb[64];
    mv_bytes users = {ub, authpb__user__pack(&u, ub)}, rls = {rb, authpb__role__pack(&r, rb)};
    size_t len;
    char why[128];
    uint8_t *blob = auth_blob_from_buckets(true, 7, &users, 1, &rls, 1, &len, why, sizeof why);
    ck_assert_msg(blob != NULL, "%s", why);
    ck_assert_int_eq(mvcc_auth_save(s, blob, len), MV_OK);
    free(blob);
}

/* The whole snapshot database in memory, read in uneven pieces. */
static uint8_t *snapshot_bytes(mvcc *s, uint64_t *size) {
    char err[256];
    etcd_snap *e = etcd_snap_begin(s, err, sizeof err);
    ck_assert_msg(e != NULL, "%s", err);
    int rc;
    while ((rc = etcd_snap_prepare(e, 100)) == 1)
        continue;
    ck_assert_int_eq(rc, 0);
    *size = etcd_snap_size(e);
    ck_assert_uint_eq(*size % BB_PAGE_SIZE, 0);
    uint8_t *d = malloc(*size + 1);
    uint64_t got = 0;
    for (size_t step = 1000; got < *size + 1; step = step * 3 % 70001 + 1) {
        long r = etcd_snap_read(e, d + got, step < *size + 1 - got ? step : *size + 1 - got);
        ck_assert_int_ge(r, 0);
        if (r == 0) break;
        got += (uint64_t)r;
    }
    ck_assert_uint_eq(got, *size);
    etcd_snap_end(e);
    return d;
}

static uint32_t hash_at(mvcc *s, int64_t rev) {
    uint32_t h;
    int64_t at;
    ck_assert_int_eq(mvcc_hash_kv(s, rev, &h, &at), MV_OK);
    return h;
}

static int tree_depth(const uint8_t *d, uint64_t size, const char *bucket, uint64_t *n) {
    bb_db db;
    char err[160];
    ck_assert_int_eq(bb_open(&db, d, size, err, sizeof err), 0);
    bb_bucket root, b;
    bb_root_bucket(&db, &root);
    ck_assert_int_eq(bb_bucket_find(&db, &root, bucket, &b, err, sizeof err), 1);
    bb_cursor c;
    bb_cursor_init(&c, &db, &b);
    const uint8_t *k, *v;
    size_t kl, vl;
    uint32_t fl;
    int depth = 0, rc;
    *n = 0;
    while ((rc = bb_cursor_next(&c, &k, &kl, &v, &vl, &fl)) == 1) {
        (*n)++;
        if (c.depth > depth) depth = c.depth;
    }
    ck_assert_msg(rc == 0, "%s", c.err);
    bb_cursor_free(&c);
    return depth;
}

START_TEST(test_round_trip_deep_trees) {
    char d1[96], d2[96];
    mvcc *s = open_at(new_dir(d1, sizeof d1));
    save_auth(s);
    int64_t compact = fill(s, 30000, 400);
    uint64_t size;
    uint8_t *db = snapshot_bytes(s, &size);
    uint64_t nkeys, nleases;
    ck_assert_int_ge(tree_depth(db, size, "key", &nkeys), 3);
    ck_assert_int_ge(tree_depth(db, size, "lease", &nleases), 2);
    ck_assert_uint_eq(nleases, 400);
    char err[512];
    ck_assert_msg(etcd_db_import(db, size, new_dir(d2, sizeof d2), err, sizeof err) == 0, "%s", err);
    mvcc *t = open_at(d2);
    ck_assert_int_eq(mvcc_revision(t), mvcc_revision(s));
    ck_assert_int_eq(mvcc_compact_revision(t), compact);
    for (int64_t rev = compact; rev <= mvcc_revision(s); rev += 97)
        ck_assert_uint_eq(hash_at(t, rev), hash_at(s, rev));
    ck_assert_uint_eq(hash_at(t, 0), hash_at(s, 0));
    ck_assert_uint_eq(mvcc_lease_count(t), 400);
    ck_assert_int_eq(mvcc_lease_ttl(t, 5007), 65);
    mv_arena *a = mv_arena_new();
    mv_bytes *ks, *kt;
    size_t n1 = mvcc_lease_keys(s, 3007, a, &ks), n2 = mvcc_lease_keys(t, 3007, a, &kt);
    ck_assert_uint_eq(n1, n2);
    ck_assert_uint_gt(n1, 0);
    for (size_t i = 0; i < n1; i++)
        ck_assert(ks[i].len == kt[i].len && memcmp(ks[i].data, kt[i].data, ks[i].len) == 0);
    mv_arena_free(a);
    mv_bytes as = mvcc_auth_state(s), at = mvcc_auth_state(t); /* auth, authUsers, authRoles */
    ck_assert(as.len > 0 && as.len == at.len && memcmp(as.data, at.data, as.len) == 0);
    mvcc_close(t);
    mvcc_close(s);
    free(db);
}
END_TEST

START_TEST(test_empty_store) {
    char d1[96], d2[96];
    mvcc *s = open_at(new_dir(d1, sizeof d1));
    uint64_t size;
    uint8_t *db = snapshot_bytes(s, &size);
    /* head, and an empty leaf for each of authRoles, authUsers, lease and key */
    ck_assert_uint_eq(size, 8 * BB_PAGE_SIZE);
    char err[512];
    ck_assert_msg(etcd_db_import(db, size, new_dir(d2, sizeof d2), err, sizeof err) == 0, "%s", err);
    mvcc *t = open_at(d2);
    ck_assert_int_eq(mvcc_revision(t), 1);
    ck_assert_int_eq(mvcc_compact_revision(t), -1);
    ck_assert_uint_eq(mvcc_auth_state(t).len, 0); /* auth never used: none made up */
    mvcc_close(t);
    mvcc_close(s);
    free(db);
}
END_TEST

/* Random damage anywhere: the import refuses (before building anything) or, when the damage missed
 * everything it reads, succeeds; it never reads outside the file (run under ASan by unit-asan). */
START_TEST(test_damage_is_refused) {
    char d1[96], d2[96];
    mvcc *s = open_at(new_dir(d1, sizeof d1));
    fill(s, 3000, 20);
    uint64_t size;
    uint8_t *db = snapshot_bytes(s, &size);
    uint8_t *bad = malloc(size);
    srand(14);
    int refused = 0;
    for (int i = 0; i < 300; i++) {
        memcpy(bad, db, size);
        uint64_t page = (uint64_t)rand() % (size / BB_PAGE_SIZE);
        for (int j = 0; j < 1 + rand() % 4; j++) /* headers and element tables are where it hurts */
            bad[page * BB_PAGE_SIZE + (uint64_t)(rand() % (i % 2 ? 96 : (int)BB_PAGE_SIZE))] =
                (uint8_t)rand();
        uint64_t len = i % 10 == 9 ? size - BB_PAGE_SIZE * (1 + (uint64_t)rand() % 3) : size;
        char err[512] = "";
        new_dir(d2, sizeof d2);
        if (etcd_db_import(bad, len, d2, err, sizeof err) != 0) {
            refused++;
            ck_assert_msg(err[0] != 0, "refused without a reason");
        }
    }
    ck_assert_int_gt(refused, 100);
    free(bad);
    free(db);
    mvcc_close(s);
}
END_TEST

Suite *bbolt_suite(void) {
    Suite *s = suite_create("bbolt");
    TCase *tc = tcase_create("etcd snapshot");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_round_trip_deep_trees);
    tcase_add_test(tc, test_empty_store);
    tcase_add_test(tc, test_damage_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
