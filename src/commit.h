/* commit.h: the commit rule. Each loop turn's writes form one batch, written at the end of the turn
 * and fdatasynced once on a helper thread while the loop keeps serving; output produced while a
 * batch is unsynced is held until that batch is durable, so nobody sees what a crash could lose. */
#ifndef CETCD_COMMIT_H
#define CETCD_COMMIT_H

#include <ev.h>
#include <stdint.h>

/* Installs the ev_prepare watcher that starts batches and flushes output, and the sync thread. */
void commit_start(struct ev_loop *loop);
/* Makes everything written so far durable now (waits for a sync in flight). Exits the process if
 * the log cannot be written: a failed fsync is never retried. For shutdown and snapshots. */
void commit_batch(void);

/* Output sequence numbers: output tagged with commit_needed_seq() may leave once
 * commit_durable_seq() has reached it. */
uint64_t commit_needed_seq(void);
uint64_t commit_durable_seq(void);

#endif
