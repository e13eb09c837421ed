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

#endif
