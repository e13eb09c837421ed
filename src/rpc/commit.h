/* commit.h: the commit rule. Each loop turn's writes form one batch (under load, several turns'),
 * written at the end of the turn and fdatasynced once on a helper thread while the loop keeps
 * serving; output produced while a batch is unsynced is held until that batch is durable, so nobody
 * sees what a crash could lose. */
#ifndef CETCD_COMMIT_H
#define CETCD_COMMIT_H

#include <ev.h>
#include <stdint.h>

/* What the user of the commit rule (the connection layer) does at its two moments. commit.c is the
 * mechanism and knows nothing of connections; main.c registers server.c's functions here. */
typedef struct commit_hooks {
    /* End of a loop turn, after the batch is started: produce and write the output of the turn.
     * commit must run before any output is released (a close handler run by the flush may write). */
    void (*flush)(void (*commit)(void));
    /* A batch became durable: output held for it may now leave. */
    void (*durable)(void);
} commit_hooks;

/* Installs the ev_prepare watcher that starts batches and runs hooks->flush, and the sync thread.
 * hooks is copied. */
void commit_start(struct ev_loop *loop, const commit_hooks *hooks);
/* Makes everything written so far durable now (waits for a sync in flight). Exits the process if
 * the log cannot be written: a failed fsync is never retried. For shutdown (main.c). */
void commit_batch(void);

/* Output sequence numbers: output tagged with commit_needed_seq() may leave once
 * commit_durable_seq() has reached it. */
uint64_t commit_needed_seq(void);
uint64_t commit_durable_seq(void);

#endif
