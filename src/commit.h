/* commit.h: the commit rule: once per loop turn, make the store's batch durable (one fdatasync),
 * and only then release the replies and events produced in that turn to the sockets. */
#ifndef CETCD_COMMIT_H
#define CETCD_COMMIT_H

#include <ev.h>

/* Installs the ev_prepare watcher that runs commit_and_flush before the loop blocks. */
void commit_start(struct ev_loop *loop);
/* Syncs the pending batch (exits the process if the log cannot be written), then flushes output. */
void commit_and_flush(void);
/* Syncs the pending batch only; exits the process if the log cannot be written. */
void commit_batch(void);

#endif
