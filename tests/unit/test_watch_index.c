/* test_watch_index.c: unit tests for the watch index (src/watch/watch_index.c and watch_spans.c): which
 * watchers hold a key, for single keys, ranges and from-key watchers, checked by hand on byte-string
 * edge cases and against a brute-force scan of 10,000 random watchers while they come and go. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "watch_internal.h"

/* a watcher as svc_watch.c makes one: key and end copied, end empty for WR_KEY and WR_FROM */
static watcher *mk(const char *key, size_t klen, const char *end, size_t elen, int kind) {
    watcher *w = calloc(1, sizeof *w);
    uint8_t *mem = malloc(klen + elen + 1);
    memcpy(mem, key, klen);
    if (elen) memcpy(mem + klen, end, elen);
    w->key = (mv_bytes){mem, klen};
    w->end = (mv_bytes){mem + klen, elen};
    w->kind = kind;
    return w;
}

static void rm(watcher *w) {
    free((void *)w->key.data);
    free(w);
}

typedef struct hits {
    watcher **seen;
    size_t n, cap; /* n counts every call, seen keeps the first cap */
} hits;

static void record(watcher *w, void *ctx) {
    hits *h = ctx;
    if (h->n < h->cap) h->seen[h->n] = w;
    h->n++;
}

/* how many times w is among the watchers the index calls for key */
static int calls_for(const char *key, size_t len, const watcher *w) {
    watcher *seen[64];
    hits h = {seen, 0, 64};
    widx_match((mv_bytes){(const uint8_t *)key, len}, record, &h);
    ck_assert_uint_le(h.n, 64);
    int n = 0;
    for (size_t i = 0; i < h.n; i++)
        n += seen[i] == w;
    return n;
}

#define HOLDS(key, w) ck_assert_int_eq(calls_for(key, sizeof(key) - 1, w), 1)
#define MISSES(key, w) ck_assert_int_eq(calls_for(key, sizeof(key) - 1, w), 0)

START_TEST(test_kinds) {
    watcher *k = mk("k", 1, "", 0, WR_KEY);
    watcher *pre = mk("a", 1, "b", 1, WR_RANGE); /* the prefix "a" */
    watcher *from = mk("m", 1, "", 0, WR_FROM);
    watcher *all = mk("", 0, "", 0, WR_FROM);
    watcher *nul = mk("a\0", 2, "a\1", 2, WR_RANGE); /* the prefix "a\0" */
    watcher *ws[] = {k, pre, from, all, nul};
    for (size_t i = 0; i < 5; i++)
        widx_add(ws[i]);
    ck_assert_uint_eq(widx_count(), 5);
    HOLDS("k", k);
    MISSES("kk", k);
    MISSES("", k);
    HOLDS("a", pre);
    HOLDS("a\xff\xff", pre);
    MISSES("b", pre);
    MISSES("`", pre);
    HOLDS("m", from);
    HOLDS("\xff\xff\xff", from);
    MISSES("l\xff", from);
    HOLDS("", all);
    HOLDS("\xff", all);
    HOLDS("a\0", nul);
    HOLDS("a\0\xff", nul);
    MISSES("a", nul);
    MISSES("a\1", nul);
    for (size_t i = 0; i < 5; i++) {
        widx_remove(ws[i]);
        rm(ws[i]);
    }
    ck_assert_uint_eq(widx_count(), 0);
    ck_assert_uint_eq(wspan_count(), 0);
}
END_TEST

/* Watchers of the same range share one span; the span goes with the last of them. An empty range
 * (end <= key) holds nothing. */
START_TEST(test_shared_and_empty) {
    watcher *a = mk("p/", 2, "p0", 2, WR_RANGE);
    watcher *b = mk("p/", 2, "p0", 2, WR_RANGE);
    watcher *c = mk("p/", 2, "", 0, WR_FROM);
    watcher *e = mk("q", 1, "q", 1, WR_RANGE);
    widx_add(a);
    widx_add(b);
    widx_add(c);
    widx_add(e);
    ck_assert_uint_eq(wspan_count(), 3);
    HOLDS("p/x", a);
    HOLDS("p/x", b);
    HOLDS("p/x", c);
    MISSES("q", e);
    widx_remove(a);
    ck_assert_uint_eq(wspan_count(), 3);
    MISSES("p/x", a);
    HOLDS("p/x", b);
    widx_remove(b);
    widx_remove(c);
    widx_remove(e);
    ck_assert_uint_eq(wspan_count(), 0);
    ck_assert_uint_eq(widx_count(), 0);
    rm(a);
    rm(b);
    rm(c);
    rm(e);
}
END_TEST

/* ---- random watchers against a brute-force list ---- */

static uint64_t rnd(void) {
    return rng_next();
}

/* a short key over a few byte values, so that ranges overlap, nest and repeat */
static size_t rnd_key(char *buf) {
    static const char alpha[] = {0, 'a', 'b', 'c', (char)0xff};
    size_t len = rnd() % 5;
    for (size_t i = 0; i < len; i++)
        buf[i] = alpha[rnd() % sizeof alpha];
    return len;
}

static watcher *rnd_watcher(void) {
    char k[8], e[8];
    size_t kl = rnd_key(k), el = rnd_key(e);
    switch (rnd() % 4) {
    case 0:
        return mk(k, kl, "", 0, WR_KEY);
    case 1:
        return mk(k, kl, "", 0, WR_FROM);
    case 2: /* a prefix: k with its last byte below 0xff raised by one */
        if (kl && k[kl - 1] != (char)0xff) {
            memcpy(e, k, kl);
            e[kl - 1]++;
            return mk(k, kl, e, kl, WR_RANGE);
        }
        return mk(k, kl, "", 0, WR_FROM);
    default:
        return mk(k, kl, e, el ? el : 1, WR_RANGE); /* may be empty (end <= key) */
    }
}

static int cmp_bytes(mv_bytes a, mv_bytes b) {
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.data, b.data, n) : 0;
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

static bool brute_holds(const watcher *w, mv_bytes key) {
    if (w->kind == WR_KEY) return cmp_bytes(w->key, key) == 0;
    if (cmp_bytes(key, w->key) < 0) return false;
    return w->kind == WR_FROM || cmp_bytes(key, w->end) < 0;
}

typedef struct model {
    watcher **all;
    bool *in; /* indexed now */
    size_t n;
    int *calls; /* per watcher, calls for the key being checked */
} model;

static model M;

static size_t slot_of(const watcher *w) {
    return (size_t)w->id;
}

static void count_call(watcher *w, void *ctx) {
    (void)ctx;
    M.calls[slot_of(w)]++;
}

/* the index's answer for key is exactly the watchers the brute force finds, each once; returns them */
static size_t check_key(mv_bytes key) {
    memset(M.calls, 0, M.n * sizeof *M.calls);
    widx_match(key, count_call, NULL);
    size_t found = 0;
    for (size_t i = 0; i < M.n; i++) {
        int want = M.in[i] && brute_holds(M.all[i], key);
        REQUIRE(M.calls[i] == want);
        found += want;
    }
    return found;
}

static void check_keys(int n) {
    size_t total = 0;
    for (int q = 0; q < n; q++) {
        char k[8];
        size_t kl = rnd_key(k);
        total += check_key((mv_bytes){(const uint8_t *)k, kl});
    }
    REQUIRE(total > 0); /* the check saw matches, not only empty answers */
}

START_TEST(test_random_against_brute_force) {
    rng_state = 88172645463325252ull;
    M.n = 10000;
    M.all = calloc(M.n, sizeof *M.all);
    M.in = calloc(M.n, sizeof *M.in);
    M.calls = calloc(M.n, sizeof *M.calls);
    size_t n_in = 0;
    for (size_t i = 0; i < M.n; i++) {
        M.all[i] = rnd_watcher();
        M.all[i]->id = (int64_t)i;
        widx_add(M.all[i]);
        M.in[i] = true;
        n_in++;
    }
    REQUIRE(widx_count() == n_in);
    check_keys(300);
    for (int round = 0; round < 6; round++) { /* churn: remove or re-add a random third */
        for (size_t i = 0; i < M.n; i++) {
            if (rnd() % 3) continue;
            if (M.in[i])
                widx_remove(M.all[i]);
            else
                widx_add(M.all[i]);
            n_in += M.in[i] ? (size_t)-1 : 1;
            M.in[i] = !M.in[i];
        }
        REQUIRE(widx_count() == n_in);
        check_keys(200);
    }
    for (size_t i = 0; i < M.n; i++) {
        if (M.in[i]) widx_remove(M.all[i]);
        rm(M.all[i]);
    }
    REQUIRE(widx_count() == 0);
    REQUIRE(wspan_count() == 0);
    free(M.all);
    free(M.in);
    free(M.calls);
}
END_TEST

/* 10,000 prefix watchers on distinct prefixes: a key under one of them finds exactly that one */
START_TEST(test_many_prefixes) {
    enum { N = 10000 };
    watcher **ws = calloc(N, sizeof *ws);
    for (int i = 0; i < N; i++) {
        char k[16], e[16];
        int n = snprintf(k, sizeof k, "/p/%05d/", i);
        memcpy(e, k, (size_t)n);
        e[n - 1]++;
        ws[i] = mk(k, (size_t)n, e, (size_t)n, WR_RANGE);
        widx_add(ws[i]);
    }
    REQUIRE(wspan_count() == N);
    for (int i = 0; i < N; i += 7) {
        char k[32];
        int n = snprintf(k, sizeof k, "/p/%05d/key", i);
        REQUIRE(calls_for(k, (size_t)n, ws[i]) == 1);
        watcher *seen[4];
        hits h = {seen, 0, 4};
        widx_match((mv_bytes){(const uint8_t *)k, (size_t)n}, record, &h);
        REQUIRE(h.n == 1);
    }
    for (int i = 0; i < N; i++) {
        widx_remove(ws[i]);
        rm(ws[i]);
    }
    REQUIRE(widx_count() == 0);
    free(ws);
}
END_TEST

Suite *watch_index_suite(void) {
    Suite *s = suite_create("watch_index");
    TCase *tc = tcase_create("index");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_kinds);
    tcase_add_test(tc, test_shared_and_empty);
    tcase_add_test(tc, test_random_against_brute_force);
    tcase_add_test(tc, test_many_prefixes);
    suite_add_tcase(s, tc);
    return s;
}
