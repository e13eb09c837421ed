/* test_commit.c: unit test of src/rpc/commit.c, the commit rule. A slow sync is injected through storage's
 * I/O seam (storage_io.h): it blocks until the test lets it go. Output that may depend on a batch is
 * not released before that batch's sync returns, commit_batch waits for a sync in flight, and under
 * load a batch waits a little for the writers the last sync answered (gathering). */
#include "commit.h"

#include <check.h>
#include <ev.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "storage_io.h"
#include "store.h"

/* ---------- the slow sync: each call waits until the test has allowed one more ---------- */

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_armed; /* false while the store opens and closes */
static int syncs_allowed, syncs_entered, syncs_returned;

static int slow_sync(int fd) {
    pthread_mutex_lock(&gate_lock);
    bool armed = gate_armed;
    if (armed) {
        syncs_entered++;
        pthread_cond_broadcast(&gate_cond);
        while (syncs_allowed < syncs_entered)
            pthread_cond_wait(&gate_cond, &gate_lock);
    }
    pthread_mutex_unlock(&gate_lock);
    int rc = fdatasync(fd);
    pthread_mutex_lock(&gate_lock);
    if (armed) syncs_returned++;
    pthread_mutex_unlock(&gate_lock);
    return rc;
}

static void allow_syncs(int n) {
    pthread_mutex_lock(&gate_lock);
    syncs_allowed = n;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

static int gate_count(const int *counter) {
    pthread_mutex_lock(&gate_lock);
    int n = *counter;
    pthread_mutex_unlock(&gate_lock);
    return n;
}

/* ---------- the commit user: a stand-in for the connection layer ---------- */

static struct ev_loop *loop;
static int flushes, releases;
static int returned_at_release; /* syncs returned when the durable hook last ran */

static void on_flush(void (*commit)(void)) {
    commit();
    flushes++;
}

static void on_durable(void) {
    releases++;
    returned_at_release = gate_count(&syncs_returned);
}

/* commit_start installs process-wide state: once per process (Check may run tests unforked). */
static void start_commit_once(void) {
    if (loop) return;
    loop = ev_loop_new(EVFLAG_AUTO);
    ck_assert_ptr_nonnull(loop);
    commit_start(loop, &(commit_hooks){.flush = on_flush, .durable = on_durable});
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs loop turns for up to seconds, or until *counter (read under the gate lock if locked) reaches
 * want. Returns whether it did. */
static bool turns_until(const int *counter, bool locked, int want, double seconds) {
    double end = now() + seconds;
    for (;;) {
        ev_run(loop, EVRUN_NOWAIT);
        if ((locked ? gate_count(counter) : *counter) >= want) return true;
        if (now() > end) return false;
        usleep(1000);
    }
}

static void put(const char *key) {
    mv_put_req r = {.key = B(key), .value = B("v")};
    mv_result res;
    mvcc_put(g_store, &r, &res);
    ck_assert_int_eq(res.err, MV_OK);
    mv_result_free(&res);
}

static void setup(void) {
    storage_io_set(&(storage_io){.sync_data = slow_sync});
    fixture_setup((mvcc_options){.fsync = true});
    g_store = st;
    put("first"); /* the segment file (and its MANIFEST entry, synced too) exists before the gate closes */
    ck_assert_int_eq(mvcc_commit(st), 0);
    start_commit_once();
    flushes = releases = returned_at_release = 0;
    pthread_mutex_lock(&gate_lock);
    gate_armed = true;
    syncs_allowed = syncs_entered = syncs_returned = 0;
    pthread_mutex_unlock(&gate_lock);
}

static void teardown(void) {
    allow_syncs(1 << 30);
    commit_batch(); /* nothing in flight once this returns */
    pthread_mutex_lock(&gate_lock);
    gate_armed = false;
    pthread_mutex_unlock(&gate_lock);
    g_store = NULL;
    fixture_teardown();
    storage_io_set(NULL);
}

/* ---------- tests ---------- */

/* A write's output, and a read's made while its batch syncs, wait for the sync to return. */
START_TEST(test_nothing_released_before_sync) {
    put("a");
    uint64_t write_tag = commit_needed_seq();
    ck_assert_uint_gt(write_tag, commit_durable_seq());
    ck_assert_msg(turns_until(&syncs_entered, true, 1, 2.0),
                  "the sync did not go through storage_io's sync_data");
    uint64_t read_tag = commit_needed_seq(); /* a read now may have seen the batch being synced */
    ck_assert_uint_eq(read_tag, write_tag);
    turns_until(&releases, false, 1, 0.2); /* the sync is held: 200 ms of turns must release nothing */
    ck_assert_int_gt(flushes, 0);
    ck_assert_int_eq(releases, 0);
    ck_assert_uint_lt(commit_durable_seq(), write_tag);
    allow_syncs(1);
    ck_assert(turns_until(&releases, false, 1, 2.0));
    ck_assert_int_eq(returned_at_release, 1);
    ck_assert_uint_ge(commit_durable_seq(), write_tag);
}
END_TEST

/* While one batch syncs the next one collects; the first sync releases only what depended on it. */
START_TEST(test_next_batch_waits_for_its_own_sync) {
    put("a");
    uint64_t first = commit_needed_seq();
    ck_assert(turns_until(&syncs_entered, true, 1, 2.0));
    put("b");
    uint64_t second = commit_needed_seq();
    ck_assert_uint_gt(second, first);
    allow_syncs(1);
    ck_assert(turns_until(&releases, false, 1, 2.0));
    ck_assert_uint_ge(commit_durable_seq(), first);
    ck_assert_uint_lt(commit_durable_seq(), second);
    ck_assert(turns_until(&syncs_entered, true, 2, 2.0)); /* the second batch is now in flight */
    ck_assert_uint_lt(commit_durable_seq(), second);
    allow_syncs(2);
    ck_assert(turns_until(&releases, false, 2, 2.0));
    ck_assert_int_eq(returned_at_release, 2);
    ck_assert_uint_ge(commit_durable_seq(), second);
}
END_TEST

/* Output of a turn that wrote nothing, with nothing in flight, is free to leave at once. */
START_TEST(test_reads_alone_are_not_held) {
    ck_assert(!mvcc_has_batch(g_store));
    ck_assert_uint_le(commit_needed_seq(), commit_durable_seq());
    turns_until(&syncs_entered, true, 1, 0.05);
    ck_assert_int_eq(gate_count(&syncs_entered), 0);
}
END_TEST

static void *open_gate_later(void *arg) {
    (void)arg;
    usleep(100 * 1000);
    allow_syncs(1 << 30);
    return NULL;
}

/* commit_batch (shutdown, snapshots) returns only once the sync in flight and its own are done. */
START_TEST(test_commit_batch_waits_for_sync_in_flight) {
    put("a");
    ck_assert(turns_until(&syncs_entered, true, 1, 2.0));
    put("b");
    uint64_t tag = commit_needed_seq();
    pthread_t opener;
    ck_assert_int_eq(pthread_create(&opener, NULL, open_gate_later, NULL), 0);
    commit_batch();
    ck_assert_int_ge(gate_count(&syncs_returned), 2);
    ck_assert_uint_ge(commit_durable_seq(), tag);
    ck_assert(!mvcc_has_batch(g_store));
    pthread_join(opener, NULL);
}
END_TEST

/* One sync in full: the batch written so far is handed over, synced and released. */
static void sync_one_batch(int *syncs) {
    ck_assert(turns_until(&syncs_entered, true, *syncs + 1, 2.0));
    allow_syncs(++*syncs);
    ck_assert(turns_until(&releases, false, *syncs, 2.0));
}

static void put_many(const char *prefix, int n) {
    char key[32];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "%s%d", prefix, i);
        put(key);
    }
}

/* After a batch of 10 writes, the next batch waits for 10 before its sync starts, or for as long as
 * the last sync took; a batch of fewer than 8 never waits. */
START_TEST(test_batch_gathers_the_writers_just_answered) {
    int syncs = 0;
    put("a");
    sync_one_batch(&syncs); /* a hand-over: what follows counts from here */
    put_many("x", 10);
    sync_one_batch(&syncs);
    put_many("y", 3);
    ev_run(loop, EVRUN_NOWAIT); /* one turn: its timer may fire, but only the next turn would hand over */
    ck_assert_msg(mvcc_has_batch(g_store), "3 of the 10 expected writes were handed over at once");
    ck_assert_msg(commit_needed_seq() > commit_durable_seq(), "output of a gathering batch is not held");
    put_many("z", 7);
    ev_run(loop, EVRUN_NOWAIT);
    ck_assert_msg(!mvcc_has_batch(g_store), "the 10 expected writes were held back");
    sync_one_batch(&syncs);
    put_many("w", 2); /* the writers did not come back: the wait ends on the timer */
    ev_run(loop, EVRUN_NOWAIT);
    ck_assert(mvcc_has_batch(g_store));
    sync_one_batch(&syncs);
    ck_assert_uint_ge(commit_durable_seq(), commit_needed_seq());
    put_many("v", 1); /* the last batch held 2: this one goes at once */
    ev_run(loop, EVRUN_NOWAIT);
    ck_assert(!mvcc_has_batch(g_store));
}
END_TEST

Suite *commit_suite(void) {
    Suite *s = suite_create("commit");
    TCase *tc = tcase_create("slow sync");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_nothing_released_before_sync);
    tcase_add_test(tc, test_next_batch_waits_for_its_own_sync);
    tcase_add_test(tc, test_reads_alone_are_not_held);
    tcase_add_test(tc, test_commit_batch_waits_for_sync_in_flight);
    tcase_add_test(tc, test_batch_gathers_the_writers_just_answered);
    suite_add_tcase(s, tc);
    return s;
}
