/* revision_hooks.h: the store has one revision hook (mvcc_on_revision); every module that follows new
 * revisions as they are made (watch's hub, the Lock and Election waiters) subscribes here instead, and
 * each is called, in the order they subscribed, for every revision. */
#ifndef CETCD_REVISION_HOOKS_H
#define CETCD_REVISION_HOOKS_H

#include <stdint.h>

/* Called inside the store's write, right after revision rev is made: it may read the revision's events
 * (mvcc_events_at) but must not write to the store. */
typedef void (*revision_fn)(void *ctx, int64_t rev);

/* Adds fn to the hooks of g_store (which must be open); at most REVISION_HOOKS_MAX of them. */
#define REVISION_HOOKS_MAX 4
void revision_hook_add(revision_fn fn, void *ctx);

#endif
