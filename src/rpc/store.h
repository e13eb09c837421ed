/* store.h: the one store the server serves, opened by main.c and used by every service. */
#ifndef CETCD_STORE_H
#define CETCD_STORE_H

#include "mvcc.h"

extern mvcc *g_store;

#endif
