/* commit.c: the commit rule. Before the loop blocks (ev_prepare), the store's batch of this turn's
 * writes is made durable with one fdatasync, and only then is the turn's output (replies, watch
 * events) released to the sockets, so no client ever sees a write that a crash could lose. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commit.h"
#include "metrics.h"
#include "server.h"
#include "store.h"

/* Weak so that a test binary may define its own; the server uses this one. */
__attribute__((weak)) mvcc *g_store;

static ev_prepare prepare_watcher;

void commit_batch(void) {
    if (!g_store || !mvcc_has_batch(g_store)) return;
    int rc = metrics_timed_commit(g_store); /* mvcc_commit, timed for /metrics */
    if (rc != 0) {
        fprintf(stderr, "cetcd: fatal: log commit failed: %s\n", strerror(-rc));
        exit(1);
    }
}

void commit_and_flush(void) {
    commit_batch();
    server_flush(commit_batch);
    commit_batch();
}

static void on_prepare(EV_P_ ev_prepare *w, int revents) {
    (void)EV_A, (void)w, (void)revents;
    commit_and_flush();
}

void commit_start(struct ev_loop *loop) {
    ev_prepare_init(&prepare_watcher, on_prepare);
    ev_prepare_start(loop, &prepare_watcher);
}
