/* compaction_driver.c: drives storage's log compaction from the event loop. A slow timer starts a
 * run when the garbage ratio calls for one; while a run is active a fast timer gives it slices of
 * about a millisecond, so requests keep flowing; the same slices prune the index after a Compact.
 * Defragment requests wait for a run of their own and get its outcome; a failed run (a full disk,
 * say) is abandoned with an error, never fatal. The slow timer also reads the data dir's free space,
 * so that writes are refused (NOSPACE) before the disk is full (--disk-reserve-bytes). */
#include "compaction_driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log_msg.h"
#include "store.h"

#define CHECK_SECONDS 1.0
#define SLICE_GAP_SECONDS 0.002
#define SLICE_BUDGET_US 1000

typedef struct waiter {
    compaction_done_fn done;
    void *ctx;
    struct waiter *next;
} waiter;

static struct ev_loop *driver_loop;
static ev_timer check_timer, slice_timer;
static waiter *running_waiters; /* answered when the current run ends */
static waiter *queued_waiters;  /* want a sealed run after the current one */

static void answer(waiter **list, int rc) {
    waiter *w = *list;
    *list = NULL;
    while (w) {
        waiter *next = w->next;
        w->done(w->ctx, rc);
        free(w);
        w = next;
    }
}

static void begin_run(bool seal) {
    mvcc_log_compaction_start(g_store, seal);
    ev_timer_again(driver_loop, &slice_timer);
}

static void on_slice(EV_P_ ev_timer *t, int revents) {
    (void)revents;
    if (!mvcc_log_compaction_running(g_store)) { /* only the index is being pruned after a Compact */
        if (mvcc_index_compaction_step(g_store, SLICE_BUDGET_US) == 0) ev_timer_stop(EV_A_ t);
        return;
    }
    int rc = mvcc_log_compaction_step(g_store, SLICE_BUDGET_US);
    if (rc == 1) return;
    ev_timer_stop(EV_A_ t);
    if (rc < 0) /* storage abandoned the run and removed its file; the store serves on as it was */
        log_msg(LOG_WARN, "log compaction failed, abandoned: %s", strerror(-rc));
    else
        log_msg(LOG_INFO, "log compaction done: %llu bytes on disk",
                (unsigned long long)mvcc_db_size(g_store));
    answer(&running_waiters, rc);
    if (queued_waiters) {
        running_waiters = queued_waiters;
        queued_waiters = NULL;
        begin_run(true);
    }
}

/* Reads the free space; says so once each time it falls under the reserve or fails to read. */
static void check_disk(void) {
    static bool was_low, read_failed;
    uint64_t free_bytes = 0;
    int rc = mvcc_check_disk(g_store, &free_bytes);
    if (rc < 0 && !read_failed)
        log_msg(LOG_WARN, "cannot read the free space of the data dir: %s", strerror(-rc));
    read_failed = rc < 0;
    bool low = mvcc_disk_low(g_store);
    if (low && !was_low)
        log_msg(LOG_WARN,
                "the data dir's file system has %llu bytes free, under --disk-reserve-bytes %llu: "
                "writes are refused (NOSPACE) until space is freed and the alarm disarmed",
                (unsigned long long)free_bytes, (unsigned long long)g_config.disk_reserve_bytes);
    was_low = low;
}

static void on_check(EV_P_ ev_timer *t, int revents) {
    (void)EV_A, (void)t, (void)revents;
    if (g_config.disk_reserve_bytes) check_disk();
    if (mvcc_log_compaction_running(g_store)) return;
    if (mvcc_index_compaction_pending(g_store))
        ev_timer_again(driver_loop, &slice_timer); /* prune first: the garbage figure needs it */
    else if (mvcc_log_compaction_wanted(g_store))
        begin_run(false);
}

void compaction_driver_start(struct ev_loop *loop) {
    driver_loop = loop;
    ev_timer_init(&check_timer, on_check, CHECK_SECONDS, CHECK_SECONDS);
    ev_timer_start(loop, &check_timer);
    if (g_config.disk_reserve_bytes) check_disk(); /* says at once if the disk is already too full */
    ev_init(&slice_timer, on_slice);
    slice_timer.repeat = SLICE_GAP_SECONDS;
}

void compaction_driver_defragment(compaction_done_fn done, void *ctx) {
    waiter *w = malloc(sizeof *w);
    if (!w) abort();
    *w = (waiter){done, ctx, NULL};
    if (mvcc_log_compaction_running(g_store)) {
        w->next = queued_waiters;
        queued_waiters = w;
        return;
    }
    w->next = running_waiters;
    running_waiters = w;
    begin_run(true);
}
