/* test_range_select.c: mvcc_range_select + mvcc_range_values (the Range path whose values are copied
 * straight into a reply) must give exactly what mvcc_range gives, for every option of a Range: limit,
 * more, count, keys_only, count_only, sorts, revisions, filters, the budget, values written out of log
 * order and empty values, before and after a reopen and a compaction; and that the pages of a list
 * counted with a count cache (mv_count_cache) count what they count without one; and that values
 * copied in steps (mvcc_range_values_begin) are those of the selection, whatever happens between, and
 * so is a count finished in steps (mv_range_rest). */
#include "fixture.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void setup(void) {
    fixture_setup((mvcc_options){.fsync = false});
}

static void teardown(void) {
    fixture_teardown();
}

/* Runs r both ways and compares every field of the answers. */
static void same(const mv_range_req *r) {
    mv_result a, b;
    mvcc_range(st, r, &a);
    mvcc_range_select(st, r, &b, NULL);
    ck_assert_int_eq(a.err, b.err);
    ck_assert_int_eq(a.header_revision, b.header_revision);
    if (a.err == MV_OK) {
        const mv_range_resp *x = &a.resp.u.range, *y = &b.resp.u.range;
        ck_assert_int_eq(x->n_kvs, y->n_kvs);
        ck_assert_int_eq(x->count, y->count);
        ck_assert_int_eq(x->more, y->more);
        ck_assert_int_eq(x->too_large, y->too_large);
        uint8_t **dst = calloc(y->n_kvs + 1, sizeof *dst);
        for (size_t i = 0; i < y->n_kvs; i++) {
            ck_assert_ptr_null(y->kvs[i].value.data);
            dst[i] = malloc(y->kvs[i].value.len + 1);
        }
        mvcc_range_values(st, y, dst);
        for (size_t i = 0; i < x->n_kvs; i++) {
            const mv_kv *p = &x->kvs[i], *q = &y->kvs[i];
            ck_assert_int_eq(p->key.len, q->key.len);
            ck_assert(memcmp(p->key.data, q->key.data, p->key.len) == 0);
            ck_assert_int_eq(p->create_revision, q->create_revision);
            ck_assert_int_eq(p->mod_revision, q->mod_revision);
            ck_assert_int_eq(p->version, q->version);
            ck_assert_int_eq(p->lease, q->lease);
            ck_assert_int_eq(p->value.len, q->value.len);
            ck_assert(p->value.len == 0 || memcmp(p->value.data, dst[i], p->value.len) == 0);
            free(dst[i]);
        }
        free(dst);
    }
    mv_result_free(&a);
    mv_result_free(&b);
}

static void fill(void) {
    char k[32], v[600];
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 60; i++) {
            int j = (i * 37 + round * 11) % 60; /* not in key order, so values are not in log order */
            snprintf(k, sizeof k, "k/%03d", j);
            int len = (j * 13 + round * 5) % 500;
            memset(v, 'a' + (j + round) % 26, (size_t)len);
            v[len] = 0;
            fx_put(k, v, 0);
        }
    fx_del("k/007");
    fx_put("k/empty", "", 0);
}

static void all_options(void) {
    mv_bytes end = B("k0"), from = B("k/");
    int64_t now = mvcc_revision(st);
    int64_t limits[] = {0, 1, 7, 59, 60, 61, 1000};
    int64_t revs[] = {0, 1, 30, 61, now - 20, now};
    for (size_t l = 0; l < sizeof limits / sizeof *limits; l++)
        for (size_t v = 0; v < sizeof revs / sizeof *revs; v++)
            for (int order = 0; order <= 2; order++)
                for (int target = 0; target <= 4; target++) {
                    mv_range_req r = {.key = from,
                                      .range_end = end,
                                      .limit = limits[l],
                                      .revision = revs[v],
                                      .sort_order = order,
                                      .sort_target = target};
                    same(&r);
                    r.keys_only = true;
                    same(&r);
                    r.keys_only = false, r.count_only = true;
                    same(&r);
                }
    mv_range_req one = {.key = B("k/010")};
    same(&one);
    mv_range_req none = {.key = B("nothing")};
    same(&none);
    mv_range_req all = {.key = B("\0"), .range_end = B("\0")};
    all.key.len = 1, all.range_end.len = 1;
    same(&all);
    mv_range_req filtered = {
        .key = from, .range_end = end, .min_mod_revision = 40, .max_create_revision = 50};
    same(&filtered);
    mv_range_req future = {.key = from, .range_end = end, .revision = now + 1};
    same(&future);
    for (uint64_t budget = 1000; budget < 200000; budget *= 3) {
        mv_range_req tight = {.key = from, .range_end = end, .max_bytes = budget};
        same(&tight);
        tight.limit = 5;
        same(&tight);
    }
}

START_TEST(select_matches_range) {
    fill();
    all_options();
    reopen(); /* the values now come from the recovered log */
    all_options();
}
END_TEST

START_TEST(select_after_compaction) {
    fill();
    mvcc_compact(st, 100, &(int64_t){0});
    all_options();
}
END_TEST

/* Pages of limit 7 over [from, end) at revision rev, each with and without the count cache c: the
 * answers must agree (count, more, kvs). Writes may come between pages; they are above rev. */
static void pages_agree(mv_count_cache *c, const char *from, const char *end, int64_t rev, int write_every) {
    char next[64];
    snprintf(next, sizeof next, "%s", from);
    for (int page = 0;; page++) {
        mv_range_req r = {.key = B(next), .range_end = B(end), .limit = 7, .revision = rev};
        if (end[0] == 0) r.range_end.len = 1; /* "\0": every key from */
        mv_result plain, cached;
        mvcc_range(st, &r, &plain);
        r.counts = c;
        mvcc_range_select(st, &r, &cached, NULL);
        ck_assert_int_eq(plain.err, MV_OK);
        ck_assert_int_eq(cached.err, MV_OK);
        const mv_range_resp *x = &plain.resp.u.range, *y = &cached.resp.u.range;
        ck_assert_int_eq(x->count, y->count);
        ck_assert_int_eq(x->more, y->more);
        ck_assert_int_eq(x->n_kvs, y->n_kvs);
        for (size_t i = 0; i < x->n_kvs; i++)
            ck_assert(x->kvs[i].key.len == y->kvs[i].key.len &&
                      memcmp(x->kvs[i].key.data, y->kvs[i].key.data, x->kvs[i].key.len) == 0);
        bool more = x->more && x->n_kvs;
        if (more)
            snprintf(next, sizeof next, "%.*s%c", (int)x->kvs[x->n_kvs - 1].key.len - 0,
                     (const char *)x->kvs[x->n_kvs - 1].key.data, 1);
        mv_result_free(&plain);
        mv_result_free(&cached);
        if (!more) break;
        if (write_every && page % write_every == 0) { /* above rev: a new key, a delete, an update */
            char k[32];
            snprintf(k, sizeof k, "p/%04d+", page * 3);
            fx_put(k, "new", 0);
            snprintf(k, sizeof k, "p/%04d", page * 5 + 1);
            fx_del(k);
            snprintf(k, sizeof k, "p/%04d", page * 7 + 2);
            fx_put(k, "again", 0);
        }
    }
    mv_range_req all = {
        .key = B(from), .range_end = B(end), .count_only = true, .revision = rev, .counts = c};
    if (end[0] == 0) all.range_end.len = 1;
    mv_result a, b;
    mvcc_range(st, &all, &a);
    all.counts = NULL;
    mvcc_range(st, &all, &b);
    ck_assert_int_eq(a.resp.u.range.count, b.resp.u.range.count);
    mv_result_free(&a);
    mv_result_free(&b);
}

START_TEST(count_cache_pages) {
    char k[32];
    for (int i = 0; i < 1500; i++) {
        snprintf(k, sizeof k, "p/%04d", (i * 7) % 1500);
        fx_put(k, "v", 0);
    }
    for (int i = 0; i < 1500; i += 11) {
        snprintf(k, sizeof k, "p/%04d", i);
        fx_del(k);
    }
    int64_t rev = mvcc_revision(st);
    mv_count_cache *c = mv_count_cache_new();
    pages_agree(c, "p/", "p0", rev, 3);     /* remembers the marks, then uses them with writes between */
    pages_agree(c, "p/0500", "p0", rev, 0); /* the same marks from another start */
    pages_agree(c, "p/", "p0", 0, 0);       /* the current revision: other marks */
    pages_agree(c, "p/", "p/1200", rev, 0); /* another range end */
    mvcc_compact(st, rev, &(int64_t){0});   /* what was live at rev stays */
    pages_agree(c, "p/", "p0", rev, 0);
    for (int i = 0; i < 10; i++) { /* more lists than entries: the oldest ones go */
        snprintf(k, sizeof k, "p/%04d", 100 * i + 50);
        pages_agree(c, "p/", k, 0, 0);
    }
    pages_agree(c, "p/", "p0", rev, 2);
    pages_agree(c, "", "", 0, 0); /* every key */
    mv_count_cache_free(c);
}
END_TEST

/* The values of every key under "s/" (selected now) copied with mvcc_range_values_begin/step in
 * steps of budget bytes, while between the steps every key is written again, some are deleted, the
 * store is compacted and its log compacted (segments rewritten, old files dropped): the copy must
 * still hold the values as they were when selected. */
static void copy_in_steps_while_changing(size_t budget, int min_steps) {
    ck_assert_int_eq(mvcc_commit(st), 0); /* the values in the file, not in the batch in memory */
    mv_range_req r = {.key = B("s/"), .range_end = B("s0")};
    mv_result want, sel;
    mvcc_range(st, &r, &want);
    mvcc_range_select(st, &r, &sel, NULL);
    const mv_range_resp *x = &want.resp.u.range, *y = &sel.resp.u.range;
    ck_assert_int_eq(x->n_kvs, y->n_kvs);
    ck_assert_int_gt(y->n_kvs, 100);
    uint8_t **dst = calloc(y->n_kvs, sizeof *dst);
    for (size_t i = 0; i < y->n_kvs; i++)
        dst[i] = malloc(y->kvs[i].value.len + 1);
    mv_values_copy *c = mvcc_range_values_begin(st, y, dst);
    char k[32], v[300];
    int steps = 0;
    for (bool done = false; !done; steps++) {
        done = mvcc_range_values_step(c, budget);
        for (int i = steps % 7; i < 150; i += 7) { /* new values, in other places of the log */
            snprintf(k, sizeof k, "s/%03d", i);
            memset(v, 'A' + steps % 26, sizeof v - 1);
            v[sizeof v - 1] = 0;
            if (i % 5 == 0)
                fx_del(k);
            else
                fx_put(k, v, 0);
        }
        ck_assert_int_eq(mvcc_compact(st, mvcc_revision(st), &(int64_t){0}), MV_OK);
        fx_defragment(); /* the log rewritten: every live value moves, the old segments go */
    }
    mvcc_range_values_end(c);
    ck_assert_int_ge(steps, min_steps);
    for (size_t i = 0; i < x->n_kvs; i++) {
        ck_assert_int_eq(x->kvs[i].value.len, y->kvs[i].value.len);
        ck_assert(memcmp(x->kvs[i].value.data, dst[i], x->kvs[i].value.len) == 0);
        free(dst[i]);
    }
    free(dst);
    mv_result_free(&want);
    mv_result_free(&sel);
}

static void fill_s(void) {
    char k[32], v[400];
    for (int i = 0; i < 150; i++) {
        snprintf(k, sizeof k, "s/%03d", (i * 61) % 150); /* values out of key order in the log */
        memset(v, 'a' + i % 26, (size_t)(i * 7 % 390));
        v[i * 7 % 390] = 0;
        fx_put(k, v, 0);
    }
}

START_TEST(values_in_steps) {
    fill_s();
    copy_in_steps_while_changing(1000, 10);
    copy_in_steps_while_changing(1, 20); /* one run a step */
    copy_in_steps_while_changing(SIZE_MAX, 1);
}
END_TEST

/* Segments of 4 KiB: the values are spread over more files than a copy holds open, so begin copies
 * them all at once; the result is the same. */
START_TEST(values_in_steps_many_files) {
    fixture_teardown();
    fixture_setup((mvcc_options){.fsync = false, .segment_bytes = 4096});
    fill_s();
    copy_in_steps_while_changing(1000, 1);
}
END_TEST

/* Thousands of values written out of key order over many segments (values sorted by their place in
 * the log with a radix sort past 1024): every value must still land at its key. */
START_TEST(values_out_of_log_order_many) {
    fixture_teardown();
    fixture_setup((mvcc_options){.fsync = false, .segment_bytes = 256 << 10});
    char k[32], v[700];
    for (int i = 0; i < 5000; i++) {
        int j = (int)((i * 7919L) % 5000); /* a permutation of the keys */
        snprintf(k, sizeof k, "m/%05d", j);
        int len = j % 650;
        memset(v, 'a' + j % 26, (size_t)len);
        v[len] = 0;
        fx_put(k, v, 0);
    }
    ck_assert_int_eq(mvcc_commit(st), 0);
    mv_range_req r = {.key = B("m/"), .range_end = B("m0")};
    same(&r);
    r.limit = 4000;
    same(&r);
}
END_TEST

static int64_t rest_total(const mv_range_rest *rest) {
    mv_range_resp r;
    mvcc_range_rest_result(rest, &r);
    return r.count;
}

/* A page of a range over more keys than one step counts: the count goes on in steps (mv_range_rest)
 * while between them keys are added, updated and deleted in the range and the store is compacted up
 * to the page's revision and past it; the total must be the count mvcc_range gives at that revision,
 * and pruning the index past the revision must wait for the count, then finish. */
static void count_in_steps(mv_count_cache *cache, int64_t limit, bool count_only, int sort_order) {
    mv_range_req r = {.key = B("c/"),
                      .range_end = B("c0"),
                      .limit = limit,
                      .count_only = count_only,
                      .sort_order = sort_order,
                      .sort_target = MV_SORT_KEY};
    fx_put("z", "outside", 0); /* the page's revision is above the last compaction */
    mv_result want, sel;
    mvcc_range(st, &r, &want); /* counted without the cache, which it would fill */
    r.counts = cache;
    int64_t rev = mvcc_revision(st);
    mv_range_rest *rest;
    mvcc_range_select(st, &r, &sel, &rest);
    ck_assert_ptr_nonnull(rest);
    ck_assert_int_lt(sel.resp.u.range.count, want.resp.u.range.count);
    ck_assert_int_eq(sel.resp.u.range.more, want.resp.u.range.more);
    ck_assert_int_eq(sel.resp.u.range.n_kvs, want.resp.u.range.n_kvs);
    char k[32];
    int steps = 0;
    for (bool done = false; !done; steps++) {
        for (int i = steps; i < 40000; i += 997) { /* ahead of the walk and behind it */
            snprintf(k, sizeof k, "c/%06d", i);
            if (i % 3 == 0)
                fx_del(k);
            else
                fx_put(k, "new", 0);
            snprintf(k, sizeof k, "c/%06d+", i); /* a key the page's revision does not have */
            fx_put(k, "added", 0);
        }
        int64_t to = steps == 0 ? rev : mvcc_revision(st); /* at the page's revision, then past it */
        ck_assert_int_eq(mvcc_compact(st, to, &(int64_t){0}), MV_OK);
        ck_assert_int_eq(mvcc_index_compaction_step(st, 10000000), steps == 0 ? 0 : 1);
        done = mvcc_range_rest_step(rest, NULL, NULL);
    }
    ck_assert_int_ge(steps, 2);
    ck_assert_int_eq(rest_total(rest), want.resp.u.range.count);
    ck_assert(mvcc_index_compaction_pending(st));
    mvcc_range_rest_end(rest);
    ck_assert_int_eq(mvcc_index_compaction_step(st, 10000000), 0);
    ck_assert(!mvcc_index_compaction_pending(st));
    mv_result_free(&want);
    mv_result_free(&sel);
}

static void fill_c(int n) {
    char k[32];
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "c/%06d", i);
        fx_put(k, "v", 0);
    }
}

START_TEST(count_rest_in_steps) {
    fill_c(3 * MV_RANGE_STEP_KEYS + 100);
    count_in_steps(NULL, 5, false, MV_SORT_NONE);
    count_in_steps(NULL, 0, true, MV_SORT_NONE);
    count_in_steps(NULL, 7, false, MV_SORT_DESCEND); /* the last 7 keys, then the count before them */
    mv_count_cache *cache = mv_count_cache_new();
    count_in_steps(cache, 500, false, MV_SORT_NONE); /* records marks over the steps... */
    count_in_steps(cache, 500, false, MV_SORT_NONE); /* ...at a newer revision: records again */
    mv_count_cache_free(cache);
}
END_TEST

/* A sorted range with a limit must be the first `limit` of the whole range sorted so (etcd's way: all
 * fetched, then Go's sort over all), with its count and more; and select must say the same. */
static void limited_as_all_sorted(mv_range_req r) {
    int64_t limit = r.limit;
    mv_result lim, all;
    mvcc_range(st, &r, &lim);
    r.limit = 0; /* fetched all, then sorted */
    mvcc_range(st, &r, &all);
    const mv_range_resp *t = &lim.resp.u.range, *a = &all.resp.u.range;
    ck_assert_int_eq(t->count, a->count);
    ck_assert_int_eq(t->n_kvs, a->n_kvs < (size_t)limit ? a->n_kvs : (size_t)limit);
    ck_assert_int_eq(t->more, a->n_kvs > (size_t)limit);
    for (size_t i = 0; i < t->n_kvs; i++) {
        ck_assert_int_eq(t->kvs[i].key.len, a->kvs[i].key.len);
        ck_assert(memcmp(t->kvs[i].key.data, a->kvs[i].key.data, a->kvs[i].key.len) == 0);
        ck_assert_int_eq(t->kvs[i].mod_revision, a->kvs[i].mod_revision);
        ck_assert_int_eq(t->kvs[i].value.len, a->kvs[i].value.len);
    }
    same(&r);
    r.limit = limit;
    same(&r);
    mv_result_free(&lim);
    mv_result_free(&all);
}

/* Sorted by key, descending, with a limit: the range's last keys, walked backwards, for ranges ending
 * between keys, past them all, at the last key, and running to the end. */
static void tail_as_all_sorted(const char *from, const char *end, int64_t limit, int64_t rev) {
    limited_as_all_sorted((mv_range_req){.key = {(const uint8_t *)from, strlen(from)},
                                         .range_end = {(const uint8_t *)end, end[0] ? strlen(end) : 1},
                                         .limit = limit,
                                         .revision = rev,
                                         .sort_order = MV_SORT_DESCEND,
                                         .sort_target = MV_SORT_KEY});
}

START_TEST(tail_matches_all_sorted) {
    fill_c(MV_RANGE_STEP_KEYS + 300);
    int64_t old = mvcc_revision(st);
    char k[32];
    for (int i = 0; i < MV_RANGE_STEP_KEYS + 300; i += 3) { /* deleted keys among the last ones too */
        snprintf(k, sizeof k, "c/%06d", i);
        fx_del(k);
    }
    fx_put("d", "after", 0);
    const int64_t limits[] = {1, 2, 5, 64, 65, 700, MV_RANGE_STEP_KEYS - 1};
    for (size_t i = 0; i < sizeof limits / sizeof *limits; i++) {
        for (int64_t rev = 0; rev >= 0; rev = rev ? -1 : old) { /* now, then at the older revision */
            tail_as_all_sorted("c/", "c0", limits[i], rev);
            tail_as_all_sorted("c/", "", limits[i], rev);               /* to the end: "d" is the last */
            tail_as_all_sorted("c/000100", "c/005000", limits[i], rev); /* ends between keys */
            tail_as_all_sorted("c/000100", "c/000106", limits[i], rev); /* fewer keys than the limit */
            tail_as_all_sorted("c/8", "c/9", limits[i], rev);           /* no key */
            tail_as_all_sorted("a", "b", limits[i], rev);               /* before every key */
        }
    }
}
END_TEST

/* Puts keys c/<from>.. c/<from + n - 1> (stride 7, mod 20000) in one txn: one revision for all. */
static void put_in_one_txn(int from, int n) {
    char(*keys)[32] = malloc((size_t)n * sizeof *keys);
    mv_op *ops = calloc((size_t)n, sizeof *ops);
    for (int i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "c/%06d", (from + 7 * i) % 20000);
        ops[i].type = MV_OP_PUT;
        ops[i].u.put = (mv_put_req){.key = B(keys[i]), .value = B("txn")};
    }
    mv_txn_req t = {.success = ops, .n_success = (size_t)n};
    mv_result res;
    mvcc_txn(st, &t, &res);
    ck_assert_int_eq(res.err, MV_OK);
    mv_result_free(&res);
    free(ops);
    free(keys);
}

/* Sorted by create or mod revision, or by key descending with a filter, with a limit: the best keys
 * kept while walking must be the first `limit` of the whole range sorted (etcd's way, Go's sort over
 * all: also when some keys tie on the target, which then takes that way itself), with count and more. */
static void top_as_all_sorted(int target, int order, int64_t limit, int64_t rev, int64_t min_mod) {
    limited_as_all_sorted((mv_range_req){.key = B("c/"),
                                         .range_end = B("c0"),
                                         .limit = limit,
                                         .revision = rev,
                                         .sort_order = order,
                                         .sort_target = target,
                                         .min_mod_revision = min_mod});
}

START_TEST(top_matches_all_sorted) {
    char k[32];
    for (int i = 0; i < 20000; i += 2) { /* revisions out of key order, one a key */
        snprintf(k, sizeof k, "c/%06d", (int)((i * 7919L) % 20000));
        fx_put(k, "v", 0);
    }
    int64_t old = mvcc_revision(st);
    put_in_one_txn(1, 300); /* ties on create and mod revision */
    for (int i = 3; i < 20000; i += 97) {
        snprintf(k, sizeof k, "c/%06d", i);
        fx_put(k, "later", 0);
    }
    put_in_one_txn(5, 40); /* the newest keys tie */
    fx_put("c/000005", "newest", 0);
    const int64_t limits[] = {1, 2, 3, 39, 41, 500, MV_RANGE_STEP_KEYS - 1};
    const int targets[] = {MV_SORT_CREATE, MV_SORT_MOD};
    const int orders[] = {MV_SORT_ASCEND, MV_SORT_DESCEND};
    for (size_t li = 0; li < sizeof limits / sizeof *limits; li++)
        for (int64_t rev = 0; rev >= 0; rev = rev ? -1 : old) {
            for (size_t ti = 0; ti < 2; ti++)
                for (size_t oi = 0; oi < 2; oi++)
                    top_as_all_sorted(targets[ti], orders[oi], limits[li], rev, 0);
            top_as_all_sorted(MV_SORT_MOD, MV_SORT_NONE, limits[li], rev, 3); /* filtered: ascending */
            top_as_all_sorted(MV_SORT_KEY, MV_SORT_DESCEND, limits[li], rev, old - 5000);
        }
}
END_TEST

static void change_between_steps(int step, int64_t rev);

/* The best keys chosen in steps, the store changing between them: the answer at the range's revision. */
static void top_in_steps(int target, int order, int64_t limit) {
    fx_put("z", "outside", 0);
    mv_range_req r = {
        .key = B("c/"), .range_end = B("c0"), .limit = limit, .sort_order = order, .sort_target = target};
    mv_result want, sel, got;
    mvcc_range(st, &r, &want);
    int64_t rev = mvcc_revision(st);
    mv_range_rest *rest;
    mvcc_range_select(st, &r, &sel, &rest);
    ck_assert_ptr_nonnull(rest);
    ck_assert(mvcc_range_rest_choosing(rest));
    ck_assert(!mvcc_range_rest_sizing(rest));
    ck_assert_int_eq(sel.resp.u.range.n_kvs, 0);
    int steps = 0;
    while (!mvcc_range_rest_step(rest, NULL, NULL))
        change_between_steps(++steps, rev);
    ck_assert_int_ge(steps, 3);
    mvcc_range_rest_chosen(rest, &got);
    mvcc_range_rest_end(rest);
    const mv_range_resp *w = &want.resp.u.range, *g = &got.resp.u.range;
    ck_assert_int_eq(g->count, w->count);
    ck_assert_int_eq(g->more, w->more);
    ck_assert_int_eq(g->n_kvs, w->n_kvs);
    uint8_t **dst = calloc(g->n_kvs + 1, sizeof *dst);
    for (size_t i = 0; i < g->n_kvs; i++)
        dst[i] = malloc(g->kvs[i].value.len + 1);
    mvcc_range_values(st, g, dst);
    for (size_t i = 0; i < g->n_kvs; i++) {
        ck_assert_int_eq(g->kvs[i].key.len, w->kvs[i].key.len);
        ck_assert(memcmp(g->kvs[i].key.data, w->kvs[i].key.data, w->kvs[i].key.len) == 0);
        ck_assert_int_eq(g->kvs[i].mod_revision, w->kvs[i].mod_revision);
        ck_assert_int_eq(g->kvs[i].create_revision, w->kvs[i].create_revision);
        ck_assert_int_eq(g->kvs[i].value.len, w->kvs[i].value.len);
        ck_assert(memcmp(dst[i], w->kvs[i].value.data, w->kvs[i].value.len) == 0);
        free(dst[i]);
    }
    free(dst);
    mv_result_free(&want);
    mv_result_free(&sel);
    mv_result_free(&got);
}

START_TEST(top_rest_in_steps) {
    char k[32], v[64];
    for (int i = 0; i < 40000; i++) {
        snprintf(k, sizeof k, "c/%06d", (int)((i * 7919L) % 40000));
        snprintf(v, sizeof v, "value %d", i);
        fx_put(k, v, 0);
    }
    top_in_steps(MV_SORT_MOD, MV_SORT_DESCEND, 10);
    top_in_steps(MV_SORT_CREATE, MV_SORT_ASCEND, 3);
    top_in_steps(MV_SORT_MOD, MV_SORT_ASCEND, 700);
    put_in_one_txn(0, 50); /* the newest keys tie: chosen by sorting them all, in the last step */
    top_in_steps(MV_SORT_MOD, MV_SORT_DESCEND, 10);
}
END_TEST

/* A range whose count fits one step has no rest; a rest ended before it is done frees what it holds
 * and lets pruning go on. */
START_TEST(count_rest_small_or_dropped) {
    fill_c(MV_RANGE_STEP_KEYS - 10);
    mv_range_req r = {.key = B("c/"), .range_end = B("c0"), .limit = 3};
    mv_result sel;
    mv_range_rest *rest = (mv_range_rest *)&sel; /* overwritten */
    mvcc_range_select(st, &r, &sel, &rest);
    ck_assert_ptr_null(rest);
    ck_assert_int_eq(sel.resp.u.range.count, MV_RANGE_STEP_KEYS - 10);
    mv_result_free(&sel);
    fill_c(2 * MV_RANGE_STEP_KEYS);
    int64_t rev = mvcc_revision(st);
    mvcc_range_select(st, &r, &sel, &rest);
    ck_assert_ptr_nonnull(rest);
    fx_put("c/zzz", "v", 0);
    ck_assert_int_eq(mvcc_compact(st, rev + 1, &(int64_t){0}), MV_OK);
    ck_assert_int_eq(mvcc_index_compaction_step(st, 1000), 1); /* waits for the count below it */
    mvcc_range_rest_end(rest);
    ck_assert_int_eq(mvcc_index_compaction_step(st, 10000000), 0);
    mv_result_free(&sel);
}
END_TEST

/* What a list in steps gave: every kv passed to the size and pack functions, with its value. */
typedef struct listed {
    size_t sized, packed, cap;
    mv_kv *kvs; /* packed, key and value copied */
    uint8_t **values;
} listed;

static void note_size(void *ctx, const mv_kv *kv) {
    (void)kv;
    ((listed *)ctx)->sized++;
}

static uint8_t *note_pack(void *ctx, const mv_kv *kv) {
    listed *l = ctx;
    if (l->packed == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->kvs = realloc(l->kvs, l->cap * sizeof *l->kvs);
        l->values = realloc(l->values, l->cap * sizeof *l->values);
    }
    mv_kv *k = &l->kvs[l->packed];
    *k = *kv;
    uint8_t *key = malloc(kv->key.len + 1);
    memcpy(key, kv->key.data, kv->key.len);
    k->key.data = key;
    l->values[l->packed] = malloc(kv->value.len + 1);
    return kv->value.len ? l->values[l->packed++] : (l->packed++, NULL);
}

/* Writes in the range, deletes, a compaction to the list's revision and the log rewritten: between
 * any two steps of a list. */
static void change_between_steps(int step, int64_t rev) {
    char k[32], v[80];
    for (int i = step; i < 40000; i += 1499) {
        snprintf(k, sizeof k, "c/%06d", i);
        snprintf(v, sizeof v, "rewritten at step %d", step);
        if (i % 2)
            fx_del(k);
        else
            fx_put(k, v, 0);
        snprintf(k, sizeof k, "c/%06d+", i);
        fx_put(k, "new", 0);
    }
    if (step == 1) ck_assert_int_eq(mvcc_compact(st, rev, &(int64_t){0}), MV_OK);
    if (step == 2) fx_defragment();
    if (step == 3) ck_assert_int_eq(mvcc_compact(st, mvcc_revision(st), &(int64_t){0}), MV_OK);
    mvcc_index_compaction_step(st, 10000000);
}

/* A list with more keys than one walk takes: sized in steps, packed in steps, with the store changing
 * between every two; what it packs must be exactly what mvcc_range gave at its revision. */
static int list_filtered_in_steps(int64_t limit, bool keys_only, mv_count_cache *cache, int sort_order,
                                  const mv_range_req *filters);

static int list_in_steps(int64_t limit, bool keys_only, mv_count_cache *cache, int sort_order) {
    return list_filtered_in_steps(limit, keys_only, cache, sort_order, &(mv_range_req){0});
}

/* The same with the revision filters of `filters`; returns how many steps the packing took. */
static int list_filtered_in_steps(int64_t limit, bool keys_only, mv_count_cache *cache, int sort_order,
                                  const mv_range_req *filters) {
    fx_put("z", "outside", 0);
    mv_range_req r = {.key = B("c/"),
                      .range_end = B("c0"),
                      .limit = limit,
                      .keys_only = keys_only,
                      .sort_order = sort_order,
                      .sort_target = MV_SORT_KEY,
                      .min_mod_revision = filters->min_mod_revision,
                      .max_mod_revision = filters->max_mod_revision,
                      .min_create_revision = filters->min_create_revision,
                      .max_create_revision = filters->max_create_revision};
    mv_result want, sel;
    mvcc_range(st, &r, &want);
    int64_t rev = mvcc_revision(st);
    r.counts = cache;
    mv_range_rest *rest;
    mvcc_range_select(st, &r, &sel, &rest);
    ck_assert_ptr_nonnull(rest);
    ck_assert(mvcc_range_rest_sizing(rest));
    listed l = {.sized = sel.resp.u.range.n_kvs};
    int steps = 0;
    while (!mvcc_range_rest_step(rest, note_size, &l))
        change_between_steps(++steps, rev);
    mv_range_resp got;
    mvcc_range_rest_result(rest, &got);
    const mv_range_resp *w = &want.resp.u.range;
    ck_assert_int_eq(got.n_kvs, w->n_kvs);
    ck_assert_int_eq(got.count, w->count);
    ck_assert_int_eq(got.more, w->more);
    ck_assert(!got.too_large);
    ck_assert_int_eq(l.sized, w->n_kvs);
    int sizing_steps = steps;
    while (!mvcc_range_rest_pack(rest, note_pack, &l))
        change_between_steps(++steps, rev);
    ck_assert_int_ge(sizing_steps, 1);     /* the store changed between the sizing steps... */
    ck_assert_int_gt(steps, sizing_steps); /* ...and between the packing steps */
    ck_assert_int_eq(l.packed, w->n_kvs);
    for (size_t i = 0; i < l.packed; i++) {
        const mv_kv *a = &w->kvs[i], *b = &l.kvs[i];
        ck_assert_int_eq(a->key.len, b->key.len);
        ck_assert(memcmp(a->key.data, b->key.data, a->key.len) == 0);
        ck_assert_int_eq(a->mod_revision, b->mod_revision);
        ck_assert_int_eq(a->create_revision, b->create_revision);
        ck_assert_int_eq(a->version, b->version);
        ck_assert_int_eq(a->value.len, b->value.len);
        ck_assert(a->value.len == 0 || memcmp(a->value.data, l.values[i], a->value.len) == 0);
        free((void *)b->key.data);
        free(l.values[i]);
    }
    free(l.kvs);
    free(l.values);
    mvcc_range_rest_end(rest);
    mv_result_free(&want);
    mv_result_free(&sel);
    return steps - sizing_steps;
}

START_TEST(list_rest_in_steps) {
    char k[32], v[300];
    for (int i = 0; i < 40000; i++) {
        snprintf(k, sizeof k, "c/%06d", (int)((i * 7919L) % 40000)); /* values out of key order */
        memset(v, 'a' + i % 26, (size_t)(i % 250));
        v[i % 250] = 0;
        fx_put(k, v, 0);
    }
    list_in_steps(0, false, NULL, MV_SORT_NONE);
    list_in_steps(0, true, NULL, MV_SORT_NONE);
    list_in_steps(30000, false, NULL, MV_SORT_NONE);   /* more, and a count past the last key returned */
    list_in_steps(30000, false, NULL, MV_SORT_ASCEND); /* sorted by key, ascending: the same walk */
    list_in_steps(0, false, NULL, MV_SORT_DESCEND);    /* descending: sized forwards, packed backwards */
    list_in_steps(0, true, NULL, MV_SORT_DESCEND);
    mv_count_cache *cache = mv_count_cache_new();
    list_in_steps(20000, false, cache, MV_SORT_NONE);
    mv_count_cache_free(cache);
}
END_TEST

/* Filtered by revision, in key order: sized and packed in steps too. A filter that passes a few keys
 * spread over the range still walks a bounded number of keys a step: the packing takes as many
 * steps as the range has walks, not one. */
START_TEST(list_filtered_in_steps_bounded) {
    char k[32];
    int64_t first = mvcc_revision(st) + 1;
    for (int i = 0; i < 40000; i++) {
        snprintf(k, sizeof k, "c/%06d", (int)((i * 7919L) % 40000)); /* revisions out of key order */
        fx_put(k, i % 3 ? "v" : "three", 0);
    }
    int64_t few =
        list_filtered_in_steps(0, false, NULL, MV_SORT_NONE, &(mv_range_req){.max_mod_revision = first + 99});
    ck_assert_int_ge(few, 40000 / MV_RANGE_STEP_KEYS);
    few = list_filtered_in_steps(0, false, NULL, MV_SORT_DESCEND,
                                 &(mv_range_req){.max_mod_revision = first + 99});
    ck_assert_int_ge(few, 40000 / MV_RANGE_STEP_KEYS);
    list_filtered_in_steps(0, false, NULL, MV_SORT_NONE, &(mv_range_req){.min_mod_revision = first + 20000});
    list_filtered_in_steps(12000, true, NULL, MV_SORT_ASCEND,
                           &(mv_range_req){.min_create_revision = first + 5000});
    mv_count_cache *cache = mv_count_cache_new();
    list_filtered_in_steps(9000, false, cache, MV_SORT_NONE,
                           &(mv_range_req){.max_create_revision = first + 30000});
    mv_count_cache_free(cache);
}
END_TEST

/* Over the reply budget midway through the sizing: too_large, as mvcc_range says. */
START_TEST(list_rest_too_large) {
    fill_c(6 * MV_RANGE_STEP_KEYS); /* ~150 bytes of budget a key: the first walk fits, all do not */
    mv_range_req r = {.key = B("c/"), .range_end = B("c0"), .max_bytes = 4 << 20};
    mv_result want, sel;
    mvcc_range(st, &r, &want);
    ck_assert(want.resp.u.range.too_large);
    mv_range_rest *rest;
    mvcc_range_select(st, &r, &sel, &rest);
    ck_assert_ptr_nonnull(rest);
    listed l = {0};
    while (!mvcc_range_rest_step(rest, note_size, &l))
        continue;
    mv_range_resp got;
    mvcc_range_rest_result(rest, &got);
    ck_assert(got.too_large);
    mvcc_range_rest_end(rest);
    mv_result_free(&want);
    mv_result_free(&sel);
}
END_TEST

Suite *range_select_suite(void) {
    Suite *s = suite_create("range_select");
    TCase *tc = tcase_create("select");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, select_matches_range);
    tcase_add_test(tc, select_after_compaction);
    tcase_add_test(tc, count_cache_pages);
    tcase_add_test(tc, values_in_steps);
    tcase_add_test(tc, values_in_steps_many_files);
    tcase_add_test(tc, values_out_of_log_order_many);
    tcase_add_test(tc, count_rest_in_steps);
    tcase_add_test(tc, count_rest_small_or_dropped);
    tcase_add_test(tc, tail_matches_all_sorted);
    tcase_add_test(tc, top_matches_all_sorted);
    tcase_add_test(tc, top_rest_in_steps);
    tcase_add_test(tc, list_rest_in_steps);
    tcase_add_test(tc, list_filtered_in_steps_bounded);
    tcase_add_test(tc, list_rest_too_large);
    suite_add_tcase(s, tc);
    return s;
}
