/* test_bptree.c: unit tests for the B+ tree index (storage/bptree.h).
 * Covers byte ordering, seek, shrinking to empty, and 100,000 random operations checked against a
 * sorted-array model, with the tree's structural check run along the way. */
#include "bptree.h"

#include <check.h>

#include "testutil.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY(s) (const uint8_t *)(s), sizeof(s) - 1
#define VAL(n) ((void *)(uintptr_t)(n))
/* Check logs every passing ck_assert to a file, which dominates loops of millions of checks;
 * REQUIRE only calls into Check when it fails. */

/* ---- helpers ---- */

static size_t format_key(uint8_t *buf, const char *prefix, int n) {
    return (size_t)sprintf((char *)buf, "%s%08d", prefix, n);
}

static void expect_iter_key(const bptree_iter *it, const uint8_t *key, size_t len) {
    REQUIRE(bptree_iter_valid(it));
    size_t got_len;
    const uint8_t *got = bptree_iter_key(it, &got_len);
    REQUIRE(got_len == len);
    REQUIRE(len == 0 || memcmp(got, key, len) == 0);
}

/* ---- basic behaviour ---- */

START_TEST(test_empty_tree) {
    bptree *t = bptree_new();
    REQUIRE(bptree_count(t) == 0);
    REQUIRE(bptree_get(t, KEY("a")) == NULL);
    REQUIRE(bptree_remove(t, KEY("a")) == NULL);
    bptree_iter it;
    bptree_seek(t, NULL, 0, &it);
    REQUIRE(!bptree_iter_valid(&it));
    bptree_seek(t, KEY("zzz"), &it);
    REQUIRE(!bptree_iter_valid(&it));
    bptree_seek_last(t, &it);
    REQUIRE(!bptree_iter_valid(&it));
    bptree_seek_before(t, KEY("zzz"), &it);
    REQUIRE(!bptree_iter_valid(&it));
    bptree_iter_prev(&it);
    REQUIRE(!bptree_iter_valid(&it));
    REQUIRE(bptree_memory(t) > 0);
    REQUIRE(bptree_check(t));
    bptree_free(t, NULL);
}
END_TEST

START_TEST(test_put_get_replace_remove) {
    bptree *t = bptree_new();
    size_t empty_memory = bptree_memory(t);
    REQUIRE(bptree_put(t, KEY("foo"), VAL(1)) == NULL);
    REQUIRE(bptree_put(t, KEY("bar"), VAL(2)) == NULL);
    REQUIRE(bptree_count(t) == 2);
    REQUIRE(bptree_get(t, KEY("foo")) == VAL(1));
    REQUIRE(bptree_get(t, KEY("bar")) == VAL(2));
    REQUIRE(bptree_get(t, KEY("fo")) == NULL);
    REQUIRE(bptree_get(t, KEY("fooo")) == NULL);
    REQUIRE(bptree_memory(t) > empty_memory);

    REQUIRE(bptree_put(t, KEY("foo"), VAL(3)) == VAL(1));
    REQUIRE(bptree_count(t) == 2);
    REQUIRE(bptree_get(t, KEY("foo")) == VAL(3));

    REQUIRE(bptree_remove(t, KEY("foo")) == VAL(3));
    REQUIRE(bptree_remove(t, KEY("foo")) == NULL);
    REQUIRE(bptree_get(t, KEY("foo")) == NULL);
    REQUIRE(bptree_remove(t, KEY("bar")) == VAL(2));
    REQUIRE(bptree_count(t) == 0);
    REQUIRE(bptree_memory(t) == empty_memory);
    REQUIRE(bptree_check(t));
    bptree_free(t, NULL);
}
END_TEST

#define NFREE 1000
static int times_freed[NFREE];

static void count_and_free(void *value) {
    int i = *(int *)value;
    if (i >= 0 && i < NFREE) times_freed[i]++;
    free(value);
}

/* Every value is handed to free_value exactly once (counted here, so any build can fail). */
START_TEST(test_free_calls_free_value) {
    bptree *t = bptree_new();
    uint8_t key[32];
    memset(times_freed, 0, sizeof times_freed);
    for (int i = 0; i < NFREE; i++) {
        int *value = malloc(sizeof *value);
        ck_assert_ptr_nonnull(value);
        *value = i;
        ck_assert_ptr_null(bptree_put(t, key, format_key(key, "k", i), value));
    }
    bptree_free(t, count_and_free);
    for (int i = 0; i < NFREE; i++)
        ck_assert_msg(times_freed[i] == 1, "value %d freed %d times", i, times_freed[i]);
}
END_TEST

/* ---- ordering ---- */

static const struct {
    const char *bytes;
    size_t len;
} sorted_keys[] = {
    {"", 0},         {"\x00", 1},         {"\x00\x00", 2},  {"\x00\x01", 2}, {"\x01", 1},
    {"a", 1},        {"a\x00", 2},        {"a\x00\x00", 3}, {"a\x01", 2},    {"ab", 2},
    {"abc", 3},      {"a\x7f", 2},        {"a\x80", 2},     {"a\xff", 2},    {"a\xff\x00", 3},
    {"b", 1},        {"\x7f", 1},         {"\x80", 1},      {"\xff", 1},     {"\xff\x00", 2},
    {"\xff\xff", 2}, {"\xff\xff\xff", 3},
};
#define NSORTED (sizeof sorted_keys / sizeof sorted_keys[0])

START_TEST(test_ordering_prefixes_and_binary_bytes) {
    bptree *t = bptree_new();
    /* insert in a scrambled order: stride 7 is coprime with the count */
    REQUIRE(NSORTED % 7 != 0);
    for (size_t i = 0; i < NSORTED; i++) {
        size_t j = (i * 7) % NSORTED;
        bptree_put(t, (const uint8_t *)sorted_keys[j].bytes, sorted_keys[j].len, VAL(j + 1));
    }
    REQUIRE(bptree_count(t) == NSORTED);
    bptree_iter it;
    bptree_seek(t, NULL, 0, &it);
    for (size_t i = 0; i < NSORTED; i++, bptree_iter_next(&it)) {
        expect_iter_key(&it, (const uint8_t *)sorted_keys[i].bytes, sorted_keys[i].len);
        REQUIRE(bptree_iter_value(&it) == VAL(i + 1));
    }
    REQUIRE(!bptree_iter_valid(&it));
    REQUIRE(bptree_check(t));
    bptree_free(t, NULL);
}
END_TEST

/* ---- seek ---- */

START_TEST(test_seek_small) {
    bptree *t = bptree_new();
    bptree_put(t, KEY("b"), VAL(1));
    bptree_put(t, KEY("d"), VAL(2));
    bptree_put(t, KEY("f"), VAL(3));
    bptree_iter it;
    bptree_seek(t, NULL, 0, &it);
    expect_iter_key(&it, KEY("b"));
    bptree_seek(t, KEY("a"), &it);
    expect_iter_key(&it, KEY("b"));
    bptree_seek(t, KEY("b"), &it);
    expect_iter_key(&it, KEY("b"));
    bptree_seek(t, KEY("b\x00"), &it);
    expect_iter_key(&it, KEY("d"));
    bptree_seek(t, KEY("c\xff\xff"), &it);
    expect_iter_key(&it, KEY("d"));
    bptree_seek(t, KEY("f"), &it);
    expect_iter_key(&it, KEY("f"));
    REQUIRE(bptree_iter_value(&it) == VAL(3));
    bptree_iter_next(&it);
    REQUIRE(!bptree_iter_valid(&it));
    bptree_seek(t, KEY("f\x00"), &it);
    REQUIRE(!bptree_iter_valid(&it));
    bptree_free(t, NULL);
}
END_TEST

START_TEST(test_seek_across_leaves) {
    bptree *t = bptree_new();
    uint8_t key[32], want[32];
    for (int i = 0; i < 20000; i += 2)
        bptree_put(t, key, format_key(key, "k", i), VAL(i + 1));
    REQUIRE(bptree_check(t));
    for (int i = 0; i < 19999; i++) {
        bptree_iter it;
        bptree_seek(t, key, format_key(key, "k", i), &it);
        int expected = i % 2 ? i + 1 : i;
        expect_iter_key(&it, want, format_key(want, "k", expected));
        REQUIRE(bptree_iter_value(&it) == VAL(expected + 1));
    }
    bptree_iter it;
    bptree_seek(t, key, format_key(key, "k", 19999), &it);
    REQUIRE(!bptree_iter_valid(&it));
    bptree_free(t, NULL);
}
END_TEST

/* Keys loaded in order fill their leaves (an append splits off a leaf of its own), where keys loaded
 * in reverse order leave every leaf half full: the ordered load takes far less node memory. */
START_TEST(test_ordered_load_fills_leaves) {
    bptree *up = bptree_new(), *down = bptree_new();
    uint8_t key[32];
    const int n = 64 * 200;
    for (int i = 0; i < n; i++) {
        bptree_put(up, key, format_key(key, "k", i), VAL(i + 1));
        bptree_put(down, key, format_key(key, "k", n - 1 - i), VAL(n - i));
    }
    REQUIRE(bptree_check(up) && bptree_check(down));
    REQUIRE(bptree_count(up) == (size_t)n && bptree_count(down) == (size_t)n);
    REQUIRE(bptree_memory(up) * 13 < bptree_memory(down) * 10);
    for (int i = 0; i < n; i += 97)
        REQUIRE(bptree_get(up, key, format_key(key, "k", i)) == VAL(i + 1));
    bptree_free(up, NULL);
    bptree_free(down, NULL);
}
END_TEST

/* ---- removal ---- */

START_TEST(test_iterate_after_many_removes) {
    bptree *t = bptree_new();
    size_t empty_memory = bptree_memory(t);
    uint8_t key[32], want[32];
    const int n = 10000;
    for (int i = 0; i < n; i++)
        bptree_put(t, key, format_key(key, "k", i), VAL(i + 1));
    for (int i = 0; i < n; i++)
        if (i % 7 != 3) REQUIRE(bptree_remove(t, key, format_key(key, "k", i)) == VAL(i + 1));
    REQUIRE(bptree_check(t));

    bptree_iter it;
    bptree_seek(t, NULL, 0, &it);
    for (int i = 3; i < n; i += 7, bptree_iter_next(&it)) {
        expect_iter_key(&it, want, format_key(want, "k", i));
        REQUIRE(bptree_iter_value(&it) == VAL(i + 1));
    }
    REQUIRE(!bptree_iter_valid(&it));

    for (int i = 3; i < n; i += 7)
        REQUIRE(bptree_remove(t, key, format_key(key, "k", i)) == VAL(i + 1));
    REQUIRE(bptree_count(t) == 0);
    REQUIRE(bptree_memory(t) == empty_memory);
    REQUIRE(bptree_check(t));
    bptree_seek(t, NULL, 0, &it);
    REQUIRE(!bptree_iter_valid(&it));
    bptree_free(t, NULL);
}
END_TEST

START_TEST(test_grow_and_shrink_in_every_order) {
    const int n = 100000;
    int *order = malloc(n * sizeof *order);
    uint8_t key[32];
    for (int pass = 0; pass < 3; pass++) {
        bptree *t = bptree_new();
        size_t empty_memory = bptree_memory(t);
        for (int i = 0; i < n; i++)
            bptree_put(t, key, format_key(key, "key/", i), VAL(i + 1));
        REQUIRE(bptree_check(t));
        /* pass 0 removes ascending, 1 descending, 2 shuffled */
        rng_state = 0x9e3779b97f4a7c15ull;
        for (int i = 0; i < n; i++)
            order[i] = pass == 1 ? n - 1 - i : i;
        for (int i = n - 1; pass == 2 && i > 0; i--) {
            int j = (int)(rng_next() % (uint64_t)(i + 1)), tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
        for (int i = 0; i < n; i++) {
            int k = order[i];
            REQUIRE(bptree_remove(t, key, format_key(key, "key/", k)) == VAL(k + 1));
            if (i % 20000 == 0) REQUIRE(bptree_check(t));
        }
        REQUIRE(bptree_count(t) == 0);
        REQUIRE(bptree_memory(t) == empty_memory);
        REQUIRE(bptree_check(t));
        bptree_free(t, NULL);
    }
    free(order);
}
END_TEST

/* ---- keyed trees: the leaves borrow each key from its value ---- */

typedef struct owned_key {
    int live;
    bkey key; /* len, then the bytes allocated after it */
} owned_key;

static const bkey *owned_key_of(const void *value) {
    return &((const owned_key *)value)->key;
}

static void *make_owned(const uint8_t *key, size_t len) {
    owned_key *v = malloc(sizeof *v + len);
    v->live = 1;
    v->key.len = (uint32_t)len;
    memcpy(v->key.bytes, key, len);
    return v;
}

START_TEST(test_keyed_tree_borrows_keys) {
    const int n = 30000;
    bptree *t = bptree_new_keyed(owned_key_of), *copying = bptree_new();
    uint8_t key[32];
    size_t key_bytes = 0;
    rng_state = 0x51ed270b27a3c9f1ull;
    for (int i = 0; i < n; i++) { /* shuffled inserts; a key seen again finds its value */
        size_t len = format_key(key, "k/", (int)(rng_next() % (uint64_t)n));
        bool created;
        owned_key *v = bptree_get_or_add(t, key, len, make_owned, &created);
        REQUIRE(v && v->live == 1 && v->key.len == len && memcmp(v->key.bytes, key, len) == 0);
        REQUIRE(created == (bptree_put(copying, key, len, v) == NULL));
        if (created) key_bytes += sizeof(bkey) + len;
    }
    REQUIRE(bptree_check(t) && bptree_check(copying));
    size_t count = bptree_count(t);
    REQUIRE(count == bptree_count(copying));
    /* the same shape, less every leaf key copy */
    REQUIRE(bptree_memory(copying) - bptree_memory(t) == key_bytes);
    bptree_free(copying, NULL);
    bptree_iter it;
    const uint8_t *prev = NULL;
    size_t prev_len = 0, seen = 0;
    for (bptree_seek(t, NULL, 0, &it); bptree_iter_valid(&it); bptree_iter_next(&it), seen++) {
        size_t len;
        const uint8_t *k = bptree_iter_key(&it, &len);
        REQUIRE(k == ((owned_key *)bptree_iter_value(&it))->key.bytes); /* the value's own bytes */
        REQUIRE(!prev || memcmp(prev, k, len < prev_len ? len : prev_len) <= 0);
        prev = k;
        prev_len = len;
    }
    REQUIRE(seen == count);
    for (int i = 0; i < n; i += 2) { /* remove half; each value is freed only after its removal */
        size_t len = format_key(key, "k/", i);
        owned_key *v = bptree_remove(t, key, len);
        free(v);
        if (i % 5000 == 0) REQUIRE(bptree_check(t));
    }
    REQUIRE(bptree_check(t));
    bptree_free(t, free);
}
END_TEST

/* ---- randomized test against a sorted-array model ---- */

typedef struct model_entry {
    uint8_t key[8];
    size_t len;
    uintptr_t value;
} model_entry;

typedef struct model {
    model_entry *entries;
    size_t count;
} model;

static int model_cmp(const model_entry *e, const uint8_t *key, size_t len) {
    size_t common = e->len < len ? e->len : len;
    int c = common ? memcmp(e->key, key, common) : 0;
    return c ? c : (e->len > len) - (e->len < len);
}

/* The first index whose key is >= key. */
static size_t model_lower_bound(const model *m, const uint8_t *key, size_t len) {
    size_t lo = 0, hi = m->count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (model_cmp(&m->entries[mid], key, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool model_has(const model *m, size_t pos, const uint8_t *key, size_t len) {
    return pos < m->count && model_cmp(&m->entries[pos], key, len) == 0;
}

/* Short keys over a few boundary bytes, so prefixes, hits and misses are all common. */
static size_t random_key(uint8_t *key) {
    static const uint8_t alphabet[] = {0x00, 0x01, 'a', 'b', 0x7f, 0x80, 0xff};
    size_t len = 1 + rng_next() % 6;
    for (size_t i = 0; i < len; i++)
        key[i] = alphabet[rng_next() % sizeof alphabet];
    return len;
}

static void random_put(bptree *t, model *m, const uint8_t *key, size_t len, uintptr_t value) {
    size_t pos = model_lower_bound(m, key, len);
    void *old = bptree_put(t, key, len, VAL(value));
    if (model_has(m, pos, key, len)) {
        REQUIRE(old == VAL(m->entries[pos].value));
        m->entries[pos].value = value;
        return;
    }
    REQUIRE(old == NULL);
    memmove(&m->entries[pos + 1], &m->entries[pos], (m->count - pos) * sizeof(model_entry));
    memcpy(m->entries[pos].key, key, len);
    m->entries[pos].len = len;
    m->entries[pos].value = value;
    m->count++;
}

static void random_remove(bptree *t, model *m, const uint8_t *key, size_t len) {
    size_t pos = model_lower_bound(m, key, len);
    void *old = bptree_remove(t, key, len);
    if (!model_has(m, pos, key, len)) {
        REQUIRE(old == NULL);
        return;
    }
    REQUIRE(old == VAL(m->entries[pos].value));
    memmove(&m->entries[pos], &m->entries[pos + 1], (m->count - pos - 1) * sizeof(model_entry));
    m->count--;
}

static void random_get(bptree *t, model *m, const uint8_t *key, size_t len) {
    size_t pos = model_lower_bound(m, key, len);
    void *got = bptree_get(t, key, len);
    if (model_has(m, pos, key, len))
        REQUIRE(got == VAL(m->entries[pos].value));
    else
        REQUIRE(got == NULL);
}

/* Seeks and compares the next `steps` entries (or up to the end) with the model. */
static void compare_scan(bptree *t, model *m, const uint8_t *key, size_t len, size_t steps) {
    size_t pos = model_lower_bound(m, key, len);
    bptree_iter it;
    bptree_seek(t, key, len, &it);
    for (size_t i = 0; i < steps && pos < m->count; i++, pos++, bptree_iter_next(&it)) {
        expect_iter_key(&it, m->entries[pos].key, m->entries[pos].len);
        REQUIRE(bptree_iter_value(&it) == VAL(m->entries[pos].value));
    }
    if (pos == m->count) REQUIRE(!bptree_iter_valid(&it));
}

/* Backwards: seeks the last entry < key (len 0: the last of all) and compares the `steps` before it. */
static void compare_scan_back(bptree *t, model *m, const uint8_t *key, size_t len, size_t steps) {
    size_t pos = len ? model_lower_bound(m, key, len) : m->count; /* entries[pos - 1] comes first */
    bptree_iter it;
    if (len)
        bptree_seek_before(t, key, len, &it);
    else
        bptree_seek_last(t, &it);
    for (size_t i = 0; i < steps && pos > 0; i++, pos--, bptree_iter_prev(&it)) {
        expect_iter_key(&it, m->entries[pos - 1].key, m->entries[pos - 1].len);
        REQUIRE(bptree_iter_value(&it) == VAL(m->entries[pos - 1].value));
    }
    if (pos == 0) REQUIRE(!bptree_iter_valid(&it));
}

START_TEST(test_random_ops_against_model) {
    enum { OPS = 100000, MAX_KEYS = 7 + 49 + 343 + 2401 + 16807 + 117649 };
    model m = {.entries = malloc(MAX_KEYS * sizeof(model_entry)), .count = 0};
    bptree *t = bptree_new();
    rng_state = 0x2545f4914f6cdd1dull;
    uint8_t key[8];
    for (uintptr_t op = 1; op <= OPS; op++) {
        size_t len = random_key(key);
        unsigned dice = (unsigned)(rng_next() % 100);
        /* the first half mostly grows the tree, the second half mostly shrinks it */
        unsigned put_share = op <= OPS / 2 ? 55 : 25;
        if (dice < put_share)
            random_put(t, &m, key, len, op);
        else if (dice < 70)
            random_remove(t, &m, key, len);
        else if (dice < 85)
            random_get(t, &m, key, len);
        else if (dice < 93)
            compare_scan(t, &m, key, dice % 2 ? len : 0, 1 + rng_next() % 5);
        else
            compare_scan_back(t, &m, key, dice % 2 ? len : 0, 1 + rng_next() % 70);
        REQUIRE(bptree_count(t) == m.count);
        if (op % 5000 == 0) REQUIRE(bptree_check(t));
    }
    REQUIRE(bptree_check(t));
    compare_scan(t, &m, NULL, 0, m.count + 1);
    compare_scan_back(t, &m, NULL, 0, m.count + 1);
    while (m.count > 0) {
        model_entry last = m.entries[m.count - 1];
        random_remove(t, &m, last.key, last.len);
    }
    REQUIRE(bptree_count(t) == 0);
    REQUIRE(bptree_check(t));
    bptree_free(t, NULL);
    free(m.entries);
}
END_TEST

Suite *bptree_suite(void) {
    Suite *s = suite_create("bptree");
    TCase *basic = tcase_create("basic");
    tcase_add_test(basic, test_empty_tree);
    tcase_add_test(basic, test_put_get_replace_remove);
    tcase_add_test(basic, test_free_calls_free_value);
    tcase_add_test(basic, test_ordering_prefixes_and_binary_bytes);
    tcase_add_test(basic, test_seek_small);
    tcase_add_test(basic, test_seek_across_leaves);
    tcase_add_test(basic, test_iterate_after_many_removes);
    tcase_add_test(basic, test_ordered_load_fills_leaves);
    tcase_add_test(basic, test_keyed_tree_borrows_keys);
    suite_add_tcase(s, basic);

    TCase *heavy = tcase_create("heavy");
    tcase_set_timeout(heavy, 120);
    tcase_add_test(heavy, test_grow_and_shrink_in_every_order);
    tcase_add_test(heavy, test_random_ops_against_model);
    suite_add_tcase(s, heavy);
    return s;
}
