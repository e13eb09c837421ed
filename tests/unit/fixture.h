/* fixture.h: the store fixture the storage suites share: a fresh temp dir, an open store in `st`,
 * reopening it (recovery from its own log), and cleaning up. Each suite picks its store options. */
#ifndef CETCD_TEST_FIXTURE_H
#define CETCD_TEST_FIXTURE_H

#include "mvcc.h"

extern char dir[64];
extern mvcc *st;

mv_bytes B(const char *s);
/* Makes a temp dir and opens a store there with opt (kept for open_store and reopen). */
void fixture_setup(mvcc_options opt);
void fixture_teardown(void);
/* Opens the store in dir again (after a close, or a simulated crash). */
void open_store(void);
/* Commits, closes and opens again. */
void reopen(void);

/* Shared steps of the storage suites, on `st`: a put (lease 0 for none) returning the new
 * revision, a single-key delete, log compaction run to its end with a commit between slices (as
 * the server's loop does; a rewrite is switched in once its decisions are durable), Defragment
 * (the same after sealing the current segment), and HashKV of store s at rev (0 = current). */
int64_t fx_put(const char *k, const char *v, int64_t lease);
void fx_del(const char *k);
void fx_run_log_compaction(void);
void fx_defragment(void);
uint32_t fx_hash(mvcc *s, int64_t rev);

#endif
