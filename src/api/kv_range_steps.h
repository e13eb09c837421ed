/* kv_range_steps.h: the gRPC Range reply packed by hand into the call's output, at once or over several
 * loop turns (kv_range_steps.c), and the end of a Range call, which drops such a reply if the client
 * went. */
#ifndef CETCD_KV_RANGE_STEPS_H
#define CETCD_KV_RANGE_STEPS_H

#include <stddef.h>

#include "mvcc.h"
#include "reply_sink.h"
#include "rpc.h"

/* A reply with more value bytes than this is copied in steps of about as many. */
#define RANGE_STEP_BYTES ((size_t)2 << 20)

/* Answers a Range with the result of mvcc_range_select (no error, not too large) and its rest (NULL
 * or *rest from it, taken over). out must take encoded replies (a gRPC call's sink). */
void kv_range_reply(const mv_result *res, mv_range_rest *rest, const reply_sink *out);
/* The method table's on_close of Range: a reply still being built is dropped with its call. */
void kv_range_closed(rpc_call *call);

#endif
