/* key_waits.h: waiting inside the server for changes of keys, as etcd's Lock and Election servers wait
 * through watches: a callback for each change of a key, or of any key under a prefix, driven by the
 * store's revision hook (no polling), and jobs that run from the loop soon after, where the store may
 * be read and written (the hook itself may do neither). */
#ifndef CETCD_KEY_WAITS_H
#define CETCD_KEY_WAITS_H

#include <stdbool.h>
#include <stdint.h>

#include "mvcc.h"

typedef struct key_wait key_wait;

/* Called from inside the store's write that made ev (valid during the call only). It may note what
 * happened, send output and queue jobs; it must not touch the store or add or remove waits. */
typedef void (*key_wait_fn)(void *ctx, const mv_event *ev);

/* Waits for changes of key, or, with prefix (which must end in '/'), of every key that starts with it.
 * The key is copied. */
key_wait *key_wait_add(mv_bytes key, bool prefix, key_wait_fn fn, void *ctx);
void key_wait_remove(key_wait *w); /* NULL is fine */
size_t key_wait_count(void);

/* Work to run once from the loop, at the start of its next turn (a zero timer), outside any write of
 * the store and outside any flush of output: jobs may read and write the store and answer calls. */
typedef struct loop_job loop_job;
struct loop_job {
    void (*run)(loop_job *j);
    loop_job *prev, *next;
    uint64_t pass; /* the pass that runs it */
    bool queued;
};
void loop_job_queue(loop_job *j);  /* no-op if already queued */
void loop_job_cancel(loop_job *j); /* no-op if not queued */

#endif
