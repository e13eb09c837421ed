/* compaction_driver.h: runs the store's log compaction in the background (and for Defragment). */
#ifndef CETCD_COMPACTION_DRIVER_H
#define CETCD_COMPACTION_DRIVER_H

#include <ev.h>

/* Starts the periodic check that begins a run when the log's garbage ratio calls for one. */
void compaction_driver_start(struct ev_loop *loop);
/* Compacts the whole log now, the active segment included; done(ctx, 0) when finished. A failure
 * to write or sync stops the server, as a failed commit does. */
typedef void (*compaction_done_fn)(void *ctx, int rc);
void compaction_driver_defragment(compaction_done_fn done, void *ctx);

#endif
