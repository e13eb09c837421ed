/* test_replay_map.c: unit tests for start-up replay's key map (storage/replay_map.h).
 * Keys that share long prefixes, differ only past 8 bytes, hold zero bytes or are prefixes of each
 * other must reach the B+ tree in exactly the tree's order, each with its own history. */
#include "replay_map.h"

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

Suite *replay_map_suite(void) {
    Suite *s = suite_create("replay_map");
    TCase *tc = tcase_create("basic");
    tcase_add_test(tc, test_load_sorts_like_the_tree);
    tcase_add_test(tc, test_empty_and_tiny);
    tcase_add_test(tc, test_free_before_load);
    suite_add_tcase(s, tc);
    return s;
}
