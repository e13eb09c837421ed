/* test_lease_timers.c: unit tests for the lease deadline heap (src/api/lease_timers.h): set, move,
 * remove and peek, and 200,000 random operations checked against a plain array model, with the heap
 * property and the id index verified along the way. */
#include "lease_timers.h"

#include <check.h>

#include "testutil.h"
#include <stdlib.h>

/* Heap order holds and every item is found at its own position through the index. */
static void check_heap(const lease_heap *h) {
    for (size_t i = 1; i < h->n; i++)
        REQUIRE(h->items[(i - 1) / 2].deadline <= h->items[i].deadline);
    size_t used = 0;
    for (size_t i = 0; i < h->n_slots; i++) {
        if (!h->slots[i].used) continue;
        used++;
        REQUIRE(h->slots[i].pos < h->n);
        REQUIRE(h->items[h->slots[i].pos].id == h->slots[i].id);
    }
    REQUIRE(used == h->n);
}

START_TEST(test_basic) {
    lease_heap h = {0};
    int64_t id;
    double d;
    ck_assert(!lease_heap_peek(&h, &id, &d));
    ck_assert(!lease_heap_remove(&h, 7));
    lease_heap_set(&h, 7, 30.0);
    lease_heap_set(&h, -3, 10.0);
    lease_heap_set(&h, INT64_MAX, 20.0);
    ck_assert_uint_eq(lease_heap_count(&h), 3);
    ck_assert(lease_heap_peek(&h, &id, &d));
    ck_assert_int_eq(id, -3);
    ck_assert(d == 10.0);
    lease_heap_set(&h, 7, 5.0); /* moved earlier */
    ck_assert(lease_heap_peek(&h, &id, NULL));
    ck_assert_int_eq(id, 7);
    lease_heap_set(&h, 7, 50.0); /* moved later */
    ck_assert(lease_heap_peek(&h, &id, NULL));
    ck_assert_int_eq(id, -3);
    ck_assert(lease_heap_get(&h, 7, &d));
    ck_assert(d == 50.0);
    ck_assert(lease_heap_remove(&h, -3));
    ck_assert(!lease_heap_get(&h, -3, NULL));
    ck_assert(lease_heap_peek(&h, &id, NULL));
    ck_assert_int_eq(id, INT64_MAX);
    ck_assert_uint_eq(lease_heap_count(&h), 2);
    check_heap(&h);
    lease_heap_free(&h);
}
END_TEST

#define MODEL_IDS 3000

START_TEST(test_random_against_model) {
    rng_state = 0x9e3779b97f4a7c15ull;
    lease_heap h = {0};
    static double model[MODEL_IDS]; /* deadline, or -1 when absent */
    for (int i = 0; i < MODEL_IDS; i++)
        model[i] = -1;
    size_t present = 0;
    for (int step = 0; step < 200000; step++) {
        int64_t id = (int64_t)(rng_next() % MODEL_IDS);
        int64_t key = id * 1000003 - 1500; /* spread out, some negative */
        unsigned op = rng_next() % 10;
        if (op < 5) {
            double d = (double)(rng_next() % 100000) / 10.0;
            if (model[id] < 0) present++;
            model[id] = d;
            lease_heap_set(&h, key, d);
        } else if (op < 8) {
            bool had = model[id] >= 0;
            REQUIRE(lease_heap_remove(&h, key) == had);
            if (had) present--;
            model[id] = -1;
        } else if (op == 8) {
            double d;
            bool has = lease_heap_get(&h, key, &d);
            REQUIRE(has == (model[id] >= 0));
            if (has) REQUIRE(d == model[id]);
        } else { /* pop the minimum, as the timer does */
            int64_t top;
            double d;
            bool any = lease_heap_peek(&h, &top, &d);
            REQUIRE(any == (present > 0));
            if (!any) continue;
            double min = -1;
            for (int i = 0; i < MODEL_IDS; i++)
                if (model[i] >= 0 && (min < 0 || model[i] < min)) min = model[i];
            REQUIRE(d == min);
            int64_t top_id = (top + 1500) / 1000003;
            REQUIRE(model[top_id] == d);
            REQUIRE(lease_heap_remove(&h, top));
            model[top_id] = -1;
            present--;
        }
        REQUIRE(lease_heap_count(&h) == present);
        if (step % 5000 == 0) check_heap(&h);
    }
    check_heap(&h);
    lease_heap_free(&h);
}
END_TEST

START_TEST(test_many_leases) {
    lease_heap h = {0};
    const int n = 100000;
    for (int i = 0; i < n; i++)
        lease_heap_set(&h, (int64_t)i + 1, (double)((i * 7919) % n));
    check_heap(&h);
    double last = -1;
    for (int i = 0; i < n; i++) {
        int64_t id;
        double d;
        REQUIRE(lease_heap_peek(&h, &id, &d));
        REQUIRE(d >= last);
        last = d;
        REQUIRE(lease_heap_remove(&h, id));
    }
    REQUIRE(lease_heap_count(&h) == 0);
    lease_heap_free(&h);
}
END_TEST

Suite *lease_timers_suite(void) {
    Suite *s = suite_create("lease_timers");
    TCase *tc = tcase_create("heap");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_basic);
    tcase_add_test(tc, test_random_against_model);
    tcase_add_test(tc, test_many_leases);
    suite_add_tcase(s, tc);
    return s;
}
