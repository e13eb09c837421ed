/* test_keyhist.c: unit tests for one key and its history (storage/keyhist.h) in their packed form: the
 * key and the entry held inside the keyhist, the move out to an array and back in after compaction,
 * and the 28-bit sub-revision and 32-bit value offset kept whole at their largest. */
#include "keyhist.h"

#include <check.h>
#include <string.h>

#include "testutil.h"

static rev_entry put_at(int64_t rev, uint32_t sub) {
    return (rev_entry){.main_rev = rev,
                       .sub_rev = sub,
                       .create_revision = 2,
                       .version = rev - 1,
                       .lease = 7,
                       .value = {.segment = (uint32_t)rev, .length = 10, .offset = UINT32_MAX - 10}};
}

START_TEST(test_inline_then_array_then_inline) {
    keyhist *kh = keyhist_new((const uint8_t *)"key", 3);
    REQUIRE(keyhist_key(kh)->len == 3 && memcmp(keyhist_key(kh)->bytes, "key", 3) == 0);
    REQUIRE(keyhist_count(kh) == 0 && !keyhist_newest(kh) && !keyhist_at(kh, 100));
    for (int64_t rev = 2; rev <= 9; rev++) {
        rev_entry e = put_at(rev, rev == 9 ? REV_SUB_MAX : 0);
        keyhist_append(kh, &e);
    }
    REQUIRE(keyhist_count(kh) == 8);
    for (int64_t rev = 2; rev <= 9; rev++) {
        rev_entry *e = keyhist_at(kh, rev);
        REQUIRE(e && e->main_rev == rev && e->version == rev - 1 && e->lease == 7);
        REQUIRE(e->value.segment == (uint32_t)rev && e->value.offset == UINT32_MAX - 10);
    }
    REQUIRE(keyhist_find(kh, 9, REV_SUB_MAX) && !keyhist_find(kh, 9, 0));
    uint64_t dropped = 0;
    REQUIRE(!keyhist_compact(kh, 8, 3, &dropped)); /* keeps 8 and 9 */
    REQUIRE(keyhist_count(kh) == 2 && !keyhist_at(kh, 7) && keyhist_at(kh, 8));
    rev_entry first = put_at(2, 0);
    REQUIRE(dropped == 6 * keyhist_change_bytes(3, &first));
    REQUIRE(!keyhist_compact(kh, 9, 3, &dropped)); /* one left: back inside the keyhist */
    REQUIRE(keyhist_count(kh) == 1);
    rev_entry *last = keyhist_newest(kh);
    REQUIRE((uint8_t *)last > (uint8_t *)kh && (uint8_t *)last < (uint8_t *)kh + 32); /* inside again */
    REQUIRE(last->main_rev == 9 && last->sub_rev == REV_SUB_MAX);
    REQUIRE(last->flags == 0 && last->value.offset == UINT32_MAX - 10);
    keyhist_append(kh, &(rev_entry){.main_rev = 10, .flags = REV_TOMBSTONE});
    REQUIRE(!keyhist_at(kh, 10) && keyhist_at(kh, 9));
    REQUIRE(keyhist_compact(kh, 10, 3, &dropped)); /* a tombstone at the compaction: the key goes */
    keyhist_free(kh);
}
END_TEST

START_TEST(test_key_of_every_length_survives_moves) {
    uint8_t key[100];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    const size_t lens[] = {0, 1, 3, 4, 5, 8, 15, 16, 17, 100};
    for (size_t l = 0; l < sizeof lens / sizeof *lens; l++) {
        keyhist *kh = keyhist_new(key, lens[l]);
        for (int64_t rev = 2; rev <= 6; rev++) {
            rev_entry e = put_at(rev, 0);
            keyhist_append(kh, &e);
        }
        uint64_t dropped = 0;
        keyhist_compact(kh, 6, lens[l], &dropped);
        const bkey *k = keyhist_key(kh);
        REQUIRE(k->len == lens[l] && (lens[l] == 0 || memcmp(k->bytes, key, lens[l]) == 0));
        REQUIRE(keyhist_count(kh) == 1 && keyhist_newest(kh)->main_rev == 6);
        REQUIRE(((uintptr_t)keyhist_newest(kh) & 7) == 0); /* the entry inside stays aligned */
        keyhist_free(kh);
    }
}
END_TEST

START_TEST(test_value_place_round_trip) {
    log_place p = {.segment = 5, .length = 77, .offset = UINT32_MAX};
    value_place v = value_place_of(p);
    log_place back = value_log_place(v);
    REQUIRE(back.segment == 5 && back.length == 77 && back.offset == UINT32_MAX);
}
END_TEST

Suite *keyhist_suite(void) {
    Suite *s = suite_create("keyhist");
    TCase *tc = tcase_create("basic");
    tcase_add_test(tc, test_inline_then_array_then_inline);
    tcase_add_test(tc, test_key_of_every_length_survives_moves);
    tcase_add_test(tc, test_value_place_round_trip);
    suite_add_tcase(s, tc);
    return s;
}
