/* test_rev_table.c: unit tests for the revision → record table (storage/rev_table.h): places read back
 * across blocks, holes and revisions outside [base, end) read as none, a trim keeps what is above the
 * new base and frees whole blocks, and growing to a million revisions never touches more than about a
 * block of new memory at once (a doubling array zeroed 12 MiB, 3072 page faults, at 2^20). */
#include "rev_table.h"

#include <check.h>
#include <sys/resource.h>

#include "testutil.h"

static value_place place_of(int64_t rev) {
    return (value_place){
        .segment = (uint32_t)(rev % 7) + 1, .length = (uint32_t)rev, .offset = (uint32_t)rev * 3};
}

static int same(value_place a, value_place b) {
    return a.segment == b.segment && a.length == b.length && a.offset == b.offset;
}

static const value_place none = {0};

START_TEST(test_set_get_across_blocks) {
    rev_table t;
    rev_table_init(&t, 2);
    int64_t last = 2 + 3 * (int64_t)REV_TABLE_BLOCK + 5;
    for (int64_t rev = 2; rev <= last; rev++)
        if (rev % 5) rev_table_set(&t, rev, place_of(rev)); /* every 5th left as a hole */
    for (int64_t rev = 2; rev <= last; rev++)
        REQUIRE(same(rev_table_get(&t, rev), rev % 5 ? place_of(rev) : none));
    REQUIRE(same(rev_table_get(&t, 1), none) && same(rev_table_get(&t, 0), none));
    REQUIRE(same(rev_table_get(&t, last + 1), none));
    REQUIRE(same(rev_table_get(&t, last + 10 * (int64_t)REV_TABLE_BLOCK), none));
    rev_table_set(&t, 1, place_of(1)); /* below the base: ignored */
    REQUIRE(same(rev_table_get(&t, 1), none));
    rev_table_set(&t, 7, place_of(1000)); /* set again (log compaction moved the record) */
    REQUIRE(same(rev_table_get(&t, 7), place_of(1000)));
    /* a jump leaves whole blocks unset between */
    int64_t far = last + 4 * (int64_t)REV_TABLE_BLOCK;
    rev_table_set(&t, far, place_of(far));
    REQUIRE(same(rev_table_get(&t, far), place_of(far)));
    REQUIRE(same(rev_table_get(&t, far - (int64_t)REV_TABLE_BLOCK), none));
    rev_table_free(&t);
}
END_TEST

START_TEST(test_trim_keeps_the_rest_and_frees_blocks) {
    rev_table t;
    rev_table_init(&t, 2);
    int64_t last = 10 * (int64_t)REV_TABLE_BLOCK;
    for (int64_t rev = 2; rev <= last; rev++)
        rev_table_set(&t, rev, place_of(rev));
    size_t blocks = t.n_blocks;
    REQUIRE(blocks == 11);
    int64_t cut = 4 * (int64_t)REV_TABLE_BLOCK + 100;
    rev_table_trim(&t, cut);
    REQUIRE(t.n_blocks == blocks - 4 && t.base == cut);
    for (int64_t rev = 2; rev <= last; rev++)
        REQUIRE(same(rev_table_get(&t, rev), rev < cut ? none : place_of(rev)));
    rev_table_trim(&t, cut - 50); /* lower: no-op */
    REQUIRE(t.base == cut && same(rev_table_get(&t, cut), place_of(cut)));
    rev_table_set(&t, last + 1, place_of(last + 1));
    REQUIRE(same(rev_table_get(&t, last + 1), place_of(last + 1)));
    /* past everything: the table is empty, and goes on from the new base */
    int64_t beyond = last + 3 * (int64_t)REV_TABLE_BLOCK;
    rev_table_trim(&t, beyond);
    REQUIRE(t.n_blocks == 0 && same(rev_table_get(&t, last + 1), none));
    rev_table_set(&t, beyond, place_of(beyond));
    rev_table_set(&t, beyond + 2, place_of(beyond + 2));
    REQUIRE(same(rev_table_get(&t, beyond), place_of(beyond)) && same(rev_table_get(&t, beyond + 1), none));
    REQUIRE(same(rev_table_get(&t, beyond + 2), place_of(beyond + 2)) && t.n_blocks == 1);
    rev_table_free(&t);
}
END_TEST

static long minor_faults(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

/* Each stretch of 4096 revisions writes 48 KiB of entries and may start one 192 KiB block: well under
 * 256 new pages. A table grown by doubling and zeroing the new half fails this at 2^17 revisions (384
 * pages) and at 2^20 zeroes 3072 pages in one call. */
START_TEST(test_growth_touches_about_a_block_at_a_time) {
    rev_table t;
    rev_table_init(&t, 2);
    const int64_t stretch = 4096, last = 2 + ((int64_t)1 << 20) + 2 * (int64_t)REV_TABLE_BLOCK;
    long worst = 0, before = minor_faults();
    for (int64_t rev = 2; rev <= last; rev++) {
        rev_table_set(&t, rev, place_of(rev));
        if (rev % stretch == 0) {
            long now = minor_faults();
            if (now - before > worst) worst = now - before;
            before = now;
        }
    }
    ck_assert_msg(worst < 256, "%ld pages faulted in by one stretch of %lld revisions", worst,
                  (long long)stretch);
    for (int64_t rev = 2; rev <= last; rev += 997)
        REQUIRE(same(rev_table_get(&t, rev), place_of(rev)));
    rev_table_free(&t);
}
END_TEST

Suite *rev_table_suite(void) {
    Suite *s = suite_create("rev_table");
    TCase *tc = tcase_create("basic");
    tcase_add_test(tc, test_set_get_across_blocks);
    tcase_add_test(tc, test_trim_keeps_the_rest_and_frees_blocks);
    tcase_add_test(tc, test_growth_touches_about_a_block_at_a_time);
    suite_add_tcase(s, tc);
    return s;
}
