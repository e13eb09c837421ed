/* test_replay_map.c: unit tests for start-up replay's key map (storage/replay_map.h).
 * Keys that share long prefixes, differ only past 8 bytes, hold zero bytes or are prefixes of each
 * other must reach the B+ tree in exactly the tree's order, each with its own history. */
#include "fixture.h"
#include "replay_map.h"
#include "storage_io.h"

#include <check.h>

#include "testutil.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct test_key {
    uint8_t bytes[64];
    size_t len;
    keyhist *kh;
} test_key;

static int key_order(const void *a, const void *b) {
    const test_key *x = a, *y = b;
    size_t common = x->len < y->len ? x->len : y->len;
    int c = common ? memcmp(x->bytes, y->bytes, common) : 0;
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* n keys of awkward shapes; distinct by construction (the index i is written into each). */
static size_t make_keys(test_key *keys, size_t n, const char *prefix) {
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < n; i++) {
        test_key *k = &keys[i];
        memcpy(k->bytes, prefix, plen);
        k->len = plen;
        switch (i % 4) {
        case 0: /* differs only after 8 shared bytes */
            k->len += (size_t)sprintf((char *)k->bytes + k->len, "00000000%06zu", i);
            break;
        case 1: /* zero bytes, and a key that ends where another goes on with \0 */
            k->bytes[k->len++] = (uint8_t)(i >> 8);
            k->bytes[k->len++] = 0;
            if (i % 8 == 1)
                k->bytes[k->len++] = (uint8_t)i;
            else
                k->bytes[k->len++] = (uint8_t)(i & 0xff), k->bytes[k->len++] = 0x7f;
            break;
        case 2: /* random bytes */
            for (int j = 0; j < 12; j++)
                k->bytes[k->len++] = (uint8_t)rand();
            k->bytes[k->len++] = (uint8_t)(i >> 16), k->bytes[k->len++] = (uint8_t)(i >> 8);
            k->bytes[k->len++] = (uint8_t)i;
            break;
        default: /* short: one byte past the prefix */
            k->bytes[k->len++] = (uint8_t)(i / 4);
            break;
        }
    }
    return n;
}

static void shuffle(test_key *keys, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rand() % i;
        test_key t = keys[i - 1];
        keys[i - 1] = keys[j];
        keys[j] = t;
    }
}

/* Looks every key up twice (the second finds the first's history), loads, and checks the tree. */
static void check_load(test_key *keys, size_t n) {
    replay_map *m = replay_map_new();
    shuffle(keys, n); /* the order keys first appear in must not matter */
    for (size_t i = 0; i < n; i++)
        keys[i].kh = replay_map_history(m, keys[i].bytes, keys[i].len);
    for (size_t i = 0; i < n; i++)
        REQUIRE(replay_map_history(m, keys[i].bytes, keys[i].len) == keys[i].kh);
    /* duplicates in the generated set would share a history: drop them from the expectation */
    qsort(keys, n, sizeof *keys, key_order);
    size_t unique = 0;
    for (size_t i = 0; i < n; i++)
        if (unique == 0 || key_order(&keys[unique - 1], &keys[i]) != 0) keys[unique++] = keys[i];
    REQUIRE(replay_map_count(m) == unique);
    bptree *t = bptree_new();
    replay_map_load(m, t);
    REQUIRE(bptree_check(t));
    REQUIRE(bptree_count(t) == unique);
    bptree_iter it;
    bptree_seek(t, NULL, 0, &it);
    for (size_t i = 0; i < unique; i++, bptree_iter_next(&it)) {
        REQUIRE(bptree_iter_valid(&it));
        size_t len;
        const uint8_t *key = bptree_iter_key(&it, &len);
        REQUIRE(len == keys[i].len && (len == 0 || memcmp(key, keys[i].bytes, len) == 0));
        REQUIRE(bptree_iter_value(&it) == keys[i].kh);
    }
    REQUIRE(!bptree_iter_valid(&it));
    bptree_free(t, keyhist_free);
}

START_TEST(test_load_sorts_like_the_tree) {
    srand(7);
    enum { N = 20000 };
    test_key *keys = calloc(N, sizeof *keys);
    check_load(keys, make_keys(keys, N, ""));                              /* no shared prefix */
    check_load(keys, make_keys(keys, N, "/registry/configmaps/default/")); /* a long shared one */
    free(keys);
}
END_TEST

START_TEST(test_empty_and_tiny) {
    test_key keys[3] = {{.len = 0}, {.bytes = {0}, .len = 1}, {.bytes = {0, 0}, .len = 2}};
    check_load(keys, 3);
    check_load(keys, 1);
    check_load(keys, 0);
}
END_TEST

START_TEST(test_free_before_load) {
    replay_map *m = replay_map_new();
    for (int i = 0; i < 5000; i++) {
        char key[16];
        int len = snprintf(key, sizeof key, "k%d", i);
        keyhist_append(replay_map_history(m, (const uint8_t *)key, (size_t)len), &(rev_entry){.main_rev = 2});
    }
    REQUIRE(replay_map_count(m) == 5000);
    replay_map_free(m); /* histories freed too: ASan's leak check would say otherwise */
}
END_TEST

/* ---- progress lines of a long start ---- */

static uint64_t fake_now, fake_step;
static uint64_t fake_clock(void) {
    return fake_now += fake_step; /* every read of the clock is fake_step later */
}
static int reports, final_reports;
static mv_replay_progress last;
static void count_report(const mv_replay_progress *p) {
    if (p->done)
        final_reports++;
    else
        reports++;
    last = *p;
}

/* Replays the store with a clock that moves step µs a read; the reports it gave. */
static void reopen_with_clock(uint64_t step) {
    REQUIRE(mvcc_commit(st) == 0);
    mvcc_close(st);
    st = NULL;
    reports = final_reports = 0;
    fake_now = 0;
    fake_step = step;
    storage_io_set(&(storage_io){.now_us = fake_clock});
    open_store();
    storage_io_set(NULL);
}

START_TEST(test_long_start_reports_progress) {
    fixture_setup((mvcc_options){.on_replay_progress = count_report});
    for (int i = 0; i < 20000; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i % 5000);
        fx_put(key, "v", 0);
    }
    REQUIRE(reports == 0 && final_reports == 0); /* the first open had nothing to replay */
    /* 20,000 records, the clock read every 4,096: a start of 5 reads of 50 ms is not reported */
    reopen_with_clock(50000);
    REQUIRE(reports == 0 && final_reports == 0);
    /* at 300 ms a read, the fourth read is past a second: one progress line, then the last one */
    reopen_with_clock(300000);
    REQUIRE(reports == 1 && final_reports == 1);
    REQUIRE(last.done && last.records == 20000 && last.keys == 5000 && last.revision == 20001);
    fixture_teardown();
}
END_TEST

Suite *replay_map_suite(void) {
    Suite *s = suite_create("replay_map");
    TCase *tc = tcase_create("basic");
    tcase_add_test(tc, test_load_sorts_like_the_tree);
    tcase_add_test(tc, test_empty_and_tiny);
    tcase_add_test(tc, test_free_before_load);
    tcase_add_test(tc, test_long_start_reports_progress);
    suite_add_tcase(s, tc);
    return s;
}
