/* commit.c: group commit with the write and fdatasync on one helper thread (docs/architecture.md,
 * "The commit rule"). At the end of a loop turn the batch is handed to the thread (under load it may
 * wait a little for more writers: gathering, below); the loop keeps
 * serving (reads of the batch come from memory) and collecting the next batch. When the sync is done
 * (ev_async), the user's durable hook releases the output held for it. Only the batch's write and
 * fdatasync (with a segment roll's file creation and MANIFEST) leave the loop's thread; everything
 * else stays on it. */
#include "commit.h"

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "store.h"

/* Weak so that a test binary may define its own; the server uses this one. */
__attribute__((weak)) mvcc *g_store;

static struct ev_loop *commit_loop;
static commit_hooks hooks;
static ev_prepare prepare_watcher;
static ev_async sync_done_watcher;

static uint64_t next_batch_seq = 1; /* the batch being collected gets this number */
static uint64_t durable_seq;        /* every batch up to this one is durable */
static uint64_t in_flight_seq;      /* the batch being synced, 0 if none */
static bool job_busy;               /* the thread has a job: a batch, or a side sync alone */
static uint64_t fsyncs_handed;      /* the store's fsync count when the batch in flight was handed over */

/* Gathering (docs/architecture.md, "The commit rule"): under load, the writers a sync has just
 * answered write again within a round trip. A batch that waits for them costs one fdatasync where
 * two would have run, and per put most of a sync's CPU is fixed (wakeups, the device's queue). So a
 * batch waits while fewer writes are pending than the last batch and the writes that came during its
 * sync, and no longer than the last sync took, at most GATHER_MAX_NS: waiting longer than the sync
 * it saves would cost more latency than it gains. Fewer than GATHER_MIN_WRITES never wait. */
#define GATHER_MIN_WRITES 8
#define GATHER_MAX_NS 500000
static int64_t handed_rev;       /* the store's revision when the last batch was handed over */
static int64_t in_flight_writes; /* revisions in the batch being synced */
static int64_t expected_writes;  /* the next batch waits for this many; the timer sets it to 0 */
static uint64_t last_sync_ns;    /* how long the last batch's sync took */
static int gather_fd = -1;       /* a timerfd: libev's own timers round up to a millisecond */
static ev_io gather_watcher;
static bool gather_armed;

/* The sync thread's one job slot, guarded by job_lock. */
static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t job_cond = PTHREAD_COND_INITIALIZER;
static struct log_job *job; /* handed to the thread; NULL when it has none */
static bool job_done;
static int job_rc;
static double job_seconds;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fatal_commit(int rc) {
    fprintf(stderr, "cetcd: fatal: log commit failed: %s\n", strerror(-rc));
    exit(1);
}

/* The loop is woken after job_lock is released, so that on_sync_done does not find it still held
 * (a futex wait and wake per batch). */
static void *sync_thread(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&job_lock);
        while (!job)
            pthread_cond_wait(&job_cond, &job_lock);
        struct log_job *mine = job;
        pthread_mutex_unlock(&job_lock);
        double t0 = now_seconds();
        int rc = mvcc_run_job(mine);
        double took = now_seconds() - t0;
        pthread_mutex_lock(&job_lock);
        job = NULL;
        job_rc = rc;
        job_seconds = took;
        job_done = true;
        pthread_cond_broadcast(&job_cond);
        pthread_mutex_unlock(&job_lock);
        ev_async_send(commit_loop, &sync_done_watcher);
    }
    return NULL;
}

uint64_t commit_needed_seq(void) {
    if (g_store && mvcc_has_batch(g_store)) return next_batch_seq;
    return in_flight_seq ? in_flight_seq : durable_seq;
}

uint64_t commit_durable_seq(void) {
    return durable_seq;
}

/* Revisions written since the last batch was handed over (0 if the store was replaced meanwhile). */
static int64_t writes_since_handoff(void) {
    int64_t n = mvcc_revision(g_store) - handed_rev;
    return n > 0 ? n : 0;
}

/* Takes the finished sync's result, if there is one. Call with job_lock held. */
static bool collect_sync_locked(void) {
    if (!job_done) return false;
    job_done = false;
    job_busy = false;
    mvcc_sync_finished(g_store, job_rc);
    if (job_rc < 0) fatal_commit(job_rc);
    if (!in_flight_seq) return false; /* a side sync alone: nothing new is durable */
    /* with fsync off, a roll's job syncs no segment: nothing to observe, and no sync to share */
    if (mvcc_fsync_count(g_store) != fsyncs_handed) {
        metrics_observe_fsync(g_store, job_seconds);
        expected_writes = in_flight_writes + writes_since_handoff();
        last_sync_ns = (uint64_t)(job_seconds * 1e9);
    }
    durable_seq = in_flight_seq;
    in_flight_seq = 0;
    return true;
}

static void arm_gather(uint64_t ns) {
    struct itimerspec t = {.it_value = {.tv_sec = 0, .tv_nsec = (long)ns}};
    assert(ns < 1000000000);
    if (timerfd_settime(gather_fd, 0, &t, NULL) == 0) gather_armed = ns != 0;
}

/* Should the batch wait for more writers (see GATHER_MAX_NS)? Arms the timer that ends the wait. */
static bool gather_more(void) {
    if (gather_fd < 0 || expected_writes < GATHER_MIN_WRITES) return false;
    if (writes_since_handoff() >= expected_writes) return false;
    if (gather_armed) return true;
    arm_gather(last_sync_ns < GATHER_MAX_NS ? last_sync_ns : GATHER_MAX_NS);
    if (gather_armed) metrics_gather(0);
    return gather_armed;
}

static void end_gathering(void) {
    if (gather_armed) arm_gather(0);
    gather_armed = false;
    expected_writes = 0;
}

static void on_gather_expired(EV_P_ ev_io *w, int revents) {
    (void)EV_A, (void)revents;
    uint64_t ticks;
    if (read(w->fd, &ticks, sizeof ticks) != (ssize_t)sizeof ticks) return; /* disarmed meanwhile */
    gather_armed = false;
    expected_writes = 0; /* the batch waits no more */
    metrics_gather(1);
}

/* Hands the collected batch to the thread, which writes and syncs it (one batch in flight at a time),
 * so a stalled disk stalls no read. */
static void start_batch(void) {
    if (job_busy || !g_store || !mvcc_wants_job(g_store)) return;
    bool batch = mvcc_has_batch(g_store); /* else log compaction's file wants its sync alone */
    if (batch && gather_more()) return;
    end_gathering();
    struct log_job *next;
    int rc = mvcc_write_batch(g_store, &next);
    if (rc < 0) fatal_commit(rc);
    if (batch) {
        uint64_t seq = next_batch_seq++;
        in_flight_writes = writes_since_handoff();
        handed_rev = mvcc_revision(g_store);
        if (!next) { /* already durable (fsync off: written at once, unless it rolls) */
            durable_seq = seq;
            return;
        }
        in_flight_seq = seq;
        fsyncs_handed = mvcc_fsync_count(g_store);
    }
    if (!next) return;
    job_busy = true;
    pthread_mutex_lock(&job_lock);
    job = next;
    pthread_cond_signal(&job_cond);
    pthread_mutex_unlock(&job_lock);
}

static void on_sync_done(EV_P_ ev_async *w, int revents) {
    (void)EV_A, (void)w, (void)revents;
    pthread_mutex_lock(&job_lock);
    bool collected = collect_sync_locked();
    pthread_mutex_unlock(&job_lock);
    if (collected && hooks.durable) hooks.durable();
}

static void on_prepare(EV_P_ ev_prepare *w, int revents) {
    (void)EV_A, (void)w, (void)revents;
    start_batch();
    if (hooks.flush) hooks.flush(start_batch);
    start_batch();
}

void commit_batch(void) {
    pthread_mutex_lock(&job_lock);
    while (job_busy && !job_done)
        pthread_cond_wait(&job_cond, &job_lock);
    collect_sync_locked();
    pthread_mutex_unlock(&job_lock);
    if (!g_store || !mvcc_has_batch(g_store)) return;
    int rc = metrics_timed_commit(g_store);
    if (rc != 0) fatal_commit(rc);
    durable_seq = next_batch_seq++;
    handed_rev = mvcc_revision(g_store);
    end_gathering();
}

void commit_start(struct ev_loop *loop, const commit_hooks *user) {
    commit_loop = loop;
    hooks = *user;
    ev_async_init(&sync_done_watcher, on_sync_done);
    ev_async_start(loop, &sync_done_watcher);
    handed_rev = g_store ? mvcc_revision(g_store) : 0;
    gather_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (gather_fd >= 0) {
        ev_io_init(&gather_watcher, on_gather_expired, gather_fd, EV_READ);
        ev_io_start(loop, &gather_watcher);
    }
    ev_prepare_init(&prepare_watcher, on_prepare);
    ev_prepare_start(loop, &prepare_watcher);
    pthread_t thread;
    if (pthread_create(&thread, NULL, sync_thread, NULL) != 0) {
        fputs("cetcd: fatal: cannot start the sync thread\n", stderr);
        exit(1);
    }
    pthread_detach(thread);
}
