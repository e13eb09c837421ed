/* revision_hooks.c: shares the store's one revision hook among its subscribers (revision_hooks.h),
 * so that watch and the services that wait on keys follow the same revisions without knowing of
 * each other. */
#include "revision_hooks.h"

#include <stdio.h>
#include <stdlib.h>

#include "store.h"

static struct {
    revision_fn fn;
    void *ctx;
} hooks[REVISION_HOOKS_MAX];
static int n_hooks;

static void dispatch(void *ctx, int64_t rev) {
    (void)ctx;
    for (int i = 0; i < n_hooks; i++)
        hooks[i].fn(hooks[i].ctx, rev);
}

void revision_hook_add(revision_fn fn, void *ctx) {
    if (n_hooks == REVISION_HOOKS_MAX) {
        fputs("cetcd: fatal: too many revision hooks\n", stderr);
        abort();
    }
    hooks[n_hooks].fn = fn;
    hooks[n_hooks].ctx = ctx;
    n_hooks++;
    mvcc_on_revision(g_store, dispatch, NULL); /* (again): the store keeps one hook, this one */
}
